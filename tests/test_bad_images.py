"""Bad images given to ``aslsr run`` / ``generate`` / ``evaluate``: files that are not a readable
NIfTI image, wrong dimensions, bad voxel values, impossible geometry, corrupt or fuzzed headers.

Every case must end with exit code 2, exactly one line on stderr that names the offending file, no
traceback, no warning, no output folder or hidden ``.<name>.partial`` staging folder, and the input
files untouched (``one_line_error`` in conftest.py). The table in docs/bad_inputs.md lists these
tests; bad paths, options and configuration files are in test_bad_options.py.
"""

from __future__ import annotations

import gzip
import struct
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import assert_nothing_written, fingerprint, generate_args, one_line_error, run_error, tiny_run_args
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aslsr import io
from aslsr.cli import main
from aslsr.errors import InputError

# byte offsets of NIfTI-1 header fields (nifti1.h)
SIZEOF_HDR, DIM, DATATYPE, BITPIX, PIXDIM, VOX_OFFSET, SCL_SLOPE = 0, 40, 70, 72, 76, 108, 112
QFORM_CODE, SFORM_CODE, SROW_X, MAGIC, HEADER_BYTES = 252, 254, 280, 344, 348


# --------------------------------------------------------------------------------------------------
# helpers


def _image(path: str) -> nib.Nifti1Image:
    return nib.load(path)


def _save(path: Path, data: np.ndarray, affine: np.ndarray) -> str:
    nib.save(nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine), str(path))
    return str(path)


def _variant(tiny: dict, role: str, path: Path, change) -> str:
    """A copy of ``tiny[role]`` whose float data went through ``change(data) -> data``."""
    image = _image(tiny[role])
    return _save(path, change(image.get_fdata(dtype=np.float32).copy()), image.affine)


def _with_raw_header(source: str, path: Path, edit) -> str:
    """``source`` rewritten as a .nii.gz whose raw header bytes went through ``edit(bytearray)``."""
    raw = bytearray(gzip.decompress(Path(source).read_bytes()))
    edit(raw)
    path.write_bytes(gzip.compress(bytes(raw)))
    return str(path)


# --------------------------------------------------------------------------------------------------
# files that are not a readable NIfTI image


def test_run_text_file_named_nifti(tiny_case, tmp_path, capsys):
    text = tmp_path / "notes.nii.gz"
    text.write_text("this is not an image\n")
    run_error(capsys, tiny_case, tmp_path, str(text), "not a readable NIfTI", asl=str(text))


@pytest.mark.parametrize("keep", [0.5, 0.1], ids=["half", "header-cut"])
def test_run_truncated_file(tiny_case, tmp_path, capsys, keep):
    content = Path(tiny_case["t1w"]).read_bytes()
    cut = tmp_path / "cut_t1.nii.gz"
    cut.write_bytes(content[: int(len(content) * keep)])
    run_error(capsys, tiny_case, tmp_path, str(cut), t1=str(cut))


# --------------------------------------------------------------------------------------------------
# wrong dimensions


def test_run_2d_image(tiny_case, tmp_path, capsys):
    flat = _variant(tiny_case, "asl_lr", tmp_path / "flat.nii.gz", lambda d: d[:, :, 0])
    run_error(capsys, tiny_case, tmp_path, flat, "2D", asl=flat)


def test_run_5d_image(tiny_case, tmp_path, capsys):
    five = _variant(tiny_case, "asl_lr", tmp_path / "five.nii.gz", lambda d: np.stack([d, d], -1)[..., None, :])
    run_error(capsys, tiny_case, tmp_path, five, "5D", asl=five)


def test_run_4d_t1(tiny_case, tmp_path, capsys):
    t1 = _variant(tiny_case, "t1w", tmp_path / "t1_4d.nii.gz", lambda d: np.stack([d, d], -1))
    line = run_error(capsys, tiny_case, tmp_path, t1, "is a 4D series of 2 volumes; give a 3D image", t1=t1)
    assert "aslcontext" not in line


# --------------------------------------------------------------------------------------------------
# voxel values


def _with_nonfinite(data: np.ndarray) -> np.ndarray:
    data[0, 0, 0] = data[1, 2, 3] = np.nan
    data[4, 5, 6] = np.inf
    return data


@pytest.mark.parametrize("role", ["asl_lr", "t1w"])
def test_run_nan_voxels_are_counted(tiny_case, tmp_path, capsys, role):
    bad = _variant(tiny_case, role, tmp_path / f"nan_{role}.nii.gz", _with_nonfinite)
    option = {"asl": bad} if role == "asl_lr" else {"t1": bad}
    run_error(capsys, tiny_case, tmp_path, bad, "3 voxels are NaN or infinite", "--nan-to-zero", **option)


@pytest.fixture(scope="module")
def nan_run(tiny_case, tmp_path_factory):
    """A run on an ASL with NaN/Inf voxels accepted by --nan-to-zero (also gives generate a model)."""
    folder = tmp_path_factory.mktemp("nan_run")
    asl = _variant(tiny_case, "asl_lr", folder / "asl_nan.nii.gz", _with_nonfinite)
    before = fingerprint([asl, tiny_case["t1w"]])
    code = main(tiny_run_args(tiny_case, folder / "out", "--nan-to-zero", "--no-register", asl=asl))
    unchanged = fingerprint([asl, tiny_case["t1w"]]) == before
    return {"code": code, "out": folder / "out", "asl": asl, "unchanged": unchanged}


def test_run_nan_to_zero_accepts_them(nan_run):
    assert nan_run["code"] == 0 and nan_run["unchanged"]
    sr = io.load_volume(nan_run["out"] / "sr.nii.gz")
    assert np.isfinite(sr.data).all()


@pytest.mark.parametrize("value", [0.0, 250.0], ids=["all-zero", "constant"])
def test_run_constant_image(tiny_case, tmp_path, capsys, value):
    flat = _variant(tiny_case, "asl_lr", tmp_path / "flat.nii.gz", lambda d: np.full_like(d, value))
    run_error(capsys, tiny_case, tmp_path, flat, "the image is constant", f"every voxel is {value:g}", asl=flat)


# --------------------------------------------------------------------------------------------------
# geometry


def test_run_zero_voxel_size_in_header(tiny_case, tmp_path, capsys):
    zero = _with_raw_header(
        tiny_case["asl_lr"], tmp_path / "zero_pixdim.nii.gz", lambda raw: struct.pack_into("<f", raw, PIXDIM + 4, 0.0)
    )
    run_error(capsys, tiny_case, tmp_path, zero, "voxel sizes must be positive", asl=zero)


def test_run_singular_affine(tiny_case, tmp_path, capsys):
    def zero_affine(raw: bytearray) -> None:
        struct.pack_into("<12f", raw, SROW_X, *([0.0] * 12))  # srow_x, srow_y, srow_z all zero
        struct.pack_into("<hh", raw, QFORM_CODE, 1, 1)  # both codes set: the sform wins

    singular = _with_raw_header(tiny_case["asl_lr"], tmp_path / "singular.nii.gz", zero_affine)
    run_error(capsys, tiny_case, tmp_path, singular, "the affine is singular", asl=singular)


def test_run_fields_of_view_do_not_overlap(tiny_case, tmp_path, capsys):
    image = _image(tiny_case["t1w"])
    far = image.affine.copy()
    far[:3, 3] += [1000.0, 0.0, 0.0]
    moved = _save(tmp_path / "t1_far.nii.gz", image.get_fdata(dtype=np.float32), far)
    run_error(capsys, tiny_case, tmp_path, moved, "does not overlap the ASL field of view", t1=moved)


def test_run_mask_on_another_grid(tiny_case, tmp_path, capsys):
    mask = tiny_case["mask"]  # the NR-grid mask, not on the LR ASL grid
    run_error(capsys, tiny_case, tmp_path, mask, "not on the image grid", extra=["--mask", mask])


def test_run_empty_mask(tiny_case, tmp_path, capsys):
    empty = _variant(tiny_case, "mask_lr", tmp_path / "empty_mask.nii.gz", np.zeros_like)
    run_error(capsys, tiny_case, tmp_path, empty, "the mask is empty", extra=["--mask", empty])


# --------------------------------------------------------------------------------------------------
# aslsr generate


def test_generate_bad_inputs(nan_run, tiny_case, tmp_path, capsys):
    out = tmp_path / "sr.nii.gz"
    series = _variant(tiny_case, "asl_lr", tmp_path / "series.nii.gz", lambda d: np.stack([d, d], -1))
    far = _image(tiny_case["t1w"]).affine.copy()
    far[:3, 3] += [0.0, 1000.0, 0.0]
    moved = _save(tmp_path / "t1_far.nii.gz", _image(tiny_case["t1w"]).get_fdata(dtype=np.float32), far)
    missing = str(tmp_path / "missing.nii.gz")
    cases = [
        (dict(asl=missing), (missing, "no such file")),
        (dict(asl=series), (series, "a 4D ASL series needs series_aslcontext.tsv beside it")),
        (dict(asl=nan_run["asl"]), (nan_run["asl"], "3 voxels are NaN")),
        (dict(t1=moved), (moved, "does not overlap")),
        (dict(extra=["--voxel-size", "0.001"]), ("would need about", "GiB of memory")),
        (dict(extra=["--like", missing]), (missing, "no such file")),
        (dict(extra=["--mask", tiny_case["mask"]]), (tiny_case["mask"], "not on the image grid")),
    ]
    for options, fragments in cases:
        one_line_error(capsys, generate_args(nan_run, tiny_case, out, **options), *fragments)
        assert not out.exists() and not list(tmp_path.glob(".sr.nii.gz*"))


# --------------------------------------------------------------------------------------------------
# aslsr evaluate (most of its bad inputs are in test_cli_evaluate.py)


def test_evaluate_corrupt_headers(tiny_case, tmp_path, capsys):
    ref = tiny_case["asl_nr"]
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(Path(tiny_case["asl_nr"]).read_bytes()[:400])
    zero = _with_raw_header(ref, tmp_path / "zero.nii.gz", lambda raw: struct.pack_into("<f", raw, PIXDIM + 8, 0.0))
    huge = _with_raw_header(
        ref, tmp_path / "huge.nii.gz", lambda raw: struct.pack_into("<4h", raw, DIM, 3, 32767, 32767, 32767)
    )
    cut = tmp_path / "cut.nii"  # uncompressed and cut short: the header promises more than the file holds
    cut.write_bytes(gzip.decompress(Path(ref).read_bytes())[:2000])
    for bad, fragment in [
        (str(truncated), "no NIfTI header"),
        (str(cut), "the file is cut short"),
        (zero, "voxel sizes must be positive"),
        (huge, "GiB of memory"),
    ]:
        out = tmp_path / "metrics.json"
        one_line_error(capsys, ["evaluate", "--ref", ref, "--json", str(out), bad], bad, fragment)
        assert_nothing_written(out)


# --------------------------------------------------------------------------------------------------
# fuzzing the NIfTI header


@pytest.fixture(scope="module")
def header_seed(tmp_path_factory) -> bytes:
    """An uncompressed, valid small NIfTI-1 file (header + data)."""
    path = tmp_path_factory.mktemp("fuzz") / "seed.nii"
    data = np.random.default_rng(0).normal(size=(12, 11, 11)).astype(np.float32)
    affine = np.diag([2.0, 2.5, 3.0, 1.0])
    affine[:3, 3] = [-5.0, 4.0, 1.0]
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path.read_bytes()


_short = st.integers(-32768, 32767)
_float = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32), st.sampled_from([0.0, -1.0, 1e-30, 1e30]))
_field_edits = st.one_of(
    st.tuples(st.just("dim"), st.integers(0, 7), _short),
    st.tuples(st.just("pixdim"), st.integers(0, 7), _float),
    st.tuples(
        st.just("datatype"),
        st.sampled_from([0, 1, 2, 4, 8, 16, 32, 64, 128, 255, 256, 511, 768, 1536, 2048, 2304, 7, -3, 32767]),
        st.none(),
    ),
    st.tuples(st.just("vox_offset"), st.none(), _float),
    st.tuples(st.just("sizeof_hdr"), st.none(), st.integers(-(2**31), 2**31 - 1)),
    st.tuples(st.just("magic"), st.none(), st.binary(min_size=4, max_size=4)),
    st.tuples(st.just("scl"), st.integers(0, 1), _float),
    st.tuples(st.just("codes"), st.integers(-2, 5), st.integers(-2, 5)),
    st.tuples(st.just("flip"), st.integers(0, HEADER_BYTES - 1), st.integers(0, 255)),
)


def _corrupt(raw: bytearray, edit) -> None:
    name, where, value = edit
    if name == "dim":
        struct.pack_into("<h", raw, DIM + 2 * where, value)
    elif name == "pixdim":
        struct.pack_into("<f", raw, PIXDIM + 4 * where, value)
    elif name == "datatype":
        struct.pack_into("<h", raw, DATATYPE, where)
    elif name == "vox_offset":
        struct.pack_into("<f", raw, VOX_OFFSET, value)
    elif name == "sizeof_hdr":
        struct.pack_into("<i", raw, SIZEOF_HDR, value)
    elif name == "magic":
        raw[MAGIC : MAGIC + 4] = value
    elif name == "scl":
        struct.pack_into("<f", raw, SCL_SLOPE + 4 * where, value)
    elif name == "codes":
        struct.pack_into("<hh", raw, QFORM_CODE, where, value)
    else:  # flip: xor one byte
        raw[where] ^= value


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(_field_edits, min_size=1, max_size=4), gzipped=st.booleans())
def test_fuzzed_headers_load_or_raise_input_error(header_seed, tmp_path, edits, gzipped):
    raw = bytearray(header_seed)
    for edit in edits:
        _corrupt(raw, edit)
    path = tmp_path / ("fuzz.nii.gz" if gzipped else "fuzz.nii")
    path.write_bytes(gzip.compress(bytes(raw)) if gzipped else bytes(raw))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # only exceptions matter here; the CLI tests check for warnings
        try:
            volume = io.load_volume(path, allow_constant=True)
        except InputError as error:
            message = str(error)
            assert message.startswith(f"{path}: ") and "\n" not in message, message
            return
    assert isinstance(volume, io.Volume)
    assert volume.data.dtype == np.float32 and volume.data.ndim == 3
    assert np.isfinite(volume.data).all() and np.isfinite(volume.affine).all()
    assert abs(np.linalg.det(volume.affine[:3, :3])) > 1e-9


def test_fuzzed_header_through_evaluate(header_seed, tmp_path, capsys):
    """A few fixed corruptions through the whole CLI: one line naming the file."""
    ref = tmp_path / "ref.nii"
    ref.write_bytes(header_seed)
    for index, edit in enumerate(
        [
            ("dim", 0, 9),
            ("datatype", 255, None),
            ("vox_offset", None, 1e30),
            ("magic", None, b"xxxx"),
            ("pixdim", 2, float("nan")),
            ("dim", 1, 0),
            ("dim", 2, -4),
        ]
    ):
        raw = bytearray(header_seed)
        _corrupt(raw, edit)
        bad = tmp_path / f"bad{index}.nii"
        bad.write_bytes(bytes(raw))
        one_line_error(capsys, ["evaluate", "--ref", str(ref), str(bad)], str(bad))
