"""Stress cases outside the panel: phantoms along axes the panel covers less (never tuned on, run once).

Each case is made with ``aslsr simulate`` options as a user could, at phantom seed 7 (used nowhere
else), then ``aslsr run`` (the default) and ``aslsr run --method dtv --acquisition box`` (the fixed
dTV of #14) run experiment 1 as benchmarks/panel.py does (LR -> NR grid, registration on, M0 given,
run seed 0), and every image the runs write is scored with panel.score (brain, vs ref_clean).

    python stress.py OUT [CASE ...]     (prints a markdown table; OUT/stress.json)
    python stress.py OUT --variant NAME=TOML [CASE ...]   (the default with TOML's fields too, into OUT/CASE/NAME;
                                                           scores its sr and dtv; OUT/stress_NAME.json)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "benchmarks"))
from aslsr_command import run_command, with_threads  # noqa: E402
from panel import score  # noqa: E402

CASES = {
    # 3D GRASE-like: a through-plane blur of two slice spacings, in-plane FWHM one voxel
    "slab-blur": "--psf gaussian --psf-fwhm 1.0 --slice-thickness 2.0 --tissue-field 0.2 --lesions 0.5 --warp 5",
    # the T1 a poor guide: strong power law, 30 % bias, 6 % noise; GM heterogeneity; hyper lesion
    "t1-poor": "--t1-gamma 2.0 --t1-bias 0.3 --t1-noise 0.06 --gm-heterogeneity 0.3 --lesions 1.6 --warp 5",
    # CBF far from the T1: strong fields, three lesions, many vessels, large warp
    "cbf-unexplained": "--tissue-field 0.5 --gm-heterogeneity 0.4 --lesions 0.3 1.8 0.6 --vessels 8 8 --warp 8",
    # Hann-windowed k-space readout, noisy, oblique, LPS
    "kspace-hann": "--psf kspace --kspace-window 1.0 --noise-sd 10 --oblique 5 -5 15 --asl-orientation LPS "
    "--tissue-field 0.2 --lesions 0.5 --warp 5",
    # coarser acquisition: NR voxels 2.5 x 2.5 x 3.5 mm (LR 5 x 5 x 3.5), same field of view
    "coarse": "--nr-voxel-size 2.5 2.5 3.5 --nr-shape 96 72 34 --tissue-field 0.2 --lesions 0.5 --warp 5",
    # added 2026-12-07 evening. Point sampling, as a simulator that interpolates its truth at the acquired voxel
    # centres does (no averaging over the voxel: aliasing, in-plane FWHM a quarter voxel, slices 0.4 thick)
    "point-sampled": "--psf gaussian --psf-fwhm 0.25 --slice-thickness 0.4 --tissue-field 0.2 --lesions 0.5 --warp 5",
    # a wide PSF (a strongly filtered 3D spiral-like readout): in-plane FWHM 1.8 voxels, slices 1.5 thick
    "wide-psf": "--psf gaussian --psf-fwhm 1.8 --slice-thickness 1.5 --tissue-field 0.2 --lesions 0.5 --warp 5",
    # point samples again, for reporting only (point-sampled became a tuning case of the point-sampling check):
    # oblique, stored LPS, noise 8, GM heterogeneity, a hyper-perfused lesion, a larger warp
    "point-oblique": "--psf gaussian --psf-fwhm 0.25 --slice-thickness 0.4 --oblique 6 -4 10 --asl-orientation LPS "
    "--noise-sd 8 --gm-heterogeneity 0.3 --lesions 1.6 --warp 6",
    # point samples, report only: T1 stored LPS at 1.2 mm, ASL stored LAS, noise 10, strong field, vessels
    "point-lps": "--psf gaussian --psf-fwhm 0.25 --slice-thickness 0.4 --t1-orientation LPS --t1-voxel-size 1.2 "
    "--asl-orientation LAS --noise-sd 10 --tissue-field 0.4 --lesions 0.5 --vessels 6 6 --warp 4",
    # added 2026-12-07 night, report only. PSFs between point samples and box averages, as a simulator makes that
    # low-passes its truth before interpolating it at the voxel centres: scikit-image's resize with anti_aliasing
    # (a Gaussian of sigma (scale - 1) / 2 input voxels: 1 mm -> 3.75 x 3.75 x 2.5 mm gives FWHM 0.86 x 0.86 x 0.71 LR
    # voxels), and a narrower one
    "resize-aa": "--psf gaussian --psf-fwhm 0.86 --slice-thickness 0.71 --tissue-field 0.2 --lesions 0.5 --warp 5",
    "gauss-narrow": "--psf gaussian --psf-fwhm 0.55 --slice-thickness 0.55 --noise-sd 8 --gm-heterogeneity 0.3 "
    "--lesions 1.6 --warp 6",
}
IMAGES = ("linear", "spline", "dtv", "sr")


def run(case: Path, out: Path, extra: list[str]) -> float:
    extra = with_threads(extra, 2, out.parent / f"{out.name}.toml")
    command = run_command(case, out, t1="t1w.nii.gz", like="asl_nr.nii.gz", seed=0, extra=extra)
    start = time.perf_counter()
    with open(f"{out}.log", "w") as log:
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True, cwd=REPO)
    return time.perf_counter() - start


def variant(root: Path, label: str, toml: str, names: list[str]) -> None:
    """The default with ``toml``'s fields on cases already run by :func:`main`, beside its rows."""
    path = root / f"stress_{label}.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    for name in names:
        case, out = root / name / "case", root / name / label
        seconds = run(case, out, ["--config", toml])
        scores = {image: score(case, out / f"{image}.nii.gz") for image in ("dtv", "sr")}
        report = json.loads((out / "report.json").read_text())
        results[name] = {"seconds": seconds, "scores": scores, "dtv": report.get("dtv"), "warnings": report["warnings"]}
        path.write_text(json.dumps(results, indent=1))
        print(name, label, {k: round(v["psnr_brain"], 2) for k, v in scores.items()}, flush=True)


def main(root: Path, names: list[str]) -> None:
    results = json.loads((root / "stress.json").read_text()) if (root / "stress.json").is_file() else {}
    for name in names:
        case = root / name / "case"
        if not (case / "phantom.json").is_file():
            options = ["--seed", "7", "--overwrite", *CASES[name].split()]
            subprocess.run([sys.executable, "-m", "aslsr", "simulate", str(case), *options], check=True, cwd=REPO)
        row = {"options": CASES[name]}
        row["default_s"] = run(case, root / name / "default", [])
        row["dtv_box_s"] = run(case, root / name / "dtv_box", ["--method", "dtv", "--acquisition", "box"])
        row["scores"] = {image: score(case, root / name / "default" / f"{image}.nii.gz") for image in IMAGES}
        row["scores"]["dtv-box"] = score(case, root / name / "dtv_box" / "sr.nii.gz")
        report = json.loads((root / name / "default" / "report.json").read_text())
        row["warnings"] = report.get("warnings", [])
        row["acquisition"] = report.get("acquisition")
        results[name] = row
        (root / "stress.json").write_text(json.dumps(results, indent=1))
        print(name, {k: round(v["psnr_brain"], 2) for k, v in row["scores"].items()}, flush=True)
    table(results)


def table(results: dict) -> None:
    print(
        "| case | linear | spline | dTV box | dTV auto (run's) | **default SR** | SR - dTV box | SR - best interp. "
        "| lesion error % spline / dTV box / SR | run s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, row in results.items():
        s = row["scores"]
        interp = max(s["linear"]["psnr_brain"], s["spline"]["psnr_brain"])

        def cell(k: str) -> str:
            return f"{s[k]['psnr_brain']:.2f} / {s[k]['ssim_brain']:.4f}"

        def lesions(k: str) -> str:
            return ", ".join(f"{v['error'] * 100:.1f}" for v in s[k]["lesions"].values()) or "-"

        print(
            f"| {name} | {cell('linear')} | {cell('spline')} | {cell('dtv-box')} | {cell('dtv')} | **{cell('sr')}** "
            f"| {s['sr']['psnr_brain'] - s['dtv-box']['psnr_brain']:+.2f} | {s['sr']['psnr_brain'] - interp:+.2f} "
            f"| {lesions('spline')} / {lesions('dtv-box')} / {lesions('sr')} | {row['default_s']:.0f} |"
        )


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[2] == "--variant":
        label, toml = sys.argv[3].split("=", 1)
        variant(Path(sys.argv[1]), label, toml, sys.argv[4:] or list(CASES))
    else:
        main(Path(sys.argv[1]), sys.argv[2:] or list(CASES))
