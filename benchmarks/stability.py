"""Is training stable? One configuration (or several) over phantom cases x seeds, run as separate processes.

For every case, configuration and seed it runs ``aslsr run`` (experiment 1: LR -> NR grid) and reads
back the run's report.json and losses.csv: divergence warnings (guard roll-backs), the largest jump
of the MSE over its running median, the best-validated iteration, the run time, and PSNR / SSIM in
the brain against the noise-free reference for the SR and spline. The table gives, per case and
configuration, the PSNR of each seed and its spread (max - min).

A *case* is a folder holding ``asl_lr``, ``m0_lr``, ``t1``, ``ref_clean`` and ``mask`` (.nii.gz).
With ``--prepared`` its T1 is already registered and on the NR grid (runs use ``--no-register``);
else ``t1`` is the raw T1 and registration runs. ``benchmarks/stability.py --simulate DIR`` writes the
phantom variants of benchmarks/generalisation.py as such folders.

    python benchmarks/stability.py CASES_DIR --configs fast=FILE.toml ... [--seeds 0 1 2] [--workers 4]
           [--device cpu|cuda] [--threads 2] [--prepared] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
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


def score(case: Path, out: Path) -> dict[str, float]:
    from aslsr import metrics
    from aslsr.io import load_mask, load_volume

    reference = load_volume(case / "ref_clean.nii.gz")
    mask = load_mask(case / "mask.nii.gz", reference.grid)
    keys = [key for key in ("linear", "spline", "dtv", "sr") if (out / f"{key}.nii.gz").exists()]
    predictions = {key: load_volume(out / f"{key}.nii.gz", allow_constant=True).data for key in keys}
    scores = metrics.evaluate(reference.data, predictions, mask=mask)
    return {f"{key}_{m}": round(scores[key][f"{m}_brain"], 4) for key in predictions for m in ("psnr", "ssim")}


def losses_summary(path: Path) -> dict[str, Any]:
    """Largest MSE jump over the median of the 50 rows before it; best-validated iteration per scale."""
    rows = list(csv.DictReader(path.open()))
    mse = np.array([float(r["mse"]) for r in rows if r.get("mse")])
    jumps = [mse[i] / np.median(mse[max(0, i - 50) : i]) for i in range(5, len(mse))]
    best = [int(r["best_iteration"]) for r in rows if r.get("best_iteration")]
    return {"max_mse_jump": round(float(max(jumps, default=1.0)), 2), "best_iteration": best}


def render(records: list[dict[str, Any]]) -> str:
    lines = [
        "| case | config | SR PSNR per seed (dB) | spread | SR - spline (mean) | SR SSIM (mean) | "
        "guard roll-backs | largest MSE jump | training (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str], list[dict]] = {}
    for record in records:
        groups.setdefault((record["case"], record["config"]), []).append(record)
    for (case, name), group in sorted(groups.items()):
        done = [r for r in sorted(group, key=lambda r: r["seed"]) if r["returncode"] == 0]
        if not done:
            lines.append(f"| {case} | {name} | failed: {group[0].get('error')} | | | | | | |")
            continue
        psnr = [r["sr_psnr"] for r in done]
        gain = np.mean([r["sr_psnr"] - r["spline_psnr"] for r in done])
        lines.append(
            f"| {case} | {name} | {' / '.join(f'{p:.2f}' for p in psnr)} | {max(psnr) - min(psnr):.2f} | "
            f"{gain:+.2f} | {np.mean([r['sr_ssim'] for r in done]):.4f} | "
            f"{sum(len(r['warnings']) for r in done)} | {max(r['max_mse_jump'] for r in done):.1f}x | "
            f"{np.mean([r['training_s'] for r in done]):.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cases = sorted(p for p in args.cases.iterdir() if p.is_dir() and (not args.only or p.name in args.only))
    configs = []
    for item in args.configs:
        label, _, toml = item.partition("=")
        name, _, preset = label.partition(":")
        configs.append((name, preset or "fast", toml))
    jobs = [(case, name, preset, toml, seed) for seed in args.seeds for case in cases for name, preset, toml in configs]
    args.out.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        for record in pool.map(lambda job: run_one(*job, args), jobs):
            records.append(record)  # written as they come, so a run cut short keeps what it finished
            (args.out / "stability.json").write_text(json.dumps(records, indent=1) + "\n")
            table = render(records)
            (args.out / "stability.md").write_text(table)
    print(table)
    return 0 if all(r["returncode"] == 0 for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
