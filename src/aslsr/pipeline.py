"""``aslsr run`` as a library call: load, check, register, mask, train, super-resolve, report.

Everything is written into a hidden staging folder beside ``out_dir`` and moved into place only
when the run succeeded, so a failed or interrupted run leaves no partial outputs, and existing
outputs are replaced only with ``overwrite=True``. Inputs are never modified (see :mod:`aslsr.outputs`).
"""

from __future__ import annotations

import csv
import logging
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from . import __version__, baselines, masking, registration
from .checkpoint import Checkpointer, fingerprint
from .config import Config, resolve_device
from .errors import TrainingError
from .generate import save_model, super_resolve
from .grids import Grid, resample, resample_average
from .inputs import TargetSpec, load_inputs
from .io import Volume, load_mask, save_json, save_volume
from .machine import cpu_name, peak_memory_mb
from .outputs import StagedFolder, check_run_folder, listed_outputs, run_inputs
from .pyramid import zoom_between
from .report import qc_figure
from .report_html import subject_report_html
from .train import TrainedModel, train

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    out_dir: Path
    report: dict[str, Any]
    model: TrainedModel | None  # None for --method dtv (no training)
    sr: np.ndarray
    target: Grid
    baselines: dict[str, np.ndarray] = field(default_factory=dict)


#: The training checkpoint's file name inside the staging folder.
CHECKPOINT_NAME = "checkpoint.pt"


def run(
    asl_path: str | Path,
    t1_path: str | Path,
    out_dir: str | Path,
    *,
    config: Config,
    target: TargetSpec = TargetSpec(),
    m0_path: str | Path | None = None,
    mask_path: str | Path | None = None,
    register: bool = True,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
    nan_to_zero: bool = False,
    quantify: bool = False,
) -> RunResult:
    """Train on one subject's LR ASL with its T1 and write the outputs listed in the README into ``out_dir``.

    Every input is checked (and :class:`InputError` raised) before registration and training;
    ``nan_to_zero`` accepts NaN/infinite voxels in the ASL, T1 and M0 as 0; ``quantify`` turns a
    deltaM input into CBF (ml/100g/min) with its BIDS sidecar before training. Training state is
    checkpointed in the hidden staging folder; ``resume=True`` continues an interrupted run from it.
    Progress and warnings go to the ``aslsr.pipeline`` logger (and warnings into ``report.json``).
    """
    out_dir = Path(out_dir)
    check_run_folder(
        out_dir,
        inputs=run_inputs(asl_path, t1_path, m0_path, mask_path, target.like),
        overwrite=overwrite,
        resume=resume,
        checkpoint_name=CHECKPOINT_NAME,
    )
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    inputs = load_inputs(asl_path, t1_path, m0_path, target, nan_to_zero=nan_to_zero, quantify=quantify)
    asl, t1, m0, target_grid = inputs.asl, inputs.t1, inputs.m0, inputs.target
    mask = load_mask(mask_path, asl.grid) if mask_path is not None else None
    timings["load_s"] = time.perf_counter() - clock

    with StagedFolder(
        out_dir,
        keep=resume,
        keep_on_failure=[CHECKPOINT_NAME],
        on_kept=lambda staging: logger.warning(
            "stopped; the training state is kept in %s: continue with --resume", staging
        ),
    ) as staged:
        staging = staged.path
        clock = time.perf_counter()
        result = register_t1(inputs.fixed, t1, register=register, seed=config.seed)
        t1_registered = registration.apply_registration(t1, result)
        timings["registration_s"] = time.perf_counter() - clock

        mask_source = "given" if mask is not None else ("m0" if m0 is not None else "t1")
        if mask is None:
            mask = derive_mask(m0, t1_registered, asl.grid)

        zoom = zoom_between(asl.grid, target_grid)
        logger.info(
            "%s: %s -> %s (zoom %s), device %s",
            out_dir.name,
            asl.grid,
            target_grid,
            np.round(zoom, 3).tolist(),
            resolve_device(config.device),
        )
        checkpointer = Checkpointer(
            staging / CHECKPOINT_NAME,
            fingerprint=fingerprint(
                config={**config.to_dict(), "units": inputs.units, "asl": inputs.description},
                arrays={
                    "asl": asl.data,
                    "t1": t1_registered.data,
                    "t1_affine": t1_registered.affine,
                    "mask": mask,
                    "target_affine": target_grid.affine,
                    "target_shape": np.array(target_grid.shape),
                },
            ),
        )
        resumed = resume and checkpointer.path.exists()
        if resume:
            if resumed:
                logger.info("%s: resuming from %s", out_dir.name, checkpointer.path)
            else:
                logger.info("%s: --resume: no checkpoint found, training from the start", out_dir.name)
        clock = time.perf_counter()
        model = None
        if config.method == "gan":
            model = train(
                asl, t1_registered, config=config, zoom=zoom, mask=mask, progress=progress, checkpointer=checkpointer
            )
        else:
            logger.info("%s: --method dtv: no training; sr.nii.gz is the directional-TV reconstruction", out_dir.name)
        timings["training_s"] = time.perf_counter() - clock

        report = _write_outputs(
            staging,
            asl=asl,
            t1_registered=t1_registered,
            mask=mask,
            target_grid=target_grid,
            model=model,
            config=config,
            registration_result=result,
            register=register,
            mask_source=mask_source,
            timings=timings,
            description={**inputs.description, "units": inputs.units, "registration_target": inputs.fixed_source},
            resumed=resumed,
            inputs={"asl": str(asl_path), "t1": str(t1_path), "m0": _str(m0_path), "mask": _str(mask_path)},
        )
        checkpointer.remove()
        staged.publish(owned=listed_outputs(out_dir))
    return RunResult(out_dir, report["report"], model, report["sr"], target_grid, report["baselines"])


def _write_outputs(
    staging: Path,
    *,
    asl: Volume,
    t1_registered: Volume,
    mask: np.ndarray,
    target_grid: Grid,
    model: TrainedModel | None,
    config: Config,
    registration_result: registration.RegistrationResult,
    register: bool,
    mask_source: str,
    timings: dict[str, float],
    inputs: dict,
    description: dict,
    resumed: bool,
) -> dict[str, Any]:
    """Super-resolve, compute the baselines and write every output of a run into ``staging``."""
    clock = time.perf_counter()
    t1_on_target = resample_average(t1_registered.data, t1_registered.affine, target_grid)
    dtv_result = baselines.dtv_baseline(asl, t1_on_target, target_grid, config)
    timings["dtv_s"] = dtv_result.seconds
    clock = time.perf_counter()
    sr = None
    if model is not None:
        sr = super_resolve(
            model, asl, t1_registered, target_grid, t1_on_target=t1_on_target, dtv_on_target=dtv_result.image
        )
    if sr is not None and not np.all(np.isfinite(sr)):
        raise TrainingError("the super-resolved image has non-finite values; training diverged")
    timings["generation_s"] = time.perf_counter() - clock
    sr = dtv_result.image if sr is None else sr
    interpolated = {**baselines.all_baselines(asl, target_grid), "dtv": dtv_result.image}
    warnings = model.warnings if model is not None else []
    agreement = lr_agreement(asl, mask, target_grid, sr, interpolated["spline"], dtv=dtv_result.image)
    if agreement["ratio_to_spline"] > AGREEMENT_WARNING_RATIO:
        warnings.append(
            f"the SR averaged back onto the ASL grid departs from the ASL {agreement['ratio_to_spline']:.1f}x "
            "as much as spline interpolation does; look at qc.png before trusting it"
        )
        logger.warning("%s", warnings[-1])

    clock = time.perf_counter()
    save_volume(staging / "sr.nii.gz", sr, target_grid)
    for name, image in interpolated.items():
        save_volume(staging / f"{name}.nii.gz", image, target_grid)
    save_volume(staging / "t1_registered.nii.gz", t1_on_target, target_grid)
    mask_on_target = resample(mask.astype(np.float32), asl.affine, target_grid, order=1) > 0.5
    save_volume(staging / "mask.nii.gz", mask_on_target.astype(np.uint8), target_grid, dtype=np.uint8)
    if register:
        registration.save_itk_transform(registration_result, staging / "t1_to_asl.tfm")
    if model is not None:
        save_model(model, staging / "model.pt", metadata={"inputs": inputs, "aslsr_version": __version__})
    history = model.history if model is not None else []
    write_losses_csv(staging / "losses.csv", history)
    report = build_report(
        config=config,
        model=model,
        inputs=inputs,
        asl=asl,
        target=target_grid,
        registration_result=registration_result,
        registered=register,
        mask_source=mask_source,
        timings=timings,
        warnings=warnings,
    )
    report["lr_agreement"] = agreement
    report["dtv"] = dtv_result.summary()
    report["asl"] = description
    report["resumed_from_checkpoint"] = resumed
    qc_figure(
        staging / "qc.png",
        lr=asl,
        linear=interpolated["linear"],
        spline=interpolated["spline"],
        sr=sr,
        t1=t1_on_target,
        mask=mask_on_target,
        grid=target_grid,
        history=history,
        dtv=dtv_result.image if model is not None else None,
    )
    timings["writing_s"] = time.perf_counter() - clock
    report["peak_memory_mb"] = peak_memory_mb()
    if torch.cuda.is_available() and report["device"].startswith("cuda"):
        report["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    save_json(staging / "report.json", report)
    subject_report_html(
        staging / "report.html",
        title=f"aslsr: {Path(inputs['asl']).name}",
        report=report,
        figures={"QC": staging / "qc.png"},
        outputs={name: name for name in report["outputs"]},
    )
    return {"report": report, "sr": sr, "baselines": interpolated}


#: Warn when the SR disagrees with the LR (at LR resolution) this many times more than spline does.
AGREEMENT_WARNING_RATIO = 2.0


def lr_agreement(
    asl: Volume, mask: np.ndarray, grid: Grid, sr: np.ndarray, spline: np.ndarray, dtv: np.ndarray | None = None
) -> dict[str, float]:
    """How far the SR, averaged back onto the ASL grid, is from the ASL, in the brain (a QC number).

    RMS in ASL units for the SR and for spline interpolation (and dTV when given), and the SR's ratio
    to spline's. A generator that paints structure the data do not support (rings, offsets) raises
    the ratio well above 1.
    """

    def rms(image: np.ndarray) -> float:
        back = resample_average(image, grid.affine, asl.grid)
        return float(np.sqrt(np.mean((back[mask] - asl.data[mask]) ** 2)))

    sr_rms, spline_rms = rms(sr), rms(spline)
    result = {"sr_rms": sr_rms, "spline_rms": spline_rms, "ratio_to_spline": sr_rms / max(spline_rms, 1e-12)}
    return result if dtv is None else {**result, "dtv_rms": rms(dtv)}


def register_t1(fixed: Volume, t1: Volume, *, register: bool, seed: int) -> registration.RegistrationResult:
    """Rigid T1 -> ASL registration to ``fixed`` (M0, mean control or the ASL, on the ASL's grid), or identity."""
    if not register:
        return registration.identity_result()
    result = registration.register_rigid(fixed, t1, seed=seed)
    for message in result.warnings:
        logger.warning("registration: %s", message)
    return result


def derive_mask(m0: Volume | None, t1_registered: Volume, grid: Grid) -> np.ndarray:
    """Brain mask on ``grid``: from the M0 when given, else from the registered T1 resampled there."""
    if m0 is not None:
        on_grid = resample_average(m0.data, m0.affine, grid)
        return masking.brain_mask_from_image(Volume(on_grid, grid))
    t1_on_grid = resample_average(t1_registered.data, t1_registered.affine, grid)
    return masking.brain_mask_from_t1(t1_on_grid, grid.voxel_size)


def build_report(
    *,
    config: Config,
    model: TrainedModel | None,
    inputs: dict,
    asl: Volume,
    target: Grid,
    registration_result: registration.RegistrationResult,
    registered: bool,
    mask_source: str,
    timings: dict[str, float],
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """The ``report.json`` payload: resolved config, versions, seed, device, grids, timings, warnings.

    ``model`` is None for ``--method dtv``: no scales, no ``model.pt``.
    """
    device = resolve_device(config.device)
    grids = model.grids if model is not None else []
    iterations = {}
    for row in model.history if model is not None else []:
        iterations[row["scale"]] = max(iterations.get(row["scale"], 0), row["iteration"] + 1)
    return {
        "aslsr_version": __version__,
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "numpy": np.__version__,
            "platform": platform.platform(),
        },
        "command": " ".join(sys.argv),
        "inputs": inputs,
        "config": config.to_dict(),
        "seed": config.seed,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "threads": torch.get_num_threads(),
        "method": config.method,
        "model": "model.pt" if model is not None else None,
        "grids": {"asl": _grid_dict(asl.grid), "target": _grid_dict(target), "scales": [_grid_dict(g) for g in grids]},
        "scale_factor": [float(f) for f in model.factor] if model is not None else [],
        "scales": [
            {
                "scale": i,
                "seconds": s,
                "iterations": iterations.get(i, 0),
                "seconds_per_iteration": s / max(1, iterations.get(i, 0)),
            }
            for i, s in zip(range(len(grids) - len(model.scale_seconds), len(grids)), model.scale_seconds)
        ]
        if model is not None
        else [],
        "registration": {"performed": registered, **registration_result.to_dict()},
        "mask_source": mask_source,
        "timings": timings,
        "warnings": list(warnings) + list(registration_result.warnings),
        "outputs": ["sr.nii.gz"]
        + [f"{name}.nii.gz" for name in baselines.BASELINES]
        + ["t1_registered.nii.gz", "mask.nii.gz"]
        + (["model.pt"] if model is not None else [])
        + ["report.json", "report.html", "losses.csv", "qc.png"]
        + (["t1_to_asl.tfm"] if registered else []),
    }


def write_losses_csv(path: Path, history: Sequence[dict]) -> None:
    """Every logged training step: scale, iteration, seconds and each loss term (blank when unused)."""
    columns = [
        "scale",
        "iteration",
        "seconds",
        "lr",
        "loss_g",
        "mse",
        "lowpass",
        "adv_g",
        "loss_d",
        "gp",
        "grad_norm",
        "validation",
        "validation_ema",
        "best_iteration",
        "best_weights",
        "hard_batches",
    ]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in history:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def _grid_dict(grid: Grid) -> dict[str, Any]:
    return {
        "shape": list(grid.shape),
        "voxel_size_mm": [round(float(v), 5) for v in grid.voxel_size],
        "affine": np.round(grid.affine, 6).tolist(),
    }


def _str(path: str | Path | None) -> str | None:
    return None if path is None else str(path)
