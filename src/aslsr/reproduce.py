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
The methods, references and scores are in :mod:`aslsr.reproduce_scoring`, the tables in
:mod:`aslsr.reproduce_tables`, the figures in :mod:`aslsr.reproduce_figures`.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import config as configs
from ._version import __version__
from .errors import InputError
from .figure_slices import intensity_window
from .grids import Grid, resample, resample_average
from .inputs import TargetSpec
from .io import load_mask, load_volume, save_json
from .phantom import PhantomConfig, simulate
from .pipeline import RunOptions, RunResult, run
from .reproduce_figures import figure_experiment1, figure_experiment2, voxel_label
from .reproduce_scoring import REFERENCES, Rows, score_methods
from .reproduce_tables import write_rows, write_table1, write_table2

logger = logging.getLogger(__name__)

#: (folder name, label, configuration overrides) of the ablation variants; the first is the full method.
#: One row each: the preset as it is, then one change. The changes are relative to the preset, so
#: with ``fast`` (finest scale only, no adversarial term) the paper's parts are switched *on*.
ABLATIONS = (
    ("full", "preset as is", {}),
    ("no_t1", "without T1 channel", {"use_t1": False}),
    ("lowpass", "with low-pass loss (Eq. 5)", {"use_lowpass": True}),
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
    options = RunOptions(overwrite=overwrite, progress=progress, command=command)
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
        config=config,
        options=options,
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
    second = run(
        files["asl_nr"], files["t1w"], out / "experiment2", m0_path=files["m0"], config=config, options=options
    )
    table2, truth_note = experiment2(out, second, files, nr_grid, mask, lesion, caption, f"CBF ({case['units']})")

    ablation_rows: Rows = {}
    if ablations:
        ablation_rows = run_ablations(out, first, table1, files, references, mask, lesion, preset, config, options)
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
        note = f"truth_1mm box-averaged onto the SR grid ({voxel_label(target)} mm voxels)"
    fine_mask = resample(mask.astype(np.float32), nr_grid.affine, target, order=1) > 0.5
    fine_lesion = resample(lesion.astype(np.float32), nr_grid.affine, target, order=1) > 0.5
    table = score_methods(result.out_dir, {"truth": truth}, fine_mask, fine_lesion, "truth")
    write_table2(out, table, caption, note, voxel_label(target))
    figure_experiment2(out, result.out_dir, truth, target, fine_mask, fine_lesion, units)
    return table, note


def run_ablations(
    out: Path,
    full: RunResult,
    table1: Rows,
    files: Mapping[str, Path],
    references: Mapping[str, np.ndarray],
    mask: np.ndarray,
    lesion: np.ndarray,
    preset: str,
    config: configs.Config,
    options: RunOptions,
) -> Rows:
    """Experiment 1 once per ablation variant (the full method is experiment 1 itself), plus baselines."""
    rows: Rows = {}
    for key, label, overrides in ABLATIONS:
        if overrides:
            logger.info("ablation '%s'", label)
            result = run(
                files["asl_lr"],
                files["t1w"],
                out / "ablations" / key,
                target=TargetSpec(like=files["asl_nr"]),
                m0_path=files["m0_lr"],
                config=ablation_config(config, overrides),
                options=options,
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
        "settings": f"lambda={_dtv_lambda_text(settings, full.report.get('dtv') or {})}, "
        f"gamma={settings['dtv_gamma']}, acquisition={settings['acquisition']}",
        **table1["dTV"],
        "training_s": 0.0,
    }
    return rows


def _dtv_lambda_text(settings: dict, dtv_summary: dict) -> str:
    """The weight the run's dTV used: the fixed ``dtv_lambda``, or the noise-scaled one and its rule."""
    per_noise = settings.get("dtv_lambda_per_noise")
    if not per_noise:
        return f"{settings['dtv_lambda']}"
    return f"{dtv_summary.get('lam', float('nan')):.3g} ({per_noise} x noise sd / 99th percentile)"


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
