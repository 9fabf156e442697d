"""The per-subject HTML report: self-contained, escaped, robust to gaps, deterministic."""

from __future__ import annotations

import base64
import re

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from aslsr.report_html import subject_report_html


def _report(sidecar_units: str = "<script>alert(1)</script>") -> dict:
    grid = {"shape": [16, 12, 12], "voxel_size_mm": [15.0, 15.0, 10.0], "affine": [[1, 0, 0, 0]] * 4}
    return {
        "aslsr_version": "9.9.9",
        "versions": {"python": "3.11", "torch": "2.x"},
        "command": "aslsr run a b",
        "inputs": {"asl": "sub-01_asl.nii.gz", "t1": "sub-01_T1w.nii.gz", "m0": None, "mask": None},
        "config": {"iterations": 100, "lr": 0.001, "preset": {"name": "fast"}},
        "seed": 0,
        "device": "cpu",
        "device_name": "x86_64",
        "threads": 2,
        "grids": {
            "asl": grid,
            "target": {**grid, "shape": [32, 24, 12], "voxel_size_mm": [7.5, 7.5, 10.0]},
            "scales": [grid],
        },
        "scale_factor": [2.0, 2.0, 1.0],
        "scales": [{"scale": 0, "seconds": 1.5, "iterations": 10}],
        "registration": {
            "performed": True,
            "matrix_asl_to_t1_ras_mm": [[1, 0, 0, 0.5], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
            "metric": "mattes_mutual_information",
            "metric_before": -0.4,
            "metric_after": -0.6,
            "rotation_deg": 1.25,
            "translation_mm": 0.5,
            "seconds": 2.0,
            "warnings": [],
        },
        "mask_source": "t1",
        "timings": {"load_s": 0.25, "registration_s": 2.0, "training_s": 12.5, "generation_s": 0.5, "writing_s": 0.75},
        "warnings": ["generator drifted from the data"],
        "outputs": ["sr.nii.gz", "qc.png"],
        "lr_agreement": {"sr_rms": 3.0, "spline_rms": 1.0, "ratio_to_spline": 3.0, "noise_sd": 1.5, "departs": True},
        "asl": {
            "kind": "deltam",
            "volume_types": {"control": 2, "label": 2},
            "pairs_averaged": 2,
            "m0_source": None,
            "units": sidecar_units,
            "registration_target": "mean control",
            "realignment": {
                "volumes_registered": 4,
                "volumes_resampled": 3,
                "max_displacement_mm": 1.234,
                "mean_displacement_mm": 0.5,
                "displacement_mm": [0.0, 1.234, 0.4, 0.366],
            },
        },
        "peak_memory_mb": 321.5,
    }


@pytest.fixture
def png(tmp_path):
    figure = Figure(figsize=(0.5, 0.5), dpi=20)
    figure.add_subplot().plot([0, 1], [1, 0])
    FigureCanvasAgg(figure)
    path = tmp_path / "qc.png"
    figure.savefig(path)
    return path


def test_page_contents(tmp_path, png):
    out = subject_report_html(
        tmp_path / "sub-01" / "report.html",
        title="sub-01 <b>",
        report=_report(),
        figures={"QC": png},
        outputs={"super-resolved": "sr.nii.gz"},
    )
    assert out.exists()
    text = out.read_text(encoding="utf-8")
    assert "<title>sub-01 &lt;b&gt;</title>" in text and "9.9.9" in text
    data = re.search(r'data:image/png;base64,([A-Za-z0-9+/=]+)"', text).group(1)
    assert base64.b64decode(data) == png.read_bytes()
    assert "<figcaption>QC</figcaption>" in text
    for timing in ("training 12.5", "registration 2", "total 16"):
        assert timing in text
    assert "generator drifted from the data" in text and "class='warn'" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script" not in text.lower()
    assert "<strong>(look closely)</strong>" in text and "Rotation (deg)" in text and "1.25" in text
    assert 'href="sr.nii.gz"' in text and "<details>" in text and "preset.name" in text
    assert "3 of 4 volumes moved and resampled; displacement up to 1.23 mm (mean 0.5 mm)" in text
    assert "http://" not in text and "https://" not in text and "&amp;" not in text  # no double escaping
    assert not list(out.parent.glob(".*part*"))  # no temporary left behind


def test_missing_figure_and_sparse_report(tmp_path):
    out = subject_report_html(
        tmp_path / "r.html", title="t", report={"warnings": []}, figures={"QC": tmp_path / "absent.png"}
    )
    text = out.read_text(encoding="utf-8")
    assert "not available" in text and "absent.png" in text and "data:image" not in text
    assert "class='ok'>none<" in text and "(look closely)" not in text


def test_deterministic(tmp_path, png):
    a = subject_report_html(tmp_path / "a.html", title="s", report=_report(), figures={"QC": png})
    b = subject_report_html(tmp_path / "b.html", title="s", report=_report(), figures={"QC": png})
    assert a.read_bytes() == b.read_bytes()
