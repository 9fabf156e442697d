"""One configuration dataclass for a run, with named presets and TOML overrides.

The resolved configuration is written into every run's ``report.json`` and ``model.pt``; nothing
in the package keeps global mutable options. Units are in the field names or comments.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import checks
from .errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class Config:
    """Every setting of training and super-resolution. Build with :func:`preset` and ``replace``.

    A trained model keeps only the fields in :data:`MODEL_SETTINGS` (what applying it needs); the
    others are training, run and machine settings, recorded in each run's ``report.json``.
    """

    # Pyramid: x_n is the LR ASL downsampled by scale_factor**(N - n).
    scale_factor: tuple[float, float, float] | None = None  # per voxel axis; None = the SR zoom per axis
    max_scale_factor: float | None = None  # with scale_factor None: the SR zoom capped at this per axis (None: no cap)
    n_scales: int | None = None  # None: as many as min_size_voxels allows, at most max_scales
    max_scales: int = 3
    min_size_voxels: int = 12  # smallest size of a downsampled axis at the coarsest scale

    # Networks (see networks.py).
    generator_channels: tuple[int, int, int] = (16, 32, 64)  # U-Net feature maps per level
    residual: bool = True  # generator predicts a correction added to its image input
    use_t1: bool = True  # T1 as second input channel (off: ablation)
    generator_init: str = "pytorch"  # hidden convolutions' starting weights: pytorch (its default) | he (networks.py)
    critic_channels: int = 32
    critic_layers: int = 5

    # Loss: adversarial (WGAN-GP) + alpha * MSE + beta * low-pass MSE.
    use_adversarial: bool = True
    adversarial_weight: float = 1.0
    alpha: float = 10.0  # weight of MSE(G, x_n)
    use_lowpass: bool = True
    beta: float = 10.0  # weight of MSE(F(G), F(x_n))
    lowpass_sigma_voxels: float = 5.0  # Gaussian sigma of F, in voxels of the scale being trained
    gp_weight: float = 0.1  # gradient-penalty weight
    gp_every: int = 1  # apply the penalty on every k-th critic step (lazy regularisation, scaled by k)
    critic_every: int = 1  # one critic step every k generator steps

    # Optimisation.
    learning_rate: float = 1e-3
    adam_betas: tuple[float, float] = (0.5, 0.999)
    lr_schedule: str = "constant"  # constant | step (SinGAN: x0.1 after 80 %) | cosine (warm-up, then down to 5 %)
    warmup_iterations: int = 0  # linear learning-rate warm-up at the start of each scale
    grad_clip_norm: float | None = None  # clip the generator's gradient norm (None: off)
    grad_clip_relative: float | None = None  # clip to k x its median over the last 50 steps, from step 10 (None: off)
    validation_fraction: float = 0.1  # share of brain blocks held out of the loss to validate on (0: whole volume)
    validation_block_voxels: int = 4  # side of a held-out block, voxels of the scale being trained
    validate_every: int = 25  # iterations between validations
    select_best: bool = True  # a scale ends with its best-validated weights (else the last sound ones)
    ema_decay: float = 0.0  # >0: also validate an exponential moving average of the generator's weights (per step)
    iterations: tuple[int, ...] = (2000,)  # per scale, coarse to fine; the last entry repeats
    # Past those, up to extend_iterations more per scale, in windows of extend_window iterations: another window
    # while the best held-out loss fell by at least extend_min_fall (a fraction) over the last one (0: a fixed count).
    extend_iterations: int = 0
    extend_window: int = 200
    extend_min_fall: float = 0.01
    patch_size: int | None = None  # voxels per side of training sub-volumes; None = whole volume
    batch_size: int = 1
    brain_patch_fraction: float = 0.8  # share of patches centred in the brain mask (when known)
    flip_augment: bool = False  # flip each training sample along each voxel axis with probability 1/2
    single_scale: bool = False  # ablation: train only the finest generator (from scratch)
    # Image fed to G_n (n > 0): "real": x_{n-1} brought up (matches SR time); "generated": G_{n-1}'s output
    # brought up (paper Eq. 1); "dtv": the dTV reconstruction of x_{n-1} on grid n, and at SR time the dTV
    # reconstruction of the LR on the target grid (the generator refines the model-based solution).
    input_source: str = "real"
    # "matched": white noise added to x_{n-1} before it becomes G_n's training input, so that the input is as noisy
    # as x_n (at the finest scale: as the LR the generator refines at super-resolution time; noise.py); "off": none.
    input_noise: str = "off"
    input_noise_sd: float | None = None  # the LR's noise sd (ASL units, per LR voxel); None: read off the image
    upsample_order: int = 1  # interpolation for x_{n-1} -> grid n and for LR -> target (1 linear, 3 spline)
    log_every: int = 10  # iterations between rows of losses.csv
    checkpoint_every: int = 100  # iterations between mid-scale checkpoints (0: only after each scale)

    # Super-resolution.
    consistency: str = "lowpass"  # off | full | lowpass: make the SR averaged onto the LR grid agree with the LR
    consistency_sigma_voxels: float = 1.0  # "lowpass": Gaussian sigma (LR voxels) of the part made to agree
    # "brain": only in the brain mask grown by one LR voxel (outside it the LR holds noise, not perfusion); "all"
    consistency_region: str = "brain"
    flip_ensemble: bool = False  # average G_N over the 8 flips of its inputs' voxel axes (8x generation time)
    # On a target finer than the zoom G_N learnt, with a box acquisition model: the SR is (1 - share) x G_N applied
    # on the target + share x G_N applied on the grid it learnt, brought to the target by cubic spline
    # (generate.learnt_zoom_share). 0: G_N on the target only.
    learnt_zoom_share: float = 0.0
    tile_size: int = 128  # voxels per side when generating large volumes in tiles
    tile_overlap: int = 16

    # Method, and the anatomically guided model-based reconstruction (dtv.py) that every run also writes.
    method: str = "gan"  # gan: train the generator; dtv: sr.nii.gz is the dTV reconstruction (no training)
    dtv_lambda: float = 0.1  # TV weight in mm, for intensities relative to the ASL's 99th percentile
    # 0: dtv_lambda. k > 0: lambda = k x (noise sd / 99th percentile of |ASL|), the noise read off the image that
    # dTV reconstructs (baselines.dtv_weight), so that the weight follows the data's SNR
    dtv_lambda_per_noise: float = 0.0
    dtv_gamma: float = 0.9  # 0: plain TV; towards 1: edges parallel to the T1's cost nothing
    dtv_eta: float = 0.05  # T1 edge threshold, relative to the 99th percentile of |grad T1|
    dtv_iterations: int = 500  # at most; stops earlier at a relative change below 3e-4 per 10 iterations
    acquisition: str = "box"  # box | gaussian | kspace | auto: how the LR ASL was formed; dTV uses it as its operator,
    # the generator's chain sees the LR as its box equivalent (acquisition.box_equivalent; beyond the learnt zoom,
    # or where the LR is clean, it refines the dTV through this model: generate.refines_acquisition_dtv); auto:
    # kspace with a fitted Tukey window when the background noise shows a k-space filter, else gaussian of the T1's
    # voxel size where an M0 shows point samples (acquisition_point_below), else box (acquisition_estimate.py)
    acquisition_fwhm_mm: float | None = None  # gaussian in-plane FWHM (mm); None: the ASL in-plane voxel size
    acquisition_slice_fwhm_mm: float | None = None  # gaussian FWHM along the slice axis; None: slice thickness
    acquisition_window: str = "none"  # kspace: none | hann | tukey
    acquisition_tukey_alpha: float = 0.5  # kspace tukey window: tapered fraction of the band
    # At the learnt zoom, with a k-space model: G_N refines the dTV through that model where the LR's noise sd
    # relative to its 99th percentile is below this, else the box equivalent's (generate.refines_acquisition_dtv;
    # with a Gaussian PSF always the former)
    acquisition_dtv_below_noise: float = 0.04
    # auto, with an M0 on the ASL grid and no k-space filter seen: the readout counts as point samples of the object
    # (a Gaussian PSF of the T1's voxel size) where the M0's held-out voxels are predicted through dTV with an error
    # below this share of a box average's (acquisition_estimate.point_sampling_check). 0: never
    acquisition_point_below: float = 0.95

    # Machine.
    device: str = "auto"  # auto | cpu | cuda
    threads: int | None = None  # torch CPU threads for the whole run (dTV, training, generation); None = all cores
    # CPU: the networks' 3D feature maps stored channels-last (N, D, H, W, C in memory): the same float32
    # arithmetic in another summation order, 1.15-1.3x faster oneDNN convolutions (BENCHMARKS.md 2026-12-06).
    channels_last: bool = True
    # Training's generator forward pass under bfloat16 autocast: off | on | auto (on where the CPU has bfloat16
    # units, AVX512-BF16 or AMX). Validation, selection and generation stay float32.
    bfloat16: str = "off"
    seed: int = 0

    def iterations_at(self, scale: int, n_scales: int) -> int:
        """Iterations for ``scale`` (0 = coarsest); the tuple is aligned to the finest scale."""
        counts = list(self.iterations)
        offset = n_scales - len(counts)
        return counts[max(0, scale - offset)] if scale - offset >= 0 else counts[0]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: The fields a trained model needs when it is applied, saved in ``model.pt`` and read back from it: the
#: generator's architecture and the super-resolution recipe (its input, the dTV reconstruction that makes
#: it, the consistency step). Machine settings (device, tiles, threads) come from whoever applies it.
MODEL_SETTINGS: tuple[str, ...] = (
    "generator_channels",
    "residual",
    "use_t1",
    "input_source",
    "upsample_order",
    "consistency",
    "consistency_sigma_voxels",
    "consistency_region",
    "flip_ensemble",
    "learnt_zoom_share",
    "dtv_lambda",
    "dtv_lambda_per_noise",
    "dtv_gamma",
    "dtv_eta",
    "dtv_iterations",
    "acquisition",
    "acquisition_fwhm_mm",
    "acquisition_slice_fwhm_mm",
    "acquisition_window",
    "acquisition_tukey_alpha",
    "acquisition_dtv_below_noise",
)


def model_settings(config: Config) -> dict[str, Any]:
    """The :data:`MODEL_SETTINGS` of ``config``, by name."""
    return {name: getattr(config, name) for name in MODEL_SETTINGS}


PRESETS: dict[str, dict[str, Any]] = {
    # The paper's settings: Adam lr 1e-3, 2000 iterations on every scale, whole volumes, critic
    # step with gradient penalty on every iteration.
    "paper": {"input_source": "generated", "consistency": "off"},
    # Sized for a 2-core CPU, from the measurements in BENCHMARKS.md: all iterations go to the
    # finest generator, trained from an identity start to refine the directional-TV reconstruction of
    # x_{N-1} on grid N into x_N (at SR time it refines the dTV reconstruction of the LR on the target
    # grid), on patches, with the MSE loss alone; the adversarial term and the coarse scales did not earn
    # their cost. ``input_source = "real"`` gives the earlier default (x_{N-1} brought up, no dTV).
    "fast": {
        # 800 steps, the time that channels-last memory saves: the first 600 are the earlier default's run, and on the
        # tune half the 200 more gained 0 to +0.14 dB per run (never less), where the held-out loss still fell
        # (BENCHMARKS.md 2026-12-06).
        "iterations": (800,),
        # ... and 200 more if the held-out loss still fell by 1 % over the last 200: where a run had not converged at
        # 800, the seed decided up to 0.43 dB (BENCHMARKS.md 2026-12-06 afternoon). Up to 800 more (1600 in all) took a
        # run to the T1's 1 mm to 5:51 on two cores, and its last 600 steps gained nothing there (-0.03 dB) and 0.07 dB
        # at the learnt zoom (BENCHMARKS.md 2026-12-07 late morning).
        "extend_iterations": 200,
        "adam_betas": (0.9, 0.999),  # GAN's beta1 0.5 let one outlier patch move every weight ~16x lr (BENCHMARKS.md)
        # No low-pass loss term: it doubled the weight on the output's lowest frequencies, the mode whose growing
        # oscillation made every guard roll-back (BENCHMARKS.md); the dTV input and the consistency step hold them.
        "use_lowpass": False,
        "single_scale": True,
        "use_adversarial": False,
        "patch_size": 32,
        "batch_size": 2,
        "input_source": "dtv",  # beat input_source "real" on all 8 panel variants x 3 seeds (BENCHMARKS.md)
        # Noise added to x_{N-1} so the training input is as noisy as the LR the generator refines at SR time
        # (noise.py): +0.1..+0.8 dB on the tune half, experiment 2 +2.1 dB (BENCHMARKS.md 2026-12-06 evening).
        "input_noise": "matched",
        # A windowed k-space readout, read off the background noise, is undone before training; a box
        # assumed on such data cost 1-3 dB (BENCHMARKS.md). Box wherever the noise is white.
        "acquisition": "auto",
        # The seed spread was that of three points on a still-rising curve; an average of the weights over the
        # last ~100 steps, validated beside the live ones, cut it on 3 of 4 tune variants (BENCHMARKS.md).
        "ema_decay": 0.99,
        # The SR is the mean of the generator over the 8 flips of its inputs: +0.04 to +0.8 dB on every one of
        # the 15 tune-half models tried, at 8x the generation time (seconds at the NR grid; BENCHMARKS.md).
        "flip_ensemble": True,
        # PyTorch's default init leaves the U-Net's deep features set by random biases, so the initial weights
        # decided the result (one seed best on all 8 panel variants); He init: seed spread 0.47 -> 0.18 and
        # 0.33 -> 0.03 dB on the two worst tune variants, mean -0.12 to -0.03 dB (BENCHMARKS.md 2026-11-27).
        "generator_init": "he",
        # Each step's gradient clipped to 5x the median norm of the last 50: the late bursts (up to 1126x) behind
        # the guard's roll-backs never reach Adam's state: no roll-back in 26 runs (without it 2 in 26); the mean
        # moved +0.04 dB on the tune half and -0.03 on the report half (BENCHMARKS.md 2026-12-06 late).
        "grad_clip_relative": 5.0,
        # The generator learns the step from x_{N-1} to the LR; at a zoom of 3.75 x 3.75 x 2.5 (LR to the T1's 1 mm, the
        # default target) x_{N-1} had 14 x 14 x 6 mm voxels and the SR fell behind dTV on 3 of 4 phantoms. Learning at
        # most a doubling per axis: +0.2 to +1.0 dB at 1 mm on all 4 (BENCHMARKS.md 2026-12-06 night 2); zooms up to 2
        # (the panel, experiment 1) are unchanged.
        "max_scale_factor": 2.0,
        # Beyond that learnt zoom on box data, G_N applied where it learnt and brought up by spline beat G_N applied
        # on the target by 0.9-1.0 dB on 2 of 3 tune variants at 1 mm (level on the third); their plain mean was as
        # good or better on all 3 (+0.16 to +1.09 dB over G_N on the target). With another acquisition model G_N
        # refines the dTV through it on the target, and the mean was mixed (-0.48 to +0.51 dB on 3 tune cases): not
        # blended (BENCHMARKS.md 2026-12-07 late morning).
        "learnt_zoom_share": 0.5,
    },
    # Seconds-long runs for tests only.
    "test": {
        "iterations": (3, 4),
        "patch_size": 16,
        "batch_size": 2,
        "generator_channels": (4, 8, 8),
        "critic_channels": 8,
        "critic_layers": 3,
        "log_every": 1,
        "min_size_voxels": 6,
    },
}


def preset(name: str = "fast", **overrides: Any) -> Config:
    """The named preset with ``overrides`` applied."""
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return replace(Config(**PRESETS[name]), **overrides)


def replace(config: Config, **overrides: Any) -> Config:
    """A copy of ``config`` with fields replaced; lists become tuples, unknown names are an error."""
    names = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise InputError(f"unknown configuration field(s): {', '.join(unknown)}")
    cleaned = {key: tuple(value) if isinstance(value, list) else value for key, value in overrides.items()}
    return _validated(dataclasses.replace(config, **cleaned))


def load_config(path: str | Path | None, name: str = "fast", **overrides: Any) -> Config:
    """Preset ``name``, then the TOML file's top-level keys (or its ``[aslsr]`` table), then overrides."""
    config = preset(name)
    if path is not None:
        path = Path(path)
        try:
            table = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise InputError("no such file", path) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise InputError(f"not valid TOML ({error})", path) from None
        table = table.get("aslsr", table)
        if not isinstance(table, dict):
            raise InputError("the [aslsr] entry must be a table of configuration fields", path)
        if "preset" in table:
            config = preset(str(table.pop("preset")))
        try:
            config = replace(config, **table)
        except InputError as error:
            raise InputError(error.problem, path) from None
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})


#: The most pyramid scales (each one trains a generator; more only shrinks the coarsest scale).
MAX_SCALES = 8
_count = checks.integer(1, 10**7)
_weight = checks.number(0.0, 1e6)

#: One check per field of :class:`Config` (type, sign, range); a new field needs one line here.
FIELD_CHECKS: dict[str, checks.Check] = {
    "scale_factor": checks.optional(checks.sequence(checks.number(1.0, 8.0), length=3)),
    "max_scale_factor": checks.optional(checks.number(1.0, 8.0, above=True)),
    "n_scales": checks.optional(checks.integer(1, MAX_SCALES)),
    "max_scales": checks.integer(1, MAX_SCALES),
    "min_size_voxels": checks.integer(4, 4096),
    "generator_channels": checks.sequence(checks.integer(1, 1024), length=3),
    "residual": checks.boolean(),
    "use_t1": checks.boolean(),
    "critic_channels": checks.integer(1, 1024),
    "critic_layers": checks.integer(1, 8),
    "use_adversarial": checks.boolean(),
    "adversarial_weight": _weight,
    "alpha": _weight,
    "use_lowpass": checks.boolean(),
    "beta": _weight,
    "lowpass_sigma_voxels": checks.number(0.0, 100.0, above=True),
    "gp_weight": _weight,
    "gp_every": _count,
    "critic_every": _count,
    "learning_rate": checks.number(0.0, 1.0, above=True),
    "adam_betas": checks.sequence(checks.number(0.0, 0.9999), length=2),
    "lr_schedule": checks.choice("constant", "step", "cosine"),
    "warmup_iterations": checks.integer(0, 10**7),
    "grad_clip_norm": checks.optional(checks.number(0.0, 1e9, above=True)),
    "grad_clip_relative": checks.optional(checks.number(1.0, 1e9, above=True)),
    "validation_fraction": checks.number(0.0, 0.49),
    "validation_block_voxels": checks.integer(1, 64),
    "validate_every": _count,
    "select_best": checks.boolean(),
    "ema_decay": checks.number(0.0, 0.9999),
    "iterations": checks.sequence(checks.integer(0, 10**7), min_length=1, max_length=MAX_SCALES),
    "extend_iterations": checks.integer(0, 10**7),
    "extend_window": checks.integer(1, 10**7),
    "extend_min_fall": checks.number(0.0, 1.0),
    "patch_size": checks.optional(checks.integer(8, 1024)),
    "batch_size": checks.integer(1, 1024),
    "brain_patch_fraction": checks.number(0.0, 1.0),
    "single_scale": checks.boolean(),
    "input_source": checks.choice("real", "generated", "dtv"),
    "input_noise": checks.choice("off", "matched"),
    "input_noise_sd": checks.optional(checks.number(0.0)),
    "upsample_order": checks.choice(0, 1, 3),
    "log_every": _count,
    "checkpoint_every": checks.integer(0, 10**7),
    "consistency": checks.choice("off", "full", "lowpass"),
    "consistency_sigma_voxels": checks.number(0.0, 100.0),
    "consistency_region": checks.choice("brain", "all"),
    "flip_ensemble": checks.boolean(),
    "learnt_zoom_share": checks.number(0.0, 1.0),
    "flip_augment": checks.boolean(),
    "generator_init": checks.choice("pytorch", "he"),  # networks.INITS
    "tile_size": checks.integer(8, 4096),
    "tile_overlap": checks.integer(0, 2048),
    "method": checks.choice("gan", "dtv"),
    "dtv_lambda": checks.number(0.0, 1e6),
    "dtv_lambda_per_noise": checks.number(0.0, 1e6),
    "dtv_gamma": checks.number(0.0, 1.0),
    "dtv_eta": checks.number(0.0, 1e6, above=True),
    "dtv_iterations": checks.integer(1, 10**6),
    "acquisition": checks.choice("box", "gaussian", "kspace", "auto"),
    "acquisition_fwhm_mm": checks.optional(checks.number(0.0, 1000.0)),
    "acquisition_slice_fwhm_mm": checks.optional(checks.number(0.0, 1000.0)),
    "acquisition_window": checks.choice("none", "hann", "tukey"),
    "acquisition_dtv_below_noise": checks.number(0.0, 1.0),
    "acquisition_point_below": checks.number(0.0, 2.0),
    "acquisition_tukey_alpha": checks.number(0.0, 1.0, above=True),
    "device": lambda value: (
        None
        if value in ("auto", "cpu", "cuda")
        or (isinstance(value, str) and value.startswith("cuda:") and value[5:].isdigit())
        else "auto, cpu, cuda or cuda:N"
    ),
    "threads": checks.optional(checks.integer(1, 4096)),
    "channels_last": checks.boolean(),
    "bfloat16": checks.choice("off", "on", "auto"),
    "seed": checks.integer(0, 2**32 - 1),
}

#: Checks across fields, as (problem, test that passes on a good configuration); run when every
#: field passed its own check.
CONSISTENCY_CHECKS: tuple[tuple[str, Callable[[Config], bool]], ...] = (
    ("n_scales must not exceed max_scales", lambda c: c.n_scales is None or c.n_scales <= c.max_scales),
    ("tile_overlap must be less than half of tile_size", lambda c: 2 * c.tile_overlap < c.tile_size),
    (
        "the finest scale needs at least 1 iteration (the last entry of iterations); an untrained generator is refused",
        lambda c: c.iterations[-1] >= 1,
    ),
    (
        "extend_iterations needs lr_schedule 'constant' (a decaying schedule's length would be unknown)",
        lambda c: c.extend_iterations == 0 or c.lr_schedule == "constant",
    ),
    (
        "no loss term is on: alpha, beta (with use_lowpass) or adversarial_weight (with use_adversarial) must be "
        "above 0",
        lambda c: c.alpha > 0 or (c.use_lowpass and c.beta > 0) or (c.use_adversarial and c.adversarial_weight > 0),
    ),
)


def _validated(config: Config) -> Config:
    """``config`` if every field passes :data:`FIELD_CHECKS` and :data:`CONSISTENCY_CHECKS`, else InputError."""
    unchecked = sorted({f.name for f in dataclasses.fields(Config)} - set(FIELD_CHECKS))
    if unchecked:  # a field added without a check: a programming error, caught by the tests
        raise TypeError(f"Config fields without a check in FIELD_CHECKS: {', '.join(unchecked)}")
    problems = checks.problems(config.to_dict(), FIELD_CHECKS)
    if not problems:
        problems = [problem for problem, passes in CONSISTENCY_CHECKS if not passes(config)]
    if problems:
        raise InputError("bad configuration: " + "; ".join(problems))
    return config
