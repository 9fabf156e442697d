"""How much of a lesion-contrast comparison is the noise? The same methods on the noisy and the noise-free LR.

For every simulated phantom case of a ``benchmarks/panel.py`` output folder that has lesion ROIs, it prints
the worst-lesion contrast error |ratio / ratio_ref - 1| (docs/metrics.md) of linear and spline interpolation
applied to the case's LR ASL (``asl_lr``) and to the same LR without noise (``asl_lr_clean``), against the
noise-free reference on the NR grid. The difference between the two is what one noise realisation does
to the metric; a gap between methods of that size is not a difference between methods.

With ``--models STABILITY_OUT --cases CASES_DIR`` it also applies every trained model of a
``benchmarks/stability.py`` output (``<variant>/<config>/seed<k>/model.pt``, trained on the noisy LR of the
prepared case ``CASES_DIR/<variant>``) to both LR images with ``aslsr generate`` and prints the same errors
per lesion: an SR that paints the T1's anatomy over a lesion errs on the noise-free LR too; one whose error
is the noise's does not.

With ``--draws K`` instead of that table, each of those variants is simulated again K times with the same
truth, anatomy, lesions and acquisition but other draws of the ASL noise (``PhantomSpec.noise_draw`` 1..K, the
spec read from the panel's ``phantom.json``), and spline and every model are scored on each: the worst-lesion
error's mean and range over the draws, and on how many draws each model's error is below spline's on the same
draw. One noisy case decides "below spline's" by its draw; K draws say how often.

    python benchmarks/lesion_noise.py PANEL_OUT [--models STABILITY_OUT --cases CASES_DIR [--generate-args ARGS]
                                                 [--draws K]]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
import tempfile
from pathlib import Path

from stability import generate, lesion_roi_paths

from aslsr import metrics
from aslsr.baselines import interpolate
from aslsr.io import load_mask, load_volume
from aslsr.phantom_spec import PhantomSpec
from aslsr.phantom_variant_simulation import simulate_variant

NOISE = ("asl_lr", "asl_lr_clean")


@functools.cache
def _truth(case: Path) -> tuple:
    """The case's noise-free reference, brain mask and lesion ROIs, read once per case."""
    reference = load_volume(case / "ref_clean.nii.gz")
    brain = load_mask(case / "mask.nii.gz", reference.grid)
    return reference, brain, [load_mask(path, reference.grid) for path in lesion_roi_paths(case)]


def lesion_errors(case: Path, image) -> list[float]:
    """Per-lesion contrast error (%) of ``image`` (an array on the case's reference grid)."""
    reference, brain, rois = _truth(case)
    return [100 * metrics.lesion_contrast_error(reference.data, image, roi, brain) for roi in rois]


def interpolation_table(panel_out: Path) -> None:
    print("| case | linear, noisy LR | linear, noise-free LR | spline, noisy LR | spline, noise-free LR |")
    print("|---|---|---|---|---|")
    for case in sorted(panel_out.glob("*/seed*/phantom")):
        if not lesion_roi_paths(case) or not (case / "asl_lr_clean.nii.gz").exists():
            continue
        grid = _truth(case)[0].grid
        cells = []
        for method in ("linear", "spline"):
            for name in NOISE:
                image = interpolate(load_volume(case / f"{name}.nii.gz"), grid, method)
                cells.append(f"{max(lesion_errors(case, image)):.2f} %")
        print(f"| {case.parent.parent.name} (seed {case.parent.name[4:]}) | " + " | ".join(cells) + " |")


def model_table(panel_out: Path, models: Path, cases: Path, extra: str = "") -> None:
    print("\n| case | method | noisy LR: error per lesion | noise-free LR: error per lesion |")
    print("|---|---|---|---|")
    for variant in sorted({run.parts[-4] for run in models.glob("*/*/seed*/model.pt")}):
        case, phantom = cases / variant, panel_out / variant / "seed0" / "phantom"
        if not lesion_roi_paths(case) or not (phantom / "asl_lr_clean.nii.gz").exists():
            continue
        grid = _truth(case)[0].grid
        spline = [interpolate(load_volume(phantom / f"{name}.nii.gz"), grid, "spline") for name in NOISE]
        print(f"| {variant} | spline | " + " | ".join(_cells(case, image) for image in spline) + " |")
        for run in sorted(models.glob(f"{variant}/*/seed*/model.pt")):
            method = f"{run.parts[-3]} {run.parts[-2]}"
            print(f"| {variant} | {method} | " + " | ".join(_sr_cells(run, case, phantom, extra)) + " |")


def _cells(case: Path, image) -> str:
    return ", ".join(f"{error:.2f} %" for error in lesion_errors(case, image))


def _sr_cells(run: Path, case: Path, phantom: Path, extra: str) -> list[str]:
    return [_cells(case, _generated(run, case, phantom / f"{name}.nii.gz", extra)) for name in NOISE]


def draw_table(panel_out: Path, models: Path, cases: Path, draws: int, extra: str = "") -> None:
    print(f"\n| case | method | worst lesion over {draws} noise draws: mean (range) | draws below spline's |")
    print("|---|---|---|---|")
    for variant in sorted({run.parts[-4] for run in models.glob("*/*/seed*/model.pt")}):
        case, phantom = cases / variant, panel_out / variant / "seed0" / "phantom"
        if not lesion_roi_paths(case) or not (phantom / "phantom.json").exists():
            continue
        spec = PhantomSpec.from_dict(json.loads((phantom / "phantom.json").read_text())["spec"])
        grid = _truth(case)[0].grid
        with tempfile.TemporaryDirectory() as scratch:
            lrs = []
            for draw in range(1, draws + 1):
                simulate_variant(Path(scratch) / f"draw{draw}", dataclasses.replace(spec, noise_draw=draw))
                lrs.append(Path(scratch) / f"draw{draw}" / "asl_lr.nii.gz")
            spline = [max(lesion_errors(case, interpolate(load_volume(lr), grid, "spline"))) for lr in lrs]
            print(f"| {variant} | spline | {_spread(spline)} | |")
            for run in sorted(models.glob(f"{variant}/*/seed*/model.pt")):
                errors = [max(lesion_errors(case, _generated(run, case, lr, extra))) for lr in lrs]
                below = sum(e < s for e, s in zip(errors, spline))
                print(f"| {variant} | {run.parts[-3]} {run.parts[-2]} | {_spread(errors)} | {below} of {draws} |")


def _spread(errors: list[float]) -> str:
    return f"{sum(errors) / len(errors):.2f} % ({min(errors):.2f}-{max(errors):.2f})"


def _generated(run: Path, case: Path, lr: Path, extra: str):
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "sr.nii.gz"
        process = generate(run, case, lr, out, extra)
        if process.returncode:
            raise SystemExit(f"{run}: {(process.stderr or process.stdout).strip()}")
        return load_volume(out).data


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("panel_out", type=Path)
    parser.add_argument("--models", type=Path, help="benchmarks/stability.py output with model.pt files")
    parser.add_argument("--cases", type=Path, help="the prepared cases those models were trained on")
    parser.add_argument("--generate-args", default="", help='extra `aslsr generate` arguments, e.g. "--flip-ensemble"')
    parser.add_argument("--draws", type=int, default=0, help="score spline and the models on K other noise draws")
    args = parser.parse_args(argv)
    interpolation_table(args.panel_out)
    if args.models:
        if not args.cases:
            parser.error("--models needs --cases")
        if args.draws > 0:
            draw_table(args.panel_out, args.models, args.cases, args.draws, args.generate_args)
        else:
            model_table(args.panel_out, args.models, args.cases, args.generate_args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
