"""Arguments shared by several commands (target grid, training options)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..config import PRESETS, Config, load_config
from ..errors import InputError
from ..inputs import TargetSpec


def command_line() -> str:
    """This process's command line, as a run records it in ``report.json``."""
    return " ".join(sys.argv)


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--like", type=Path, metavar="REF.nii.gz", help="super-resolve onto this image's grid")
    group.add_argument(
        "--voxel-size",
        type=float,
        nargs="+",
        metavar="MM",
        help="target voxel size in mm (1 or 3 numbers) over the ASL field of view",
    )
    group.add_argument(
        "--zoom", type=float, nargs="+", metavar="F", help="target = ASL voxels divided by F (1 or 3 numbers)"
    )


def target_from_args(args: argparse.Namespace) -> TargetSpec:
    return TargetSpec(like=args.like, voxel_size=_triple(args.voxel_size), zoom=_triple(args.zoom))


def _triple(values: list[float] | None) -> tuple[float, ...] | None:
    return None if values is None else tuple(values)


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset",
        choices=[p for p in PRESETS if p != "test"] + ["test"],
        default="fast",
        help="settings preset (default: fast; paper: the paper's 2000 iterations per scale)",
    )
    parser.add_argument("--config", type=Path, metavar="FILE.toml", help="TOML file overriding preset fields")
    parser.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], default=None, help="auto picks CUDA when present (default)"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    parser.add_argument(
        "--method",
        choices=["gan", "dtv"],
        default=None,
        help="gan: train the T1-guided generator (default); dtv: no training, sr.nii.gz is the "
        "directional-TV reconstruction (written as dtv.nii.gz by every run)",
    )
    parser.add_argument(
        "--acquisition",
        choices=["box", "gaussian", "kspace", "auto"],
        default=None,
        help="how the ASL was acquired (default auto: a windowed 3D k-space readout when the noise outside the "
        "head shows the window, else point samples (a Gaussian PSF of the T1's voxel) when an M0 on the ASL grid "
        "shows them, else box average; kspace: a Cartesian 3D readout; window and widths in the config TOML)",
    )


def config_from_args(args: argparse.Namespace) -> Config:
    if args.config is not None:
        path = Path(args.config)
        if path.is_dir():
            raise InputError("is a folder, not a TOML file", path)
        if path.exists() and not os.access(path, os.R_OK):
            raise InputError("permission denied (the file is not readable)", path)
    try:
        return load_config(
            args.config,
            args.preset,
            device=args.device,
            seed=args.seed,
            method=args.method,
            acquisition=args.acquisition,
        )
    except OSError as error:
        raise InputError(f"cannot read ({error.strerror or error})", args.config) from None
