"""``aslsr simulate --bids``: a raw BIDS dataset of phantom subjects (4D pCASL series + T1w).

Each subject is one :func:`phantom.simulate` case (seed ``config.seed + i``) turned into BIDS: the
ASL series lies on the phantom's LR grid (``asl_lr``) and holds the M0 (the phantom's ``m0_lr``)
followed by control/label pairs whose difference is the deltaM that :mod:`quantify` turns back into
the phantom's noise-free LR CBF. The per-volume noise makes the mean of the pairs as noisy as the
phantom's ``asl_lr`` (in CBF units). The phantom's references go to ``derivatives/phantom``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from . import phantom
from ._version import __version__
from .bids import BIDS_VERSION, SubjectInputs, check_label, derivative_path, resolution_label
from .errors import InputError
from .grids import Grid, resample_average
from .io import atomic_path, load_volume, save_json, save_volume, to_nifti
from .quantify import deltam_from_cbf, parameters_from_sidecar

BACKGROUND_SUPPRESSION = 0.1  # control signal as a fraction of M0 (static tissue left after suppression)
REPETITION_TIME_S = 4.0  # RepetitionTimePreparation of every volume, M0 included
NOISE_STREAM = 101  # random stream of the control/label noise (phantom streams are < 100)
NAME = "aslsr synthetic pCASL phantom"
LICENSE = (
    "PDDL; derived from the MNI ICBM152 2009 templates, Copyright (C) 1993-2009 Louis Collins, "
    "McConnell Brain Imaging Centre, Montreal Neurological Institute, McGill University"
)
TEMPLATE_REFERENCE = (
    "Fonov VS, Evans AC, Botteron K, Almli CR, McKinstry RC, Collins DL. Unbiased average "
    "age-appropriate atlases for pediatric studies. NeuroImage 54:313-327, 2011"
)
README = """# aslsr synthetic pCASL phantom

Synthetic arterial spin labeling data written by `aslsr simulate --bids`, for testing.
Every subject is a digital brain phantom built from the MNI ICBM152 2009 templates:
a 4D pCASL series (M0 first, then control/label pairs) with a known cerebral blood flow,
and a T1-weighted image moved by a random rigid transform.
The ground truth (CBF in ml/100g/min, brain masks) is in derivatives/phantom.
These are not images of any person.
"""
T1W_SIDECAR = {
    "MagneticFieldStrength": 3,
    "MRAcquisitionType": "3D",
    "RepetitionTime": 2.3,
    "EchoTime": 0.00298,
    "InversionTime": 0.9,
    "FlipAngle": 9,
    "SeriesDescription": "synthetic T1w (MNI152 template, bias field, noise, rigid motion)",
}


def asl_sidecar(n_pairs: int, voxel_size_mm) -> dict:
    """The pCASL series' BIDS sidecar (times in seconds)."""
    return {
        "Manufacturer": "none (synthetic data)",
        "PulseSequenceDetails": "aslsr digital phantom, no scanner",
        "MagneticFieldStrength": 3,
        "MRAcquisitionType": "3D",
        "PulseSequenceType": "3D_GRASE",
        "EchoTime": 0.0132,
        "FlipAngle": 90,
        "RepetitionTimePreparation": REPETITION_TIME_S,
        "ArterialSpinLabelingType": "PCASL",
        "PCASLType": "balanced",
        "PostLabelingDelay": 1.8,
        "LabelingDuration": 1.8,
        "LabelingEfficiency": 0.85,
        "M0Type": "Included",
        "TotalAcquiredPairs": int(n_pairs),
        "BackgroundSuppression": True,
        "BackgroundSuppressionNumberPulses": 2,
        "BackgroundSuppressionPulseTime": [2.2, 3.2],
        "VascularCrushing": False,
        "LabelingLocationDescription": "synthetic: labeling plane below the brain",
        "AcquisitionVoxelSize": [round(float(v), 4) for v in voxel_size_mm],
        "SeriesDescription": "synthetic pCASL (aslsr phantom), M0 then control/label pairs",
    }


def simulate_bids(
    out_dir: str | os.PathLike,
    *,
    n_subjects: int = 2,
    config: phantom.PhantomConfig = phantom.PhantomConfig(),
    n_pairs: int = 4,
) -> dict:
    """Write a raw BIDS dataset of ``n_subjects`` phantom subjects (sub-01 has ``config.seed``, sub-02
    the next seed, ...) with ``n_pairs`` control/label pairs each. Returns ``{"subjects": [labels],
    "files": [paths relative to out_dir]}``."""
    if int(n_subjects) != n_subjects or n_subjects < 1:
        raise InputError(f"the number of subjects must be a positive integer, got {n_subjects}")
    if int(n_pairs) != n_pairs or n_pairs < 1:
        raise InputError(f"the number of control/label pairs must be a positive integer, got {n_pairs}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError("the output path exists and is not a folder", out)
    width = max(2, len(str(int(n_subjects))))
    labels = [f"{i + 1:0{width}d}" for i in range(int(n_subjects))]
    stale = sorted(p.name for p in out.glob("sub-*") if p.name[4:] not in labels) if out.is_dir() else []
    if stale:
        raise InputError(
            f"holds other subjects ({', '.join(stale)}) that would make the dataset inconsistent; use an empty folder",
            out,
        )
    files: list[Path] = []
    rows = []
    for index, label in enumerate(labels):
        subject_config = replace(config, seed=config.seed + index)
        files += write_subject(out, label, subject_config, n_pairs=int(n_pairs))
        rows.append(f"sub-{label}\t{subject_config.seed}\t{'yes' if config.lesion else 'no'}")
    files += _write_dataset_files(out, rows)
    return {"subjects": labels, "files": sorted(p.relative_to(out).as_posix() for p in files)}


def write_subject(out: Path, label: str, config: phantom.PhantomConfig, *, n_pairs: int) -> list[Path]:
    """Simulate one phantom case and write it as ``sub-<label>`` (raw and derivatives)."""
    check_label(label, "subject label")
    with tempfile.TemporaryDirectory(prefix="aslsr-phantom-") as temporary:
        case = phantom.simulate(temporary, config)
        images = {role: load_volume(entry["path"], allow_constant=True) for role, entry in case["files"].items()}
    subject = out / f"sub-{label}"
    stem = f"sub-{label}"
    lr = images["m0_lr"].grid
    files = [
        save_volume(subject / "anat" / f"{stem}_T1w.nii.gz", images["t1w"].data, images["t1w"].grid),
        save_json(subject / "anat" / f"{stem}_T1w.json", T1W_SIDECAR),
    ]

    volume_types = ["m0scan"] + ["control", "label"] * n_pairs
    sidecar = asl_sidecar(n_pairs, lr.voxel_size)
    asl = subject / "perf" / f"{stem}_asl.nii.gz"
    parameters = parameters_from_sidecar(sidecar, asl, volume_types=volume_types)
    truth_lr = resample_average(images["ref_clean"].data, images["ref_clean"].affine, lr)
    series = pcasl_series(
        truth_lr,
        images["m0_lr"].data,
        images["mask_lr"].data > 0.5,
        parameters,
        noise_sd_cbf=lr_noise_sd(config, images["ref_clean"].grid, lr),
        n_pairs=n_pairs,
        rng=np.random.default_rng([config.seed, NOISE_STREAM]),
    )
    files += [
        _save_series(asl, series, lr),
        save_json(subject / "perf" / f"{stem}_asl.json", sidecar),
        _write_text(
            subject / "perf" / f"{stem}_aslcontext.tsv", "volume_type\n" + "".join(f"{kind}\n" for kind in volume_types)
        ),
    ]
    inputs = SubjectInputs(label, None, asl, files[0], None, {"sub": label})
    return files + _write_references(out / "derivatives" / "phantom", inputs, images, truth_lr, case)


def lr_noise_sd(config: phantom.PhantomConfig, nr: Grid, lr: Grid) -> float:
    """Noise sd (ml/100g/min) of the phantom's ``asl_lr``: the NR noise averaged over each LR voxel."""
    ratio = float(np.prod(lr.voxel_size) / np.prod(nr.voxel_size))
    return float(config.noise_sd) / np.sqrt(ratio)


def pcasl_series(
    cbf: np.ndarray,
    m0: np.ndarray,
    mask: np.ndarray,
    parameters,
    *,
    noise_sd_cbf: float,
    n_pairs: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """4D float32 series: ``m0``, then ``n_pairs`` (control, label) with control - label = deltaM(cbf).

    Each control and label gets Gaussian noise such that the mean of the pair differences has the
    sd of ``noise_sd_cbf`` (ml/100g/min) at the brain's median M0.
    """
    deltam = deltam_from_cbf(cbf, m0, parameters)
    m0_brain = float(np.median(m0[mask])) if mask.any() else float(np.median(m0))
    sd_mean = float(deltam_from_cbf(np.float64(noise_sd_cbf), m0_brain, parameters))
    sd = sd_mean * np.sqrt(n_pairs / 2.0)  # var(mean of n differences) = 2 sd^2 / n
    control = BACKGROUND_SUPPRESSION * m0
    volumes = [m0]
    for _ in range(n_pairs):
        volumes.append(control + sd * rng.standard_normal(m0.shape))
        volumes.append(control - deltam + sd * rng.standard_normal(m0.shape))
    return np.stack(volumes, axis=-1).astype(np.float32)


def _save_series(path: Path, series: np.ndarray, grid: Grid) -> Path:
    """Write a 4D series on ``grid`` atomically, with the volume spacing (TR) in the header."""
    image = to_nifti(series, grid)
    image.header.set_zooms((*grid.voxel_size, REPETITION_TIME_S))
    with atomic_path(path, ".nii.gz") as temporary:
        image.to_filename(str(temporary))
    return path


def _write_text(path: Path, text: str) -> Path:
    with atomic_path(path, path.suffix) as temporary:
        temporary.write_text(text)
    return path


def _write_references(root: Path, inputs: SubjectInputs, images: dict, truth_lr: np.ndarray, case: dict) -> list[Path]:
    """The phantom's truth, high-SNR reference and masks as BIDS-Derivatives files under ``root``."""
    lr, nr = images["m0_lr"].grid, images["ref_clean"].grid
    fine = images["truth_1mm"].grid
    entries = [
        ("truth", "cbf", truth_lr, lr, phantom.DESCRIPTIONS["ref_clean"] + " (LR grid)"),
        ("truth", "cbf", images["ref_clean"].data, nr, phantom.DESCRIPTIONS["ref_clean"]),
        ("truth", "cbf", images["truth_1mm"].data, fine, phantom.DESCRIPTIONS["truth_1mm"]),
        ("reference", "cbf", images["ref_hr"].data, nr, phantom.DESCRIPTIONS["ref_hr"]),
        ("brain", "mask", images["mask_lr"].data, lr, phantom.DESCRIPTIONS["mask_lr"]),
        ("brain", "mask", images["mask"].data, nr, phantom.DESCRIPTIONS["mask"]),
    ]
    for role, grid in (("lesion_lr", lr), ("lesion", nr)):
        if role in images:
            entries.append(("lesion", "mask", images[role].data, grid, phantom.DESCRIPTIONS[role]))
        else:  # a lesion from an earlier run into the same folder would contradict this subject
            for extension in (".nii.gz", ".json"):
                derivative_path(
                    root,
                    inputs,
                    desc="lesion",
                    suffix="mask",
                    extension=extension,
                    res=resolution_label(grid.voxel_size),
                ).unlink(missing_ok=True)
    info = {key: case[key] for key in ("seed", "lesion", "noise_sd_nr", "lesion_sphere", "t1_motion")}
    files = []
    for desc, suffix, data, grid, description in entries:
        options = dict(desc=desc, suffix=suffix, res=resolution_label(grid.voxel_size))
        dtype = np.uint8 if suffix == "mask" else np.float32
        files.append(
            save_volume(
                derivative_path(root, inputs, extension=".nii.gz", **options),
                (data > 0.5) if suffix == "mask" else data,
                grid,
                dtype=dtype,
            )
        )
        sidecar = {"Description": description}
        if suffix == "cbf":
            sidecar["Units"] = phantom.UNITS
        if desc == "truth" and grid == lr:
            sidecar["Phantom"] = info
        files.append(save_json(derivative_path(root, inputs, extension=".json", **options), sidecar))
    return files


def _write_dataset_files(out: Path, rows: list[str]) -> list[Path]:
    description = {
        "Name": NAME,
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "raw",
        "License": LICENSE,
        "Authors": ["aslsr simulate"],
        "ReferencesAndLinks": [TEMPLATE_REFERENCE],
        "GeneratedBy": [{"Name": "aslsr", "Version": __version__, "Description": "aslsr simulate --bids"}],
    }
    participants = {
        "participant_id": {"Description": "subject label"},
        "phantom_seed": {"Description": "random seed of the subject's phantom (CBF field, noise, T1 motion)"},
        "lesion": {
            "Description": "whether the phantom has a hypoperfused lesion",
            "Levels": {"yes": "lesion present", "no": "no lesion"},
        },
    }
    references = {
        "Name": f"{NAME}: ground truth",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": description["GeneratedBy"],
    }
    return [
        save_json(out / "dataset_description.json", description),
        save_json(out / "derivatives" / "phantom" / "dataset_description.json", references),
        _write_text(out / "README", README),
        _write_text(
            out / "participants.tsv", "participant_id\tphantom_seed\tlesion\n" + "".join(f"{row}\n" for row in rows)
        ),
        save_json(out / "participants.json", participants),
    ]
