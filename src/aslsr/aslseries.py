"""BIDS ASL input: a 3D perfusion image, or a 4D series with its ``_aslcontext.tsv``, reduced to 3D maps.

``sub-01_asl.nii.gz`` has ``sub-01_aslcontext.tsv`` (column ``volume_type``, one row per volume) and
the sidecar ``sub-01_asl.json``, beside it or, inside a BIDS dataset, inherited from the folders
above (a dataset-level ``asl.json`` or ``aslcontext.tsv``; :mod:`aslsr.bids_metadata`). Every output
is a float32 :class:`Volume` in NIfTI voxel order (i, j, k) on the series' 3D grid (its affine maps
voxels to world RAS mm).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .bids_metadata import inherited_files
from .errors import InputError
from .grids import Grid
from .io import (
    Volume,
    available_memory,
    check_file_size,
    check_finite,
    load_nifti,
    load_volume,
    quiet_nibabel,
    short_error,
)
from .progress import progress_bar
from .realign import SeriesAligner, SeriesMotion

#: A series is realigned only when every axis has at least this many voxels (fewer leave the
#: registration nothing to lock on to).
MIN_REALIGN_VOXELS = 8
#: BIDS volume types, keyed by their lower-case spelling
VOLUME_TYPES = {name.lower(): name for name in ("control", "label", "m0scan", "deltam", "cbf", "noRF")}


def _stem(asl_path: str | os.PathLike) -> tuple[Path, str]:
    path = Path(asl_path)
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return path.parent, name[: -len(suffix)]
    return path.parent, path.stem


def context_path(asl_path: str | os.PathLike) -> Path:
    """``sub-01_asl.nii.gz`` or ``.nii`` -> ``sub-01_aslcontext.tsv``; else ``<stem>_aslcontext.tsv``."""
    folder, stem = _stem(asl_path)
    if stem.endswith("_asl"):
        stem = stem[: -len("_asl")]
    return folder / f"{stem}_aslcontext.tsv"


def sidecar_path(asl_path: str | os.PathLike) -> Path:
    """``sub-01_asl.nii.gz`` -> ``sub-01_asl.json``."""
    folder, stem = _stem(asl_path)
    return folder / f"{stem}.json"


def sidecar_files(data_path: str | os.PathLike) -> list[Path]:
    """The JSON sidecars that apply to a NIfTI file, farthest first: inherited ones inside a BIDS
    dataset (the BIDS inheritance principle), else the one beside it (:func:`sidecar_path`) if it exists."""
    return inherited_files(data_path, extension=".json") or [p for p in [sidecar_path(data_path)] if p.exists()]


def read_metadata(data_path: str | os.PathLike) -> tuple[dict, Path]:
    """A NIfTI file's metadata, merged from its sidecars (closer files override), and the file to name
    in messages about it (the closest sidecar, or the one expected beside the image)."""
    files = sidecar_files(data_path)
    metadata: dict = {}
    for path in files:
        metadata.update(read_sidecar(path))
    return metadata, files[-1] if files else sidecar_path(data_path)


def find_context(asl_path: str | os.PathLike) -> Path | None:
    """The ``aslcontext.tsv`` that applies to an ASL image (the closest inherited one, else the one beside it)."""
    inherited = inherited_files(asl_path, extension=".tsv", suffix="aslcontext")
    if inherited:
        return inherited[-1]
    beside = context_path(asl_path)
    return beside if beside.exists() else None


def _read_text(path: Path, what: str) -> str:
    if not path.exists():
        raise InputError(f"no such file ({what})", path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"could not read the {what} ({short_error(error, path)})", path) from None


def read_aslcontext(path: str | os.PathLike, n_volumes: int) -> list[str]:
    """The ``volume_type`` of each volume, in file order (BIDS spelling; case-insensitive on input)."""
    path = Path(path)
    rows = [line.rstrip("\r\n") for line in _read_text(path, "ASL context file").splitlines()]
    rows = [row for row in rows if row.strip()]
    header = [cell.strip() for cell in rows[0].split("\t")] if rows else []
    if "volume_type" not in header:
        raise InputError(f"no 'volume_type' column in the header (found {header})", path)
    column = header.index("volume_type")
    types = []
    for number, row in enumerate(rows[1:], start=2):
        cells = row.split("\t")
        value = cells[column].strip() if column < len(cells) else ""
        if value.lower() not in VOLUME_TYPES:
            raise InputError(
                f"line {number}: unknown volume type {value!r} (expected one of {', '.join(VOLUME_TYPES.values())})",
                path,
            )
        types.append(VOLUME_TYPES[value.lower()])
    if len(types) != n_volumes:
        raise InputError(f"lists {len(types)} volume types but the ASL series has {n_volumes} volumes", path)
    return types


def read_sidecar(path: str | os.PathLike) -> dict:
    """The JSON sidecar's contents; ``{}`` when there is no such file."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        metadata = json.loads(_read_text(path, "JSON sidecar"))
    except json.JSONDecodeError as error:
        raise InputError(f"not valid JSON ({error.msg} at line {error.lineno})", path) from None
    except RecursionError:
        raise InputError("not readable JSON (nested too deeply)", path) from None
    except ValueError as error:  # e.g. an integer with more digits than Python converts
        raise InputError(f"not readable JSON ({short_error(error)})", path) from None
    if not isinstance(metadata, dict):
        raise InputError(f"the JSON sidecar must hold an object, not a {type(metadata).__name__}", path)
    return metadata


@dataclass(frozen=True)
class AslSeries:
    """An ASL acquisition reduced to 3D maps on one grid (see :func:`load_asl_series`)."""

    perfusion: Volume  # mean control - label (or mean deltam, or the cbf map)
    kind: str  # "deltam" or "cbf"
    m0: Volume | None  # mean of the m0scan volumes
    control_mean: Volume | None  # mean of the control volumes (a good registration target)
    metadata: dict  # the sidecars' contents (inherited ones merged), {} without any
    n_pairs: int  # control/label pairs averaged; 0 for deltam/cbf input
    volume_types: tuple[str, ...]
    metadata_path: Path | None = None  # the closest sidecar (named in messages about the metadata)
    motion: SeriesMotion | None = None  # the realignment of a control/label series (None: not realigned)


def load_asl_series(
    path: str | os.PathLike, *, allow_nonfinite: bool = False, realign: bool = True, progress: bool = False
) -> AslSeries:
    """Load a BIDS ASL image: a 3D deltam/cbf map, or a 4D series described by its ``_aslcontext.tsv``.

    With ``realign``, the volumes of a control/label series (and its ``m0scan`` volumes) are realigned
    to their mean before they are subtracted and averaged (:mod:`aslsr.realign`; a series with fewer than
    :data:`MIN_REALIGN_VOXELS` voxels along an axis is not), with a progress bar when ``progress``.

    Raises :class:`InputError` (naming the file) for a bad image, context or sidecar, a series
    without perfusion volumes or with several kinds of them, NaN/Inf voxels in a result (unless
    ``allow_nonfinite``, which sets them to 0) and a constant perfusion image.
    """
    path = Path(path)
    image = load_nifti(path)
    shape = tuple(int(n) for n in image.shape)
    metadata, metadata_path = read_metadata(path)
    context = find_context(path)
    if len(shape) != 4 or shape[3] == 1:  # load_volume refuses what is not 3D
        volume = load_volume(path, allow_nonfinite=allow_nonfinite, what="ASL image")
        types = read_aslcontext(context, 1) if context is not None else []
        return AslSeries(
            volume, _kind_3d(types, metadata, context), None, None, metadata, 0, tuple(types), metadata_path
        )
    if context is None:
        raise InputError(
            f"a 4D ASL series needs {context_path(path).name} beside it, or an aslcontext.tsv "
            "inherited from a folder above in a BIDS dataset (volume types per volume)",
            path,
        )
    types = read_aslcontext(context, shape[3])
    return dataclasses.replace(
        _reduce_series(image, path, context, types, metadata, allow_nonfinite, realign, progress),
        metadata_path=metadata_path,
    )


def _kind_3d(types: list[str], metadata: dict, context: Path | None) -> str:
    """ "cbf" when the context says so or the sidecar's Units are per 100 g (ml/100g/min), else "deltam"."""
    if types and types[0] not in ("deltam", "cbf"):
        raise InputError(
            f"a single 3D volume of type {types[0]!r} is not a perfusion image (expected deltam or cbf)", context
        )
    units = str(metadata.get("Units", "")).replace(" ", "").lower()
    return "cbf" if types == ["cbf"] or "/100g" in units else "deltam"


def _perfusion_plan(types: list[str], context: Path) -> tuple[str, list[int], list[int]]:
    """(kind, indices to add, indices to subtract) of the volumes whose mean is the perfusion image."""
    index = {name: [i for i, t in enumerate(types) if t == name] for name in VOLUME_TYPES.values()}
    present = [name for name in ("control", "label", "deltam", "cbf") if index[name]]
    pairs = bool(index["control"] or index["label"])
    if len([name for name in present if name not in ("control", "label")]) + pairs > 1:
        raise InputError(
            f"mixes {', '.join(present[:-1])} and {present[-1]} volumes; give one kind "
            "(control/label pairs, deltam or cbf)",
            context,
        )
    if not present:
        raise InputError(
            f"has no perfusion volumes (control/label, deltam or cbf), only {', '.join(sorted(set(types)))}", context
        )
    if pairs:
        if len(index["control"]) != len(index["label"]):
            raise InputError(
                f"has {len(index['control'])} control and {len(index['label'])} label volumes; "
                "pairwise subtraction needs as many of each",
                context,
            )
        return "deltam", index["control"], index["label"]
    return present[0], index[present[0]], []


def _reduce_series(
    image,
    path: Path,
    context: Path,
    types: list[str],
    metadata: dict,
    allow_nonfinite: bool,
    realign: bool,
    progress: bool,
) -> AslSeries:
    shape = tuple(int(n) for n in image.shape[:3])
    if min(shape) < 2:
        raise InputError(f"expected 3D volumes, got shape {image.shape} (2D slices?)", path)
    needed = math.prod(shape) * 8 * 4  # float64 accumulators and one volume
    if needed > available_memory():
        raise InputError(
            f"the header's shape {tuple(image.shape)} would need about {needed / 2**30:.1f} GiB "
            "of memory (a corrupt header?)",
            path,
        )
    check_file_size(image, path)
    kind, plus, minus = _perfusion_plan(types, context)
    controls = [i for i, t in enumerate(types) if t == "control"]
    m0scans = [i for i, t in enumerate(types) if t == "m0scan"]
    grid = Grid(shape, image.affine)
    realign = realign and bool(minus) and min(shape) >= MIN_REALIGN_VOXELS
    volumes = len(plus + minus + m0scans)
    with progress_bar(total=volumes, enabled=progress and realign, desc="realign", unit="volume") as bar:
        aligner = _aligner(image, path, grid, plus + minus, m0scans, bar) if realign else None
        sums = _sum_volumes(
            image, path, {"perfusion": (plus, minus), "control": (controls, []), "m0": (m0scans, [])}, aligner
        )
    perfusion = _finite_mean(sums["perfusion"], len(plus), path, allow_nonfinite, "perfusion")
    if float(perfusion.max()) == float(perfusion.min()):
        raise InputError(f"the perfusion image is constant (every voxel is {float(perfusion.min()):g})", path)
    means = {
        name: Volume(_finite_mean(sums[name], count, path, allow_nonfinite, name), grid)
        for name, count in (("control", len(controls)), ("m0", len(m0scans)))
        if count
    }
    return AslSeries(
        perfusion=Volume(perfusion, grid),
        kind=kind,
        m0=means.get("m0"),
        control_mean=means.get("control"),
        metadata=metadata,
        n_pairs=len(minus),
        volume_types=tuple(types),
        motion=aligner.motion if aligner is not None else None,
    )


def _aligner(image, path: Path, grid: Grid, pairs: list[int], m0scans: list[int], bar) -> SeriesAligner:
    """A realigner to the mean of the control and label volumes (read once more for it)."""
    total = _sum_volumes(image, path, {"mean": (pairs, [])})["mean"]
    with np.errstate(all="ignore"):
        mean = np.nan_to_num(total / len(pairs)).astype(np.float32)
    return SeriesAligner(Volume(mean, grid), mutual_information=frozenset(m0scans), progress=bar)


def _sum_volumes(
    image,
    path: Path,
    plans: dict[str, tuple[list[int], list[int]]],
    adjust: Callable[[int, np.ndarray], np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Sum (plus minus minus) of the listed volumes for each plan, reading each volume once, in file order.

    ``adjust(index, volume)``, when given, replaces each volume before it is added (the realignment).
    """
    shape = tuple(int(n) for n in image.shape[:3])
    sums = {name: np.zeros(shape, np.float64) for name, (plus, _) in plans.items() if plus}
    wanted = sorted({t for plus, minus in plans.values() for t in plus + minus})
    with np.errstate(all="ignore"), warnings.catch_warnings(), quiet_nibabel():
        warnings.simplefilter("ignore")
        # one open file: otherwise each volume of a .nii.gz is decompressed from the file's start
        proxy = _read(lambda: type(image).from_filename(str(path), keep_file_open=True).dataobj, path)
        for t in wanted:
            volume = _read(lambda: np.asarray(proxy[..., t], dtype=np.float64), path)
            if adjust is not None:
                volume = np.asarray(adjust(t, volume), dtype=np.float64)
            for name, (plus, minus) in plans.items():
                if t in plus:
                    sums[name] += volume
                elif t in minus:
                    sums[name] -= volume
    return sums


def _read(reader: Callable[[], Any], path: Path) -> Any:
    try:
        return reader()
    except Exception as error:  # nibabel and gzip raise many types for truncated/corrupt data
        raise InputError(f"could not read the voxel data ({short_error(error, path)})", path) from None


def _finite_mean(total: np.ndarray, count: int, path: Path, allow_nonfinite: bool, what: str) -> np.ndarray:
    with np.errstate(all="ignore"):
        mean = (total / count).astype(np.float32)
    try:
        return np.ascontiguousarray(check_finite(mean, path, allow_nonfinite))
    except InputError as error:
        raise InputError(f"the {what} mean: {error.problem}", path) from None
