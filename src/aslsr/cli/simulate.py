"""``aslsr simulate DIR``: write a digital-phantom case (ASL at three qualities, M0, masks, moved T1),
or with ``--bids`` a raw BIDS dataset of phantom subjects (4D pCASL series, T1w)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..errors import InputError
from ..outputs import OutputLock, check_output

#: The most phantom subjects ``--bids`` writes in one call.
MAX_SUBJECTS = 1000


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "simulate", help="simulate a phantom case (MNI152 brain) for testing and benchmarks",
        description="Simulate a digital brain phantom: ground-truth CBF (ml/100g/min), noisy NR and LR "
                    "ASL, a high-SNR reference, M0, brain masks and a T1w moved by a random rigid "
                    "transform. Writes NIfTI files and case.json into DIR, or with --bids a raw BIDS "
                    "dataset of several phantom subjects (pCASL series with M0 and control/label pairs "
                    "on the LR grid, T1w; ground truth in DIR/derivatives/phantom).")
    parser.add_argument("dir", metavar="DIR", help="output folder (created; must be empty unless --overwrite)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--lesion", action="store_true", help="add a hypoperfused lesion invisible on the T1")
    parser.add_argument("--noise-sd", type=float, default=6.0, metavar="X",
                        help="noise sd of the NR ASL in ml/100g/min (default 6)")
    parser.add_argument("--max-rotation", type=float, default=5.0, metavar="DEG",
                        help="largest T1 rotation per axis in degrees (default 5)")
    parser.add_argument("--max-translation", type=float, default=5.0, metavar="MM",
                        help="largest T1 translation per axis in mm (default 5)")
    parser.add_argument("--t1-orientation", choices=("RAS", "LAS", "LPS"), default="RAS",
                        help="voxel axis order of the stored T1 (default RAS)")
    parser.add_argument("--t1-voxel-size", type=float, default=1.0, metavar="MM",
                        help="T1 voxel size in mm (default 1)")
    parser.add_argument("--nr-shape", type=int, nargs=3, metavar=("NI", "NJ", "NK"), default=None,
                        help="NR grid size in voxels (default 128 96 48; small values for quick tests)")
    parser.add_argument("--nr-voxel-size", type=float, nargs=3, metavar=("X", "Y", "Z"), default=None,
                        help="NR voxel size in mm (default 1.875 1.875 2.5)")
    parser.add_argument("--bids", action="store_true",
                        help="write a raw BIDS dataset of phantom subjects instead of one case")
    parser.add_argument("--subjects", type=int, default=None, metavar="N",
                        help="number of subjects with --bids (default 2; subject i has seed SEED + i - 1)")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty DIR")
    parser.set_defaults(func=run_simulate)
    return parser


def run_simulate(args: argparse.Namespace) -> int:
    from ..phantom import PhantomConfig, simulate

    out = Path(args.dir)
    real = check_output(out, kind="folder", overwrite=args.overwrite, allow_raw_bids_root=args.bids)
    if real.is_dir() and any(real.iterdir()) and not args.overwrite:
        raise InputError("output folder is not empty (use --overwrite)", out)
    options = {}
    if args.nr_shape is not None:
        options["nr_shape"] = tuple(args.nr_shape)
    if args.nr_voxel_size is not None:
        options["nr_voxel_size"] = tuple(args.nr_voxel_size)
    config = PhantomConfig(seed=args.seed, lesion=args.lesion, noise_sd=args.noise_sd,
                           max_rotation_deg=args.max_rotation, max_translation_mm=args.max_translation,
                           t1_orientation=args.t1_orientation, t1_voxel_size=args.t1_voxel_size, **options)
    if args.subjects is not None and not args.bids:
        raise InputError("--subjects needs --bids")
    if args.subjects is not None and not 1 <= args.subjects <= MAX_SUBJECTS:
        raise InputError(f"--subjects must be between 1 and {MAX_SUBJECTS}, got {args.subjects}")
    start = time.perf_counter()
    with OutputLock(out):
        if args.bids:
            return _run_bids(out, config, 2 if args.subjects is None else args.subjects, start)
        case = simulate(out, config)
    seconds = time.perf_counter() - start
    grids = case["grids"]
    print(f"aslsr simulate: wrote {len(case['files']) + 1} files to {out} in {seconds:.1f} s "
          f"(seed {case['seed']}, lesion {'yes' if case['lesion'] else 'no'}, "
          f"NR {tuple(grids['nr']['shape'])}, LR {tuple(grids['lr']['shape'])})")
    for role, entry in case["files"].items():
        print(f"  {role:10s} {Path(entry['path']).name}")
    return 0


def _run_bids(out: Path, config, n_subjects: int, start: float) -> int:
    from ..phantom_bids import simulate_bids

    summary = simulate_bids(out, n_subjects=n_subjects, config=config)
    seconds = time.perf_counter() - start
    seeds = f"seed {config.seed}" if n_subjects == 1 else f"seeds {config.seed}-{config.seed + n_subjects - 1}"
    print(f"aslsr simulate: wrote a BIDS dataset of {n_subjects} subject{'s' if n_subjects != 1 else ''} "
          f"({len(summary['files'])} files) to {out} in {seconds:.1f} s ({seeds}, "
          f"lesion {'yes' if config.lesion else 'no'}); ground truth in {out / 'derivatives' / 'phantom'}")
    return 0
