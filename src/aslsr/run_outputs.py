"""What a run writes into its staging folder: SR, baselines, registered T1, mask, model, losses, reports.

Images are written on the target grid (axes i, j, k of the target, ASL intensities in the input's
units); ``report.json`` comes from :mod:`aslsr.run_report`, the QC figure from :mod:`aslsr.figure_qc`.
Messages go to the ``aslsr.pipeline`` logger, as the rest of the run's do.
"""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from . import baselines, registration
from ._version import __version__
from .config import Config
from .errors import TrainingError
from .figure_qc import qc_figure
from .generate import learnt_zoom_share, refines_acquisition_dtv, super_resolve
from .grids import Grid, resample, resample_average
from .io import Volume, save_json, save_volume
from .model import Model
from .noise import estimate_noise, relative_noise
from .report_html import subject_report_html
from .run_report import build_report, peak_memory

logger = logging.getLogger("aslsr.pipeline")


def write_outputs(
    staging: Path,
    *,
    asl: Volume,
    t1_registered: Volume,
    mask: np.ndarray,
    target_grid: Grid,
    model: Model | None,
    config: Config,
    registration_result: registration.RegistrationResult,
    register: bool,
    mask_source: str,
    timings: dict[str, float],
    inputs: dict,
    description: dict,
    resumed: bool,
    device: torch.device,
    command: str | None = None,
    stored_asl: Volume | None = None,
) -> dict[str, Any]:
    """Super-resolve, compute the baselines and write every output of a run into ``staging``.

    ``asl`` on its own grid, ``t1_registered`` aligned to it through its affine, ``mask`` the brain
    on the ASL grid; the images are written on ``target_grid``; the networks and dTV run on ``device``.
    ``stored_asl``: the ASL as stored where ``asl`` is it on its acquired grid; the interpolation baselines start
    from it (what a user would interpolate).
    Fills ``timings`` (seconds) and returns
    ``{"report": report.json's payload, "sr": the SR image, "baselines": {name: image}}``.
    """
    clock = time.perf_counter()
    t1_on_target = resample_average(t1_registered.data, t1_registered.affine, target_grid)
    dtv_result = baselines.dtv_baseline(asl, t1_on_target, target_grid, config, device=device, brain=mask)
    timings["dtv_s"] = dtv_result.seconds
    clock = time.perf_counter()
    sr, generation = None, None
    if model is not None:  # how sr.nii.gz is made from G_N (generate.py), also written into report.json
        generation = {
            "refines_acquisition_dtv": refines_acquisition_dtv(model, asl, target_grid, mask),
            "learnt_zoom_share": learnt_zoom_share(model, asl.grid, target_grid),
            "relative_noise": relative_noise(asl, mask),  # what refines_acquisition_dtv weighs at the learnt zoom
        }
        sr = super_resolve(
            model,
            asl,
            t1_registered,
            target_grid,
            device=device,
            t1_on_target=t1_on_target,
            dtv_on_target=dtv_result.image if generation["refines_acquisition_dtv"] else None,
            brain_mask=mask,
        )
    if sr is not None and not np.all(np.isfinite(sr)):
        raise TrainingError("the super-resolved image has non-finite values; training diverged")
    timings["generation_s"] = time.perf_counter() - clock
    sr = dtv_result.image if sr is None else sr
    interpolated = baselines.all_baselines(asl if stored_asl is None else stored_asl, target_grid)
    interpolated["dtv"] = dtv_result.image
    warnings = model.warnings if model is not None else []
    noise_sd = estimate_noise(asl, mask).sd  # of the ASL as given (not its box equivalent): what the SR is held to
    agreement = lr_agreement(
        asl, mask, target_grid, sr, interpolated["spline"], dtv=dtv_result.image, noise_sd=noise_sd
    )
    if agreement["departs"]:
        warnings.append(
            f"the SR averaged back onto the ASL grid departs from the ASL {agreement['ratio_to_spline']:.1f}x "
            f"as much as spline interpolation does and {agreement['ratio_to_noise']:.1f}x the ASL's noise sd; "
            "look at qc.png before trusting it"
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
        model.save(staging / "model.pt", metadata={**model.metadata, "inputs": inputs, "aslsr_version": __version__})
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
        device=device,
        warnings=warnings,
        command=command,
    )
    report["lr_agreement"] = agreement
    if generation is not None:
        report["generation"] = generation
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
        stored=None if stored_asl is None else stored_asl.grid,
    )
    timings["writing_s"] = time.perf_counter() - clock
    report.update(peak_memory(report["device"]))
    save_json(staging / "report.json", report)
    subject_report_html(
        staging / "report.html",
        title=f"aslsr: {Path(inputs['asl']).name}",
        report=report,
        figures={"QC": staging / "qc.png"},
        outputs={name: name for name in report["outputs"]},
    )
    return {"report": report, "sr": sr, "baselines": interpolated}


#: Warn when the SR disagrees with the LR (at LR resolution) this many times more than spline does ...
AGREEMENT_WARNING_RATIO = 2.0
#: ... and more than this many times the LR's noise sd: an SR that removes the noise departs from the LR by up to
#: the noise (1x for the noise-free image), so only an excess over it is structure the data do not hold.
AGREEMENT_NOISE_RATIO = 1.5


def lr_agreement(
    asl: Volume,
    mask: np.ndarray,
    grid: Grid,
    sr: np.ndarray,
    spline: np.ndarray,
    dtv: np.ndarray | None = None,
    noise_sd: float | None = None,
) -> dict[str, Any]:
    """How far the SR, averaged back onto the ASL grid, is from the ASL, in the brain (a QC number).

    RMS in ASL units for the SR and for spline interpolation (and dTV when given), and the SR's ratio
    to spline's. A generator that paints structure the data do not support (rings, offsets) raises
    the ratio well above 1; so does one that removes the noise, since spline keeps it. ``noise_sd``
    (the ASL's noise sd per voxel, ASL units; None: unknown) tells the two apart: ``departs`` (the QC flag)
    needs the ratio above ``AGREEMENT_WARNING_RATIO`` and, where the noise is known, the SR's RMS above
    ``AGREEMENT_NOISE_RATIO`` times it.
    """

    def rms(image: np.ndarray) -> float:
        back = resample_average(image, grid.affine, asl.grid)
        return float(np.sqrt(np.mean((back[mask] - asl.data[mask]) ** 2)))

    sr_rms, spline_rms = rms(sr), rms(spline)
    result: dict[str, Any] = {
        "sr_rms": sr_rms,
        "spline_rms": spline_rms,
        "ratio_to_spline": sr_rms / max(spline_rms, 1e-12),
    }
    departs = result["ratio_to_spline"] > AGREEMENT_WARNING_RATIO
    if noise_sd is not None:
        result.update(noise_sd=noise_sd, ratio_to_noise=sr_rms / max(noise_sd, 1e-12))
        departs = departs and result["ratio_to_noise"] > AGREEMENT_NOISE_RATIO
    result["departs"] = bool(departs)
    return result if dtv is None else {**result, "dtv_rms": rms(dtv)}


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
        "clipped_steps",
        "steps",
    ]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in history:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
