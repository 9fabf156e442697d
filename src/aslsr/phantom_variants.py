"""The named phantom variants (:data:`VARIANTS`), the panel's "tune" and "report" halves.

Each is a :class:`aslsr.phantom_spec.PhantomSpec`; :func:`variant` gives one with fields
overridden. :func:`aslsr.phantom_variant_simulation.simulate_variant` writes one to disk.
"""

from __future__ import annotations

from dataclasses import replace

from .errors import InputError
from .phantom_psf import PSF
from .phantom_spec import PhantomSpec


def _variant(name: str, half: str, description: str, **fields) -> PhantomSpec:
    return PhantomSpec(name=name, half=half, description=description, **fields)


HYPO, HYPER = 0.4, 1.6
#: The panel: named variants, each in the "tune" half (choose settings on these) or the "report"
#: half (only report on these). Both halves depart along every axis, with other values.
VARIANTS: dict[str, PhantomSpec] = {
    v.name: v
    for v in (
        _variant(
            "fields-box",
            "tune",
            "smooth CBF field inside tissue and GM heterogeneity; warped anatomy; "
            "box PSF (the historical acquisition); T1 bias 10 %",
            tissue_field_sd=0.25,
            gm_heterogeneity_sd=0.2,
            warp_mm=5.0,
            t1_bias=0.10,
            t1_noise=0.02,
        ),
        _variant(
            "hyper-gauss-las",
            "tune",
            "hyper-perfused lesion, vessels; 2D multi-slice Gaussian PSF "
            "(FWHM 1.2 LR voxels) with a soft slice profile; ASL stored LAS; noise 8",
            lesions=(HYPER,),
            vessel_tubes=4,
            vessel_spots=4,
            warp_mm=4.0,
            noise_sd=8.0,
            psf=PSF(kind="gaussian", fwhm_voxels=1.2, slice_thickness_voxels=1.2, slice_edge_voxels=0.4),
            asl_orientation="LAS",
        ),
        _variant(
            "kspace-mild",
            "tune",
            "3D k-space truncation with a mild Tukey window (0.25); smooth CBF "
            "field; noise 4; T1 stored LPS at 1.2 mm with 15 % bias",
            tissue_field_sd=0.2,
            warp_mm=5.0,
            noise_sd=4.0,
            psf=PSF(kind="kspace", window=0.25),
            t1_orientation="LPS",
            t1_voxel_size=1.2,
            t1_bias=0.15,
        ),
        _variant(
            "oblique-vessels",
            "tune",
            "oblique ASL grid (10 deg about x, 6 deg about z), box PSF; vessels "
            "and GM heterogeneity; noise 10; T1 contrast gamma 1.3",
            asl_rotation_deg=(10.0, 0.0, 6.0),
            vessel_tubes=6,
            vessel_spots=6,
            gm_heterogeneity_sd=0.25,
            noise_sd=10.0,
            warp_mm=3.0,
            t1_gamma=1.3,
        ),
        _variant(
            "hypo-box",
            "report",
            "hypo-perfused lesion (x0.4) in a smooth CBF field inside tissue; box PSF; warped anatomy",
            lesions=(HYPO,),
            tissue_field_sd=0.25,
            warp_mm=5.0,
        ),
        _variant(
            "lesions-kspace-lpi",
            "report",
            "a hypo- (x0.4) and a hyper-perfused (x1.7) lesion, vessels, "
            "smooth field; 3D k-space truncation with a Tukey window 0.5; ASL stored LPI; T1 bias 20 %, "
            "noise 3 %",
            lesions=(HYPO, 1.7),
            vessel_tubes=3,
            vessel_spots=3,
            tissue_field_sd=0.2,
            warp_mm=6.0,
            psf=PSF(kind="kspace", window=0.5),
            asl_orientation="LPI",
            t1_bias=0.2,
            t1_noise=0.03,
        ),
        _variant(
            "oblique-gauss-hyper",
            "report",
            "oblique ASL grid (-8, 12, -10 deg); Gaussian PSF (FWHM 1.4 "
            "LR voxels) with thick slices (1.5 spacings); hyper-perfused lesion (x1.5); GM heterogeneity",
            asl_rotation_deg=(-8.0, 12.0, -10.0),
            lesions=(1.5,),
            gm_heterogeneity_sd=0.2,
            warp_mm=4.0,
            psf=PSF(kind="gaussian", fwhm_voxels=1.4, slice_thickness_voxels=1.5, slice_edge_voxels=0.3),
        ),
        _variant(
            "lowsnr-kspace-las",
            "report",
            "low SNR (noise 12); 3D k-space truncation (Tukey 0.3); ASL "
            "stored LAS; hypo-perfused lesion (x0.5), vessels, smooth field; T1 LAS, motion up to 8 deg/8 mm",
            noise_sd=12.0,
            psf=PSF(kind="kspace", window=0.3),
            asl_orientation="LAS",
            lesions=(0.5,),
            vessel_tubes=3,
            vessel_spots=3,
            tissue_field_sd=0.2,
            warp_mm=6.0,
            t1_orientation="LAS",
            max_rotation_deg=8.0,
            max_translation_mm=8.0,
        ),
    )
}


def variant(name: str, **overrides) -> PhantomSpec:
    """The named variant with ``overrides`` (PhantomSpec fields) applied."""
    if name not in VARIANTS:
        raise InputError(f"unknown phantom variant {name!r}; choose one of {', '.join(VARIANTS)}")
    return replace(VARIANTS[name], **overrides)
