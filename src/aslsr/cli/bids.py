"""``aslsr bids``: a BIDS App: super-resolve every ASL run of a BIDS dataset into BIDS-Derivatives.

Subjects run one after another, on a local Dask cluster (``--workers N``) or on an existing Dask
scheduler (``--scheduler ADDRESS``, whose workers must see BIDS_DIR and OUT_DIR). A failed subject
is reported and the others finish; a rerun skips subjects whose outputs are complete.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .._version import __version__
from ..bids import find_subjects, write_dataset_description
from ..cohort import SubjectJob, SubjectOutcome, run_cohort, threads_per_worker
from ..config import replace
from ..derivatives import write_bids_ignore
from ..errors import InputError
from ..outputs import check_output
from ..pipeline import RunOptions
from ..staging import OutputLock
from ._common import add_target_arguments, add_training_arguments, command_line, config_from_args, target_from_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bids", help="super-resolve a BIDS dataset (BIDS App)", description=__doc__.split(":", 1)[1].strip()
    )
    parser.add_argument("bids_dir", type=Path, metavar="BIDS_DIR", help="the BIDS raw dataset")
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="the BIDS-Derivatives folder to write")
    parser.add_argument("analysis_level", choices=["participant"], help="participant: one run per ASL series")
    parser.add_argument(
        "--participant-label",
        nargs="+",
        metavar="LABEL",
        help="only these subjects (with or without 'sub-'); default: all",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N", help="run N subjects at a time on a local Dask cluster")
    where.add_argument("--scheduler", metavar="ADDRESS", help="send subjects to this Dask scheduler (tcp://host:8786)")
    add_target_arguments(parser)
    parser.add_argument("--no-register", action="store_true", help="T1w and ASL are already aligned")
    parser.add_argument(
        "--no-realign",
        action="store_true",
        help="do not realign the volumes of a 4D control/label series before subtracting them",
    )
    parser.add_argument(
        "--quantify",
        action="store_true",
        help="super-resolve CBF in ml/100g/min (single-PLD model, from each ASL sidecar and M0)",
    )
    parser.add_argument("--nan-to-zero", action="store_true", help="accept NaN/infinite voxels as 0")
    add_training_arguments(parser)
    parser.add_argument("--overwrite", action="store_true", help="redo subjects whose outputs are complete")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or progress lines")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be at least 1, got {args.workers}")
    check_output(args.out_dir, kind="folder", inputs=[args.bids_dir, args.config, args.like])
    config = config_from_args(args)
    if config.threads is None and args.workers:
        config = replace(config, threads=threads_per_worker(args.workers))
    problems: list[SubjectOutcome] = []
    subjects = find_subjects(
        args.bids_dir,
        args.participant_label,
        on_problem=lambda label, error: problems.append(SubjectOutcome(f"sub-{label}", "failed", 0.0, str(error))),
    )
    options = RunOptions(
        register=not args.no_register,
        realign=not args.no_realign,
        quantify=args.quantify,
        nan_to_zero=args.nan_to_zero,
        overwrite=args.overwrite,
        command=command_line(),
    )
    with OutputLock(args.out_dir):
        target = target_from_args(args)
        jobs = [SubjectJob(subject, args.out_dir, config, target, options) for subject in subjects]
        return _run(args, jobs, problems)


def _run(args: argparse.Namespace, jobs: list[SubjectJob], problems: list[SubjectOutcome]) -> int:
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_dataset_description(args.out_dir, version=__version__, source_dir=args.bids_dir)
    write_bids_ignore(args.out_dir)
    where = (
        f"on the Dask scheduler {args.scheduler}"
        if args.scheduler
        else f"on a local Dask cluster of {args.workers} workers"
        if args.workers
        else "one after another"
    )
    print(f"aslsr bids: {len(jobs)} ASL run(s) of {len({job.inputs.subject for job in jobs})} subject(s), {where}")
    for problem in problems:
        _print_outcome(problem)
    outcomes = problems + run_cohort(
        jobs, workers=args.workers, scheduler=args.scheduler, progress=not args.quiet, on_outcome=_print_outcome
    )
    failed = [outcome for outcome in outcomes if outcome.status == "failed"]
    counts = {status: sum(o.status == status for o in outcomes) for status in ("done", "skipped", "failed")}
    print(
        f"aslsr bids: {counts['done']} done, {counts['skipped']} skipped (complete), {counts['failed']} failed; "
        f"outputs in {args.out_dir}"
    )
    return 1 if failed else 0


def _print_outcome(outcome: SubjectOutcome) -> None:
    detail = f": {outcome.message}" if outcome.message else ""
    print(f"  {outcome.name}: {outcome.status} ({outcome.seconds:.0f} s){detail}", flush=True)
