"""``aslsr demo``: the whole pipeline on the built-in phantom, scored against its references.

Simulates a subject (LR ASL, NR/HR/noise-free references, M0, a moved T1), runs ``aslsr run`` on
the LR ASL with registration, and prints SR next to the interpolation baselines against each
reference, over the whole volume and in the brain mask.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import metrics
from ..config import Config, load_config
from ..errors import InputError
from ..inputs import TargetSpec
from ..io import load_mask, load_volume, save_json
from ..outputs import OutputLock, check_output, existing_outputs
from ..phantom import PhantomConfig, simulate
from ..pipeline import run

REFERENCES = (("ref_hr", "HR (44 min)"), ("ref_clean", "noise-free"), ("asl_nr", "NR (5.5 min)"))


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
        overwrite=args.overwrite,
    )
    table = score_run(result.out_dir, files)
    save_json(args.dir / "results.json", table)
    return 0


def score_run(run_dir: Path, files: dict[str, str], predictions=("nearest", "linear", "spline", "sr")) -> dict:
    """Evaluate a run's outputs against the phantom's references; print one table per reference."""
    mask = load_mask(files["mask"], load_volume(files["asl_nr"]).grid)
    lesion = load_mask(files["lesion"], load_volume(files["asl_nr"]).grid) if "lesion" in files else None
    preds = {name: load_volume(run_dir / f"{name}.nii.gz", allow_constant=True).data for name in predictions}
    scores = {}
    for role, label in REFERENCES:
        reference = load_volume(files[role]).data
        results = metrics.evaluate(reference, preds, mask=mask, lesion=lesion)
        scores[role] = results
        print(f"\nagainst {label} ({role}):")
        print(metrics.format_table(results, role))
    return scores
