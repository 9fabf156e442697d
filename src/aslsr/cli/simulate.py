"""``aslsr simulate DIR``: write a digital-phantom case (ASL at three qualities, M0, masks, moved T1),
a phantom variant (``--variant NAME`` or the variant options: other CBF, anatomy, PSF, layout), or
with ``--bids`` a raw BIDS dataset of phantom subjects (4D pCASL series, T1w)."""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from ..errors import InputError
from ..outputs import check_output
from ..phantom_psf import PSF_KINDS
from ..phantom_spec import ASL_ORIENTATIONS, PhantomSpec
from ..phantom_variants import VARIANTS
from ..staging import OutputLock

#: The most phantom subjects ``--bids`` writes in one call.
MAX_SUBJECTS = 1000


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
        "--max-rotation", type=float, metavar="DEG", help="largest T1 rotation per axis in degrees (default 5)"
    )
    parser.add_argument(
        "--max-translation", type=float, metavar="MM", help="largest T1 translation per axis in mm (default 5)"
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


#: variant option -> (PhantomSpec field, how the parsed value becomes the field)
_VARIANT_FIELDS = {
    "psf": ("psf", None),
    "kspace_window": ("psf", "window"),
    "psf_fwhm": ("psf", "fwhm_voxels"),
    "slice_thickness": ("psf", "slice_thickness_voxels"),
    "asl_orientation": ("asl_orientation", None),
    "oblique": ("asl_rotation_deg", tuple),
    "warp": ("warp_mm", None),
    "tissue_field": ("tissue_field_sd", None),
    "gm_heterogeneity": ("gm_heterogeneity_sd", None),
    "lesions": ("lesions", tuple),
    "t1_bias": ("t1_bias", None),
    "t1_noise": ("t1_noise", None),
    "t1_gamma": ("t1_gamma", None),
    "template_resolution": ("template_resolution_mm", None),
}


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


def _variant_spec(args: argparse.Namespace, options: dict) -> PhantomSpec | None:
    """The PhantomSpec asked for, or None when no variant option was given (the default phantom)."""
    given = {key: getattr(args, key) for key in _VARIANT_FIELDS if getattr(args, key) is not None}
    if args.variant is None and not given and args.vessels is None:
        return None
    spec = VARIANTS[args.variant] if args.variant else PhantomSpec()
    fields: dict = {}
    psf = {"kind": given.pop("psf")} if "psf" in given else {}
    for key, value in given.items():
        name, convert = _VARIANT_FIELDS[key]
        if name == "psf":
            psf[convert] = value
        else:
            fields[name] = convert(value) if convert else value
    if args.vessels is not None:
        fields["vessel_tubes"], fields["vessel_spots"] = args.vessels
    if args.lesion and "lesions" not in fields:
        fields["lesions"] = spec.lesions or (0.4,)
    if psf:
        fields["psf"] = replace(spec.psf, **psf)
    return replace(spec, seed=args.seed, **options, **fields)


def run_simulate(args: argparse.Namespace) -> int:
    from ..phantom import PhantomConfig, simulate
    from ..phantom_variant_simulation import simulate_variant

    out = Path(args.dir)
    real = check_output(out, kind="folder", overwrite=args.overwrite, allow_raw_bids_root=args.bids)
    if real.is_dir() and any(real.iterdir()) and not args.overwrite:
        raise InputError("output folder is not empty (use --overwrite)", out)
    options = {}
    if args.nr_shape is not None:
        options["nr_shape"] = tuple(args.nr_shape)
    if args.nr_voxel_size is not None:
        options["nr_voxel_size"] = tuple(args.nr_voxel_size)
    for key, name in (
        ("noise_sd", "noise_sd"),
        ("max_rotation", "max_rotation_deg"),
        ("max_translation", "max_translation_mm"),
        ("t1_orientation", "t1_orientation"),
        ("t1_voxel_size", "t1_voxel_size"),
    ):
        if getattr(args, key) is not None:
            options[name] = getattr(args, key)
    if args.subjects is not None and not args.bids:
        raise InputError("--subjects needs --bids")
    if args.subjects is not None and not 1 <= args.subjects <= MAX_SUBJECTS:
        raise InputError(f"--subjects must be between 1 and {MAX_SUBJECTS}, got {args.subjects}")
    start = time.perf_counter()
    spec = _variant_spec(args, options)
    if spec is not None and args.bids:
        raise InputError("--bids does not take phantom variants")
    with OutputLock(out):
        if spec is not None:
            case = simulate_variant(out, spec)
        else:
            config = PhantomConfig(seed=args.seed, lesion=args.lesion, **options)
            if args.bids:
                return _run_bids(out, config, 2 if args.subjects is None else args.subjects, start)
            case = simulate(out, config)
    seconds = time.perf_counter() - start
    grids = case["grids"]
    variant = f"variant {spec.name}, " if spec is not None else ""
    print(
        f"aslsr simulate: wrote {len(case['files']) + 1 + (spec is not None)} files to {out} in {seconds:.1f} s "
        f"({variant}seed {case['seed']}, lesion {'yes' if case['lesion'] else 'no'}, "
        f"NR {tuple(grids['nr']['shape'])}, LR {tuple(grids['lr']['shape'])})"
    )
    for role, entry in case["files"].items():
        print(f"  {role:10s} {Path(entry['path']).name}")
    return 0


def _run_bids(out: Path, config, n_subjects: int, start: float) -> int:
    from ..phantom_bids import simulate_bids

    summary = simulate_bids(out, n_subjects=n_subjects, config=config)
    seconds = time.perf_counter() - start
    seeds = f"seed {config.seed}" if n_subjects == 1 else f"seeds {config.seed}-{config.seed + n_subjects - 1}"
    print(
        f"aslsr simulate: wrote a BIDS dataset of {n_subjects} subject{'s' if n_subjects != 1 else ''} "
        f"({len(summary['files'])} files) to {out} in {seconds:.1f} s ({seeds}, "
        f"lesion {'yes' if config.lesion else 'no'}); ground truth in {out / 'derivatives' / 'phantom'}"
    )
    return 0
