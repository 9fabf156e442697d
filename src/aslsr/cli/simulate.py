"""``aslsr simulate DIR``: write a digital-phantom case (ASL at three qualities, M0, masks, moved T1),
a phantom variant (``--variant NAME`` or the variant options: other CBF, anatomy, PSF, layout), or
with ``--bids`` a raw BIDS dataset of phantom subjects (4D pCASL series, T1w)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..phantom_psf import PSF_KINDS
from ..phantom_spec import ASL_ORIENTATIONS
from ..phantom_variants import VARIANTS
from ..simulation import OPTIONS, Simulation, simulate_phantom


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "simulate",
        help="simulate a phantom case (MNI152 brain) for testing and benchmarks",
        description="Simulate a digital brain phantom: ground-truth CBF (ml/100g/min), noisy NR and LR "
        "ASL, a high-SNR reference, M0, brain masks and a T1w moved by a random rigid "
        "transform. Writes NIfTI files and case.json into DIR, or with --bids a raw BIDS "
        "dataset of several phantom subjects (pCASL series with M0 and control/label pairs "
        "on the LR grid, T1w; ground truth in DIR/derivatives/phantom).",
    )
    parser.add_argument("dir", metavar="DIR", help="output folder (created; must be empty unless --overwrite)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--lesion", action="store_true", help="add a hypoperfused lesion invisible on the T1")
    parser.add_argument(
        "--noise-sd",
        type=float,
        metavar="X",
        help="noise sd of the NR ASL in ml/100g/min (default 6, or the variant's)",
    )
    parser.add_argument(
        "--max-rotation",
        type=float,
        dest="max_rotation_deg",
        metavar="DEG",
        help="largest T1 rotation per axis in degrees (default 5)",
    )
    parser.add_argument(
        "--max-translation",
        type=float,
        dest="max_translation_mm",
        metavar="MM",
        help="largest T1 translation per axis in mm (default 5)",
    )
    parser.add_argument(
        "--t1-orientation", choices=("RAS", "LAS", "LPS"), help="voxel axis order of the stored T1 (default RAS)"
    )
    parser.add_argument("--t1-voxel-size", type=float, metavar="MM", help="T1 voxel size in mm (default 1)")
    parser.add_argument(
        "--nr-shape",
        type=int,
        nargs=3,
        metavar=("NI", "NJ", "NK"),
        default=None,
        help="NR grid size in voxels (default 128 96 48; small values for quick tests)",
    )
    parser.add_argument(
        "--nr-voxel-size",
        type=float,
        nargs=3,
        metavar=("X", "Y", "Z"),
        default=None,
        help="NR voxel size in mm (default 1.875 1.875 2.5)",
    )
    _add_variant_arguments(parser)
    parser.add_argument(
        "--bids", action="store_true", help="write a raw BIDS dataset of phantom subjects instead of one case"
    )
    parser.add_argument(
        "--subjects",
        type=int,
        default=None,
        metavar="N",
        help="number of subjects with --bids (default 2; subject i has seed SEED + i - 1)",
    )
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty DIR")
    parser.set_defaults(func=run_simulate)
    return parser


def _add_variant_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "phantom variants",
        "A named variant, or any of these options (applied on top of the variant, or of a "
        "plain variant with today's CBF model), simulates with aslsr.phantom_variant_simulation: CBF the T1 "
        "does not explain, a warped anatomy, another PSF or voxel layout. Writes phantom.json and a lesion ROI "
        "per lesion.",
    )
    listing = "; ".join(f"{name} ({spec.half}): {spec.description}" for name, spec in VARIANTS.items())
    listing = listing.replace("%", "%%")  # argparse formats help strings with %
    group.add_argument("--variant", choices=list(VARIANTS), metavar="NAME", help=f"a named variant: {listing}")
    group.add_argument("--psf", choices=PSF_KINDS, help="acquisition PSF of the ASL and M0 (default box)")
    group.add_argument("--kspace-window", type=float, metavar="F", help="k-space PSF: Tukey taper fraction 0-1")
    group.add_argument("--psf-fwhm", type=float, metavar="VOX", help="gaussian PSF: in-plane FWHM in LR voxels")
    group.add_argument(
        "--slice-thickness", type=float, metavar="VOX", help="gaussian PSF: slice profile width in slice spacings"
    )
    group.add_argument("--asl-orientation", choices=list(ASL_ORIENTATIONS), help="voxel axis order of the ASL files")
    group.add_argument(
        "--oblique",
        type=float,
        nargs=3,
        metavar=("X", "Y", "Z"),
        help="rotate the ASL grid by these degrees about x, y, z (oblique acquisition)",
    )
    group.add_argument("--warp", type=float, metavar="MM", help="largest displacement of the random anatomy warp")
    group.add_argument(
        "--tissue-field",
        type=float,
        metavar="SD",
        help="sd of log CBF of a smooth random field inside tissue (e.g. 0.25)",
    )
    group.add_argument("--gm-heterogeneity", type=float, metavar="SD", help="sd of log GM CBF at a 4 mm scale")
    group.add_argument(
        "--lesions",
        type=float,
        nargs="+",
        metavar="FACTOR",
        help="one lesion per CBF factor (0.4 hypo-, 1.6 hyper-perfused), invisible on the T1",
    )
    group.add_argument("--vessels", type=int, nargs=2, metavar=("TUBES", "SPOTS"), help="bright vessel tubes, spots")
    group.add_argument("--t1-bias", type=float, metavar="F", help="T1 bias-field amplitude (fraction)")
    group.add_argument("--t1-noise", type=float, metavar="F", help="T1 noise sd as a fraction of WM")
    group.add_argument("--t1-gamma", type=float, metavar="G", help="T1 contrast: intensity power law")
    group.add_argument(
        "--template-resolution",
        type=int,
        metavar="MM",
        help="MNI template resolution in mm (default 1; 2 or 3 for quick tests)",
    )


def run_simulate(args: argparse.Namespace) -> int:
    """Run :func:`aslsr.simulation.simulate_phantom` with the parsed options and print what it wrote."""
    start = time.perf_counter()
    result = simulate_phantom(
        args.dir,
        seed=args.seed,
        lesion=args.lesion,
        variant=args.variant,
        bids=args.bids,
        subjects=args.subjects,
        overwrite=args.overwrite,
        **{name: getattr(args, name) for name in OPTIONS},
    )
    seconds = time.perf_counter() - start
    if result.dataset is not None:
        _print_dataset(result, seconds)
        return 0
    case, grids = result.case, result.case["grids"]
    variant = f"variant {result.spec.name}, " if result.spec is not None else ""
    print(
        f"aslsr simulate: wrote {result.n_files} files to {result.out_dir} in {seconds:.1f} s "
        f"({variant}seed {case['seed']}, lesion {'yes' if case['lesion'] else 'no'}, "
        f"NR {tuple(grids['nr']['shape'])}, LR {tuple(grids['lr']['shape'])})"
    )
    for role, entry in case["files"].items():
        print(f"  {role:10s} {Path(entry['path']).name}")
    return 0


def _print_dataset(result: Simulation, seconds: float) -> None:
    config, out, n_subjects = result.config, result.out_dir, len(result.dataset["subjects"])
    seeds = f"seed {config.seed}" if n_subjects == 1 else f"seeds {config.seed}-{config.seed + n_subjects - 1}"
    print(
        f"aslsr simulate: wrote a BIDS dataset of {n_subjects} subject{'s' if n_subjects != 1 else ''} "
        f"({result.n_files} files) to {out} in {seconds:.1f} s ({seeds}, "
        f"lesion {'yes' if config.lesion else 'no'}); ground truth in {out / 'derivatives' / 'phantom'}"
    )
