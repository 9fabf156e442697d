"""The paper's experiments (Sections 3-4: Table 1, Figs. 2-4) re-run on the digital phantom.

:func:`reproduce` simulates a phantom subject (with a hypoperfused lesion) and runs

- Experiment 1 (paper 3.1, Table 1, Figs. 2 and 3): train on the LR ASL, super-resolve onto the NR
  grid, score nearest / linear / spline / dTV (the T1-guided model-based baseline) / proposed
  against the NR, HR and noise-free references (whole volume and in the phantom's brain mask)
  plus the lesion contrast against the noise-free map;
- Experiment 2 (paper Fig. 4): train on the NR ASL and super-resolve to the T1's voxel size; the
  phantom knows the truth there, so it is scored too (``table2``; beyond the paper, which had none);
- optionally the ablations (no T1 channel, no low-pass loss, no adversarial loss, one scale only).

PSNR and SSIM follow ``docs/metrics.md``, computed by :mod:`aslsr.metrics`. Every number is
computed from the NIfTI files written in the output folder, so it can be checked from them.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from scipy import ndimage

from . import __version__, metrics
from . import config as configs
from .errors import InputError
from .figure_comparison import comparison_figure
from .figure_slices import intensity_window, slice_axis
from .grids import Grid, resample, resample_average
from .inputs import TargetSpec
from .io import load_mask, load_volume, save_json
from .phantom import PhantomConfig, simulate
from .pipeline import RunResult, run

logger = logging.getLogger(__name__)

#: (row label, output file stem of ``aslsr run``) of the compared methods, in table order.
METHODS = (("nearest", "nearest"), ("linear", "linear"), ("spline", "spline"), ("dTV", "dtv"), ("proposed", "sr"))
#: (column key, phantom file role, label) of the references of Experiment 1.
REFERENCES = (("nr", "asl_nr", "NR"), ("hr", "ref_hr", "HR"), ("clean", "ref_clean", "noise-free"))
#: (folder name, label, configuration overrides) of the ablation variants; the first is the full method.
#: One row each: the preset as it is, then one change. The changes are relative to the preset, so
#: with ``fast`` (finest scale only, no adversarial term) the paper's parts are switched *on*.
ABLATIONS = (
    ("full", "preset as is", {}),
    ("no_t1", "without T1 channel", {"use_t1": False}),
    ("no_lowpass", "without low-pass loss", {"use_lowpass": False}),
    ("adversarial", "with adversarial loss (WGAN-GP)", {"use_adversarial": True, "critic_every": 4, "gp_every": 4}),
    (
        "adversarial_weak",
        "with adversarial loss, weight 0.1",
        {"use_adversarial": True, "adversarial_weight": 0.1, "critic_every": 4, "gp_every": 4},
    ),
    ("all_scales", "all scales, G_n from G_{n-1}", {"single_scale": False, "n_scales": 3}),
    ("no_consistency", "without consistency step", {"consistency": "off"}),
)
#: Everything :func:`reproduce` writes into its output folder (removed first with ``overwrite``).
OUTPUTS = (
    "phantom",
    "experiment1",
    "experiment2",
    "ablations",
    "table1.md",
    "table1.csv",
    "table2.md",
    "table2.csv",
    "ablations.md",
    "ablations.csv",
    "fig_sagittal.png",
    "fig_transaxial.png",
    "fig_experiment2.png",
    "summary.json",
)
_FORMATS = (
    ("psnr", "{:.2f}", max),
    ("ssim", "{:.4f}", max),
    ("lesion_contrast_error", "{:.3f}", min),
    ("lesion_contrast", "{:.3f}", None),
    ("training_s", "{:.1f}", None),
)

Rows = dict[str, dict[str, Any]]


def ablation_config(config: configs.Config, overrides: dict[str, Any]) -> configs.Config:
    """``config`` with one ablation's changes; extra scales get a tenth of the finest iterations each."""
    changed = configs.replace(config, **overrides)
    if overrides.get("single_scale") is False and len(config.iterations) == 1:
        finest = config.iterations[0]
        coarse = max(1, finest // 10)
        changed = configs.replace(changed, iterations=(coarse,) * (changed.n_scales - 1) + (finest,))
    return changed


def reproduce(
    out_dir: str | Path,
    *,
    preset: str = "fast",
    ablations: bool = False,
    seed: int = 0,
    phantom: PhantomConfig | None = None,
    overwrite: bool = False,
    progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Run the paper's experiments on a simulated subject; write tables, figures and ``summary.json``.

    ``phantom`` replaces the default ``PhantomConfig(seed=seed, lesion=True)`` (a lesion is always
    simulated: the tables report its contrast). A non-empty ``out_dir`` is refused unless
    ``overwrite``, which removes only the outputs listed in :data:`OUTPUTS`. ``command``: the command
    line recorded in each run's ``report.json``. Returns the summary.
    """
    out = Path(out_dir)
    _prepare(out, overwrite)
    config = configs.preset(preset, seed=seed)
    phantom = dataclasses.replace(phantom or PhantomConfig(seed=seed), lesion=True)
    started = time.perf_counter()
    logger.info("simulating the phantom into %s", out / "phantom")
    case = simulate(out / "phantom", phantom)
    files = {role: Path(entry["path"]) for role, entry in case["files"].items()}
    nr_grid = load_volume(files["asl_nr"]).grid
    mask = load_mask(files["mask"], nr_grid)
    lesion = load_mask(files["lesion"], nr_grid)
    references = {key: load_volume(files[role]).data for key, role, _ in REFERENCES}
    run_options = dict(config=config, overwrite=overwrite, progress=progress, command=command)
    caption = (
        f"Preset `{preset}`, seed {seed}, digital phantom (NR grid {'x'.join(map(str, nr_grid.shape))}). "
        "PSNR (dB) and SSIM as defined in docs/metrics.md (data range of the whole reference; brain = "
        "in the phantom's brain mask); lesion ratio = mean in the lesion / mean in its mirror region, "
        "error = |ratio / ratio of the noise-free map - 1|. Best value per column in bold."
    )

    logger.info("experiment 1 (LR -> NR grid)")
    first = run(
        files["asl_lr"],
        files["t1w"],
        out / "experiment1",
        target=TargetSpec(like=files["asl_nr"]),
        m0_path=files["m0_lr"],
        **run_options,
    )
    table1 = score_methods(first.out_dir, references, mask, lesion, "clean")
    write_table1(out, table1, caption)
    window = intensity_window(references["clean"], mask)
    for view, name in (("sagittal", "fig_sagittal.png"), ("axial", "fig_transaxial.png")):
        figure_experiment1(
            out / name,
            first.out_dir,
            references,
            nr_grid,
            view,
            mask,
            lesion,
            window,
            case["hr_average_factor"],
            f"CBF ({case['units']})",
        )

    logger.info("experiment 2 (NR -> T1 voxel size)")
    second = run(files["asl_nr"], files["t1w"], out / "experiment2", m0_path=files["m0"], **run_options)
    table2, truth_note = experiment2(out, second, files, nr_grid, mask, lesion, caption, f"CBF ({case['units']})")

    ablation_rows: Rows = {}
    if ablations:
        ablation_rows = run_ablations(out, first, table1, files, references, mask, lesion, preset, run_options)
        write_rows(
            out / "ablations",
            ablation_rows,
            caption,
            "Ablations of experiment 1 (brain mask).",
            [
                "kind",
                "settings",
                "psnr_hr_brain",
                "ssim_hr_brain",
                "psnr_clean_brain",
                "ssim_clean_brain",
                "lesion_contrast_error",
                "training_s",
            ],
            first_column="variant",
        )

    summary = {
        "aslsr_version": __version__,
        "preset": preset,
        "seed": seed,
        "config": config.to_dict(),
        "phantom": case["config"],
        "seconds": time.perf_counter() - started,
        "experiment1": {"table": table1, "report": _report_digest(first)},
        "experiment2": {"table": table2, "truth": truth_note, "report": _report_digest(second)},
        "ablations": ablation_rows or None,
        "files": sorted(p.name for p in out.iterdir() if p.name in OUTPUTS) + ["summary.json"],
    }
    save_json(out / "summary.json", summary)
    logger.info("done in %.0f s; tables and figures in %s", summary["seconds"], out)
    return summary


def score_methods(
    run_dir: Path,
    references: Mapping[str, np.ndarray],
    mask: np.ndarray,
    lesion: np.ndarray,
    lesion_reference: str,
    methods: Sequence[tuple[str, str]] = METHODS,
) -> Rows:
    """Score a run's NIfTI outputs: ``{method: {"psnr_<ref>[_brain]", "ssim_<ref>[_brain]", lesion...}}``.

    Lesion contrast (ratio, the reference's ratio and the error) is taken against ``lesion_reference``.
    """
    predictions = {label: load_volume(run_dir / f"{stem}.nii.gz", allow_constant=True).data for label, stem in methods}
    rows: Rows = {label: {} for label in predictions}
    for key, reference in references.items():
        results = metrics.evaluate(
            reference, predictions, mask=mask, lesion=lesion if key == lesion_reference else None
        )
        for label, values in results.items():
            for metric in ("psnr", "ssim"):
                rows[label][f"{metric}_{key}"] = values[metric]
                rows[label][f"{metric}_{key}_brain"] = values[f"{metric}_brain"]
            if "lesion_contrast" in values:
                rows[label].update(
                    {
                        "lesion_contrast": values["lesion_contrast"],
                        f"lesion_contrast_ref_{key}": values["lesion_contrast_ref"],
                        "lesion_contrast_error": values["lesion_contrast_error"],
                    }
                )
    return rows


def write_table1(out: Path, table: Rows, caption: str) -> None:
    """``table1.md`` (brain-mask and whole-volume tables) and ``table1.csv`` (one row per method)."""
    labels = {key: label for key, _, label in REFERENCES}
    brain = [f"{m}_{k}_brain" for k in labels for m in ("psnr", "ssim")]
    whole = [f"{m}_{k}" for k in labels for m in ("psnr", "ssim")]
    lesion = ["lesion_contrast", "lesion_contrast_error"]
    titles = {
        **{f"{m}_{k}{s}": f"{labels[k]} {m.upper()}" for k in labels for m in ("psnr", "ssim") for s in ("", "_brain")},
        "lesion_contrast": "lesion ratio",
        "lesion_contrast_error": "ratio error",
    }
    reference_ratio = next(iter(table.values()))["lesion_contrast_ref_clean"]
    lines = [
        f"Table 1. Experiment 1 (paper Section 3.1, Table 1): SR of the LR ASL onto the NR grid, scored "
        f"against the NR, HR and noise-free references. {caption} Lesion ratio of the noise-free "
        f"map: {reference_ratio:.3f}.",
        "",
        "**In the brain mask**",
        "",
        *markdown_table(table, brain + lesion, titles),
        "",
        "**Whole volume**",
        "",
        *markdown_table(table, whole, titles),
    ]
    (out / "table1.md").write_text("\n".join(lines) + "\n")
    write_csv(out / "table1.csv", table, whole + brain + lesion + ["lesion_contrast_ref_clean"])


def experiment2(
    out: Path,
    result: RunResult,
    files: Mapping[str, Path],
    nr_grid: Grid,
    mask: np.ndarray,
    lesion: np.ndarray,
    caption: str,
    units: str,
) -> tuple[Rows, str]:
    """Score experiment 2 against the 1 mm truth (``table2``) and draw ``fig_experiment2.png``."""
    truth_volume = load_volume(files["truth_1mm"])
    target = result.target
    if truth_volume.grid == target:
        truth, note = truth_volume.data, "truth_1mm as simulated (the SR grid is its grid)"
    else:
        truth = resample_average(truth_volume.data, truth_volume.affine, target)
        note = f"truth_1mm box-averaged onto the SR grid ({_voxels(target)} mm voxels)"
    fine_mask = resample(mask.astype(np.float32), nr_grid.affine, target, order=1) > 0.5
    fine_lesion = resample(lesion.astype(np.float32), nr_grid.affine, target, order=1) > 0.5
    table = score_methods(result.out_dir, {"truth": truth}, fine_mask, fine_lesion, "truth")
    columns = [
        "psnr_truth_brain",
        "ssim_truth_brain",
        "psnr_truth",
        "ssim_truth",
        "lesion_contrast",
        "lesion_contrast_error",
    ]
    titles = {
        "psnr_truth_brain": "PSNR brain",
        "ssim_truth_brain": "SSIM brain",
        "psnr_truth": "PSNR whole",
        "ssim_truth": "SSIM whole",
        "lesion_contrast": "lesion ratio",
        "lesion_contrast_error": "ratio error",
    }
    lines = [
        f"Table 2. Experiment 2 (paper Fig. 4): SR of the NR ASL to the T1 voxel size ({_voxels(target)} mm), "
        f"scored against the phantom's ground truth ({note}; the paper had no such truth). "
        f"{caption.replace('of the noise-free map', 'of the truth')}",
        "",
        *markdown_table(table, columns, titles),
    ]
    (out / "table2.md").write_text("\n".join(lines) + "\n")
    write_csv(out / "table2.csv", table, columns + ["lesion_contrast_ref_truth"])

    def image(name: str) -> np.ndarray:
        return load_volume(result.out_dir / f"{name}.nii.gz", allow_constant=True).data

    window = intensity_window(truth, fine_mask)
    t1 = image("t1_registered")
    t1_low, t1_high = intensity_window(t1, fine_mask, (0.5, 99.9))
    t1_shown = window[0] + (t1 - t1_low) * (window[1] - window[0]) / max(t1_high - t1_low, 1e-12)
    panels = [
        ("NR input (nearest)", image("nearest")),
        ("linear", image("linear")),
        ("dTV", image("dtv")),
        ("proposed (SR)", image("sr")),
        ("T1 (registered, rescaled)", t1_shown),
        (f"truth ({_voxels(target)} mm)", truth),
    ]
    with tempfile.TemporaryDirectory(dir=out) as scratch:
        parts = []
        for view in ("axial", "sagittal"):
            parts.append(
                comparison_figure(
                    Path(scratch) / f"{view}.png",
                    panels=panels,
                    grid=target,
                    view=view,
                    mask=fine_mask,
                    window=window,
                    slice_index=_lesion_slice(fine_lesion, target, view),
                    units=units,
                    title=f"Experiment 2 (Fig. 4), {view} view through the lesion: NR -> {_voxels(target)} mm",
                )
            )
        stack_images(parts, out / "fig_experiment2.png")
    return table, note


def figure_experiment1(
    path: Path,
    run_dir: Path,
    references: Mapping[str, np.ndarray],
    grid: Grid,
    view: str,
    mask: np.ndarray,
    lesion: np.ndarray,
    window: tuple[float, float],
    hr_factor: int,
    units: str,
) -> None:
    """Fig. 2 / Fig. 3 layout: the references on top, LR input and the three SR methods below."""
    names = {"nr": "NR reference", "hr": f"HR reference ({hr_factor}x averages)", "clean": "noise-free"}
    panels = [(names[key], references[key]) for key, _, _ in REFERENCES]
    for label, stem in METHODS:
        title = "LR input (nearest)" if stem == "nearest" else label
        panels.append((title, load_volume(run_dir / f"{stem}.nii.gz", allow_constant=True).data))
    rows = [[name for name, _ in panels[:3]], [name for name, _ in panels[3:]]]
    figure_name = "Fig. 2" if view == "sagittal" else "Fig. 3"
    comparison_figure(
        path,
        panels=panels,
        grid=grid,
        view=view,
        rows=rows,
        window=window,
        mask=mask,
        slice_index=_lesion_slice(lesion, grid, view),
        units=units,
        title=f"Experiment 1 ({figure_name}), {'transaxial' if view == 'axial' else view} view "
        "through the lesion: SR of the LR ASL onto the NR grid",
    )


def run_ablations(
    out: Path,
    full: RunResult,
    table1: Rows,
    files: Mapping[str, Path],
    references: Mapping[str, np.ndarray],
    mask: np.ndarray,
    lesion: np.ndarray,
    preset: str,
    run_options: dict[str, Any],
) -> Rows:
    """Experiment 1 once per ablation variant (the full method is experiment 1 itself), plus baselines."""
    rows: Rows = {}
    for key, label, overrides in ABLATIONS:
        if overrides:
            logger.info("ablation '%s'", label)
            options = {**run_options, "config": ablation_config(run_options["config"], overrides)}
            result = run(
                files["asl_lr"],
                files["t1w"],
                out / "ablations" / key,
                target=TargetSpec(like=files["asl_nr"]),
                m0_path=files["m0_lr"],
                **options,
            )
            scores = score_methods(result.out_dir, references, mask, lesion, "clean", [("proposed", "sr")])
        else:
            result, scores = full, {"proposed": table1["proposed"]}
        settings = ", ".join(f"{k}={str(v).lower()}" for k, v in overrides.items()) or f"preset {preset}"
        rows[label] = {
            "kind": "method",
            "settings": settings,
            **scores["proposed"],
            "training_s": float(result.report["timings"]["training_s"]),
        }
    for label in ("linear", "spline"):
        rows[f"{label} interpolation"] = {"kind": "baseline", "settings": "-", **table1[label]}
    settings = full.report["config"]
    rows["dTV (T1-guided)"] = {
        "kind": "baseline",
        "settings": f"lambda={settings['dtv_lambda']}, "
        f"gamma={settings['dtv_gamma']}, acquisition={settings['acquisition']}",
        **table1["dTV"],
        "training_s": 0.0,
    }
    return rows


def write_rows(stem: Path, rows: Rows, caption: str, title: str, columns: Sequence[str], first_column: str) -> None:
    """``<stem>.md`` (caption and one markdown table) and ``<stem>.csv`` with ``columns``."""
    titles = {
        "psnr_hr_brain": "HR PSNR",
        "ssim_hr_brain": "HR SSIM",
        "psnr_clean_brain": "noise-free PSNR",
        "ssim_clean_brain": "noise-free SSIM",
        "lesion_contrast_error": "lesion ratio error",
        "training_s": "training s",
    }
    lines = [f"{title} {caption}", "", *markdown_table(rows, columns, titles, first_column)]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    write_csv(stem.with_suffix(".csv"), rows, columns, first_column)


def markdown_table(
    rows: Rows, columns: Sequence[str], titles: Mapping[str, str], first_column: str = "method"
) -> list[str]:
    """A markdown table: one line per row, the best number of each PSNR/SSIM/error column in bold."""
    best = {}
    for column in columns:
        choose = _format(column)[1]
        values = [row[column] for row in rows.values() if isinstance(row.get(column), float)]
        if choose is not None and values:
            best[column] = choose(values)
    numeric = [any(isinstance(row.get(c), float) for row in rows.values()) for c in columns]
    lines = [
        "| " + " | ".join([first_column] + [titles.get(c, c) for c in columns]) + " |",
        "|---|" + "".join("---:|" if n else "---|" for n in numeric),
    ]
    for name, row in rows.items():
        cells = []
        for column in columns:
            value = row.get(column, "")
            text = _format(column)[0].format(value) if isinstance(value, float) else str(value)
            cells.append(f"**{text}**" if column in best and value == best[column] else text)
        lines.append("| " + " | ".join([name] + cells) + " |")
    return lines


def write_csv(path: Path, rows: Rows, columns: Sequence[str], first_column: str = "method") -> None:
    """One CSV line per row; numbers at full precision (``str(float)`` round-trips exactly)."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([first_column, *columns])
        for name, row in rows.items():
            writer.writerow([name, *(row.get(column, "") for column in columns)])


def stack_images(paths: Sequence[Path], out: Path) -> Path:
    """Stack PNG images vertically (left-aligned, padded with white) into one PNG."""
    from matplotlib.image import imread, imsave

    images = [np.atleast_3d(imread(path))[..., :3] for path in paths]
    width = max(image.shape[1] for image in images)
    padded = [np.pad(image, ((0, 0), (0, width - image.shape[1]), (0, 0)), constant_values=1.0) for image in images]
    imsave(out, np.clip(np.concatenate(padded, axis=0), 0.0, 1.0))
    return out


def _prepare(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a folder", out)
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise InputError("output folder is not empty (use --overwrite)", out)
        for name in OUTPUTS:
            target = out / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _lesion_slice(lesion: np.ndarray, grid: Grid, view: str) -> int | None:
    """The slice (along the view's voxel axis) through the lesion's centre of mass."""
    if not lesion.any():
        return None
    return int(round(ndimage.center_of_mass(lesion)[slice_axis(grid, view)]))


def _format(column: str) -> tuple[str, Callable | None]:
    for prefix, text, choose in _FORMATS:
        if column.startswith(prefix):
            return text, choose
    return "{:.4g}", None


def _voxels(grid: Grid) -> str:
    return " x ".join(f"{v:.3g}" for v in grid.voxel_size)


def _report_digest(result: RunResult) -> dict[str, Any]:
    report = result.report
    return {
        "out_dir": str(result.out_dir),
        "timings": report["timings"],
        "scales": report["scales"],
        "peak_memory_mb": report.get("peak_memory_mb"),
        "device": report["device"],
        "target_grid": report["grids"]["target"],
        "warnings": report["warnings"],
    }
