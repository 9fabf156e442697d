"""Simulating a phantom variant (a :class:`aslsr.phantom_spec.PhantomSpec`) into a case folder.

The noise-free reference ``ref_clean`` is, for every variant, the truth averaged over each NR voxel
(what an SR onto the NR grid should recover); the acquisitions (``asl_lr``, ``asl_nr``, ``m0``,
``m0_lr`` and their ``_clean`` versions) use the variant's PSF. Every random draw has its own stream
seeded by (seed, variant name), so removing a lesion leaves everything else unchanged. Lesions are
placed where the lesion-free CBF is most alike in the sphere and its mirror region.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
from nibabel.orientations import aff2axcodes

from . import phantom, phantom_fields
from .errors import InputError
from .grids import Grid, reorient, resample_average, rigid_matrix, shifted_affine
from .io import save_json
from .phantom_anatomy import T1_TEMPLATE_SCALE, Anatomy, derive_anatomy, load_anatomy
from .phantom_lesions import choose_lesions, distance_map, lesion_factor, mirror_point
from .phantom_psf import acquire, acquisition_grid, fine_grid
from .phantom_spec import ASL_ORIENTATIONS, PhantomSpec

#: Bumped whenever the same spec and seed would simulate different data (the panel reuses cases only
#: when both agree).
PHANTOM_VERSION = 2
_STREAMS = {
    "global_field": 100,
    "warp": 101,
    "tissue_field": 102,
    "gm_field": 103,
    "lesions": 104,
    "vessels": 105,
    "noise_lr": 106,
    "noise_nr": 107,
    "noise_hr": 108,
    "m0_lr": 109,
    "m0_nr": 110,
}
DESCRIPTIONS = {
    "asl_lr": "LR ASL: the truth acquired with the variant's PSF on the LR grid + noise, ml/100g/min",
    "asl_lr_clean": "the same LR acquisition without noise",
    "asl_nr": "NR ASL: the truth acquired with the variant's PSF on the NR grid + noise",
    "asl_nr_clean": "the same NR acquisition without noise",
    "ref_hr": "high-SNR reference: ref_clean + noise with hr_average_factor x the averages, NR grid",
    "ref_clean": "noise-free reference: the truth averaged over each NR voxel (score SR against this)",
    "truth_1mm": "ground-truth CBF on a grid of the template resolution over the NR field of view",
    "m0": "M0 acquired with the variant's PSF on the NR grid + noise",
    "m0_lr": "M0 acquired on the LR grid",
    "mask": "brain mask (uint8) on the NR grid",
    "mask_lr": "brain mask (uint8) on the LR grid",
    "t1w": "T1-weighted image (warped anatomy, bias, noise), moved by the rigid transform in t1_motion",
    "t1w_aligned": "the same T1w without the rigid motion (its affine in the ASL's world)",
}


#: The streams of the ASL's noise, which ``spec.noise_draw`` > 0 draws anew.
_ASL_NOISE = ("noise_lr", "noise_nr", "noise_hr")


def _rng(spec: PhantomSpec, stream: str) -> np.random.Generator:
    if spec.noise_draw and stream in _ASL_NOISE:
        return np.random.default_rng([spec.stream_seed, _STREAMS[stream], spec.noise_draw])
    return np.random.default_rng([spec.stream_seed, _STREAMS[stream]])


def warp_anatomy(anatomy: Anatomy, spec: PhantomSpec) -> tuple[Anatomy, dict]:
    """The anatomy pulled through a smooth random deformation of at most ``spec.warp_mm`` (computed
    inside the bounding box of the head plus a margin), and a record of the warp."""
    if spec.warp_mm <= 0:
        return anatomy, {"max_displacement_mm": 0.0}
    grid = anatomy.grid
    occupied = np.argwhere((anatomy.t1 > 0) | (anatomy.gm + anatomy.wm > 0))
    margin = int(np.ceil(spec.warp_mm / grid.voxel_size.min())) + 2
    lo = np.maximum(occupied.min(0) - margin, 0)
    hi = np.minimum(occupied.max(0) + margin + 1, grid.shape)
    box = Grid(tuple(hi - lo), shifted_affine(grid.affine, lo))
    u = phantom_fields.random_displacement(_rng(spec, "warp"), box, spec.warp_mm, spec.warp_length_mm)
    jacobian = phantom_fields.jacobian_determinant(u, box, stride=2)
    block = tuple(slice(a, b) for a, b in zip(lo, hi))
    warped = []
    for array in (anatomy.t1, anatomy.gm, anatomy.wm):
        full = np.zeros(grid.shape, dtype=np.float32)
        full[block] = phantom_fields.warp(array[block], box, u)
        warped.append(full)
    record = {
        "max_displacement_mm": float(np.sqrt((u**2).sum(axis=0)).max()),
        "correlation_length_mm": spec.warp_length_mm,
        "jacobian_min": float(jacobian.min()),
        "jacobian_max": float(jacobian.max()),
    }
    return derive_anatomy(grid, *warped), record


def _cbf(anatomy: Anatomy, spec: PhantomSpec, nr: Grid) -> tuple[np.ndarray, list[dict], list[dict]]:
    """Ground-truth CBF on the template grid, the lesions (centre, radius, factor) and the vessels."""
    grid = anatomy.grid
    global_field = phantom.smooth_field(_rng(spec, "global_field"), grid, anatomy.brain, phantom.CBF_FIELD_AMPLITUDE)
    gm_cbf = phantom.GM_CBF * anatomy.gm
    if spec.gm_heterogeneity_sd > 0:
        gm_field = phantom_fields.random_field(_rng(spec, "gm_field"), grid, spec.gm_heterogeneity_mm)
        gm_cbf = gm_cbf * np.exp(spec.gm_heterogeneity_sd * gm_field)
    cbf = (gm_cbf + phantom.WM_CBF * anatomy.wm) * (1.0 + global_field)
    if spec.tissue_field_sd > 0:
        tissue_field = phantom_fields.random_field(_rng(spec, "tissue_field"), grid, spec.tissue_field_mm)
        cbf = cbf * np.exp(spec.tissue_field_sd * tissue_field)
    lesions = choose_lesions(_rng(spec, "lesions"), anatomy, nr, spec.lesions, cbf)
    for lesion in lesions:
        cbf = cbf * lesion_factor(
            grid, np.array(lesion["center_mm"]), lesion["radius_mm"], factor_inside=lesion["cbf_factor"]
        )
    records: list[dict] = []
    if spec.vessel_tubes or spec.vessel_spots:
        sulci = (anatomy.csf > 0.3) & (anatomy.gm > 0.1) & anatomy.brain
        seeds = grid.index_to_world(np.argwhere(sulci).astype(np.float64))
        index = nr.world_to_index(seeds)
        seeds = seeds[np.all((index >= 2) & (index <= np.array(nr.shape) - 3), axis=1)]
        bright, records = phantom_fields.vessels(
            _rng(spec, "vessels"), grid, seeds, spec.vessel_tubes, spec.vessel_spots
        )
        for lesion in lesions:  # vessels stay out of the lesions and their mirror regions
            for center in (np.array(lesion["center_mm"]), mirror_point(nr, lesion["center_mm"])):
                bright[distance_map(grid, center) <= lesion["radius_mm"] + 4.0] = 0.0
        cbf = cbf + bright * anatomy.brain
    return cbf.astype(np.float32), lesions, records


def make_grids(spec: PhantomSpec, anatomy: Anatomy) -> dict[str, Grid]:
    """NR (centred on the brain, rotated for an oblique ASL), LR, fine (PSF) and truth grids, in RAS
    voxel order; the stored orientation is applied to the arrays at the end."""
    nr, _, _ = phantom.make_grids(spec.phantom_config(), anatomy)
    if any(spec.asl_rotation_deg):
        rotation = rigid_matrix(spec.asl_rotation_deg, (0.0, 0.0, 0.0), center=nr.center)
        nr = Grid(nr.shape, rotation @ nr.affine)
    return {
        "nr": nr,
        "lr": acquisition_grid(nr, spec.lr_factor, spec.psf),
        "fine": fine_grid(nr, spec.fine_subdivision, spec.psf, margin=spec.fine_margin),
        "truth": nr.with_voxel_size(float(anatomy.grid.voxel_size[0])),
    }


def simulate_variant(out_dir: str | os.PathLike, spec: PhantomSpec) -> dict:
    """Simulate ``spec`` into ``out_dir``: the files of :data:`DESCRIPTIONS`, ``lesion.nii.gz`` (and
    ``lesion_2`` ...; ``_lr`` on the LR grid) per lesion, ``case.json`` (as the default phantom's,
    readable by :func:`aslsr.phantom.load_case`) and ``phantom.json`` (the variant and what was
    drawn). Returns the case dict with absolute paths."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError("the output path exists and is not a folder", out)
    anatomy, warp_record = warp_anatomy(load_anatomy(spec.template_resolution_mm), spec)
    mni, config, psf = anatomy.grid, spec.phantom_config(), spec.psf
    grids = make_grids(spec, anatomy)
    nr, lr, fine = grids["nr"], grids["lr"], grids["fine"]
    cbf, lesions, vessel_records = _cbf(anatomy, spec, nr)
    volumes: dict[str, tuple[np.ndarray, Grid, type]] = {}

    ref_clean = resample_average(cbf, mni.affine, nr)
    noise_hr = spec.noise_sd / np.sqrt(spec.hr_average_factor)
    volumes["ref_clean"] = (ref_clean, nr, np.float32)
    hr_noise = noise_hr * _rng(spec, "noise_hr").standard_normal(nr.shape)
    volumes["ref_hr"] = (ref_clean + hr_noise, nr, np.float32)
    volumes["truth_1mm"] = (resample_average(cbf, mni.affine, grids["truth"]), grids["truth"], np.float32)
    noise_lr = spec.noise_sd * np.sqrt(np.prod(nr.voxel_size) / np.prod(lr.voxel_size))
    cbf_fine = resample_average(cbf, mni.affine, fine)
    pd_fine = resample_average(phantom.proton_density(anatomy), mni.affine, fine) + resample_average(
        anatomy.scalp, anatomy.scalp_grid.affine, fine
    )
    for role, grid, sd in (("asl_lr", lr, noise_lr), ("asl_nr", nr, spec.noise_sd)):
        volumes[f"{role}_clean"] = (acquire(cbf_fine, fine, grid, psf), grid, np.float32)
        noise_rng = _rng(spec, "noise_lr" if grid is lr else "noise_nr")
        volumes[role] = (acquire(cbf_fine, fine, grid, psf, noise_sd=sd, rng=noise_rng), grid, np.float32)
    m0_sd = phantom.M0_NOISE_SD * np.sqrt(np.prod(nr.voxel_size) / np.prod(lr.voxel_size))
    for role, grid, sd in (("m0", nr, phantom.M0_NOISE_SD), ("m0_lr", lr, m0_sd)):
        m0 = acquire(pd_fine, fine, grid, psf, noise_sd=sd, rng=_rng(spec, "m0_nr" if grid is nr else "m0_lr"))
        volumes[role] = (np.abs(m0), grid, np.float32)

    tissue = anatomy.gm + anatomy.wm
    masks = {}
    for role, grid in (("mask", nr), ("mask_lr", lr)):
        masks[role] = phantom.fill_holes(resample_average(tissue, mni.affine, grid) > phantom.MASK_THRESHOLD)
        volumes[role] = (masks[role], grid, np.uint8)
    for number, lesion in enumerate(lesions, start=1):
        stem = "lesion" if number == 1 else f"lesion_{number}"
        lesion["roles"] = [stem, f"{stem}_lr"]
        for role, grid, mask in ((stem, nr, masks["mask"]), (f"{stem}_lr", lr, masks["mask_lr"])):
            roi = (distance_map(grid, np.array(lesion["center_mm"])) <= lesion["radius_mm"]) & mask
            volumes[role] = (roi, grid, np.uint8)

    t1_anatomy = anatomy
    if spec.t1_gamma != 1.0:
        scale = T1_TEMPLATE_SCALE
        t1_anatomy = replace(anatomy, t1=(scale * (np.clip(anatomy.t1, 0, None) / scale) ** spec.t1_gamma))
    t1, t1_grid, motion = phantom.simulate_t1(
        config, t1_anatomy, bias_amplitude=spec.t1_bias, noise_fraction=spec.t1_noise
    )
    volumes["t1w"] = (t1, t1_grid, np.float32)
    aligned = Grid(t1_grid.shape, np.linalg.inv(np.array(motion["matrix"])) @ t1_grid.affine)
    volumes["t1w_aligned"] = (t1, aligned, np.float32)

    flips = ASL_ORIENTATIONS[spec.asl_orientation]
    for role, (data, grid, dtype) in list(volumes.items()):
        if role not in ("t1w", "t1w_aligned") and any(flips):
            volumes[role] = (*reorient(data, grid, flips=flips), dtype)
    descriptions = {
        **DESCRIPTIONS,
        **{
            role: f"{lesion['kind']} lesion ROI (uint8), CBF x{lesion['cbf_factor']:g}, "
            f"{'LR' if role.endswith('_lr') else 'NR'} grid"
            for lesion in lesions
            for role in lesion["roles"]
        },
    }
    stored = {
        name: volumes[role][1] for name, role in (("nr", "ref_clean"), ("lr", "asl_lr"), ("truth_1mm", "truth_1mm"))
    }
    info = {
        "phantom_version": PHANTOM_VERSION,
        "variant": spec.name,
        "half": spec.half,
        "description": spec.description,
        "seed": spec.seed,
        "units": phantom.UNITS,
        "spec": spec.to_dict(),
        "warp": warp_record,
        "lesions": lesions,
        "vessels": vessel_records,
        "noise_sd": {"nr": spec.noise_sd, "lr_before_window": float(noise_lr), "hr": float(noise_hr)},
        "grids": {
            name: {
                "shape": list(g.shape),
                "voxel_size_mm": g.voxel_size.tolist(),
                "axes": "".join(aff2axcodes(g.affine)),
                "affine": g.affine.tolist(),
            }
            for name, g in stored.items()
        },
        "t1_motion": motion,
    }
    case = {
        "seed": spec.seed,
        "variant": spec.name,
        "lesion": bool(lesions),
        "noise_sd_nr": float(spec.noise_sd),
        "noise_sd_hr": float(noise_hr),
        "hr_average_factor": int(spec.hr_average_factor),
        "units": phantom.UNITS,
        "grids": {k: {key: v[key] for key in ("shape", "voxel_size_mm")} for k, v in info["grids"].items()},
        "t1_motion": motion,
        "t1": {"orientation": spec.t1_orientation, "voxel_size_mm": spec.t1_voxel_size},
        "lesion_sphere": lesions[0] if lesions else None,
        "config": spec.to_dict(),
    }
    result = phantom.write_case(out, volumes, case, descriptions)
    save_json(
        out / "phantom.json",
        {**info, "files": {role: Path(entry["path"]).name for role, entry in result["files"].items()}},
    )
    return result
