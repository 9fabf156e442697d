"""A subject's BIDS-Derivatives files: which file of its ``aslsr run`` folder becomes which derivative.

A cohort (:mod:`aslsr.cohort`) runs each subject into ``OUT/work/<name>/``; :func:`publish_derivatives`
then copies the SR image, the spline baseline, the brain mask and the QC figure to their BIDS names
(:mod:`aslsr.bids`, with the ``res`` entity of the target voxel size), writes the SR image's JSON
sidecar and an HTML report, and last a marker (``derivatives.json`` in the run folder) that lists
them all. A subject whose marker lists only existing files is complete (:func:`is_complete`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from .bids import SubjectInputs, derivative_path, figure_path, report_path, resolution_label
from .inputs import CBF_UNITS
from .io import atomic_path, save_json
from .report_html import subject_report_html

#: The folder of ``OUT`` that holds one ``aslsr run`` folder per subject.
WORK_FOLDER = "work"
#: The marker in a subject's run folder that lists its published derivatives.
MARKER_NAME = "derivatives.json"
#: Files of the BIDS-Derivatives dataset that are not BIDS (the validator is told to ignore them).
BIDS_IGNORE = (f"{WORK_FOLDER}/", "*.html")
#: The report.json keys copied into the SR sidecar's ``aslsr`` entry.
SIDECAR_REPORT_KEYS = (
    "aslsr_version",
    "config",
    "asl",
    "lr_agreement",
    "registration",
    "timings",
    "warnings",
    "device",
)


def publish_derivatives(inputs: SubjectInputs, work_dir: Path, out_dir: Path) -> tuple[str, ...]:
    """Copy a finished run's images, figure and report to BIDS-Derivatives names; the marker last.

    Parameters
    ----------
    inputs
        The BIDS ASL run the images were made from (its entities name the derivatives).
    work_dir
        The finished ``aslsr run`` folder (``sr.nii.gz``, ``spline.nii.gz``, ``mask.nii.gz``,
        ``qc.png``, ``report.json``).
    out_dir
        The BIDS-Derivatives dataset.

    Returns
    -------
    tuple of str
        The derivative files written, relative to ``out_dir``.
    """
    report = json.loads((work_dir / "report.json").read_text())
    target = report["grids"]["target"]
    units = report.get("asl", {}).get("units", "a.u.")
    suffix = "cbf" if units == CBF_UNITS else "deltam"
    res = resolution_label(target["voxel_size_mm"])
    place = {
        "sr.nii.gz": derivative_path(out_dir, inputs, desc="sr", suffix=suffix, extension=".nii.gz", res=res),
        "spline.nii.gz": derivative_path(out_dir, inputs, desc="spline", suffix=suffix, extension=".nii.gz", res=res),
        "mask.nii.gz": derivative_path(out_dir, inputs, desc="brain", suffix="mask", extension=".nii.gz", res=res),
        "qc.png": figure_path(out_dir, inputs, desc="qc", extension=".png"),
    }
    for source, destination in place.items():
        _copy(work_dir / source, destination)
    sidecar = place["sr.nii.gz"].with_name(place["sr.nii.gz"].name.replace(".nii.gz", ".json"))
    save_json(sidecar, derivative_sidecar(inputs, report, target, units=units))
    html = report_path(out_dir, inputs)
    relative = {path.name: os.path.relpath(path, html.parent) for path in [*place.values(), sidecar]}
    subject_report_html(
        html, title=f"aslsr: {inputs.name}", report=report, figures={"QC": place["qc.png"]}, outputs=relative
    )
    outputs = tuple(str(path.relative_to(out_dir)) for path in [*place.values(), sidecar, html])
    save_json(work_dir / MARKER_NAME, {"outputs": list(outputs)})
    return outputs


def derivative_sidecar(inputs: SubjectInputs, report: dict[str, Any], target: dict[str, Any], *, units: str) -> dict:
    """The SR image's JSON sidecar.

    Parameters
    ----------
    inputs
        The BIDS ASL run (its ASL, T1w and M0 become ``Sources``, relative to the raw dataset).
    report
        The run's ``report.json``; its settings and QC numbers go under ``aslsr``.
    target
        The report's target grid entry (``voxel_size_mm``, mm).
    units
        The SR image's units (``ml/100g/min`` for CBF).
    """
    raw = inputs.asl.parents[2 if inputs.session is None else 3]
    sources = [inputs.asl, inputs.t1w] + ([inputs.m0] if inputs.m0 else [])
    size = " x ".join(f"{v:g}" for v in target["voxel_size_mm"])
    return {
        "Description": "super-resolved ASL (aslsr: unsupervised multi-scale GAN with the T1w as anatomical prior)",
        "Sources": [f"bids:raw:{Path(os.path.relpath(path, raw)).as_posix()}" for path in sources],
        "Units": units,
        "Resolution": f"{size} mm voxels over the ASL field of view",
        "SkullStripped": False,
        "aslsr": {key: report.get(key) for key in SIDECAR_REPORT_KEYS},
    }


def listed_derivatives(work_dir: Path) -> tuple[str, ...]:
    """The derivative files (relative to the dataset) that the run folder's marker lists.

    Raises OSError or ValueError when the marker is missing or unreadable.
    """
    return tuple(json.loads((work_dir / MARKER_NAME).read_text())["outputs"])


def is_complete(work_dir: Path, out_dir: Path) -> bool:
    """Whether the run folder's marker exists and every derivative it lists is in ``out_dir``."""
    try:
        listed = json.loads((work_dir / MARKER_NAME).read_text())["outputs"]
    except (OSError, ValueError, RecursionError, KeyError, TypeError):
        return False
    return all((out_dir / name).is_file() for name in listed)


def write_bids_ignore(out_dir: Path) -> None:
    """``OUT/.bidsignore``: the work folders and HTML reports are not BIDS files."""
    with atomic_path(out_dir / ".bidsignore") as temporary:
        Path(temporary).write_text("".join(f"{pattern}\n" for pattern in BIDS_IGNORE))


def _copy(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(destination) as temporary:
        shutil.copyfile(source, temporary)
