"""Digital brain phantom: a ground-truth CBF map and simulated ASL / M0 / T1 acquisitions.

The anatomy comes from the MNI152 2009 (symmetric) templates bundled with nilearn (grey matter,
white matter and a skull-stripped T1 at 1 mm, RAS; see :mod:`aslsr.phantom_anatomy`); nothing is
downloaded. All arrays are in NIfTI voxel order (i, j, k); every grid's affine maps voxels to world
RAS mm. CBF is in ml/100g/min. The lesion is placed and drawn by :mod:`aslsr.phantom_lesions`.
Variants that depart from this model: :mod:`aslsr.phantom_spec`, :mod:`aslsr.phantom_variants` and
:mod:`aslsr.phantom_variant_simulation`.

Acquisition model: every acquired voxel is the average of the 1 mm truth over the voxel's extent
(partial-volume box average, never point sampling), plus white Gaussian noise whose standard
deviation falls with the square root of the number of averages.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from . import checks
from .errors import InputError
from .grids import Grid, reorient, resample, resample_average, rigid_matrix
from .io import available_memory, save_json, save_volume
from .phantom_anatomy import Anatomy, load_anatomy
from .phantom_lesions import LESION_FACTOR, choose_lesion, distance_map, lesion_factor

UNITS = "ml/100g/min"
ORIENTATIONS = {"RAS": (False, False, False), "LAS": (True, False, False), "LPS": (True, True, False)}
GM_CBF, WM_CBF = 60.0, 20.0  # ml/100g/min
CBF_FIELD_AMPLITUDE = 0.15  # +-15 % smooth multiplicative CBF variation
T1_BIAS_AMPLITUDE = 0.05  # +-5 % bias field on the T1
T1_NOISE_FRACTION = 0.015  # T1 noise sd as a fraction of the WM intensity
M0_WEIGHTS = (0.87, 0.73, 1.0)  # proton density of GM, WM, CSF (x 1000)
M0_NOISE_SD = 10.0
MASK_THRESHOLD = 0.3  # brain mask: voxel-averaged (pGM + pWM) above this
_STREAMS = {
    "cbf_field": 1,
    "lesion": 2,
    "noise_nr": 3,
    "noise_hr": 4,
    "m0_noise": 5,
    "t1_motion": 6,
    "t1_bias": 7,
    "t1_noise": 8,
}

DESCRIPTIONS = {
    "asl_lr": "low-resolution ASL (2x in-plane average of asl_nr), CBF ml/100g/min, LR grid",
    "asl_nr": "normal-resolution ASL: ref_clean + Gaussian noise (1 x averages), NR grid",
    "ref_hr": "high-SNR reference: ref_clean + noise with hr_average_factor x the averages, NR grid",
    "ref_clean": "noise-free truth averaged over each NR voxel, ml/100g/min",
    "truth_1mm": "ground-truth CBF on a 1 mm grid over the NR field of view, ml/100g/min",
    "m0": "M0 / proton-density image (arbitrary units), NR grid",
    "m0_lr": "M0 on the LR grid (2x in-plane average of m0)",
    "mask": "brain mask (uint8) on the NR grid",
    "mask_lr": "brain mask (uint8) on the LR grid",
    "t1w": "T1-weighted image, moved by the rigid transform in t1_motion (affine only)",
    "lesion": "hypoperfused lesion ROI (uint8) on the NR grid",
    "lesion_lr": "hypoperfused lesion ROI (uint8) on the LR grid",
}


@dataclass(frozen=True)
class PhantomConfig:
    """Simulation options. Sizes in voxels, lengths in mm, angles in degrees, noise in ml/100g/min."""

    seed: int = 0
    lesion: bool = False
    noise_sd: float = 6.0
    hr_average_factor: int = 8
    nr_shape: tuple[int, int, int] = (128, 96, 48)
    nr_voxel_size: tuple[float, float, float] = (1.875, 1.875, 2.5)
    max_rotation_deg: float = 5.0
    max_translation_mm: float = 5.0
    t1_orientation: str = "RAS"
    t1_voxel_size: float = 1.0

    def __post_init__(self) -> None:
        for name in ("nr_shape", "nr_voxel_size"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        problems = checks.problems(asdict(self), PHANTOM_CHECKS)
        if problems:
            raise InputError("bad simulation options: " + "; ".join(problems))
        object.__setattr__(self, "nr_voxel_size", tuple(float(v) for v in self.nr_voxel_size))
        needed, available = self.memory_bytes(), available_memory()
        if needed > available:
            raise InputError(
                f"this phantom (NR grid {self.nr_shape}, T1 voxels {self.t1_voxel_size:g} mm) would need "
                f"about {needed / 2**30:.3g} GiB of memory, {available / 2**30:.1f} GiB are available; "
                "choose a smaller --nr-shape or larger voxel sizes"
            )

    def memory_bytes(self) -> float:
        """A generous estimate of the memory (bytes) :func:`simulate` needs for these grids."""
        nr = math.prod(float(n) for n in self.nr_shape)
        fine = math.prod(float(n) * v for n, v in zip(self.nr_shape, self.nr_voxel_size))  # 1 mm truth grid
        t1 = TEMPLATE_VOXELS / float(self.t1_voxel_size) ** 3
        return 64.0 * nr + 16.0 * fine + 32.0 * t1 + 2**30  # plus the 1 mm anatomy template


#: Voxels of the 1 mm template (MNI ICBM152 2009, about 193 x 229 x 193) that the T1 is drawn from.
TEMPLATE_VOXELS = 193 * 229 * 193
#: Each simulation option's type and range (a new option needs one line here).
PHANTOM_CHECKS: dict[str, checks.Check] = {
    "seed": checks.integer(0, 2**32 - 1),
    "lesion": checks.boolean(),
    "noise_sd": checks.number(0.0, 1e4),
    "hr_average_factor": checks.integer(1, 10**6),
    "nr_shape": checks.sequence(checks.integer(2, 4096), length=3),
    "nr_voxel_size": checks.sequence(checks.number(0.0, 100.0, above=True), length=3),
    "max_rotation_deg": checks.number(0.0, 180.0),
    "max_translation_mm": checks.number(0.0, 1000.0),
    "t1_orientation": checks.choice(*ORIENTATIONS),
    "t1_voxel_size": checks.number(0.05, 20.0),
}


def make_grids(config: PhantomConfig, anatomy: Anatomy) -> tuple[Grid, Grid, Grid]:
    """The NR, LR and 1 mm truth grids (RAS-aligned, centred on the brain, x centred on the midline)."""
    shape = np.array(config.nr_shape)
    voxel = np.array(config.nr_voxel_size)
    fine_shape = np.maximum(1, np.round(shape * voxel - 1e-6))
    offset = ((fine_shape - 1) / 2.0) % 1.0
    # align the 1 mm truth grid with the template voxels in y and z (x stays on the midline)
    center = np.round(anatomy.center - offset) + offset
    center[0] = 0.0
    affine = np.diag([*voxel, 1.0])
    affine[:3, 3] = center - voxel * (shape - 1) / 2.0
    nr = Grid(tuple(shape), affine)
    lr = nr.with_voxel_size(voxel * np.array([2.0, 2.0, 1.0]))
    return nr, lr, nr.with_voxel_size(1.0)


def smooth_field(
    rng: np.random.Generator,
    grid: Grid,
    inside: np.ndarray,
    amplitude: float,
    n_waves: int = 4,
    wavelength_mm: tuple[float, float] = (90.0, 240.0),
) -> np.ndarray:
    """A smooth random field on ``grid``: a sum of 3D cosines in world mm, zero-mean and within
    +-``amplitude`` over ``inside``. Returns float32."""
    field = np.zeros(grid.shape, dtype=np.float32)
    for _ in range(n_waves):
        direction = rng.normal(size=3)
        wave = 2 * np.pi / rng.uniform(*wavelength_mm) * direction / np.linalg.norm(direction)
        phase, weight = rng.uniform(0.0, 2 * np.pi), rng.uniform(0.5, 1.0)
        steps = wave @ grid.affine[:3, :3]  # phase change per voxel step along i, j, k
        factors = [np.exp(1j * s * np.arange(n)) for s, n in zip(steps, grid.shape)]
        start = np.exp(1j * (wave @ grid.affine[:3, 3] + phase))
        plane = np.outer(weight * start * factors[0], factors[1])  # cos(a + b + c) = Re(e^ia e^ib e^ic)
        field += plane.real.astype(np.float32)[:, :, None] * factors[2].real.astype(np.float32)
        field -= plane.imag.astype(np.float32)[:, :, None] * factors[2].imag.astype(np.float32)
    field -= field[inside].mean()
    field *= amplitude / np.abs(field[inside]).max()
    return field


def _rng(seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), _STREAMS[stream]])


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill holes in 3D, then slice by slice (axial) for holes opened by a cut field of view."""
    filled = ndimage.binary_fill_holes(mask)
    for k in range(filled.shape[2]):
        filled[:, :, k] = ndimage.binary_fill_holes(filled[:, :, k])
    return filled


def simulate(out_dir: str | os.PathLike, config: PhantomConfig = PhantomConfig()) -> dict:
    """Simulate one case into ``out_dir`` (files written atomically) and return the case dict
    (as in ``case.json``, with absolute paths in ``files[role]["path"]``)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError("the output path exists and is not a folder", out)
    anatomy = load_anatomy()
    mni, seed = anatomy.grid, config.seed
    nr, lr, fine = make_grids(config, anatomy)
    volumes: dict[str, tuple[np.ndarray, Grid, type]] = {}

    # ground truth CBF at 1 mm (template grid), ml/100g/min
    field = smooth_field(_rng(seed, "cbf_field"), mni, anatomy.brain, CBF_FIELD_AMPLITUDE)
    cbf = (GM_CBF * anatomy.gm + WM_CBF * anatomy.wm) * (1.0 + field)
    lesion_info = None
    if config.lesion:
        center, radius = choose_lesion(_rng(seed, "lesion"), anatomy, nr)
        cbf = cbf * lesion_factor(mni, center, radius)
        lesion_info = {"center_mm": center.tolist(), "radius_mm": radius, "cbf_factor": LESION_FACTOR}
    cbf = cbf.astype(np.float32)

    # ASL acquisitions
    ref_clean = resample_average(cbf, mni.affine, nr)
    noise_hr = config.noise_sd / np.sqrt(config.hr_average_factor)
    asl_nr = ref_clean + _noise(_rng(seed, "noise_nr"), nr.shape, config.noise_sd)
    ref_hr = ref_clean + _noise(_rng(seed, "noise_hr"), nr.shape, noise_hr)
    volumes["ref_clean"] = (ref_clean, nr, np.float32)
    volumes["asl_nr"] = (asl_nr, nr, np.float32)
    volumes["ref_hr"] = (ref_hr, nr, np.float32)
    volumes["asl_lr"] = (resample_average(asl_nr, nr.affine, lr), lr, np.float32)
    volumes["truth_1mm"] = (resample_average(cbf, mni.affine, fine), fine, np.float32)

    # masks, M0
    tissue_nr = resample_average(anatomy.gm + anatomy.wm, mni.affine, nr)
    mask = fill_holes(tissue_nr > MASK_THRESHOLD)
    mask_lr = fill_holes(resample_average(tissue_nr, nr.affine, lr) > MASK_THRESHOLD)
    volumes["mask"] = (mask, nr, np.uint8)
    volumes["mask_lr"] = (mask_lr, lr, np.uint8)
    m0 = resample_average(proton_density(anatomy), mni.affine, nr) + resample_average(
        anatomy.scalp, anatomy.scalp_grid.affine, nr
    )
    m0 = np.abs(m0 + _noise(_rng(seed, "m0_noise"), nr.shape, M0_NOISE_SD))
    volumes["m0"] = (m0, nr, np.float32)
    volumes["m0_lr"] = (resample_average(m0, nr.affine, lr), lr, np.float32)

    if lesion_info is not None:
        for role, grid, brain in (("lesion", nr, mask), ("lesion_lr", lr, mask_lr)):
            roi = (distance_map(grid, np.array(lesion_info["center_mm"])) <= lesion_info["radius_mm"]) & brain
            volumes[role] = (roi, grid, np.uint8)

    # T1w: bias field and noise, moved by a rigid transform applied through the affine only
    t1, t1_grid, motion = simulate_t1(config, anatomy)
    volumes["t1w"] = (t1, t1_grid, np.float32)

    case = {
        "seed": seed,
        "lesion": bool(config.lesion),
        "noise_sd_nr": float(config.noise_sd),
        "noise_sd_hr": float(noise_hr),
        "hr_average_factor": int(config.hr_average_factor),
        "units": UNITS,
        "grids": {
            name: {"shape": list(g.shape), "voxel_size_mm": g.voxel_size.tolist()}
            for name, g in (("nr", nr), ("lr", lr), ("truth_1mm", fine))
        },
        "t1_motion": motion,
        "t1": {"orientation": config.t1_orientation, "voxel_size_mm": config.t1_voxel_size},
        "lesion_sphere": lesion_info,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
    }
    return write_case(out, volumes, case)


def proton_density(anatomy: Anatomy) -> np.ndarray:
    """Proton density (M0 without scalp, arbitrary units x 1000) on ``anatomy.grid``."""
    w_gm, w_wm, w_csf = M0_WEIGHTS
    return (1000.0 * (w_gm * anatomy.gm + w_wm * anatomy.wm + w_csf * anatomy.csf)).astype(np.float32)


def write_case(
    out: Path,
    volumes: dict[str, tuple[np.ndarray, Grid, type]],
    case: dict,
    descriptions: dict[str, str] = DESCRIPTIONS,
) -> dict:
    """Write ``volumes`` (role -> (data, grid, dtype), in the order of ``descriptions``) as
    ``ROLE.nii.gz`` and ``case.json`` (``case`` plus a "files" entry) into ``out``; lesion files of an
    earlier case that this one lacks are removed. Returns the case with absolute paths."""
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for role in [r for r in descriptions if r in volumes]:
        data, grid, dtype = volumes[role]
        save_volume(out / f"{role}.nii.gz", data.astype(dtype), grid, dtype=dtype)
        files[role] = {"path": f"{role}.nii.gz", "description": descriptions[role]}
    for stale in out.glob("lesion*.nii.gz"):
        if stale.name[: -len(".nii.gz")] not in volumes:
            stale.unlink()
    case = {**case, "files": files}
    save_json(out / "case.json", case)
    return _resolve(case, out)


def simulate_t1(
    config: PhantomConfig,
    anatomy: Anatomy,
    *,
    bias_amplitude: float = T1_BIAS_AMPLITUDE,
    noise_fraction: float = T1_NOISE_FRACTION,
) -> tuple[np.ndarray, Grid, dict]:
    """The T1w image, its grid (motion and orientation in the affine) and the motion record.
    Bias: smooth multiplicative field within +-``bias_amplitude``; noise sd ``noise_fraction`` x WM.

    Motion: ``t1_affine = M @ template_affine`` where M (world mm -> world mm) maps ground-truth/ASL
    world positions to T1 world positions; the voxel data are never resampled for motion.
    """
    mni, seed = anatomy.grid, config.seed
    bias = smooth_field(_rng(seed, "t1_bias"), mni, anatomy.brain, bias_amplitude)
    t1 = anatomy.t1 * (1.0 + bias)
    grid = mni
    if not np.allclose(mni.voxel_size, config.t1_voxel_size):
        grid = mni.with_voxel_size(config.t1_voxel_size)
        t1 = resample(t1, mni.affine, grid, order=1)
    wm_level = float(np.median(anatomy.t1[anatomy.wm > 0.9]))
    t1 = np.abs(t1 + _noise(_rng(seed, "t1_noise"), grid.shape, noise_fraction * wm_level))
    rng = _rng(seed, "t1_motion")
    rotation = rng.uniform(-config.max_rotation_deg, config.max_rotation_deg, 3)
    translation = rng.uniform(-config.max_translation_mm, config.max_translation_mm, 3)
    center = anatomy.center
    matrix = rigid_matrix(rotation, translation, center=center)
    moved = Grid(grid.shape, matrix @ grid.affine)
    t1, moved = reorient(t1, moved, flips=ORIENTATIONS[config.t1_orientation])
    motion = {
        "rotation_deg": rotation.tolist(),
        "translation_mm": translation.tolist(),
        "center_mm": center.tolist(),
        "matrix": matrix.tolist(),
        "description": "matrix maps ASL / ground-truth world mm to T1 world mm",
    }
    return t1.astype(np.float32), moved, motion


def _noise(rng: np.random.Generator, shape: tuple[int, ...], sd: float) -> np.ndarray:
    return (sd * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)


def _resolve(case: dict, out: Path) -> dict:
    case = json.loads(json.dumps(case))
    for entry in case["files"].values():
        entry["path"] = str((out / entry["path"]).resolve())
    return case


def load_case(out_dir: str | os.PathLike) -> dict:
    """Read ``out_dir/case.json`` with absolute file paths; raises InputError if it or a file is missing."""
    out = Path(out_dir)
    path = out / "case.json"
    if not path.is_file():
        raise InputError("no case.json here (not a simulated case?)", out)
    try:
        case = json.loads(path.read_text())
        dict(case["files"])
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(f"unreadable case file ({type(error).__name__}: {error})", path) from None
    case = _resolve(case, out)
    for role, entry in case["files"].items():
        if not Path(entry["path"]).is_file():
            raise InputError(f"the {role} file listed in case.json is missing", entry["path"])
    return case
