"""``aslsr run``: train on one subject's ASL with its T1 (or solve dTV) and write SR, baselines, model and report."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..outputs import check_run_folder, run_inputs
from ..pipeline import CHECKPOINT_NAME, RunOptions, run
from ._common import add_target_arguments, add_training_arguments, command_line, config_from_args, target_from_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run", help="train and super-resolve one subject", description=__doc__.split(":", 1)[1].strip()
    )
    parser.add_argument(
        "--asl",
        type=Path,
        required=True,
        help="low-resolution ASL NIfTI: a 3D deltaM or CBF map, or a BIDS 4D series with its "
        "_aslcontext.tsv (and _asl.json) beside it",
    )
    parser.add_argument("--t1", type=Path, required=True, help="the subject's T1-weighted NIfTI")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    add_target_arguments(parser)
    parser.add_argument("--m0", type=Path, help="M0 image (used for registration and the brain mask)")
    parser.add_argument("--mask", type=Path, help="brain mask on the ASL grid")
    parser.add_argument("--no-register", action="store_true", help="T1 and ASL are already aligned")
    parser.add_argument(
        "--no-realign",
        action="store_true",
        help="do not realign the volumes of a 4D control/label series before subtracting them",
    )
    parser.add_argument(
        "--quantify",
        action="store_true",
        help="quantify CBF in ml/100g/min from a deltaM input with its BIDS sidecar and M0 "
        "(single-PLD consensus model) before super-resolution",
    )
    parser.add_argument(
        "--nan-to-zero",
        action="store_true",
        help="accept NaN/infinite voxels in the ASL, T1 and M0 as 0 (default: error)",
    )
    add_training_arguments(parser)
    exclusive = parser.add_mutually_exclusive_group()
    exclusive.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    exclusive.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run into DIR from its last checkpoint (same inputs and options)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    check_run_folder(
        args.out,
        inputs=run_inputs(args.asl, args.t1, args.m0, args.mask, args.like, args.config),
        overwrite=args.overwrite,
        resume=args.resume,
        checkpoint_name=CHECKPOINT_NAME,
    )
    config = config_from_args(args)
    result = run(
        args.asl,
        args.t1,
        args.out,
        config=config,
        target=target_from_args(args),
        m0_path=args.m0,
        mask_path=args.mask,
        options=RunOptions(
            register=not args.no_register,
            realign=not args.no_realign,
            quantify=args.quantify,
            nan_to_zero=args.nan_to_zero,
            overwrite=args.overwrite,
            resume=args.resume,
            progress=not args.quiet,
            command=command_line(),
        ),
    )
    timings = result.report["timings"]
    work = f"dTV {timings['dtv_s']:.0f} s" if result.model is None else f"training {timings['training_s']:.0f} s"
    print(
        f"aslsr run: wrote {result.out_dir} (sr.nii.gz {result.target.shape}); "
        f"{work}, total {sum(timings.values()):.0f} s"
    )
    return 0
