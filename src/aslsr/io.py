"""NIfTI in and out: validated loading (one-line errors naming the file) and atomic saving.

Arrays keep NIfTI's voxel order (i, j, k); the affine maps them to world RAS mm (see :mod:`grids`).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from .errors import InputError
from .grids import Grid

# nibabel logs header fixes (e.g. "pixdim[1,2,3] should be non-zero") to stderr; errors stay one line
logging.getLogger("nibabel.global").setLevel(logging.ERROR)


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
    try:
        image = nib.load(str(path))
    except Exception as error:  # nibabel raises many types for unreadable files
        raise InputError(f"not a readable NIfTI image ({_short(error)})", path) from None
    if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
        raise InputError(f"not a NIfTI image (read as {type(image).__name__})", path)
    affine = image.affine
    if affine is None or not np.all(np.isfinite(affine)):
        raise InputError("the affine has NaN or infinite entries", path)
    # the raw header: nibabel silently replaces a zero pixdim by 1 when it loads a file
    with nib.openers.ImageOpener(str(path)) as fileobj:
        raw_header = type(image.header).from_fileobj(fileobj, check=False)
    zooms = raw_header["pixdim"][1:1 + min(3, len(image.shape))]  # 2D images: load_volume says so
    if np.any(zooms == 0) or not np.all(np.isfinite(zooms)):
        raise InputError(f"voxel sizes must be positive, header says {tuple(float(z) for z in zooms)}", path)
    if abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise InputError("the affine is singular", path)
    return image


def load_data(image: nib.Nifti1Image, path: str | os.PathLike) -> np.ndarray:
    """Read the voxel array as float32, turning truncated/corrupt files into :class:`InputError`."""
    try:
        return np.asarray(image.get_fdata(dtype=np.float32))
    except Exception as error:
        raise InputError(f"could not read the voxel data ({_short(error)})", path) from None


def load_volume(path: str | os.PathLike, *, allow_nonfinite: bool = False,
                allow_constant: bool = False) -> Volume:
    """Load a 3D NIfTI image (a 4D image with one volume is accepted) as a checked :class:`Volume`.

    Raises :class:`InputError` for 2D or 4D+ images, NaN/Inf voxels (unless ``allow_nonfinite``,
    which sets them to 0) and constant images (unless ``allow_constant``).
    """
    image = load_nifti(path)
    shape = image.shape
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise InputError(f"expected a 3D image, got {len(image.shape)}D with shape {image.shape}", path)
    if min(shape) < 2:
        raise InputError(f"expected a 3D volume, got shape {image.shape} (a 2D slice?)", path)
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
            raise InputError(f"{count} voxels are NaN or infinite (use --nan-to-zero to accept them as 0)", path)
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


_UMASK = os.umask(0o022)
os.umask(_UMASK)


class atomic_path:
    """Context manager: yields a temporary path beside ``path`` and renames it into place on success."""

    def __init__(self, path: Path, suffix: str = ""):
        self.path = Path(path)
        self.suffix = suffix

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=f".part{self.suffix}",
                                        dir=self.path.parent)
        os.close(handle)
        os.chmod(name, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        self.temporary = Path(name)
        return self.temporary

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


def _short(error: Exception) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:160]
