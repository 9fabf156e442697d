"""``aslsr reproduce``: the paper's experiments (Table 1, Figs. 2-4, ablations) on the digital phantom.

Writes into DIR the phantom, one folder per run, ``table1.md/.csv`` (experiment 1: LR -> NR grid vs
the NR, HR and noise-free references), ``table2.md/.csv`` (experiment 2: NR -> T1 voxel size vs the
phantom's truth), ``fig_sagittal.png``, ``fig_transaxial.png``, ``fig_experiment2.png``, with
``--ablations`` also ``ablations.md/.csv``, and ``summary.json``; prints the tables at the end.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import PRESETS
from ..outputs import check_output
from ..reproduce import reproduce
from ..staging import OutputLock
from ._common import command_line


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``aslsr reproduce`` and its options."""
    parser = subparsers.add_parser(
        "reproduce",
        help="the paper's experiments on the built-in phantom",
        description=__doc__.split(":", 1)[1].strip(),
    )
    parser.add_argument("dir", type=Path, metavar="DIR", help="output folder")
    parser.add_argument(
        "--preset",
        choices=list(PRESETS),
        default="fast",
        help="settings preset (default: fast; paper: 2000 iterations per scale, slow on a CPU)",
    )
    parser.add_argument(
        "--ablations",
        action="store_true",
        help="also re-run experiment 1 without the T1 channel, the low-pass loss, the "
        "adversarial loss, and with a single scale",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the phantom and of training (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier reproduce")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or progress lines")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run :func:`aslsr.reproduce.reproduce` and print the markdown tables it wrote."""
    check_output(args.dir, kind="folder", overwrite=args.overwrite)
    with OutputLock(args.dir):
        reproduce(
            args.dir,
            preset=args.preset,
            ablations=args.ablations,
            seed=args.seed,
            overwrite=args.overwrite,
            progress=not args.quiet,
            command=command_line(),
        )
    for name in ("table1.md", "table2.md", "ablations.md"):
        path = args.dir / name
        if path.is_file():
            print(f"\n{path}:\n")
            print(path.read_text().rstrip())
    return 0
