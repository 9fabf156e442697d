"""The phantom variant specification: every axis along which a variant departs from the default phantom.

The default phantom (:func:`aslsr.phantom.simulate`) is close to an "inverse crime": its CBF is a
linear function of the GM/WM maps that also make its T1, and its LR image is the box average a
method may assume. A :class:`PhantomSpec` departs from it along independent axes:

- CBF: a smooth log-normal field inside tissue (``tissue_field_sd``, correlation ``tissue_field_mm``),
  finer GM heterogeneity, T1-invisible hypo-/hyper-perfused spherical lesions (``lesions``: one CBF
  factor per lesion, ROI files written), and vessel-like bright tubes and spots (arterial transit
  signal, CBF added in sulcal CSF/GM);
- anatomy: the templates pulled through a smooth random deformation (``warp_mm``), T1 and CBF alike;
- T1 contrast: bias-field amplitude, noise, an intensity power law (``t1_gamma``);
- acquisition: the PSF of :mod:`aslsr.phantom_psf` (box, Gaussian + slice profile, k-space truncation
  with a Tukey window), noise level, the ASL voxel layout (RAS, LAS, LPS, LPI) and an oblique grid.

This module holds the spec, its checks and the seeding of its random streams; the named variants
are in :mod:`aslsr.phantom_variants`, the simulation in :mod:`aslsr.phantom_variant_simulation`.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass, field

from . import checks, phantom
from .errors import InputError
from .phantom_psf import PSF

ASL_ORIENTATIONS = {
    "RAS": (False, False, False),
    "LAS": (True, False, False),
    "LPS": (True, True, False),
    "LPI": (True, True, True),
}


#: Type and range of each option only variants have (the shared ones are PhantomConfig's checks).
VARIANT_CHECKS: dict[str, checks.Check] = {
    "tissue_field_sd": checks.number(0.0, 5.0),
    "tissue_field_mm": checks.number(0.0, 500.0, above=True),
    "gm_heterogeneity_sd": checks.number(0.0, 5.0),
    "gm_heterogeneity_mm": checks.number(0.0, 500.0, above=True),
    "lesions": checks.sequence(checks.number(0.0, 100.0, above=True), min_length=0, max_length=20),
    "vessel_tubes": checks.integer(0, 1000),
    "vessel_spots": checks.integer(0, 10000),
    "warp_mm": checks.number(0.0, 50.0),
    "warp_length_mm": checks.number(0.0, 500.0, above=True),
    "t1_bias": checks.number(0.0, 10.0),
    "t1_noise": checks.number(0.0, 10.0),
    "t1_gamma": checks.number(0.0, 10.0, above=True),
    "template_resolution_mm": checks.integer(1, 10),
    "lr_factor": checks.sequence(checks.integer(1, 16), length=3),
    "fine_subdivision": checks.integer(1, 8),
    "fine_margin": checks.integer(0, 64),
    "asl_rotation_deg": checks.sequence(checks.number(-180.0, 180.0), length=3),
}


@dataclass(frozen=True)
class PhantomSpec:
    """One phantom variant. Lengths in mm, CBF in ml/100g/min, angles in degrees, fields as the
    standard deviation of log CBF (0.2 ~ +-20 %)."""

    name: str = "custom"
    description: str = ""
    half: str = ""  # "tune" | "report" | "" (not in the panel)
    seed: int = 0
    noise_sd: float = 6.0  # white-noise sd of an NR voxel (LR: scaled by the voxel volumes)
    noise_draw: int = 0  # > 0: another draw of the ASL noise, all else (truth, anatomy, lesions, T1) the same
    hr_average_factor: int = 8
    nr_shape: tuple[int, int, int] = (128, 96, 48)
    nr_voxel_size: tuple[float, float, float] = (1.875, 1.875, 2.5)
    lr_factor: tuple[int, int, int] = (2, 2, 1)
    template_resolution_mm: int = 1
    tissue_field_sd: float = 0.0
    tissue_field_mm: float = 12.0
    gm_heterogeneity_sd: float = 0.0
    gm_heterogeneity_mm: float = 4.0
    lesions: tuple[float, ...] = ()  # CBF factor inside each lesion (< 1 hypo, > 1 hyper)
    vessel_tubes: int = 0
    vessel_spots: int = 0
    warp_mm: float = 0.0  # largest displacement of the anatomy
    warp_length_mm: float = 15.0
    t1_bias: float = phantom.T1_BIAS_AMPLITUDE
    t1_noise: float = phantom.T1_NOISE_FRACTION
    t1_gamma: float = 1.0
    t1_orientation: str = "RAS"
    t1_voxel_size: float = 1.0
    max_rotation_deg: float = 5.0
    max_translation_mm: float = 5.0
    psf: PSF = field(default_factory=PSF)
    fine_subdivision: int = 2
    fine_margin: int = 8  # NR voxels of truth beyond the NR field of view, every side
    asl_orientation: str = "RAS"
    asl_rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)  # oblique ASL grid (about x, y, z)

    def __post_init__(self) -> None:
        found = checks.problems({name: getattr(self, name) for name in VARIANT_CHECKS}, VARIANT_CHECKS)
        if found:
            raise InputError("bad phantom variant options: " + "; ".join(found))
        for name in ("nr_shape", "lr_factor"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        for name in ("nr_voxel_size", "asl_rotation_deg"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        object.__setattr__(self, "lesions", tuple(float(v) for v in self.lesions))
        for name in ("seed", "noise_draw"):
            value = getattr(self, name)
            if int(value) != value or value < 0:
                raise InputError(f"the {name.replace('_', ' ')} must be a non-negative integer, got {value}")
        self.phantom_config()  # validates the fields it shares with PhantomConfig
        if self.asl_orientation not in ASL_ORIENTATIONS:
            raise InputError(
                f"the ASL orientation must be one of {', '.join(ASL_ORIENTATIONS)}, got {self.asl_orientation!r}"
            )
        if self.half not in ("", "tune", "report"):
            raise InputError(f"half must be 'tune', 'report' or empty, got {self.half!r}")
        if any(not f > 0 for f in self.lesions):
            raise InputError(f"lesion CBF factors must be positive, got {self.lesions}")
        if (
            min(
                self.tissue_field_sd,
                self.gm_heterogeneity_sd,
                self.warp_mm,
                self.vessel_tubes,
                self.vessel_spots,
                self.t1_bias,
                self.t1_noise,
            )
            < 0
            or not self.t1_gamma > 0
        ):
            raise InputError("field sds, warp, vessel counts and T1 bias/noise must be >= 0, t1_gamma > 0")
        if len(self.lr_factor) != 3 or min(self.lr_factor) < 1:
            raise InputError(f"the LR factor needs 3 positive integers, got {self.lr_factor}")
        if any(self.fine_margin % f for f in self.lr_factor):
            raise InputError(f"the fine margin ({self.fine_margin}) must be a multiple of the LR factor")

    @property
    def stream_seed(self) -> int:
        """The seed of every random stream: the seed and the variant name together."""
        return int(self.seed) * 1_000_003 + zlib.crc32(self.name.encode()) % 1_000_003

    def phantom_config(self) -> phantom.PhantomConfig:
        """The default phantom's config for the fields both share (grids, noise, T1 motion)."""
        return phantom.PhantomConfig(
            seed=self.stream_seed,
            noise_sd=self.noise_sd,
            hr_average_factor=self.hr_average_factor,
            nr_shape=self.nr_shape,
            nr_voxel_size=self.nr_voxel_size,
            max_rotation_deg=self.max_rotation_deg,
            max_translation_mm=self.max_translation_mm,
            t1_orientation=self.t1_orientation,
            t1_voxel_size=self.t1_voxel_size,
        )

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, values: dict) -> PhantomSpec:
        """The spec that :meth:`to_dict` wrote (as in a simulated case's ``phantom.json``).

        Examples
        --------
        >>> spec = PhantomSpec(name="x", lesions=(0.5,), psf=PSF(kind="kspace"))
        >>> PhantomSpec.from_dict(spec.to_dict()) == spec
        True
        """
        return cls(**{**values, "psf": PSF(**values["psf"])})
