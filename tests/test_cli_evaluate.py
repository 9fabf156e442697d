"""``aslsr evaluate`` on real NIfTI files: the table, the JSON contract and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from aslsr import metrics
from aslsr.cli import main
from aslsr.grids import rigid_matrix

SHAPE = (14, 12, 12)
ROW_KEYS = {
    "psnr",
    "ssim",
    "psnr_brain",
    "ssim_brain",
    "lesion_contrast",
    "lesion_contrast_ref",
    "lesion_contrast_error",
}


def _affine() -> np.ndarray:
    affine = rigid_matrix((8.0, 0.0, -15.0), (0.0, 0.0, 0.0))
    affine[:3, :3] = affine[:3, :3] @ np.diag([-2.0, 2.0, 3.0])  # oblique LAS
    affine[:3, 3] = [30.0, -20.0, 10.0]
    return affine


def _save(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> str:
    nib.save(nib.Nifti1Image(np.asarray(data, dtype=np.float32), _affine() if affine is None else affine), str(path))
    return str(path)


@pytest.fixture
def case(tmp_path: Path) -> dict:
    rng = np.random.default_rng(0)
    ijk = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in SHAPE], indexing="ij"))
    mask = (ijk**2).sum(axis=0) < 0.8
    ref = np.where(mask, 60.0, 5.0) + rng.normal(0, 3, SHAPE)
    roi = np.zeros(SHAPE, dtype=bool)
    roi[2:5, 4:8, 4:8] = True
    ref[roi] = 30.0
    sr = ref + rng.normal(0, 2, SHAPE)
    linear = ref + rng.normal(0, 6, SHAPE)
    return {
        "dir": tmp_path,
        "ref_data": ref,
        "mask_data": mask,
        "roi_data": roi,
        "ref": _save(tmp_path / "ref.nii.gz", ref),
        "mask": _save(tmp_path / "mask.nii.gz", mask),
        "roi": _save(tmp_path / "roi.nii.gz", roi),
        "preds": {"sr": _save(tmp_path / "sr.nii.gz", sr), "linear": _save(tmp_path / "linear.nii", linear)},
        "pred_data": {"sr": sr, "linear": linear},
    }


def _one_line_error(capsys: pytest.CaptureFixture, code: int, *fragments: str) -> str:
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("aslsr evaluate: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert captured.out == ""
    return lines[0]


def test_table_and_json_contract(case: dict, capsys: pytest.CaptureFixture) -> None:
    out = case["dir"] / "results" / "metrics.json"
    preds = list(case["preds"].values())
    code = main(
        ["evaluate", "--ref", case["ref"], "--mask", case["mask"], "--lesion", case["roi"], "--json", str(out), *preds]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err == ""
    assert case["ref"] in captured.out and "sr" in captured.out and "linear" in captured.out
    assert "PSNR" in captured.out and "SSIM" in captured.out and "brain" in captured.out

    payload = json.loads(out.read_text())
    assert set(payload) == {"reference", "mask", "results"}
    assert payload["reference"] == case["ref"] and payload["mask"] == case["mask"]
    assert list(payload["results"]) == ["sr", "linear"]
    ref = case["ref_data"].astype(np.float32)
    mask, roi = case["mask_data"], case["roi_data"]
    for name, row in payload["results"].items():
        assert set(row) == ROW_KEYS
        pred = case["pred_data"][name].astype(np.float32)
        assert row["psnr"] == pytest.approx(metrics.psnr(ref, pred), rel=1e-9)
        assert row["ssim"] == pytest.approx(metrics.ssim(ref, pred), rel=1e-9)
        assert row["psnr_brain"] == pytest.approx(metrics.psnr(ref, pred, mask), rel=1e-9)
        assert row["ssim_brain"] == pytest.approx(metrics.ssim(ref, pred, mask), rel=1e-9)
        contrast, reference = metrics.lesion_contrast(pred, roi, mask), metrics.lesion_contrast(ref, roi, mask)
        assert row["lesion_contrast"] == pytest.approx(contrast, rel=1e-9)
        assert row["lesion_contrast_ref"] == pytest.approx(reference, rel=1e-9)
        assert row["lesion_contrast_error"] == pytest.approx(abs(contrast / reference - 1), rel=1e-9)
    assert payload["results"]["sr"]["psnr"] > payload["results"]["linear"]["psnr"]
    assert payload["results"]["sr"]["lesion_contrast_ref"] == pytest.approx(0.5, abs=0.05)


def test_without_mask_and_with_exact_copy(case: dict, capsys: pytest.CaptureFixture) -> None:
    out = case["dir"] / "plain.json"
    copy = _save(case["dir"] / "copy.nii.gz", case["ref_data"])
    assert main(["evaluate", "--ref", case["ref"], "--json", str(out), case["preds"]["sr"], copy]) == 0
    assert "inf" in capsys.readouterr().out
    payload = json.loads(out.read_text())
    assert payload["mask"] is None
    assert set(payload["results"]["sr"]) == {"psnr", "ssim"}
    assert payload["results"]["copy"]["psnr"] is None  # infinite PSNR: null keeps the JSON valid
    assert payload["results"]["copy"]["ssim"] == pytest.approx(1.0)


def test_lesion_without_mask(case: dict, capsys: pytest.CaptureFixture) -> None:
    out = case["dir"] / "lesion.json"
    assert (
        main(["evaluate", "--ref", case["ref"], "--lesion", case["roi"], "--json", str(out), case["preds"]["sr"]]) == 0
    )
    row = json.loads(out.read_text())["results"]["sr"]
    assert set(row) == {"psnr", "ssim", "lesion_contrast", "lesion_contrast_ref", "lesion_contrast_error"}
    pred = case["pred_data"]["sr"].astype(np.float32)
    assert row["lesion_contrast"] == pytest.approx(metrics.lesion_contrast(pred, case["roi_data"]), rel=1e-9)
    assert "lesion" in capsys.readouterr().out


def _bad_inputs(case: dict) -> dict[str, tuple[list[str], tuple[str, ...]]]:
    folder, ref, mask, roi, sr = case["dir"], case["ref"], case["mask"], case["roi"], case["preds"]["sr"]
    text = folder / "text.nii.gz"
    text.write_text("hello\n")
    nan = case["ref_data"].copy()
    nan[1, 2, 3] = nan[4, 5, 6] = np.nan
    shifted = _affine()
    shifted[:3, 3] += [1.0, 0.0, 0.0]
    small = np.random.default_rng(1).normal(size=(12, 12, 8))
    empty_mirror = np.zeros(SHAPE, dtype=bool)
    empty_mirror[0, 5, 5] = True  # its mirror (13, 5, 5) is outside the mask
    missing = str(folder / "missing.nii.gz")
    return {
        "missing pred": ([ref, missing], (missing, "no such file")),
        "missing ref": ([missing, sr], (missing, "no such file")),
        "not nifti": ([ref, str(text)], (str(text), "not a readable NIfTI")),
        "2d slice": ([ref, _save(folder / "slice.nii.gz", case["ref_data"][:, :, :1])], ("slice.nii.gz", "2D")),
        "5d": (
            [ref, _save(folder / "five.nii.gz", case["ref_data"][..., None, None].repeat(2, 4))],
            ("five.nii.gz", "5D"),
        ),
        "4d ref": ([_save(folder / "four.nii.gz", np.stack([case["ref_data"]] * 2, -1)), sr], ("four.nii.gz", "4D")),
        "nans": ([ref, _save(folder / "nan.nii.gz", nan)], ("nan.nii.gz", "2 voxels", "NaN")),
        "other affine": (
            [ref, _save(folder / "moved.nii.gz", case["ref_data"], shifted)],
            ("moved.nii.gz", "not on the reference grid"),
        ),
        "other shape": (
            [ref, _save(folder / "crop.nii.gz", case["ref_data"][:-1])],
            ("crop.nii.gz", "not on the reference grid"),
        ),
        "mask elsewhere": (
            [ref, "--mask", _save(folder / "m.nii.gz", case["mask_data"], shifted), sr],
            ("m.nii.gz", "not on the image grid"),
        ),
        "lesion elsewhere": (
            [ref, "--lesion", _save(folder / "r.nii.gz", case["roi_data"], shifted), sr],
            ("r.nii.gz", "lesion ROI", "not on the reference grid"),
        ),
        "empty mirror": (
            [ref, "--mask", mask, "--lesion", _save(folder / "edge.nii.gz", empty_mirror), sr],
            ("edge.nii.gz", "mirror region", "empty"),
        ),
        "empty lesion": (
            [ref, "--lesion", _save(folder / "none.nii.gz", np.zeros(SHAPE)), sr],
            ("none.nii.gz", "empty"),
        ),
        "constant ref": ([_save(folder / "flat.nii.gz", np.ones(SHAPE)), sr], ("flat.nii.gz", "constant")),
        "too small for ssim": (
            [_save(folder / "small.nii.gz", small), _save(folder / "small_sr.nii.gz", small)],
            ("small.nii.gz", "11 voxels"),
        ),
        "same stem twice": ([ref, sr, _save(folder / "sr.nii", case["ref_data"])], ("sr.nii", "stem")),
        "valid": ([ref, "--lesion", roi, "--mask", mask, sr], ()),  # sanity: the same set-up passes
    }


BAD = [
    "missing pred",
    "missing ref",
    "not nifti",
    "2d slice",
    "5d",
    "4d ref",
    "nans",
    "other affine",
    "other shape",
    "mask elsewhere",
    "lesion elsewhere",
    "empty mirror",
    "empty lesion",
    "constant ref",
    "too small for ssim",
    "same stem twice",
]


@pytest.mark.parametrize("kind", BAD)
def test_bad_input_is_one_line_and_exit_2(case: dict, capsys: pytest.CaptureFixture, kind: str) -> None:
    (ref, *rest), fragments = _bad_inputs(case)[kind]
    out = case["dir"] / "never.json"
    code = main(["evaluate", "--ref", ref, "--json", str(out), *rest])
    _one_line_error(capsys, code, *fragments)
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".never.json")]


def test_valid_call_from_bad_input_table(case: dict, capsys: pytest.CaptureFixture) -> None:
    (ref, *rest), _ = _bad_inputs(case)["valid"]
    assert main(["evaluate", "--ref", ref, *rest]) == 0
    assert capsys.readouterr().err == ""


def test_nan_to_zero(case: dict, capsys: pytest.CaptureFixture) -> None:
    data = case["pred_data"]["sr"].copy()
    data[3, 4, 5] = np.nan
    path = _save(case["dir"] / "holes.nii.gz", data)
    out = case["dir"] / "holes.json"
    assert main(["evaluate", "--ref", case["ref"], "--nan-to-zero", "--json", str(out), path]) == 0
    data[3, 4, 5] = 0.0
    expected = metrics.psnr(case["ref_data"].astype(np.float32), data.astype(np.float32))
    assert json.loads(out.read_text())["results"]["holes"]["psnr"] == pytest.approx(expected, rel=1e-9)
    assert capsys.readouterr().err == ""


def test_2d_image(case: dict, capsys: pytest.CaptureFixture) -> None:
    flat = _save(case["dir"] / "flat2d.nii.gz", case["ref_data"][:, :, 0])
    _one_line_error(capsys, main(["evaluate", "--ref", case["ref"], flat]), "flat2d.nii.gz")


@pytest.mark.parametrize("argv", [["--help"], ["evaluate", "--help"]])
def test_help_exits_0(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "evaluate" in text
    if argv[0] == "evaluate":
        assert "--ref" in text and "--lesion" in text and "--json" in text


def test_missing_arguments_is_a_usage_error(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["evaluate", "--ref", "x.nii.gz"])
    assert info.value.code == 2


def test_stem() -> None:
    from aslsr.scoring import stem

    assert stem("/a/b/sr.nii.gz") == "sr" and stem("linear.nii") == "linear" and stem("X.NII.GZ") == "X"
    assert stem("dir.v1/spline.nii.gz") == "spline"
