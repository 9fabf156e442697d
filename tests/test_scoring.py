"""Scoring a run folder against the phantom's references (what ``aslsr demo`` and the benchmarks print)."""

from __future__ import annotations

import shutil

import pytest

from aslsr import metrics
from aslsr.errors import InputError
from aslsr.io import load_mask, load_volume
from aslsr.scoring import REFERENCES, evaluate_files, format_scores, score_run


def test_score_run_scores_every_prediction_against_every_reference(tiny_case, tmp_path):
    for name in ("sr", "spline"):
        shutil.copy(tiny_case["asl_nr"], tmp_path / f"{name}.nii.gz")
    files = {role: path for role, path in tiny_case.items() if not role.startswith("_")}
    scores = score_run(tmp_path, files, predictions=("sr", "spline"))
    assert list(scores) == [role for role, _ in REFERENCES]
    grid = load_volume(files["asl_nr"]).grid
    expected = metrics.evaluate(
        load_volume(files["ref_hr"]).data,
        {"sr": load_volume(files["asl_nr"]).data},
        mask=load_mask(files["mask"], grid),
        lesion=load_mask(files["lesion"], grid),
    )["sr"]
    assert scores["ref_hr"]["sr"] == expected == scores["ref_hr"]["spline"]
    text = format_scores(scores)
    assert text.startswith("\nagainst HR (44 min) (ref_hr):\nreference: ref_hr\n")
    assert "against noise-free (ref_clean):" in text and "against NR (5.5 min) (asl_nr):" in text


def test_evaluate_files_keys_by_stem_and_refuses_a_repeated_stem(tiny_case, tmp_path):
    copy = tmp_path / "asl_nr.nii.gz"
    shutil.copy(tiny_case["asl_nr"], copy)
    results = evaluate_files(tiny_case["ref_hr"], [tiny_case["asl_nr"]], mask_path=tiny_case["mask"])
    assert list(results) == ["asl_nr"] and {"psnr", "ssim", "psnr_brain", "ssim_brain"} == set(results["asl_nr"])
    with pytest.raises(InputError, match="two predictions have the file stem 'asl_nr'"):
        evaluate_files(tiny_case["ref_hr"], [tiny_case["asl_nr"], copy])
