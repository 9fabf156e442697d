"""NIfTI loading (one-line errors naming the file) and atomic saving."""

from __future__ import annotations

import gzip
import json
import os
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from aslsr import io
from aslsr.errors import InputError
from aslsr.grids import Grid, rigid_matrix

PIXDIM_1_OFFSET = 80  # byte offset of pixdim[1] in a NIfTI-1 header


def _oblique_lps_affine() -> np.ndarray:
    affine = rigid_matrix((12.0, -7.0, 25.0), (0.0, 0.0, 0.0))
    affine[:3, :3] = affine[:3, :3] @ np.diag([-1.2, -0.9, 2.5])  # L, P, S-ish axes, anisotropic
    affine[:3, 3] = [91.3, -40.2, 17.7]
    return affine


def _write(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    nib.save(nib.Nifti1Image(np.asarray(data), np.eye(4) if affine is None else affine), str(path))
    return path


def _random(shape=(5, 6, 7), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _assert_error(path: Path, *fragments: str) -> InputError:
    with pytest.raises(InputError) as info:
        io.load_volume(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return info.value


@pytest.mark.parametrize("affine", [np.diag([2.0, 2.0, 3.0, 1.0]), _oblique_lps_affine()], ids=["ras", "oblique_lps"])
@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_save_load_round_trip(tmp_path: Path, affine: np.ndarray, suffix: str) -> None:
    grid = Grid((5, 6, 7), affine)
    data = _random()
    path = io.save_volume(tmp_path / "sub" / f"image{suffix}", data, grid)
    assert path.exists() and not [p for p in path.parent.iterdir() if p.name.startswith(".")]
    volume = io.load_volume(path)
    np.testing.assert_array_equal(volume.data, data)
    assert volume.data.dtype == np.float32
    assert volume.grid == grid
    image = nib.load(str(path))
    qform, qcode = image.header.get_qform(coded=True)
    sform, scode = image.header.get_sform(coded=True)
    assert qcode == 1 and scode == 1
    np.testing.assert_allclose(qform, affine, atol=1e-4)
    np.testing.assert_allclose(sform, affine, atol=1e-4)
    assert image.header.get_xyzt_units()[0] == "mm"


def test_save_checks_shape(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not match"):
        io.save_volume(tmp_path / "x.nii.gz", np.zeros((2, 2, 2)), Grid((2, 2, 3), np.eye(4)))
    assert not list(tmp_path.iterdir())


def test_failed_save_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    grid = Grid((5, 6, 7), np.eye(4))
    target = io.save_volume(tmp_path / "out.nii.gz", _random(), grid)
    before = target.read_bytes()

    def broken_save(image, filename):
        Path(filename).write_bytes(b"\x1f\x8b partial")
        raise OSError("disk full")

    monkeypatch.setattr(io.nib, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        io.save_volume(target, _random(seed=1), grid)
    with pytest.raises(OSError, match="disk full"):
        io.save_volume(tmp_path / "new.nii.gz", _random(seed=1), grid)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nii.gz"]
    assert target.read_bytes() == before


def test_save_json(tmp_path: Path) -> None:
    payload = {"a": np.float32(1.5), "b": np.arange(3), "c": tmp_path, "d": np.int64(2), "e": None}
    path = io.save_json(tmp_path / "r.json", payload)
    assert json.loads(path.read_text()) == {"a": 1.5, "b": [0, 1, 2], "c": str(tmp_path), "d": 2, "e": None}
    with pytest.raises(TypeError):
        io.save_json(tmp_path / "bad.json", {"x": object()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_saved_files_get_the_permissions_of_the_umask_in_force(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)  # set after aslsr.io was imported: it must not have kept an old umask
    try:
        path = io.save_volume(tmp_path / "x.nii.gz", _random(), Grid((5, 6, 7), np.eye(4)))
        copy = tmp_path / "y.txt"
        with io.atomic_path(copy) as temporary:
            temporary.write_text("x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert copy.stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.nii.gz", "y.txt"]


def test_quiet_nibabel_is_scoped() -> None:
    import logging

    logger = logging.getLogger("nibabel.global")
    before = logger.level
    with io.quiet_nibabel():
        assert logger.level == logging.CRITICAL
    assert logger.level == before
    with pytest.raises(RuntimeError), io.quiet_nibabel():
        raise RuntimeError("restored on errors too")
    assert logger.level == before


def test_load_accepts_4d_with_one_volume(tmp_path: Path) -> None:
    data = _random()
    volume = io.load_volume(_write(tmp_path / "x.nii.gz", data[..., None], _oblique_lps_affine()))
    np.testing.assert_array_equal(volume.data, data)
    assert volume.grid == Grid(data.shape, _oblique_lps_affine())


def test_missing_file(tmp_path: Path) -> None:
    _assert_error(tmp_path / "nothing.nii.gz", "no such file")


def test_folder(tmp_path: Path) -> None:
    _assert_error(tmp_path, "folder")


def test_text_file_named_nifti(tmp_path: Path) -> None:
    path = tmp_path / "text.nii.gz"
    path.write_text("not an image\n")
    _assert_error(path, "not a readable NIfTI")


def test_truncated_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "full.nii.gz", _random((20, 20, 20)))
    content = path.read_bytes()
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(content[: len(content) // 2])
    _assert_error(cut)
    cut.write_bytes(content[:60])  # not even a whole header
    _assert_error(cut)


def test_2d_slice_stored_as_3d(tmp_path: Path) -> None:
    _assert_error(_write(tmp_path / "slice.nii.gz", _random((6, 6, 1))), "2D")


def test_2d_image(tmp_path: Path) -> None:
    _assert_error(_write(tmp_path / "flat.nii.gz", _random((6, 6))), "2D")


def test_5d_image(tmp_path: Path) -> None:
    _assert_error(_write(tmp_path / "five.nii.gz", _random((4, 4, 4, 1, 2))), "5D")


def test_4d_series(tmp_path: Path) -> None:
    _assert_error(_write(tmp_path / "series.nii.gz", _random((4, 4, 4, 3))), "4D")


def test_nans_are_counted(tmp_path: Path) -> None:
    data = _random()
    data[0, 0, 0] = data[1, 2, 3] = np.nan
    data[4, 5, 6] = np.inf
    path = _write(tmp_path / "nan.nii.gz", data)
    _assert_error(path, "3 voxels", "NaN")
    volume = io.load_volume(path, allow_nonfinite=True)
    assert volume.data[0, 0, 0] == 0.0 and volume.data[4, 5, 6] == 0.0 and np.isfinite(volume.data).all()


def test_constant_image(tmp_path: Path) -> None:
    path = _write(tmp_path / "flat.nii.gz", np.full((4, 4, 4), 3.0, dtype=np.float32))
    _assert_error(path, "constant")
    assert io.load_volume(path, allow_constant=True).data.max() == 3.0


def test_zero_voxel_size_in_affine(tmp_path: Path) -> None:
    image = nib.Nifti1Image(_random(), None)
    image.set_sform(np.diag([0.0, 2.0, 2.0, 1.0]), code=1)
    image.set_qform(None, code=0)
    path = tmp_path / "zero.nii.gz"
    nib.save(image, str(path))
    _assert_error(path)


def _with_raw_pixdim(tmp_path: Path, value: float) -> Path:
    """A qform-only NIfTI whose header says voxel size ``value`` along i (nibabel never writes that)."""
    image = nib.Nifti1Image(_random(), None)
    image.set_qform(np.diag([2.0, 2.0, 2.0, 1.0]), code=1)
    image.set_sform(None, code=0)
    plain = tmp_path / "plain.nii"
    nib.save(image, str(plain))
    raw = bytearray(plain.read_bytes())
    struct.pack_into("<f", raw, PIXDIM_1_OFFSET, value)
    path = tmp_path / "zero.nii.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(bytes(raw))
    return path


def test_zero_voxel_size_in_header(tmp_path: Path) -> None:
    _assert_error(_with_raw_pixdim(tmp_path, 0.0), "voxel size")


def test_load_mask(tmp_path: Path) -> None:
    grid = Grid((5, 6, 7), _oblique_lps_affine())
    mask = np.zeros(grid.shape, dtype=np.float32)
    mask[1:4, 2:5, 3:6] = 1.0
    path = io.save_volume(tmp_path / "mask.nii.gz", mask, grid, dtype=np.uint8)
    np.testing.assert_array_equal(io.load_mask(path, grid), mask > 0.5)
    with pytest.raises(InputError, match="not on the image grid") as info:
        io.load_mask(path, Grid(grid.shape, np.eye(4)))
    assert str(path) in str(info.value)
    empty = io.save_volume(tmp_path / "empty.nii.gz", np.zeros(grid.shape), grid)
    with pytest.raises(InputError, match="empty"):
        io.load_mask(empty, grid)


def test_mask_mismatch_message_tells_the_grids_apart(tmp_path: Path) -> None:
    grid = Grid((5, 6, 7), np.diag([2.0, 2.0, 2.0, 1.0]))
    moved = Grid(grid.shape, grid.affine + np.array([[0, 0, 0, 4.0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]))
    path = io.save_volume(tmp_path / "mask.nii.gz", np.ones(grid.shape), moved)
    with pytest.raises(InputError) as info:
        io.load_mask(path, grid)
    assert repr(moved) in str(info.value) and repr(grid) in str(info.value)
    assert repr(moved) != repr(grid)


def test_volume_checks_shape() -> None:
    with pytest.raises(ValueError):
        io.Volume(np.zeros((2, 2, 2), dtype=np.float32), Grid((2, 2, 3), np.eye(4)))
