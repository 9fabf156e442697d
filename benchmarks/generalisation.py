"""How well do the defaults carry over to data they were not chosen on? Phantom variants, one run each.

The ``fast`` preset was chosen on the default phantom (seed 0, noise sd 6, motion up to 5 deg / 5 mm,
T1 1 mm RAS, 3D LR input). Each variant below changes one thing (other anatomy field and motion,
half or double the noise, larger motion with a LAS 1.2 mm T1, a BIDS 4D pCASL series quantified to
CBF) and runs experiment 1 (LR -> NR grid, registration on) with ``aslsr run --preset fast`` as its
own process. Scores are PSNR (dB) / SSIM in the brain mask, by the metrics of docs/metrics.md, against the
noise-free NR reference and (phantom variants) the high-SNR reference. Appends a dated entry to
BENCHMARKS.md.

    .venv/bin/python benchmarks/generalisation.py [--variants NAME ...] [--out DIR] [--append BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import SimpleITK as sitk
from run_benchmarks import REPO, append_entry, machine, measure

from aslsr import metrics
from aslsr.grids import Grid, resample_average
from aslsr.io import load_mask, load_volume
from aslsr.phantom import PhantomConfig, simulate
from aslsr.phantom_bids import NOISE_STREAM, asl_sidecar, lr_noise_sd, pcasl_series, simulate_bids
from aslsr.quantify import parameters_from_sidecar
from aslsr.realign import resample_volume
from aslsr.registration import FLIP3, to_sitk

#: name -> (what changes, PhantomConfig fields, BIDS 4D series instead of the 3D LR image)
VARIANTS: dict[str, tuple[str, dict[str, Any], bool]] = {
    "default": ("the phantom the presets were chosen on (seed 0)", {}, False),
    "seed1": ("other CBF field, lesion place and T1 motion (seed 1)", {"seed": 1}, False),
    "noise3": ("half the noise (NR sd 3 ml/100g/min)", {"noise_sd": 3.0}, False),
    "noise12": ("double the noise (NR sd 12 ml/100g/min)", {"noise_sd": 12.0}, False),
    "motion10": (
        "motion up to 10 deg / 10 mm, T1 stored LAS at 1.2 mm",
        {"max_rotation_deg": 10.0, "max_translation_mm": 10.0, "t1_orientation": "LAS", "t1_voxel_size": 1.2},
        False,
    ),
    "bids4d": ("BIDS 4D pCASL series (M0 + 4 control/label pairs), --quantify (seed 2)", {"seed": 2}, True),
    "bids4d-motion": (
        "the bids4d series with head motion between its volumes (up to 2 mm / 2 deg), realigned (the default)",
        {"seed": 2},
        True,
    ),
    "bids4d-motion-norealign": ("the same moved series, --no-realign", {"seed": 2}, True),
}
#: variant -> (peak head motion between volumes in mm and degrees, extra arguments of its run)
SERIES_MOTION: dict[str, tuple[float, list[str]]] = {
    "bids4d-motion": (2.0, []),
    "bids4d-motion-norealign": (2.0, ["--no-realign"]),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--out", type=Path, help="working folder (default: a new temporary folder, kept)")
    parser.add_argument("--append", type=Path, default=REPO / "BENCHMARKS.md")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # checks this script in a minute
    return parser.parse_args(argv)


TINY = {"nr_shape": (32, 24, 12), "nr_voxel_size": (7.5, 7.5, 10.0), "t1_voxel_size": 2.0}


def phantom_case(name: str, work: Path, *, tiny: bool = False) -> dict[str, Any]:
    """Simulate one variant; returns the run's input paths and the references to score against."""
    _, fields, bids = VARIANTS[name]
    config = PhantomConfig(**{"lesion": True, **(TINY if tiny else {}), **fields})
    if not bids:
        files = {role: entry["path"] for role, entry in simulate(work / name / "phantom", config)["files"].items()}
        return {
            "asl": files["asl_lr"],
            "t1": files["t1w"],
            "m0": files["m0_lr"],
            "like": files["asl_nr"],
            "mask": files["mask"],
            "references": {"noise-free": files["ref_clean"], "HR": files["ref_hr"]},
            "extra": [],
        }
    root = work / name / "bids"
    simulate_bids(root, n_subjects=1, config=config, n_pairs=4)
    peak, extra = SERIES_MOTION.get(name, (0.0, []))
    motions = move_series(root, config, n_pairs=4, peak=peak) if peak else []
    truth = root / "derivatives/phantom/sub-01/perf"
    nr = "res-" + "x".join(f"{v:g}".replace(".", "p") for v in config.nr_voxel_size) + "mm"
    return {
        "asl": str(root / "sub-01/perf/sub-01_asl.nii.gz"),
        "t1": str(root / "sub-01/anat/sub-01_T1w.nii.gz"),
        "m0": None,
        "like": str(truth / f"sub-01_space-asl_{nr}_desc-truth_cbf.nii.gz"),
        "mask": str(truth / f"sub-01_space-asl_{nr}_desc-brain_mask.nii.gz"),
        "references": {
            "noise-free": str(truth / f"sub-01_space-asl_{nr}_desc-truth_cbf.nii.gz"),
            "HR": str(truth / f"sub-01_space-asl_{nr}_desc-reference_cbf.nii.gz"),
        },
        "extra": ["--quantify", *extra],
        "series_motion": motions,
    }


def move_series(root: Path, config: PhantomConfig, *, n_pairs: int, peak: float) -> list[dict[str, list[float]]]:
    """Acquire the subject's series again with the head moving between volumes; returns each volume's motion.

    After the first volume (the M0, unmoved) a drift from -peak/2 to +peak/2 (mm along and degrees about
    each axis, about the ASL grid's centre) plus jitter of +-peak/4, so that the series' mean lies near the
    unmoved head that the references show. Each volume is made as ``simulate_bids`` makes it, from the
    phantom's NR-grid CBF and M0 moved (cubic B-spline on the NR grid) and averaged onto the LR grid, with the
    same noise as the unmoved series: the two differ only by the motion.
    """
    path = root / "sub-01/perf/sub-01_asl.nii.gz"
    image = nib.load(str(path))
    data = image.get_fdata(dtype=np.float32)
    lr = Grid(data.shape[:3], image.affine)
    with tempfile.TemporaryDirectory() as temporary:
        files = simulate(temporary, config)["files"]
        m0, cbf = (load_volume(files[role]["path"]) for role in ("m0", "ref_clean"))
        mask_lr = load_volume(files["mask_lr"]["path"], allow_constant=True).data > 0.5
    volume_types = ["m0scan"] + ["control", "label"] * n_pairs
    parameters = parameters_from_sidecar(asl_sidecar(n_pairs, lr.voxel_size), path, volume_types=volume_types)
    rng = np.random.default_rng([config.seed, 7])
    motions = []
    for t in range(1, data.shape[3]):
        drift = peak * ((t - 1) / max(data.shape[3] - 2, 1) - 0.5)
        angles, shift = drift + peak / 4 * rng.uniform(-1, 1, 3), drift + peak / 4 * rng.uniform(-1, 1, 3)
        motion = sitk.Euler3DTransform()
        motion.SetCenter([float(v) for v in FLIP3 @ lr.center])
        motion.SetRotation(*[float(np.deg2rad(a)) for a in angles])
        motion.SetTranslation([float(v) for v in shift])
        moved = [
            resample_average(resample_volume(to_sitk(v), to_sitk(v), motion.GetInverse()), v.affine, lr)
            for v in (cbf, m0)
        ]
        series = pcasl_series(
            *moved,
            mask_lr,
            parameters,
            noise_sd_cbf=lr_noise_sd(config, cbf.grid, lr),
            n_pairs=n_pairs,
            rng=np.random.default_rng([config.seed, NOISE_STREAM]),
        )
        data[..., t] = series[..., t]
        motions.append({"volume": t, "rotation_deg": angles.tolist(), "translation_mm": shift.tolist()})
    nib.save(nib.Nifti1Image(data, image.affine, image.header), str(path))
    return motions


def run_variant(name: str, work: Path, preset: str, *, tiny: bool = False) -> dict[str, Any]:
    print(f"generalisation: {name}: {VARIANTS[name][0]}", flush=True)
    case = phantom_case(name, work, tiny=tiny)
    out = work / name / "run"
    args = [
        "run",
        "--asl",
        case["asl"],
        "--t1",
        case["t1"],
        "--like",
        case["like"],
        "--out",
        str(out),
        "--preset",
        preset,
        "--overwrite",
        "--quiet",
        *case["extra"],
    ]
    if case["m0"]:
        args += ["--m0", case["m0"]]
    process = measure(args, work / name / "run.log")
    report = json.loads((out / "report.json").read_text())
    grid = load_volume(case["like"]).grid
    mask = load_mask(case["mask"], grid)
    predictions = {key: load_volume(out / f"{key}.nii.gz", allow_constant=True).data for key in ("spline", "sr")}
    scores = {
        label: metrics.evaluate(load_volume(path).data, predictions, mask=mask)
        for label, path in case["references"].items()
    }
    return {
        "name": name,
        "what": VARIANTS[name][0],
        "scores": scores,
        "wall_s": process["wall_s"],
        "lr_agreement": report["lr_agreement"]["ratio_to_spline"],
        "warnings": report["warnings"],
        "registration": report["registration"],
        "realignment": report["asl"].get("realignment"),
        "series_motion": case.get("series_motion", []),
    }


def render(results: list[dict], info: dict, preset: str) -> str:
    today = datetime.date.today().isoformat()
    lines = [
        f"## {today}: generalisation of `--preset {preset}` over phantom variants "
        f"(benchmarks/generalisation.py, commit {info['commit']})",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']:.1f} GiB, GPU {info['gpu']}; "
        f"torch {info['torch']}. Experiment 1 (LR -> NR grid, registration on), PSNR dB / SSIM in the brain.",
        "",
        "| variant | what changes | spline vs noise-free | **SR vs noise-free** | spline vs HR | **SR vs HR** "
        "| LR agreement | run (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        cells = []
        for label in ("noise-free", "HR"):
            score = result["scores"].get(label, {})
            for key in ("spline", "sr"):
                entry = score.get(key)
                cell = f"{entry['psnr_brain']:.2f} / {entry['ssim_brain']:.4f}" if entry else "-"
                cells.append(f"**{cell}**" if key == "sr" else cell)
        lines.append(
            f"| {result['name']} | {result['what']} | {' | '.join(cells)} | "
            f"{result['lr_agreement']:.2f} | {result['wall_s']:.0f} |"
        )
    warned = [f"{r['name']}: {w}" for r in results for w in r["warnings"]]
    lines += ["", "Warnings in the runs' report.json: " + ("; ".join(warned) if warned else "none") + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.out or Path(tempfile.mkdtemp(prefix="aslsr_generalisation_"))
    work.mkdir(parents=True, exist_ok=True)
    results = [run_variant(name, work, args.preset, tiny=args.tiny) for name in args.variants]
    info = machine()
    (work / "generalisation.json").write_text(
        json.dumps({"machine": info, "results": results}, indent=2, default=str) + "\n"
    )
    entry = render(results, info, args.preset)
    append_entry(args.append, entry)
    print(f"\n{entry}\ngeneralisation: appended to {args.append}; working files in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
