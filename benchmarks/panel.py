"""The phantom panel: named phantom variants x seeds x methods, scored against the noise-free reference.

The variants (``aslsr.phantom_variants.VARIANTS``, see docs/phantom.md) are split into a **tune**
half (choose settings on these) and a **report** half (only report on these). For each variant and
seed the case is simulated (``aslsr simulate --variant``), then every method runs experiment 1 (the
LR ASL super-resolved onto the NR grid, registration on, M0 given): interpolation baselines in
process, everything else as its own ``aslsr run`` process with the method's extra arguments. Each
output is scored with ``aslsr.metrics`` in the phantom's brain mask against ``ref_clean`` (the truth
averaged over each NR voxel): PSNR (dB) and SSIM, the gain in PSNR over the better of linear and
spline ("best interpolation") and, per lesion, the lesion contrast error |ratio_pred/ratio_ref - 1|.
Runtime, peak memory and warnings come from each run's report.json (and the process). Writes
``panel.json`` and ``panel.md`` (per variant and method: mean +- sd over seeds) into ``--out``.

    python benchmarks/panel.py [--half tune|report|all] [--seeds 0 1 2] [--methods linear spline aslsr ...]
                               [--workers N] [--out DIR] [--preset-args "--device cuda"] [--append BENCHMARKS.md]

Adding a method is one line in METHODS. Runs execute in ``--workers`` parallel processes, each
``aslsr run`` with ``threads = cores // workers`` torch threads (merged into its ``--config``).
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import datetime
import json
import multiprocessing
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from aslsr_command import run_command, with_threads

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Method:
    """A row of the panel: an interpolation baseline (in process) or an ``aslsr run`` with ``args``,
    scored on ``output`` in the run's folder."""

    name: str
    kind: str  # "interpolation" | "run"
    args: tuple[str, ...] = ()
    output: str = "sr.nii.gz"
    state_acquisition: bool = False  # add the variant's true k-space readout (--acquisition kspace, its window)


PER_NOISE = REPO / "benchmarks/stability_configs/dtv_lambda_per_noise.toml"
METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("nearest", "interpolation"),
        Method("linear", "interpolation"),
        Method("spline", "interpolation"),
        Method("aslsr", "run"),  # the default preset
        Method("aslsr-paper", "run", ("--preset", "paper")),  # the paper's settings
        # anatomically guided directional TV with its one fixed setting and the box model (the baseline)
        Method("dtv", "run", ("--method", "dtv", "--acquisition", "box")),
        # the same dTV with the default's acquisition = auto (a k-space window read off the noise)
        Method("dtv-auto", "run", ("--method", "dtv")),
        # the default told how a k-space variant was acquired, as a user who knows the scanner would
        Method("aslsr-stated", "run", state_acquisition=True),
        # the default before 2026-11-26: the generator refines x_{N-1} brought up instead of the dTV solution
        Method("aslsr-real", "run", ("--config", str(REPO / "benchmarks/stability_configs/real_input.toml"))),
        # dTV's weight in proportion to the noise read off the data (lambda = 2 sd / 99th percentile; 2026-12-07):
        # in the default, and as the dTV alone with the box and with the auto acquisition model
        Method("aslsr-dtvnoise", "run", ("--config", str(PER_NOISE))),
        Method("dtv-noise", "run", ("--method", "dtv", "--acquisition", "box", "--config", str(PER_NOISE))),
        Method("dtv-auto-noise", "run", ("--method", "dtv", "--config", str(PER_NOISE))),
    )
}
DEFAULT_METHODS = ("linear", "spline", "aslsr", "aslsr-paper", "dtv", "dtv-auto")
INTERPOLATIONS = ("linear", "spline")  # "best interpolation" is the better of these
#: --tiny: a coarse phantom (3 mm templates, NR voxels 4x the default) to check this script in minutes
TINY = dict(nr_shape=(32, 24, 12), nr_voxel_size=(7.5, 7.5, 10.0), t1_voxel_size=3.0, template_resolution_mm=3)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from aslsr.phantom_variants import VARIANTS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--half", choices=("tune", "report", "all"), default="all")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), help="these variants instead of a half")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="phantom (and run) seeds (default 0)")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(DEFAULT_METHODS))
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    parser.add_argument(
        "--out",
        type=Path,
        help="working folder (default: a new temporary folder, kept); "
        "cases already simulated there with the same variant are reused",
    )
    parser.add_argument(
        "--preset-args",
        default="",
        metavar="ARGS",
        help='extra arguments for every aslsr run, one string (e.g. "--device cuda")',
    )
    parser.add_argument("--append", type=Path, metavar="BENCHMARKS.md", help="also append the tables to this file")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    names = args.variants or [n for n, s in VARIANTS.items() if args.half in ("all", s.half)]
    args.variant_names = names
    args.method_list = list(dict.fromkeys([*INTERPOLATIONS, *args.methods]))
    return args


def case_spec(name: str, seed: int, tiny: bool):
    from aslsr.phantom_variants import variant

    return variant(name, seed=seed, **(TINY if tiny else {}))


def simulate_case(name: str, seed: int, folder: str, tiny: bool) -> dict[str, Any]:
    """Simulate one case (or reuse it when ``folder`` holds the same variant); returns timing."""
    from aslsr.phantom_variant_simulation import PHANTOM_VERSION, simulate_variant

    spec = case_spec(name, seed, tiny)
    info = Path(folder) / "phantom.json"
    stored = json.loads(info.read_text()) if info.is_file() else {}
    if stored.get("spec") == spec.to_dict() and stored.get("phantom_version") == PHANTOM_VERSION:
        return {"case": folder, "simulate_s": 0.0, "reused": True}
    start = time.perf_counter()
    simulate_variant(folder, spec)
    return {"case": folder, "simulate_s": time.perf_counter() - start, "reused": False}


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run one method on one case and score it (in a worker process)."""
    method = Method(**job["method"])
    case = Path(job["case"])
    record: dict[str, Any] = {"variant": job["variant"], "seed": job["seed"], "method": method.name}
    try:
        if method.kind == "interpolation":
            prediction_path, extra = _interpolate(case, method.name, Path(job["run_dir"]))
        else:
            prediction_path, extra = _aslsr_run(case, method, job)
        record.update(extra)
        record.update(score(case, prediction_path))
    except Exception as error:  # a failed method is a row with its error, not a lost panel
        record["error"] = f"{type(error).__name__}: {error}"
    return record


def _interpolate(case: Path, name: str, folder: Path) -> tuple[Path, dict]:
    from aslsr.baselines import interpolate
    from aslsr.io import load_volume, save_volume

    start = time.perf_counter()
    target = load_volume(case / "asl_nr.nii.gz").grid
    image = interpolate(load_volume(case / "asl_lr.nii.gz"), target, name)
    seconds = time.perf_counter() - start
    folder.mkdir(parents=True, exist_ok=True)
    save_volume(folder / f"{name}.nii.gz", image, target)
    return folder / f"{name}.nii.gz", {"wall_s": seconds}


def _aslsr_run(case: Path, method: Method, job: dict[str, Any]) -> tuple[Path, dict]:
    out, log_path = Path(job["run_dir"]), Path(job["run_dir"] + ".log")
    extra = [*method.args, *job["preset_args"], *(_stated_acquisition(case, out) if method.state_acquisition else [])]
    extra = with_threads(extra, job["threads"], out.parent / f"{out.name}.toml")
    command = run_command(case, out, t1="t1w.nii.gz", like="asl_nr.nii.gz", seed=job["seed"], extra=extra)
    start = time.perf_counter()
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        tail = " | ".join(log_path.read_text().strip().splitlines()[-3:])
        raise RuntimeError(f"aslsr run exited {os.waitstatus_to_exitcode(status)}: {tail} (log {log_path})")
    report = json.loads((out / "report.json").read_text())
    return out / method.output, {
        "wall_s": wall,
        "process_peak_rss_mb": usage.ru_maxrss / 1024.0,
        "command": shlex.join(command[2:]),
        "timings": report.get("timings"),
        "peak_memory_mb": report.get("peak_memory_mb"),
        "peak_gpu_memory_mb": report.get("peak_gpu_memory_mb"),
        "device": report.get("device"),
        "threads": report.get("threads"),
        "warnings": report.get("warnings", []),
        "lr_agreement": (report.get("lr_agreement") or {}).get("ratio_to_spline"),
    }


def _stated_acquisition(case: Path, out: Path) -> list[str]:
    """``--acquisition kspace`` and a TOML with the window when the case's PSF is a k-space readout, else []."""
    psf = json.loads((case / "phantom.json").read_text())["spec"]["psf"]
    if psf["kind"] != "kspace":
        return []
    window = {"acquisition_window": "tukey", "acquisition_tukey_alpha": psf["window"]} if psf["window"] > 0 else {}
    toml = out.parent / f"{out.name}.acquisition.toml"
    toml.parent.mkdir(parents=True, exist_ok=True)
    toml.write_text("".join(f"{key} = {json.dumps(value)}\n" for key, value in window.items()))
    return ["--acquisition", "kspace", "--config", str(toml)]


def score(case: Path, prediction_path: Path) -> dict[str, Any]:
    """PSNR/SSIM in the brain vs ref_clean and the lesion contrast error of every lesion ROI."""
    from aslsr import metrics
    from aslsr.io import load_volume

    ref = load_volume(case / "ref_clean.nii.gz")
    pred = load_volume(prediction_path, allow_constant=True)
    if pred.grid != ref.grid:
        raise ValueError(f"{prediction_path} is not on the reference grid")
    mask = load_volume(case / "mask.nii.gz", allow_constant=True).data > 0.5
    row = metrics.evaluate(ref.data, {"p": pred.data}, mask=mask)["p"]
    lesions = {}
    for roi_path in sorted(case.glob("lesion*.nii.gz")):
        if roi_path.name.endswith("_lr.nii.gz"):
            continue
        roi = load_volume(roi_path, allow_constant=True).data > 0.5
        ratio_ref = metrics.lesion_contrast(ref.data, roi, mask)
        ratio = metrics.lesion_contrast(pred.data, roi, mask)
        lesions[roi_path.name[:-7]] = {"ratio": ratio, "ratio_ref": ratio_ref, "error": abs(ratio / ratio_ref - 1)}
    return {
        "psnr_brain": row["psnr_brain"],
        "ssim_brain": row["ssim_brain"],
        "psnr": row["psnr"],
        "ssim": row["ssim"],
        "lesions": lesions,
    }


def add_gains(records: list[dict]) -> None:
    """Per case: the best interpolation (better PSNR of linear/spline) and every method's gain over it."""
    for variant, seed in {(r["variant"], r["seed"]) for r in records}:
        rows = [r for r in records if (r["variant"], r["seed"]) == (variant, seed)]
        interp = [r for r in rows if r["method"] in INTERPOLATIONS and "psnr_brain" in r]
        if len(interp) < len(INTERPOLATIONS):
            continue
        best = max(interp, key=lambda r: r["psnr_brain"])
        for r in rows:
            r["best_interpolation"] = best["method"]
            if "psnr_brain" in r:
                r["gain_db"] = r["psnr_brain"] - best["psnr_brain"]


def summarise(records: list[dict], variants: list[str], methods: list[str]) -> list[dict]:
    """Per variant and method: mean, sd and min over seeds of the scores; failures counted."""
    summary = []
    for variant in variants:
        for method in methods:
            rows = [r for r in records if r["variant"] == variant and r["method"] == method]
            ok = [r for r in rows if "psnr_brain" in r]
            entry: dict[str, Any] = {
                "variant": variant,
                "method": method,
                "seeds": len(rows),
                "failed": len(rows) - len(ok),
                "errors": [r["error"] for r in rows if "error" in r],
            }
            for key in ("psnr_brain", "ssim_brain", "gain_db", "wall_s"):
                values = np.array([r[key] for r in ok if r.get(key) is not None], dtype=float)
                if values.size:
                    entry[key] = {"mean": float(values.mean()), "sd": float(values.std()), "min": float(values.min())}
            lesion_errors = [max(les["error"] for les in r["lesions"].values()) for r in ok if r.get("lesions")]
            if lesion_errors:
                entry["lesion_error_worst"] = {
                    "mean": float(np.mean(lesion_errors)),
                    "max": float(np.max(lesion_errors)),
                }
            memory = [r.get("peak_memory_mb") or r.get("process_peak_rss_mb") for r in ok]
            if any(m is not None for m in memory):
                entry["peak_memory_mb"] = float(max(m for m in memory if m is not None))
            entry["warnings"] = sorted({w for r in ok for w in r.get("warnings", [])})
            summary.append(entry)
    return summary


def render(summary: list[dict], meta: dict) -> str:
    """The markdown tables: one per half, a row per variant and method."""
    from aslsr.phantom_variants import VARIANTS

    info = meta["machine"]
    lines = [
        f"## {meta['date']}: phantom panel (benchmarks/panel.py, commit {info['commit']})",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']:.1f} GiB, GPU {info['gpu']}; "
        f"torch {info['torch']}; {meta['workers']} workers x {meta['threads']} threads. Seeds "
        f"{' '.join(map(str, meta['seeds']))}. Experiment 1 (LR -> NR grid, registration on, M0 given). PSNR dB "
        "/ SSIM in the brain vs the noise-free reference (truth averaged over each NR voxel); gain: PSNR "
        "minus the better of linear/spline per case; lesion error: |ratio/ratio_ref - 1| of the worst lesion. "
        "Mean +- sd over seeds (min of the gain in brackets).",
        "",
    ]
    for half in ("tune", "report"):
        names = [v for v in meta["variants"] if VARIANTS[v].half == half]
        if not names:
            continue
        lines += [
            f"### {half} half",
            "",
            "| variant | method | PSNR brain | SSIM brain | gain dB (min) | lesion error "
            "| run s | peak MB | warnings |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for entry in (e for e in summary if e["variant"] in names):
            if "psnr_brain" not in entry:
                lines.append(
                    f"| {entry['variant']} | {entry['method']} | failed: {'; '.join(entry['errors'])[:120]} "
                    "| | | | | | |"
                )
                continue
            gain = entry.get("gain_db")
            lesion = entry.get("lesion_error_worst")
            cells = [
                _pm(entry["psnr_brain"], "{:.2f}"),
                _pm(entry["ssim_brain"], "{:.4f}"),
                f"{gain['mean']:+.2f} +- {gain['sd']:.2f} ({gain['min']:+.2f})" if gain else "-",
                f"{100 * lesion['mean']:.1f} %" if lesion else "-",
                f"{entry['wall_s']['mean']:.0f}" if "wall_s" in entry else "-",
                f"{entry['peak_memory_mb']:.0f}" if "peak_memory_mb" in entry else "-",
                str(len(entry["warnings"])) + (f", {entry['failed']} failed" if entry["failed"] else ""),
            ]
            lines.append(f"| {entry['variant']} | {entry['method']} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _pm(stats: dict, fmt: str) -> str:
    return f"{fmt.format(stats['mean'])} +- {fmt.format(stats['sd'])}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = (args.out or Path(tempfile.mkdtemp(prefix="aslsr_panel_"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // args.workers)
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = str(threads)  # the workers' numpy/scipy (inherited by the processes)
    preset_args = shlex.split(args.preset_args)
    cases = [(name, seed) for name in args.variant_names for seed in args.seeds]
    context = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        simulated = list(
            pool.map(
                simulate_case, *zip(*[(n, s, str(work / n / f"seed{s}" / "phantom"), args.tiny) for n, s in cases])
            )
        )
        print(f"panel: {len(cases)} cases in {work} ({sum(not s['reused'] for s in simulated)} simulated)", flush=True)
        jobs = [
            {
                "variant": n,
                "seed": s,
                "case": str(work / n / f"seed{s}" / "phantom"),
                "run_dir": str(work / n / f"seed{s}" / m),
                "method": asdict(METHODS[m]),
                "threads": threads,
                "preset_args": preset_args,
            }
            for n, s in cases
            for m in args.method_list
        ]
        records = []
        for record in pool.map(run_job, jobs):
            records.append(record)
            print(
                f"panel: {record['variant']} seed {record['seed']} {record['method']}: "
                + (f"PSNR {record['psnr_brain']:.2f}" if "psnr_brain" in record else record.get("error", "")),
                flush=True,
            )
    add_gains(records)
    from run_benchmarks import append_entry, machine

    summary = summarise(records, args.variant_names, args.method_list)
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": shlex.join(["python", "benchmarks/panel.py", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine(),
        "workers": args.workers,
        "threads": threads,
        "seeds": args.seeds,
        "variants": args.variant_names,
        "tiny": args.tiny,
    }
    specs = {n: case_spec(n, 0, args.tiny).to_dict() for n in args.variant_names}
    methods = {m: asdict(METHODS[m]) for m in args.method_list}
    (work / "panel.json").write_text(
        json.dumps(
            {**meta, "specs": specs, "methods": methods, "cases": simulated, "records": records, "summary": summary},
            indent=2,
        )
        + "\n"
    )
    table = render(summary, meta)
    (work / "panel.md").write_text(table)
    if args.append:
        append_entry(args.append, table)
    print(f"\n{table}\npanel: wrote {work / 'panel.json'} and {work / 'panel.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
