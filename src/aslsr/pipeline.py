"""``aslsr run`` as a library call: load, check, register, mask, train, super-resolve, report.

Everything is written into a hidden staging folder beside ``out_dir`` and moved into place only
when the run succeeded, so a failed or interrupted run leaves no partial outputs, and existing
outputs are replaced only with ``RunOptions(overwrite=True)``. Inputs are never modified (see :mod:`aslsr.outputs`).
What a run writes is in :mod:`aslsr.run_outputs`, its ``report.json`` in :mod:`aslsr.run_report`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import masking, registration
from .acquisition_estimate import resolve_acquisition
from .checkpoint import Checkpointer, fingerprint
from .config import Config
from .devices import resolve_device, torch_threads
from .grids import Grid
from .inputs import TargetSpec, load_inputs
from .io import Volume
from .model import Model
from .noise import resolve_input_noise
from .outputs import check_run_folder, listed_outputs, run_inputs
from .pyramid import zoom_between
from .run_outputs import write_outputs
from .staging import StagedFolder
from .train import train

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    out_dir: Path
    report: dict[str, Any]
    model: Model | None  # None for --method dtv (no training)
    sr: np.ndarray
    target: Grid
    baselines: dict[str, np.ndarray] = field(default_factory=dict)


#: The training checkpoint's file name inside the staging folder.
CHECKPOINT_NAME = "checkpoint.pt"


@dataclass(frozen=True)
class RunOptions:
    """How a run treats its inputs and outputs (the method's settings are the :class:`~aslsr.config.Config`).

    ``register``: align the T1 to the ASL rigidly (else it is taken as aligned through its affine);
    ``realign``: realign the volumes of a 4D control/label series to their mean before subtraction;
    ``quantify``: turn a deltaM input into CBF (ml/100g/min) with its BIDS sidecar before training;
    ``nan_to_zero``: accept NaN/infinite voxels in the ASL, T1 and M0 as 0; ``overwrite``: replace
    existing outputs; ``resume``: continue an interrupted run from its checkpoint; ``progress``:
    progress bars (on a terminal only); ``command``: the command line that asked for the run,
    recorded in ``report.json`` (None from a library call).
    """

    register: bool = True
    realign: bool = True
    quantify: bool = False
    nan_to_zero: bool = False
    overwrite: bool = False
    resume: bool = False
    progress: bool = True
    command: str | None = None


def run(
    asl_path: str | Path,
    t1_path: str | Path,
    out_dir: str | Path,
    *,
    config: Config,
    target: TargetSpec = TargetSpec(),
    m0_path: str | Path | None = None,
    mask_path: str | Path | None = None,
    options: RunOptions = RunOptions(),
) -> RunResult:
    """Train on one subject's LR ASL with its T1 and write the outputs listed in the README into ``out_dir``.

    ``target``: the grid to super-resolve onto; ``m0_path``, ``mask_path``: optional M0 and brain mask.
    Every input is checked (and :class:`InputError` raised) before registration and training.
    Training state is checkpointed in the hidden staging folder (``options.resume`` continues from it).
    Progress and warnings go to the ``aslsr.pipeline`` logger (and warnings into ``report.json``).
    """
    out_dir = Path(out_dir)
    check_run_folder(
        out_dir,
        inputs=run_inputs(asl_path, t1_path, m0_path, mask_path, target.like),
        overwrite=options.overwrite,
        resume=options.resume,
        checkpoint_name=CHECKPOINT_NAME,
    )
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    finds_acquired_grid = config.acquisition == "auto"  # a stated acquisition model is taken as on the stored grid
    inputs = load_inputs(
        asl_path,
        t1_path,
        m0_path,
        target,
        nan_to_zero=options.nan_to_zero,
        quantify=options.quantify,
        realign=options.realign,
        progress=options.progress,
        acquired_grid=finds_acquired_grid,
    )
    asl, t1, m0, target_grid = inputs.asl, inputs.t1, inputs.m0, inputs.target
    if inputs.stored_asl is not None:
        logger.info(
            "%s: the ASL is stored on %s but was acquired on %s (%s): brought back to the acquired grid",
            out_dir.name,
            inputs.stored_asl.grid,
            asl.grid,
            inputs.description["acquired_grid"]["source"],
        )
    motion = inputs.description.get("realignment")
    if motion:
        logger.info(
            "%s: series realigned: %d of %d volumes moved (up to %.2f mm) and resampled",
            out_dir.name,
            motion["volumes_resampled"],
            motion["volumes_registered"],
            motion["max_displacement_mm"],
        )
    mask = inputs.load_mask(mask_path) if mask_path is not None else None
    timings["load_s"] = time.perf_counter() - clock

    with (
        StagedFolder(
            out_dir,
            keep=options.resume,
            keep_on_failure=[CHECKPOINT_NAME],
            on_kept=lambda staging: logger.warning(
                "stopped; the training state is kept in %s: continue with --resume", staging
            ),
        ) as staged,
        torch_threads(config.threads),
    ):
        staging = staged.path
        clock = time.perf_counter()
        result = register_t1(inputs.fixed, t1, register=options.register, seed=config.seed)
        t1_registered = registration.apply_registration(t1, result)
        timings["registration_s"] = time.perf_counter() - clock

        mask_source = "given" if mask is not None else ("m0" if m0 is not None else "t1")
        if mask is None:
            mask = masking.derive_mask(m0, t1_registered, asl.grid)
        device = resolve_device(config.device)  # once per run; passed to every step that computes
        clock = time.perf_counter()
        config, acquisition_estimate = resolve_acquisition(
            config, asl, mask, m0=m0, t1=t1_registered, device=device, zero_filled=inputs.stored_asl is not None
        )
        timings["acquisition_s"] = time.perf_counter() - clock  # with an M0: two dTV solves (point-sampling check)
        if acquisition_estimate is not None:
            reason = acquisition_estimate.reason
            logger.info("%s: acquisition auto -> %s (%s)", out_dir.name, config.acquisition, reason)
        config, noise_estimate = resolve_input_noise(config, asl, mask)
        if noise_estimate is not None:
            logger.info("%s: noise sd %.4g, read off the %s", out_dir.name, noise_estimate.sd, noise_estimate.source)

        zoom = zoom_between(asl.grid, target_grid)
        logger.info(
            "%s: %s -> %s (zoom %s), device %s",
            out_dir.name,
            asl.grid,
            target_grid,
            np.round(zoom, 3).tolist(),
            device,
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
        resumed = options.resume and checkpointer.path.exists()
        if options.resume:
            if resumed:
                logger.info("%s: resuming from %s", out_dir.name, checkpointer.path)
            else:
                logger.info("%s: --resume: no checkpoint found, training from the start", out_dir.name)
        clock = time.perf_counter()
        model = None
        if config.method == "gan":
            model = train(
                asl,
                t1_registered,
                config=config,
                zoom=zoom,
                mask=mask,
                progress=options.progress,
                checkpointer=checkpointer,
                device=device,
            )
            model.metadata["finds_acquired_grid"] = finds_acquired_grid  # aslsr generate does as this run did
        else:
            logger.info("%s: --method dtv: no training; sr.nii.gz is the directional-TV reconstruction", out_dir.name)
        timings["training_s"] = time.perf_counter() - clock

        report = write_outputs(
            staging,
            asl=asl,
            t1_registered=t1_registered,
            mask=mask,
            target_grid=target_grid,
            model=model,
            config=config,
            stored_asl=inputs.stored_asl,
            registration_result=result,
            register=options.register,
            mask_source=mask_source,
            timings=timings,
            description={
                **inputs.description,
                "units": inputs.units,
                "registration_target": inputs.fixed_source,
                "acquisition_estimate": None if acquisition_estimate is None else acquisition_estimate.to_dict(),
                "noise_estimate": None if noise_estimate is None else noise_estimate.to_dict(),
            },
            resumed=resumed,
            device=device,
            inputs={"asl": str(asl_path), "t1": str(t1_path), "m0": _str(m0_path), "mask": _str(mask_path)},
            command=options.command,
        )
        checkpointer.remove()
        staged.publish(owned=listed_outputs(out_dir))
    return RunResult(out_dir, report["report"], model, report["sr"], target_grid, report["baselines"])


def register_t1(fixed: Volume, t1: Volume, *, register: bool, seed: int) -> registration.RegistrationResult:
    """Rigid T1 -> ASL registration to ``fixed`` (M0, mean control or the ASL, on the ASL's grid), or identity."""
    if not register:
        return registration.identity_result()
    result = registration.register_rigid(fixed, t1, seed=seed)
    for message in result.warnings:
        logger.warning("registration: %s", message)
    return result


def _str(path: str | Path | None) -> str | None:
    return None if path is None else str(path)
