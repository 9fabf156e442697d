"""``aslsr demo``: the whole pipeline on the built-in phantom, scored against its references.

Simulates a subject (LR ASL, NR/HR/noise-free references, M0, a moved T1), runs ``aslsr run`` on
the LR ASL with registration, and prints SR next to the interpolation baselines against each
reference, over the whole volume and in the brain mask.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import Config, load_config
from ..errors import InputError
from ..inputs import TargetSpec
from ..io import save_json
from ..outputs import check_output, existing_outputs
from ..phantom import PhantomConfig, simulate
from ..pipeline import RunOptions, run
from ..scoring import format_scores, score_run
from ..staging import OutputLock
from ._common import command_line


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="run everything on the built-in phantom", description=__doc__.split(":", 1)[1].strip()
    )
    parser.add_argument("dir", nargs="?", type=Path, default=Path("aslsr_demo"), help="output folder")
    parser.add_argument("--preset", default="fast", help="settings preset (default: fast)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing demo folder")
    parser.set_defaults(func=main)


#: What ``aslsr demo`` writes into its folder.
OUTPUTS = ("phantom", "run", "results.json")


def main(args: argparse.Namespace) -> int:
    real = check_output(args.dir, kind="folder", overwrite=args.overwrite)
    existing = existing_outputs(real, OUTPUTS)
    if existing and not args.overwrite:
        raise InputError(f"holds {', '.join(existing)} from an earlier demo (use --overwrite)", args.dir)
    config = load_config(None, args.preset, seed=args.seed)
    with OutputLock(args.dir):
        return _demo(args, config)


def _demo(args: argparse.Namespace, config: Config) -> int:
    case = simulate(args.dir / "phantom", PhantomConfig(seed=args.seed, lesion=True))
    files = {role: entry["path"] for role, entry in case["files"].items()}
    print(f"aslsr demo: phantom written to {args.dir / 'phantom'}")
    result = run(
        files["asl_lr"],
        files["t1w"],
        args.dir / "run",
        config=config,
        target=TargetSpec(like=Path(files["asl_nr"])),
        m0_path=files["m0_lr"],
        options=RunOptions(overwrite=args.overwrite, command=command_line()),
    )
    table = score_run(result.out_dir, files)
    print(format_scores(table), end="")
    save_json(args.dir / "results.json", table)
    return 0
