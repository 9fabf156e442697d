"""BIDS datasets: find the ASL runs of a raw dataset and name derivatives safely.

Files are found with ``pathlib``; entity names and their order come from the BIDS schema
(:mod:`aslsr.bids_metadata`, which also resolves sidecars by the inheritance principle). Every label
read from a folder or file name, or given by the user, must be alphanumeric (:func:`check_label`),
and every derivative path is checked to lie inside the output folder, so a crafted name such as
``sub-01_acq-..%2F_asl.nii.gz`` cannot write elsewhere.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .bids_metadata import entity_order
from .errors import InputError
from .io import save_json

BIDS_VERSION = "1.9.0"
NIFTI_EXTENSIONS = (".nii.gz", ".nii")
_LABEL = re.compile(r"[A-Za-z0-9]+")
_EXTENSION = re.compile(r"(\.[A-Za-z0-9]+)+")


@dataclass(frozen=True)
class SubjectInputs:
    """One ASL run of a BIDS dataset with the images that go with it (labels without prefixes)."""

    subject: str
    session: str | None
    asl: Path
    t1w: Path
    m0: Path | None
    entities: dict[str, str] = field(hash=False)

    @property
    def name(self) -> str:
        """The ASL file's entities, e.g. ``sub-01_ses-1_acq-x_run-1``: unique per ASL run."""
        return "_".join(f"{key}-{value}" for key, value in self.entities.items())


def check_label(label: str, what: str, path: str | os.PathLike | None = None) -> str:
    """Return ``label`` if it is a valid BIDS label (letters and digits only), else raise InputError."""
    if not isinstance(label, str) or not _LABEL.fullmatch(label):
        raise InputError(f"invalid {what} {label!r}: BIDS labels are letters and digits only", path)
    return label


def parse_name(path: Path) -> tuple[dict[str, str], str, str] | None:
    """``(entities, suffix, extension)`` of a NIfTI file named like BIDS, or None for other files.

    A name with the BIDS shape (``sub-<label>[_<key>-<label>...]_<suffix>.nii[.gz]``) but a bad
    label raises InputError naming the file.
    """
    name = path.name
    extension = next((ext for ext in NIFTI_EXTENSIONS if name.endswith(ext)), None)
    if extension is None or not name.startswith("sub-"):
        return None
    *pairs, suffix = name[: -len(extension)].split("_")
    if not pairs or any("-" not in pair for pair in pairs):
        return None
    entities: dict[str, str] = {}
    for pair in pairs:
        key, value = pair.split("-", 1)
        check_label(key, "entity name", path)
        if key in entities:
            raise InputError(f"the entity {key!r} appears twice in the file name", path)
        entities[key] = check_label(value, f"{key} label", path)
    check_label(suffix, "suffix", path)
    return entities, suffix, extension


def find_subjects(
    bids_dir: str | os.PathLike,
    participant_labels: Sequence[str] | None = None,
    *,
    on_problem: Callable[[str, InputError], None] | None = None,
) -> list[SubjectInputs]:
    """Every ASL run (``sub-*/[ses-*/]perf/*_asl.nii[.gz]``) of a raw BIDS dataset, sorted by name.

    ``participant_labels`` (with or without ``sub-``) restricts the search; each requested subject
    must exist and have an ASL run. Raises InputError for anything missing or malformed; with
    ``on_problem``, a subject's own problem (no T1w, a misnamed file) is passed to
    ``on_problem(subject_label, error)`` instead and the other subjects are still returned.
    """
    root = Path(bids_dir)
    if not root.is_dir():
        raise InputError("the BIDS dataset is not a folder", root)
    if not (root / "dataset_description.json").is_file():
        raise InputError("not a BIDS dataset (no dataset_description.json)", root)
    existing = [check_label(d.name[4:], "subject label", d) for d in _subfolders(root, "sub-")]
    if participant_labels is None:
        labels, required = existing, False
    else:
        labels = list(dict.fromkeys(_participant(label) for label in participant_labels))
        missing = [label for label in labels if label not in existing]
        if missing:
            have = ", ".join(f"sub-{label}" for label in existing[:20]) or "none"
            more = f" and {len(existing) - 20} more" if len(existing) > 20 else ""
            raise InputError(
                f"no folder for {', '.join('sub-' + m for m in missing)} (subjects here: {have}{more})", root
            )
        required = True
    runs: list[SubjectInputs] = []
    problems = 0
    for label in labels:
        try:
            found = _subject_runs(root / f"sub-{label}", label)
        except InputError as error:
            if on_problem is None:
                raise
            on_problem(label, error)
            problems += 1
            continue
        if required and not found:
            raise InputError("no ASL series (perf/*_asl.nii[.gz]) for this subject", root / f"sub-{label}")
        runs.extend(found)
    if not runs and not problems:
        raise InputError("no ASL series found (sub-*/[ses-*/]perf/*_asl.nii[.gz])", root)
    return sorted(runs, key=lambda run: run.name)


def _participant(label: str) -> str:
    if not isinstance(label, str):
        raise InputError(f"invalid participant label {label!r}")
    return check_label(label[4:] if label.startswith("sub-") else label, "participant label")


def _subfolders(folder: Path, prefix: str) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith(prefix) and p.is_dir())


def _subject_runs(subject_dir: Path, subject: str) -> list[SubjectInputs]:
    """The ASL runs of one subject, without sessions and in every ``ses-*`` folder."""
    sessions: list[tuple[str | None, Path]] = [(None, subject_dir)]
    for folder in _subfolders(subject_dir, "ses-"):
        sessions.append((check_label(folder.name[4:], "session label", folder), folder))
    runs = []
    for session, folder in sessions:
        perf = folder / "perf"
        if not perf.is_dir():
            continue
        for asl, entities in _bids_files(perf, "asl", subject, session):
            t1w = _find_t1w(subject_dir, subject, session)
            if t1w is None:
                raise InputError("no T1w image (anat/*_T1w.nii[.gz]) for this ASL series", asl)
            m0 = next(
                (path for path, other in _bids_files(perf, "m0scan", subject, session) if other == entities), None
            )
            runs.append(SubjectInputs(subject, session, asl, t1w, m0, entities))
    return runs


def _bids_files(folder: Path, suffix: str, subject: str, session: str | None) -> list[tuple[Path, dict]]:
    """BIDS-named NIfTI files with ``suffix`` in ``folder`` (sorted), with their entities."""
    found = []
    for path in sorted(folder.iterdir()):
        parsed = parse_name(path) if path.name.endswith(tuple(f"_{suffix}{e}" for e in NIFTI_EXTENSIONS)) else None
        if parsed is None or parsed[1] != suffix or not path.is_file():
            continue
        entities = parsed[0]
        if entities.get("sub") != subject or entities.get("ses") != session:
            where = f"sub-{subject}" + (f"/ses-{session}" if session else "")
            raise InputError(f"the file name's subject/session entities do not match its folder {where}", path)
        found.append((path, entities))
    return found


def _find_t1w(subject_dir: Path, subject: str, session: str | None) -> Path | None:
    """The first T1w of the ASL's session, else the first session-less one."""
    places = ([(subject_dir / f"ses-{session}" / "anat", session)] if session else []) + [(subject_dir / "anat", None)]
    for anat, anat_session in places:
        if anat.is_dir():
            files = _bids_files(anat, "T1w", subject, anat_session)
            if files:
                return files[0][0]
    return None


def resolution_label(voxel_size_mm: float | Sequence[float]) -> str:
    """A BIDS ``res`` label for a voxel size in mm: 1.0 -> "1mm", 1.5 -> "1p5mm",
    (1.5, 1.5, 2.5) -> "1p5x1p5x2p5mm" (rounded to 0.001 mm)."""
    sizes = np.atleast_1d(np.asarray(voxel_size_mm, dtype=np.float64))
    if sizes.ndim != 1 or len(sizes) not in (1, 3) or not np.all(np.isfinite(sizes)) or np.any(sizes <= 0):
        raise InputError(f"a voxel size needs 1 or 3 positive numbers (mm), got {voxel_size_mm}")
    texts = [np.format_float_positional(round(float(v), 3), trim="-").replace(".", "p") for v in sizes]
    if len(set(texts)) == 1:
        texts = texts[:1]
    return check_label("x".join(texts) + "mm", "resolution label")


def _entity_string(entities: dict[str, str], path_hint: str | os.PathLike | None) -> str:
    for key, value in entities.items():
        check_label(key, "entity name", path_hint)
        check_label(value, f"{key} label", path_hint)
    known = {key: index for index, key in enumerate(entity_order())}  # unknown keys go before space
    order = sorted(entities, key=lambda key: known.get(key, known["space"] - 0.5))
    return "_".join(f"{key}-{entities[key]}" for key in order)


def _subject_entities(inputs: SubjectInputs) -> dict[str, str]:
    """The input's entities, checked against its subject and session, without derivative-only ones."""
    check_label(inputs.subject, "subject label", inputs.asl)
    if inputs.session is not None:
        check_label(inputs.session, "session label", inputs.asl)
    entities = dict(inputs.entities)
    if entities.get("sub") != inputs.subject or entities.get("ses") != inputs.session:
        raise InputError("the run's entities do not match its subject/session", inputs.asl)
    for key in ("space", "res", "den", "desc"):
        entities.pop(key, None)
    return entities


def _inside(out_dir: str | os.PathLike, relative: Path) -> Path:
    """``out_dir / relative``, after checking that it resolves (symbolic links too) inside out_dir."""
    root = Path(out_dir).resolve()
    if not (root / relative).resolve().is_relative_to(root):
        raise InputError("the derivative path would lie outside the output folder", root / relative)
    return Path(out_dir) / relative


def _check_extension(extension: str) -> str:
    if not isinstance(extension, str) or not _EXTENSION.fullmatch(extension):
        raise InputError(f"invalid file extension {extension!r} (expected e.g. '.nii.gz')")
    return extension


def derivative_path(
    out_dir: str | os.PathLike,
    inputs: SubjectInputs,
    *,
    desc: str,
    suffix: str,
    extension: str,
    space: str = "asl",
    res: str | None = None,
) -> Path:
    """``OUT/sub-X/[ses-Y/]perf/<entities>_space-S[_res-R]_desc-D_<suffix><extension>`` for one run;
    raises InputError for a bad label or a path that would leave ``out_dir``."""
    entities = _subject_entities(inputs)
    entities["space"] = check_label(space, "space label")
    if res is not None:
        entities["res"] = check_label(res, "resolution label")
    entities["desc"] = check_label(desc, "desc label")
    name = f"{_entity_string(entities, inputs.asl)}_{check_label(suffix, 'suffix')}{_check_extension(extension)}"
    return _inside(out_dir, _session_folder(inputs) / "perf" / name)


def figure_path(
    out_dir: str | os.PathLike, inputs: SubjectInputs, *, desc: str, extension: str, suffix: str = "asl"
) -> Path:
    """``OUT/sub-X/figures/<entities>_desc-D_<suffix><extension>`` (figures and HTML reports, as
    fMRIPrep and ASLPrep place them); same checks as :func:`derivative_path`."""
    entities = _subject_entities(inputs)
    entities["desc"] = check_label(desc, "desc label")
    name = f"{_entity_string(entities, inputs.asl)}_{check_label(suffix, 'suffix')}{_check_extension(extension)}"
    return _inside(out_dir, Path(f"sub-{inputs.subject}") / "figures" / name)


def report_path(out_dir: str | os.PathLike, inputs: SubjectInputs) -> Path:
    """``OUT/<entities>.html``: one HTML report per ASL run beside the subject folders (as fMRIPrep
    places ``sub-X.html``); same checks as :func:`derivative_path`."""
    return _inside(out_dir, Path(f"{_entity_string(_subject_entities(inputs), inputs.asl)}.html"))


def _session_folder(inputs: SubjectInputs) -> Path:
    folder = Path(f"sub-{inputs.subject}")
    return folder / f"ses-{inputs.session}" if inputs.session is not None else folder


def write_dataset_description(
    out_dir: str | os.PathLike, *, version: str, source_dir: str | os.PathLike, name: str = "aslsr super-resolution"
) -> Path:
    """Write ``OUT/dataset_description.json`` of a BIDS-Derivatives dataset (atomically) and return
    its path; an existing one with the same content is left alone, a different one is replaced."""
    path = Path(out_dir) / "dataset_description.json"
    description = {
        "Name": name,
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [
            {
                "Name": "aslsr",
                "Version": str(version),
                "Description": "unsupervised multi-scale GAN super-resolution of ASL MRI",
            }
        ],
        "SourceDatasets": [{"URL": Path(source_dir).resolve().as_uri()}],
    }
    if path.is_file():
        try:
            if json.loads(path.read_text()) == description:
                return path
        except (OSError, ValueError, RecursionError):
            pass  # unreadable: replaced below
    return save_json(path, description)
