"""NIfTI in and out: validated loading (one-line errors naming the file) and atomic saving.

Arrays keep NIfTI's voxel order (i, j, k); the affine maps them to world RAS mm (see :mod:`grids`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import secrets
import warnings
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from .errors import InputError
from .grids import Grid
from .machine import available_memory


@contextlib.contextmanager
def quiet_nibabel():
    """Silence nibabel's own logger while reading a file, and restore its level afterwards.

    nibabel logs header fixes and problems (e.g. "data code 255 not supported", at ERROR level)
    straight to stderr through a handler of its own; while a file is checked they are silenced, so
    that a bad file gives one line (the InputError) and nothing else.
    """
    logger = logging.getLogger("nibabel.global")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


@dataclass(frozen=True)
class Volume:
    """A 3D image: ``data`` (float32, axes i, j, k) on ``grid`` (affine voxel -> world mm)."""

    data: np.ndarray
    grid: Grid

    def __post_init__(self) -> None:
        if tuple(self.data.shape) != self.grid.shape:
            raise ValueError(f"data shape {self.data.shape} does not match grid {self.grid.shape}")

    @property
    def affine(self) -> np.ndarray:
        return self.grid.affine


def load_nifti(path: str | os.PathLike) -> nib.Nifti1Image:
    """Open a NIfTI file and check its header and affine; raise :class:`InputError` on any problem."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file", path)
    if path.is_dir():
        raise InputError("is a folder, not a NIfTI file", path)
    if not path.is_file():
        raise InputError("is not a regular file", path)
    if not os.access(path, os.R_OK):
        raise InputError("permission denied (the file is not readable)", path)
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings(), quiet_nibabel():
            warnings.simplefilter("ignore")  # odd headers make nibabel/numpy warn; the checks below decide
            image = nib.load(str(path))
            if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
                raise InputError(f"not a NIfTI image (read as {type(image).__name__})", path)
            shape = tuple(int(n) for n in image.shape)
            affine = image.affine
            dtype = image.get_data_dtype()
            if dtype.kind not in "biuf":  # complex, RGB (structured) or other: not one real number per voxel
                kind = "complex-valued" if dtype.kind == "c" else "not real-valued"
                raise InputError(
                    f"the voxels are {kind} (datatype {dtype}); give a real-valued image (for complex "
                    "data, e.g. its magnitude or real part)",
                    path,
                )
            # the raw header: nibabel silently replaces a zero pixdim by 1 when it loads a file
            with nib.openers.ImageOpener(str(path)) as fileobj:
                raw_header = type(image.header).from_fileobj(fileobj, check=False)
            zooms = np.asarray(
                raw_header["pixdim"][1 : 1 + min(3, len(shape))],  # 2D: load_volume says so
                dtype=np.float64,
            )
    except InputError:
        raise
    except Exception as error:  # nibabel raises many types for unreadable files
        if isinstance(error, nib.filebasedimages.ImageFileError) and "work out file type" in str(error):
            raise InputError(
                "not a readable NIfTI image (no NIfTI header: not a NIfTI file, or cut short)", path
            ) from None
        raise InputError(f"not a readable NIfTI image ({short_error(error, path)})", path) from None
    if not shape or min(shape) < 1:
        raise InputError(f"the header gives an invalid image size {shape}", path)
    if affine is None or not np.all(np.isfinite(affine)):
        raise InputError("the affine has NaN or infinite entries", path)
    if np.any(zooms == 0) or not np.all(np.isfinite(zooms)):
        raise InputError(f"voxel sizes must be positive, header says {tuple(float(z) for z in zooms)}", path)
    with np.errstate(all="ignore"):
        determinant = float(np.linalg.det(affine[:3, :3]))
    if not abs(determinant) >= 1e-9:
        raise InputError("the affine is singular (zero voxel size or collinear axes)", path)
    return image


def load_data(image: nib.Nifti1Image, path: str | os.PathLike) -> np.ndarray:
    """Read the voxel array as float32, turning truncated/corrupt files into :class:`InputError`."""
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings(), quiet_nibabel():
            warnings.simplefilter("ignore")  # huge scale factors overflow to inf: check_finite counts them
            return np.asarray(image.get_fdata(dtype=np.float32))
    except Exception as error:
        raise InputError(f"could not read the voxel data ({short_error(error, path)})", path) from None


def check_file_size(image: nib.Nifti1Image, path: Path) -> None:
    """An uncompressed file must hold the voxel data its header promises (a .nii.gz is checked on reading)."""
    try:
        offset = int(image.dataobj.offset)  # the file's vox_offset (the loaded header's copy says 0)
        needed = offset + math.prod(int(n) for n in image.shape) * image.header.get_data_dtype().itemsize
    except Exception:  # unusable fields: reading the data reports them
        return
    if offset > 2**40:
        raise InputError(f"the header's voxel data offset (vox_offset {offset:.3g}) is impossible", path)
    if path.name.lower().endswith(".gz"):
        return
    size = path.stat().st_size
    if needed > size:
        raise InputError(
            f"the file is cut short: the header promises {needed} bytes (voxel data from byte "
            f"{offset}), the file has {size}",
            path,
        )


def load_volume(
    path: str | os.PathLike, *, allow_nonfinite: bool = False, allow_constant: bool = False, what: str = "image"
) -> Volume:
    """Load a 3D NIfTI image (a 4D image with one volume is accepted) as a checked :class:`Volume`.

    Raises :class:`InputError` for 2D or 4D+ images, NaN/Inf voxels (unless ``allow_nonfinite``,
    which sets them to 0), constant images (unless ``allow_constant``) and images too large for
    the memory at hand. ``what`` names the expected image in the 4D-series message.
    """
    image = load_nifti(path)
    shape = tuple(int(n) for n in image.shape)
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) == 4:
        raise InputError(f"is a 4D series of {shape[3]} volumes; give a 3D {what}", path)
    if len(shape) != 3:
        raise InputError(f"expected a 3D image, got {len(image.shape)}D with shape {image.shape}", path)
    if min(shape) < 2:
        raise InputError(f"expected a 3D volume, got shape {image.shape} (a 2D slice?)", path)
    needed = math.prod(shape) * 8  # float32 data plus a float32 working copy
    available = available_memory()
    if needed > available:
        raise InputError(
            f"the header's shape {shape} would need about {needed / 2**30:.1f} GiB of memory, "
            f"{available / 2**30:.1f} GiB are available (a corrupt header?)",
            path,
        )
    check_file_size(image, Path(path))
    data = load_data(image, path).reshape(shape)
    data = check_finite(data, path, allow_nonfinite)
    if not allow_constant and float(data.max()) == float(data.min()):
        raise InputError(f"the image is constant (every voxel is {float(data.min()):g})", path)
    return Volume(np.ascontiguousarray(data), Grid(shape, image.affine))


def check_finite(data: np.ndarray, path: str | os.PathLike, allow_nonfinite: bool) -> np.ndarray:
    bad = ~np.isfinite(data)
    count = int(bad.sum())
    if count:
        if not allow_nonfinite:
            amount = "1 voxel is" if count == 1 else f"{count} voxels are"
            raise InputError(f"{amount} NaN or infinite (use --nan-to-zero to accept them as 0)", path)
        data = np.where(bad, 0.0, data).astype(np.float32)
    return data


def load_mask(path: str | os.PathLike, grid: Grid) -> np.ndarray:
    """Load a mask that must lie on ``grid``; returns a boolean array. Raises on mismatch or empty."""
    mask = load_volume(path, allow_constant=True)
    if mask.grid != grid:
        raise InputError(f"the mask is on grid {mask.grid}, not on the image grid {grid}", path)
    mask_bool = mask.data > 0.5
    if not mask_bool.any():
        raise InputError("the mask is empty", path)
    return mask_bool


def to_nifti(data: np.ndarray, grid: Grid, dtype=np.float32) -> nib.Nifti1Image:
    """A NIfTI image with both qform and sform set to the grid's affine (scanner space)."""
    image = nib.Nifti1Image(np.asarray(data, dtype=dtype), grid.affine)
    image.set_qform(grid.affine, code=1)
    image.set_sform(grid.affine, code=1)
    image.header.set_xyzt_units("mm", "sec")
    return image


def save_volume(path: str | os.PathLike, data: np.ndarray, grid: Grid, dtype=np.float32) -> Path:
    """Write ``data`` on ``grid`` to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    if tuple(np.shape(data)) != grid.shape:
        raise ValueError(f"data shape {np.shape(data)} does not match grid {grid.shape}")
    suffix = ".nii.gz" if path.name.endswith(".nii.gz") else path.suffix
    with atomic_path(path, suffix) as temporary:
        nib.save(to_nifti(data, grid, dtype), str(temporary))
    return path


def save_json(path: str | os.PathLike, payload: dict) -> Path:
    """Write JSON atomically, with numpy scalars and arrays turned into plain numbers and lists."""
    path = Path(path)
    with atomic_path(path, ".json") as temporary:
        temporary.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
    return path


class atomic_path:
    """Context manager: yields a temporary path beside ``path`` and renames it into place on success."""

    def __init__(self, path: Path, suffix: str = ""):
        self.path = Path(path)
        self.suffix = suffix

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:  # as mkstemp, but with mode 0666 so that the umask gives the usual permissions
            name = self.path.parent / f".{self.path.name}.{secrets.token_hex(4)}.part{self.suffix}"
            try:
                os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            except FileExistsError:
                continue
            self.temporary = name
            return name

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            os.replace(self.temporary, self.path)
        else:
            self.temporary.unlink(missing_ok=True)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def short_error(error: Exception, path: str | os.PathLike | None = None) -> str:
    """The error's text on one line, at most 160 characters, with the file's path shortened to its name."""
    text = str(error)
    if path is not None:
        text = text.replace(str(path), Path(path).name)
    text = " ".join(text.split()) or type(error).__name__
    return text[:160]
