"""``aslsr generate``: super-resolve with a trained model onto any grid, without retraining."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .. import masking, registration
from ..config import replace
from ..devices import resolve_device
from ..errors import InputError
from ..generate import super_resolve
from ..inputs import load_inputs
from ..io import save_volume
from ..model import Model
from ..outputs import check_output, run_inputs
from ..pipeline import register_t1
from ..staging import StagedFile
from ._common import add_target_arguments, target_from_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate", help="super-resolve with a trained model.pt", description=__doc__.split(":", 1)[1].strip()
    )
    parser.add_argument("--model", type=Path, required=True, help="model.pt written by aslsr run")
    parser.add_argument("--asl", type=Path, required=True, help="low-resolution ASL NIfTI")
    parser.add_argument("--t1", type=Path, required=True, help="T1-weighted NIfTI")
    parser.add_argument("--out", type=Path, required=True, metavar="SR.nii.gz", help="output image")
    add_target_arguments(parser)
    parser.add_argument("--m0", type=Path, help="M0 image used as the registration target")
    parser.add_argument(
        "--mask", type=Path, help="brain mask on the ASL grid (default: from the M0, else the T1, as aslsr run does)"
    )
    parser.add_argument("--no-register", action="store_true", help="T1 and ASL are already aligned")
    parser.add_argument(
        "--no-realign",
        action="store_true",
        help="do not realign the volumes of a 4D control/label series before subtracting them",
    )
    parser.add_argument(
        "--quantify",
        action="store_true",
        help="quantify CBF (ml/100g/min) from a deltaM input first, as the model's run did",
    )
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument(
        "--flip-ensemble",
        action=argparse.BooleanOptionalAction,
        help="average the generator over the 8 flips of its inputs (8x generation time); default: as the model's run",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    # every input is checked before registration and generation
    if args.out.is_dir():
        raise InputError("is a folder; give the output image's file name", args.out)
    if not args.out.name.endswith((".nii", ".nii.gz")):
        raise InputError("the output name must end in .nii or .nii.gz", args.out)
    check_output(
        args.out,
        kind="file",
        overwrite=args.overwrite,
        inputs=[args.model, *run_inputs(args.asl, args.t1, args.m0, args.like, args.mask)],
    )
    model = Model.load(args.model)
    if args.flip_ensemble is not None:
        model.config = replace(model.config, flip_ensemble=args.flip_ensemble)
    device = resolve_device(args.device)
    inputs = load_inputs(
        args.asl,
        args.t1,
        args.m0,
        target_from_args(args),
        quantify=args.quantify,
        realign=not args.no_realign,
        acquired_grid=model.finds_acquired_grid,
    )
    given_mask = inputs.load_mask(args.mask) if args.mask is not None else None
    result = register_t1(inputs.fixed, inputs.t1, register=not args.no_register, seed=model.trained_seed)
    t1 = registration.apply_registration(inputs.t1, result)
    mask = masking.derive_mask(inputs.m0, t1, inputs.asl.grid) if given_mask is None else given_mask
    sr = super_resolve(model, inputs.asl, t1, inputs.target, device=device, brain_mask=mask)
    if not np.all(np.isfinite(sr)):
        raise InputError(
            "the model produced NaN or infinite values on these inputs (a damaged model file?); nothing was written",
            args.model,
        )
    with StagedFile(args.out, suffix=".nii.gz" if args.out.name.endswith(".gz") else ".nii") as temporary:
        save_volume(temporary, sr, inputs.target)
    print(f"aslsr generate: wrote {args.out} {inputs.target} ({inputs.units})")
    return 0
