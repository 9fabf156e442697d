"""Benchmark ``aslsr run`` per preset on the phantom and append a dated entry to BENCHMARKS.md.

Every run is a separate ``aslsr`` process, so its peak resident memory is its own (from its
report.json and from ``os.wait4``). The ``paper`` preset (2000 iterations per scale) is far too slow
for a CPU: it runs with ``--paper-iterations`` K per scale and its training time is extrapolated to
2000 per scale from the measured seconds per iteration of each scale (marked "extrapolated").

    .venv/bin/python benchmarks/run_benchmarks.py [--presets fast paper] [--paper-iterations 5]
                                                  [--out DIR] [--append BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
STAGES = ("load_s", "registration_s", "training_s", "generation_s", "writing_s")
PREDICTIONS = ("nearest", "linear", "spline", "sr")
REFERENCES = (("ref_hr", "HR"), ("ref_clean", "noise-free"), ("asl_nr", "NR"))
# Runs ``aslsr`` in this process and then records the peak CUDA memory of the process (if CUDA was used).
WRAPPER = """
import json, sys
from aslsr.cli import main
code = main(sys.argv[2:])
gpu = {}
try:
    import torch
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        gpu = {"peak_gpu_allocated_mb": torch.cuda.max_memory_allocated() / 2**20,
               "peak_gpu_reserved_mb": torch.cuda.max_memory_reserved() / 2**20}
except Exception:
    pass
open(sys.argv[1], "w").write(json.dumps(gpu))
sys.exit(code)
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (three hidden ones shrink the phantom for a quick check of this script)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["fast", "paper"], help="presets to run (default: fast paper)")
    parser.add_argument(
        "--paper-iterations",
        type=int,
        default=5,
        metavar="K",
        help="iterations per scale actually run for the paper preset (default 5)",
    )
    parser.add_argument("--out", type=Path, help="working folder (default: a new temporary folder, kept)")
    parser.add_argument(
        "--append",
        type=Path,
        default=REPO / "BENCHMARKS.md",
        metavar="BENCHMARKS.md",
        help="markdown file to append the entry to (default: the repository's BENCHMARKS.md)",
    )
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--phantom-nr-shape", type=int, nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--phantom-nr-voxel-size", type=float, nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--t1-voxel-size", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.paper_iterations < 1:
        parser.error("--paper-iterations must be at least 1")
    return args


def measure(aslsr_args: list[str], log_path: Path) -> dict[str, Any]:
    """Run ``aslsr ARGS`` as a child process: wall seconds, its own peak RSS (MB), peak GPU memory."""
    gpu_path = log_path.with_suffix(".gpu.json")
    start = time.perf_counter()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", WRAPPER, str(gpu_path), *aslsr_args], stdout=log, stderr=subprocess.STDOUT, cwd=REPO
        )
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = "\n".join(log_path.read_text().splitlines()[-15:])
        raise SystemExit(
            f"aslsr {' '.join(aslsr_args[:1])} failed (exit {process.returncode}); log {log_path}:\n{tail}"
        )
    gpu = json.loads(gpu_path.read_text()) if gpu_path.is_file() else {}
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024.0, **gpu}


def benchmark_preset(name: str, files: dict[str, str], work: Path, paper_iterations: int, seed: int) -> dict:
    """Experiment 1 (LR -> NR grid, registration, --m0) with one preset; the paper preset extrapolated."""
    from aslsr.config import preset
    from aslsr.scoring import format_scores, score_run

    out = work / f"run_{name}"
    args = [
        "run",
        "--asl",
        files["asl_lr"],
        "--t1",
        files["t1w"],
        "--m0",
        files["m0_lr"],
        "--like",
        files["asl_nr"],
        "--out",
        str(out),
        "--preset",
        name,
        "--seed",
        str(seed),
        "--overwrite",
        "--quiet",
    ]
    full = preset(name)
    extrapolate = name == "paper"
    if extrapolate:
        toml = work / "paper_iterations.toml"
        toml.write_text(f"iterations = {[paper_iterations] * full.max_scales}\nlog_every = 1\n")
        args += ["--config", str(toml)]
    print(f"benchmark: aslsr run --preset {name}{' (shortened)' if extrapolate else ''} ...", flush=True)
    process = measure(args, work / f"run_{name}.log")
    report = json.loads((out / "report.json").read_text())
    timings = {stage: float(report["timings"].get(stage, float("nan"))) for stage in STAGES}
    n_scales = len(report["grids"]["scales"])
    rates = marginal_rates(out / "losses.csv")
    scales = []
    for entry in report["scales"]:
        full_iterations = full.iterations_at(entry["scale"], n_scales)
        rate = rates.get(entry["scale"], entry["seconds_per_iteration"])
        scales.append(
            {
                **entry,
                "shape": report["grids"]["scales"][entry["scale"]]["shape"],
                "full_iterations": full_iterations,
                "marginal_seconds_per_iteration": rate,
                "full_seconds": entry["seconds"] + max(0, full_iterations - entry["iterations"]) * rate,
            }
        )
    result = {
        "preset": name,
        "extrapolated": extrapolate,
        "timings": timings,
        "scales": scales,
        "peak_memory_mb": report.get("peak_memory_mb"),
        "device": report.get("device"),
        "device_name": report.get("device_name"),
        "process": process,
        "iterations": [s["iterations"] for s in scales],
        "full_iterations": [s["full_iterations"] for s in scales],
    }
    if extrapolate:
        overhead = timings["training_s"] - sum(s["seconds"] for s in scales)
        training = overhead + sum(s["full_seconds"] for s in scales)
        result["training_s_extrapolated"] = training
        result["wall_s_extrapolated"] = process["wall_s"] - timings["training_s"] + training
    print(f"benchmark: scoring the {name} run", flush=True)
    result["quality"] = score_run(out, files, predictions=PREDICTIONS)
    print(format_scores(result["quality"]), end="", flush=True)
    return result


def marginal_rates(losses_csv: Path) -> dict[int, float]:
    """Seconds per iteration of each scale after its first iteration, from losses.csv (needs >= 2 rows)."""
    rows: dict[int, list[tuple[int, float]]] = {}
    with losses_csv.open(newline="") as handle:
        for row in csv.DictReader(handle):
            rows.setdefault(int(row["scale"]), []).append((int(row["iteration"]), float(row["seconds"])))
    rates = {}
    for scale, points in rows.items():
        (first_it, first_s), (last_it, last_s) = min(points), max(points)
        if last_it > first_it:
            rates[scale] = (last_s - first_s) / (last_it - first_it)
    return rates


def benchmark_generation(files: dict[str, str], model: Path, work: Path) -> dict:
    """``aslsr generate`` from the NR ASL to 1 mm voxels (registration included) with a trained model."""
    from aslsr.io import load_volume

    out = work / "generate_nr_to_1mm.nii.gz"
    out.unlink(missing_ok=True)
    print("benchmark: aslsr generate NR -> 1 mm ...", flush=True)
    process = measure(
        [
            "generate",
            "--model",
            str(model),
            "--asl",
            files["asl_nr"],
            "--t1",
            files["t1w"],
            "--m0",
            files["m0"],
            "--out",
            str(out),
            "--voxel-size",
            "1",
        ],
        work / "generate.log",
    )
    return {**process, "model": str(model), "shape": list(load_volume(out).grid.shape)}


def machine() -> dict[str, Any]:
    """CPU model, core count, total RAM, GPU, versions and the git commit of the checkout."""
    import torch

    from aslsr.machine import cpu_name, total_memory

    cpu = cpu_name()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    if _git("status", "--porcelain"):
        commit += "+dirty"
    from aslsr import __version__

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": total_memory() / 2**30,
        "gpu": gpu,
        "commit": commit,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "aslsr": __version__,
    }


def render(results: list[dict], generation: dict | None, info: dict, phantom: dict, args: argparse.Namespace) -> str:
    """The markdown entry: machine, per-stage timings, per-scale timings, speed ratio, quality, generation."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    grids = phantom["grids"]
    lines = [
        f"## {now}: presets {', '.join(r['preset'] for r in results)}",
        "",
        f"- machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']:.1f} GiB RAM, GPU: {info['gpu']}",
        f"- git commit {info['commit']}; aslsr {info['aslsr']}, torch {info['torch']}, python {info['python']}",
        f"- phantom: seed {phantom['seed']}, lesion; LR {_shape(grids['lr'])} -> NR {_shape(grids['nr'])}; "
        f"T1 voxel {phantom['t1']['voxel_size_mm']} mm",
        "- experiment 1: `aslsr run --asl asl_lr --t1 t1w --m0 m0_lr --like asl_nr` (registration on), each run "
        "in its own process; peak RSS from its report.json (`os.wait4` of the process in brackets)",
        "",
    ]
    if any(r["extrapolated"] for r in results):
        lines += [
            f"The paper preset ran {args.paper_iterations} iterations per scale; its training time is "
            "**extrapolated** to the preset's iterations per scale: the measured seconds of each scale plus "
            "the remaining iterations at that scale's measured seconds per iteration after the first "
            "(from losses.csv; report.json's mean when only one iteration ran).",
            "",
        ]
    lines += [
        "| preset | device | iterations per scale | load s | registration s | training s | generation s | "
        "writing s | process wall s | peak RSS MB | peak GPU MB |",
        "|---|---|---|" + "---:|" * 8,
    ]
    for r in results:
        t = r["timings"]
        training = f"{t['training_s']:.1f}"
        wall = f"{r['process']['wall_s']:.1f}"
        iterations = "/".join(map(str, r["iterations"]))
        if r["extrapolated"]:
            training = f"{r['training_s_extrapolated']:.0f} (extrapolated; measured {t['training_s']:.1f})"
            wall = f"{r['wall_s_extrapolated']:.0f} (extrapolated; measured {r['process']['wall_s']:.1f})"
            iterations = f"{'/'.join(map(str, r['full_iterations']))} (ran {iterations})"
        gpu = r["process"].get("peak_gpu_reserved_mb")
        lines.append(
            f"| {r['preset']} | {r['device']} | {iterations} | {t['load_s']:.2f} | "
            f"{t['registration_s']:.1f} | "
            f"{training} | {t['generation_s']:.2f} | {t['writing_s']:.2f} | {wall} | "
            f"{r['peak_memory_mb']:.0f} ({r['process']['peak_rss_mb']:.0f}) | "
            f"{'-' if gpu is None else f'{gpu:.0f}'} |"
        )
    lines += [
        "",
        "Per scale (coarse to fine):",
        "",
        "| preset | scale | grid | iterations run | seconds | s per iteration (mean) | s per iteration after "
        "the first | seconds at the preset's iterations |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for s in r["scales"]:
            full = f"{s['full_seconds']:.1f}" + (" (extrapolated)" if r["extrapolated"] else "")
            lines.append(
                f"| {r['preset']} | {s['scale']} | {'x'.join(map(str, s['shape']))} | {s['iterations']} | "
                f"{s['seconds']:.2f} | {s['seconds_per_iteration']:.4f} | "
                f"{s['marginal_seconds_per_iteration']:.4f} | {full} |"
            )
    by_name = {r["preset"]: r for r in results}
    if "fast" in by_name and "paper" in by_name:
        paper, fast = by_name["paper"], by_name["fast"]
        paper_training = paper.get("training_s_extrapolated", paper["timings"]["training_s"])
        paper_wall = paper.get("wall_s_extrapolated", paper["process"]["wall_s"])
        lines += [
            "",
            f"Speed: the paper preset's training takes {paper_training / fast['timings']['training_s']:.1f}x "
            f"as long as the fast preset's, its whole run {paper_wall / fast['process']['wall_s']:.1f}x "
            f"({'extrapolated' if paper['extrapolated'] else 'measured'}).",
        ]
    lines += [
        "",
        "Quality in the phantom's brain mask (PSNR dB / SSIM, definitions in docs/metrics.md); "
        "a shortened paper run is **not** the paper's quality:",
        "",
        "| preset | method | " + " | ".join(f"{label} PSNR | {label} SSIM" for _, label in REFERENCES) + " |",
        "|---|---|" + "---:|" * (2 * len(REFERENCES)),
    ]
    for r in results:
        for method in PREDICTIONS:
            cells = [
                f"{r['quality'][role][method]['psnr_brain']:.2f} | {r['quality'][role][method]['ssim_brain']:.4f}"
                for role, _ in REFERENCES
            ]
            lines.append(f"| {r['preset']} | {method} | " + " | ".join(cells) + " |")
    if generation is not None:
        lines += [
            "",
            f"Experiment-2 generation (`aslsr generate` with the {generation['preset']} model, NR -> 1 mm "
            f"voxels, grid {'x'.join(map(str, generation['shape']))}, registration included): "
            f"{generation['wall_s']:.1f} s wall, peak RSS {generation['peak_rss_mb']:.0f} MB"
            + (
                f", peak GPU {generation['peak_gpu_reserved_mb']:.0f} MB"
                if "peak_gpu_reserved_mb" in generation
                else ""
            )
            + ".",
        ]
    return "\n".join(lines) + "\n"


def append_entry(path: Path, entry: str) -> None:
    """Append ``entry`` to ``path``, creating the file with a header when it does not exist."""
    if not path.exists():
        path.write_text(
            "# aslsr benchmarks\n\nEntries appended by `benchmarks/run_benchmarks.py` "
            "(see benchmarks/README.md); newest last. Numbers are measured, never edited.\n"
        )
    with path.open("a") as handle:
        handle.write("\n" + entry)


def main(argv: list[str] | None = None) -> int:
    """Simulate the phantom once, benchmark each preset and the 1 mm generation, append the entry."""
    args = parse_args(argv)
    from aslsr.phantom import PhantomConfig, simulate

    work = args.out or Path(tempfile.mkdtemp(prefix="aslsr_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {"seed": args.seed, "lesion": True}
    if args.phantom_nr_shape:
        options["nr_shape"] = tuple(args.phantom_nr_shape)
    if args.phantom_nr_voxel_size:
        options["nr_voxel_size"] = tuple(args.phantom_nr_voxel_size)
    if args.t1_voxel_size:
        options["t1_voxel_size"] = args.t1_voxel_size
    print(f"benchmark: simulating the phantom into {work / 'phantom'}", flush=True)
    case = simulate(work / "phantom", PhantomConfig(**options))
    files = {role: entry["path"] for role, entry in case["files"].items()}
    results = [benchmark_preset(name, files, work, args.paper_iterations, args.seed) for name in args.presets]
    source = next((r for r in results if r["preset"] == "fast"), results[0])
    generation = {
        **benchmark_generation(files, work / f"run_{source['preset']}" / "model.pt", work),
        "preset": source["preset"],
    }
    info = machine()
    entry = render(results, generation, info, case, args)
    (work / "benchmark.json").write_text(
        json.dumps({"machine": info, "results": results, "generation": generation}, indent=2, default=_plain) + "\n"
    )
    append_entry(args.append, entry)
    print(f"\n{entry}\nbenchmark: appended to {args.append}; working files in {work}")
    return 0


def _shape(grid: dict) -> str:
    return f"{'x'.join(map(str, grid['shape']))} @ {'x'.join(f'{v:g}' for v in grid['voxel_size_mm'])} mm"


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else str(value)


if __name__ == "__main__":
    sys.exit(main())
