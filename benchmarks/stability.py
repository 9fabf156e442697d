"""Is training stable? One configuration (or several) over phantom cases x seeds, run as separate processes.

For every case, configuration and seed it runs ``aslsr run`` (experiment 1: LR -> NR grid) and reads
back the run's report.json and losses.csv: divergence warnings (guard roll-backs), the largest jump
of the MSE over its running median, the best-validated iteration, the run time, and PSNR / SSIM in
the brain against the noise-free reference for the SR and spline. The table gives, per case and
configuration, the PSNR of each seed and its spread (max - min).

A *case* is a folder holding ``asl_lr``, ``m0_lr``, ``t1``, ``ref_clean`` and ``mask`` (.nii.gz), and
optionally lesion ROIs ``lesion*.nii.gz`` on the reference grid (then the worst lesion's contrast error
is scored). With ``--prepared`` its T1 is already registered and on the NR grid (runs use
``--no-register``); else ``t1`` is the raw T1 and registration runs. ``--prepare-from PANEL_OUT`` first
writes such prepared folders into CASES_DIR from a ``benchmarks/panel.py`` output folder (its phantom
seed 0 and the T1 its ``aslsr`` run registered), so every seed trains on the same registration.

With ``--regenerate EARLIER_OUT`` nothing is trained: every SR of that earlier output is re-made from its
model.pt by ``aslsr generate`` (``--generate-args``, e.g. ``--flip-ensemble``) and scored the same way.

    python benchmarks/stability.py CASES_DIR --configs fast=FILE.toml ... [--seeds 0 1 2] [--workers 4]
           [--device cpu|cuda] [--threads 2] [--prepared] [--prepare-from PANEL_OUT] [--out DIR]
    python benchmarks/stability.py CASES_DIR --regenerate EARLIER_OUT --generate-args="--flip-ensemble" --out DIR
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from aslsr_command import run_command, with_threads


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", type=Path)
    parser.add_argument(
        "--configs",
        nargs="+",
        default=["fast="],
        help="NAME=TOML (empty TOML: the preset as it is); NAME:PRESET=TOML picks another preset",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--only", nargs="*", help="case names (default: every folder in CASES_DIR)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads per run")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--prepared", action="store_true", help="T1 already registered onto the NR grid")
    parser.add_argument("--prepare-from", type=Path, help="benchmarks/panel.py output to make prepared cases from")
    parser.add_argument(
        "--regenerate",
        type=Path,
        metavar="STABILITY_OUT",
        help="no training: re-make each SR of an earlier --out from its model.pt with `aslsr generate` and score it",
    )
    parser.add_argument("--generate-args", default="", help='extra `aslsr generate` arguments, e.g. "--flip-ensemble"')
    parser.add_argument("--out", type=Path, default=Path("stability_out"))
    return parser.parse_args(argv)


def run_one(case: Path, name: str, preset: str, toml: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    out = args.out / case.name / name / f"seed{seed}"
    extra = ["--preset", preset, "--device", args.device, *(["--config", toml] if toml else [])]
    extra = with_threads(extra, args.threads, out.parent / f"{out.name}.toml")
    command = run_command(case, out, t1="t1.nii.gz", like="ref_clean.nii.gz", seed=seed, extra=extra)
    if args.prepared:
        command.append("--no-register")
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    started = time.perf_counter()
    process = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    record: dict[str, Any] = {
        "case": case.name,
        "config": name,
        "seed": seed,
        "wall_s": round(wall, 1),
        "returncode": process.returncode,
    }
    if process.returncode != 0:
        record["error"] = (process.stderr or process.stdout).strip().splitlines()[-1:]
        return record
    report = json.loads((out / "report.json").read_text())
    record.update(
        score(case, out),
        warnings=report["warnings"],
        **losses_summary(out / "losses.csv"),
        training_s=round(report["timings"].get("training_s", 0.0), 1),
        peak_memory_mb=report.get("peak_memory_mb"),
        peak_gpu_memory_mb=report.get("peak_gpu_memory_mb"),
        device_name=report.get("device_name"),
    )
    return record


def generate(
    model: Path, case: Path, asl: Path, out: Path, extra: str = "", threads: int = 1
) -> subprocess.CompletedProcess:
    """``aslsr generate`` of ``model`` on the LR image ``asl`` with the prepared ``case``'s T1, onto its NR grid, with
    the case's M0 where it has one, as the runs had it (the brain mask of the consistency step comes from it)."""
    command = [sys.executable, "-m", "aslsr", "generate", "--model", str(model), "--asl", str(asl), "--t1"]
    command += [str(case / "t1.nii.gz"), "--like", str(case / "ref_clean.nii.gz"), "--out", str(out)]
    if (case / "m0_lr.nii.gz").exists():
        command += ["--m0", str(case / "m0_lr.nii.gz")]
    command += ["--no-register", "--overwrite", "--quiet", *extra.split()]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})


def regenerate_one(case: Path, run: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The SR of an earlier run re-made from its model.pt by the current ``aslsr generate``, scored like a run.

    Generation is deterministic given the model, so this is the run that the current generation settings
    would have given with the same training (which these settings do not touch)."""
    out = args.out / case.name / run.parent.name / run.name
    out.mkdir(parents=True, exist_ok=True)
    for name in ("linear", "spline", "dtv"):
        shutil.copyfile(run / f"{name}.nii.gz", out / f"{name}.nii.gz")
    started = time.perf_counter()
    lr = case / "asl_lr.nii.gz"
    process = generate(run / "model.pt", case, lr, out / "sr.nii.gz", args.generate_args, args.threads)
    record: dict[str, Any] = {"case": case.name, "config": run.parent.name, "seed": int(run.name[4:])}
    record.update(generate_s=round(time.perf_counter() - started, 1), returncode=process.returncode)
    if process.returncode != 0:
        return {**record, "error": (process.stderr or process.stdout).strip().splitlines()[-1:]}
    report = json.loads((run / "report.json").read_text())
    record.update(score(case, out), warnings=report["warnings"], **losses_summary(run / "losses.csv"))
    return {**record, "training_s": round(report["timings"].get("training_s", 0.0), 1), "regenerated_from": str(run)}


def score(case: Path, out: Path) -> dict[str, float]:
    from aslsr import metrics
    from aslsr.io import load_mask, load_volume

    reference = load_volume(case / "ref_clean.nii.gz")
    mask = load_mask(case / "mask.nii.gz", reference.grid)
    keys = [key for key in ("linear", "spline", "dtv", "sr") if (out / f"{key}.nii.gz").exists()]
    predictions = {key: load_volume(out / f"{key}.nii.gz", allow_constant=True).data for key in keys}
    scores = metrics.evaluate(reference.data, predictions, mask=mask)
    record = {f"{key}_{m}": round(scores[key][f"{m}_brain"], 4) for key in predictions for m in ("psnr", "ssim")}
    rois = [load_mask(path, reference.grid) for path in lesion_roi_paths(case)]
    for key, image in predictions.items() if rois else ():
        # the worst lesion's contrast error (docs/metrics.md), as benchmarks/panel.py scores it
        record[f"{key}_lesion_error"] = round(
            max(metrics.lesion_contrast_error(reference.data, image, roi, mask) for roi in rois), 4
        )
    return record


def lesion_roi_paths(folder: Path) -> list[Path]:
    """The lesion ROIs of a case or phantom folder on its reference grid (``lesion*.nii.gz``, not ``*_lr``)."""
    return [path for path in sorted(folder.glob("lesion*.nii.gz")) if not path.name.endswith("_lr.nii.gz")]


def losses_summary(path: Path) -> dict[str, Any]:
    """Largest MSE jump over the median of the 50 rows before it; best-validated iteration and weights per scale."""
    rows = list(csv.DictReader(path.open()))
    mse = np.array([float(r["mse"]) for r in rows if r.get("mse")])
    jumps = [mse[i] / np.median(mse[max(0, i - 50) : i]) for i in range(5, len(mse))]
    best = [int(r["best_iteration"]) for r in rows if r.get("best_iteration")]
    kept = [r["best_weights"] for r in rows if r.get("best_weights")]  # "last" (live) or "ema" (the average)
    return {"max_mse_jump": round(float(max(jumps, default=1.0)), 2), "best_iteration": best, "best_weights": kept}


def _mean_gap(records: list[dict[str, Any]], key: str, baseline: str) -> str:
    if not all(baseline in r for r in records):
        return "-"
    return f"{np.mean([r[key] - r[baseline] for r in records]):+.2f}"


def _lesion_errors(records: list[dict[str, Any]]) -> str:
    if not all("sr_lesion_error" in r and "spline_lesion_error" in r for r in records):
        return "-"
    worst = max(r["sr_lesion_error"] for r in records)
    return f"{100 * worst:.1f} % / {100 * records[0]['spline_lesion_error']:.1f} %"


def render(records: list[dict[str, Any]]) -> str:
    lines = [
        "| case | config | SR PSNR per seed (dB) | spread | SR - spline (mean) | SR SSIM (mean) | "
        "guard roll-backs | largest MSE jump | training (s) | SR - dTV (mean) | "
        "lesion error SR (worst seed) / spline |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str], list[dict]] = {}
    for record in records:
        groups.setdefault((record["case"], record["config"]), []).append(record)
    for (case, name), group in sorted(groups.items()):
        done = [r for r in sorted(group, key=lambda r: r["seed"]) if r["returncode"] == 0]
        if not done:
            lines.append(f"| {case} | {name} | failed: {group[0].get('error')} | | | | | | | | |")
            continue
        psnr = [r["sr_psnr"] for r in done]
        gain = np.mean([r["sr_psnr"] - r["spline_psnr"] for r in done])
        lines.append(
            f"| {case} | {name} | {' / '.join(f'{p:.2f}' for p in psnr)} | {max(psnr) - min(psnr):.2f} | "
            f"{gain:+.2f} | {np.mean([r['sr_ssim'] for r in done]):.4f} | "
            f"{sum(len(r['warnings']) for r in done)} | {max(r['max_mse_jump'] for r in done):.1f}x | "
            f"{np.mean([r['training_s'] for r in done]):.0f} | {_mean_gap(done, 'sr_psnr', 'dtv_psnr')} | "
            f"{_lesion_errors(done)} |"
        )
    return "\n".join(lines) + "\n"


def prepare_cases(panel_out: Path, cases: Path) -> None:
    """Prepared case folders from a panel run: phantom seed 0's files, T1 = the ``aslsr`` run's registered T1."""
    for phantom in sorted(panel_out.glob("*/seed0/phantom")):
        case = cases / phantom.parent.parent.name
        case.mkdir(parents=True, exist_ok=True)
        for name in ("asl_lr", "m0_lr", "ref_clean", "mask"):
            shutil.copyfile(phantom / f"{name}.nii.gz", case / f"{name}.nii.gz")
        for roi in lesion_roi_paths(phantom):
            shutil.copyfile(roi, case / roi.name)
        shutil.copyfile(phantom.parent / "aslsr" / "t1_registered.nii.gz", case / "t1.nii.gz")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.prepare_from is not None:
        prepare_cases(args.prepare_from, args.cases)
        args.prepared = True
    cases = sorted(p for p in args.cases.iterdir() if p.is_dir() and (not args.only or p.name in args.only))
    configs = []
    for item in args.configs:
        label, _, toml = item.partition("=")
        name, _, preset = label.partition(":")
        configs.append((name, preset or "fast", toml))
    jobs = [(case, name, preset, toml, seed) for seed in args.seeds for case in cases for name, preset, toml in configs]
    work = lambda job: run_one(*job, args)  # noqa: E731
    if args.regenerate is not None:
        runs = sorted(args.regenerate.glob("*/*/seed*/model.pt"))
        jobs = [(args.cases / m.parents[2].name, m.parent) for m in runs if (args.cases / m.parents[2].name) in cases]
        work = lambda job: regenerate_one(*job, args)  # noqa: E731
    args.out.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        for record in pool.map(work, jobs):
            records.append(record)  # written as they come, so a run cut short keeps what it finished
            (args.out / "stability.json").write_text(json.dumps(records, indent=1) + "\n")
            table = render(records)
            (args.out / "stability.md").write_text(table)
    print(table)
    return 0 if all(r["returncode"] == 0 for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
