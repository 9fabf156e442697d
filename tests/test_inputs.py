"""Loading a run's inputs: BIDS 4D ASL series, CBF quantification, registration target, bad series.

Bad-input cases follow the rules of test_bad_images.py (one line, exit 2, nothing written) and are
rows of the table in docs/bad_inputs.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import run_error

from aslsr.inputs import CBF_UNITS, TargetSpec, load_inputs
from aslsr.quantify import QuantificationParameters, cbf_from_deltam, deltam_from_cbf

PCASL = {
    "ArterialSpinLabelingType": "PCASL",
    "PostLabelingDelay": 1.8,
    "LabelingDuration": 1.8,
    "M0Type": "Included",
    "RepetitionTimePreparation": 4.0,
}
PARAMETERS = QuantificationParameters(
    labeling_type="PCASL",
    post_labeling_delay_s=1.8,
    labeling_duration_s=1.8,
    labeling_efficiency=0.85,
    m0_repetition_time_s=4.0,
)


def write_series(
    tiny: dict, folder: Path, types: list[str], *, sidecar: dict | None = None, context_rows: list[str] | None = None
) -> str:
    """A BIDS ASL series built from the tiny phantom: m0scan = M0, control - label = deltaM of its CBF."""
    m0_image = nib.load(tiny["m0_lr"])
    m0 = m0_image.get_fdata(dtype=np.float32)
    deltam = deltam_from_cbf(nib.load(tiny["asl_lr"]).get_fdata(dtype=np.float32), m0, PARAMETERS)
    control = 0.1 * m0 + 5.0
    volumes = {"m0scan": m0, "control": control, "label": control - deltam, "deltam": deltam}
    series = np.stack([volumes[kind] for kind in types], axis=-1)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sub-01_asl.nii.gz"
    nib.save(nib.Nifti1Image(series, m0_image.affine), str(path))
    rows = context_rows if context_rows is not None else types
    (folder / "sub-01_aslcontext.tsv").write_text("volume_type\n" + "".join(f"{row}\n" for row in rows))
    if sidecar is not None:
        (folder / "sub-01_asl.json").write_text(json.dumps(sidecar))
    return str(path)


def test_a_series_is_reduced_to_deltam_with_its_m0_as_registration_target(tiny_case, tmp_path):
    asl = write_series(tiny_case, tmp_path, ["m0scan", "control", "label", "label", "control"], sidecar=PCASL)
    inputs = load_inputs(asl, tiny_case["t1w"], None, TargetSpec())
    expected = deltam_from_cbf(nib.load(tiny_case["asl_lr"]).get_fdata(), inputs.m0.data, PARAMETERS)
    assert np.allclose(inputs.asl.data, expected, atol=1e-4)
    assert inputs.fixed_source == "m0" and inputs.fixed is inputs.m0
    assert inputs.description["volume_types"] == {"m0scan": 1, "control": 2, "label": 2}
    assert inputs.description["pairs_averaged"] == 2 and inputs.units == "a.u."


def test_without_m0scan_the_mean_control_is_the_registration_target(tiny_case, tmp_path):
    asl = write_series(tiny_case, tmp_path, ["control", "label"])
    inputs = load_inputs(asl, tiny_case["t1w"], None, TargetSpec())
    assert inputs.m0 is None and inputs.fixed_source == "control_mean"


def test_quantify_gives_the_phantom_cbf_in_ml_per_100g_per_min(tiny_case, tmp_path):
    asl = write_series(tiny_case, tmp_path, ["m0scan", "control", "label"], sidecar=PCASL)
    inputs = load_inputs(asl, tiny_case["t1w"], None, TargetSpec(), quantify=True)
    truth = nib.load(tiny_case["asl_lr"]).get_fdata()
    brain = nib.load(tiny_case["mask_lr"]).get_fdata() > 0
    assert inputs.units == CBF_UNITS
    assert np.allclose(inputs.asl.data[brain], truth[brain], rtol=1e-3, atol=1e-3)
    assert inputs.description["quantification"]["labeling_efficiency"] == 0.85


def test_quantify_with_a_separate_m0_reads_its_own_repetition_time(tiny_case, tmp_path):
    asl = write_series(tiny_case, tmp_path, ["control", "label"], sidecar={**PCASL, "M0Type": "Separate"})
    m0 = tmp_path / "sub-01_m0scan.nii.gz"
    m0.write_bytes(Path(tiny_case["m0_lr"]).read_bytes())
    m0.with_name("sub-01_m0scan.json").write_text(json.dumps({"RepetitionTimePreparation": 2.0}))
    inputs = load_inputs(asl, tiny_case["t1w"], m0, TargetSpec(), quantify=True)
    assert inputs.description["quantification"]["m0_repetition_time_s"] == 2.0
    m0_data = nib.load(m0).get_fdata()
    deltam = load_inputs(asl, tiny_case["t1w"], m0, TargetSpec()).asl.data
    separate = QuantificationParameters(
        labeling_type="PCASL",
        post_labeling_delay_s=1.8,
        labeling_duration_s=1.8,
        labeling_efficiency=0.85,
        m0_repetition_time_s=2.0,
    )
    assert np.allclose(inputs.asl.data, cbf_from_deltam(deltam, m0_data, separate), rtol=1e-5, atol=1e-4)


def test_m0_estimate_is_used_without_an_m0_image(tiny_case, tmp_path):
    asl = write_series(
        tiny_case, tmp_path, ["control", "label"], sidecar={**PCASL, "M0Type": "Estimate", "M0Estimate": 500.0}
    )
    inputs = load_inputs(asl, tiny_case["t1w"], None, TargetSpec(), quantify=True)
    deltam = load_inputs(asl, tiny_case["t1w"], None, TargetSpec()).asl.data
    no_tr = QuantificationParameters(
        labeling_type="PCASL", post_labeling_delay_s=1.8, labeling_duration_s=1.8, labeling_efficiency=0.85
    )
    assert inputs.description["quantification"]["m0"] == "M0Estimate"
    assert np.allclose(inputs.asl.data, cbf_from_deltam(deltam, 500.0, no_tr), rtol=1e-5)


# bad series: one line, exit 2, nothing written


def test_run_4d_asl_without_aslcontext(tiny_case, tmp_path, capsys):
    asl = write_series(tiny_case, tmp_path / "in", ["control", "label"])
    Path(asl).with_name("sub-01_aslcontext.tsv").unlink()
    run_error(capsys, tiny_case, tmp_path, asl, "a 4D ASL series needs sub-01_aslcontext.tsv beside it", asl=asl)


@pytest.mark.parametrize(
    "rows, fragment",
    [
        (["control", "label", "label"], "lists 3 volume types but the ASL series has 2 volumes"),
        (["control", "tag"], "unknown volume type 'tag'"),
        (["control", "control"], "control"),
    ],
    ids=["length", "unknown-type", "unpaired"],
)
def test_run_bad_aslcontext(tiny_case, tmp_path, capsys, rows, fragment):
    asl = write_series(tiny_case, tmp_path / "in", ["control", "label"], context_rows=rows)
    run_error(capsys, tiny_case, tmp_path, str(Path(asl).with_name("sub-01_aslcontext.tsv")), fragment, asl=asl)


@pytest.mark.parametrize(
    "sidecar, fragment",
    [
        ({**PCASL, "RepetitionTimePreparation": 0}, "RepetitionTimePreparation must be positive"),
        ({**PCASL, "PostLabelingDelay": 1800}, "looks like milliseconds"),
        ({**PCASL, "LabelingDuration": 1800.0}, "looks like milliseconds"),
        ({"PostLabelingDelay": 1.8}, "no ArterialSpinLabelingType"),
        ({**PCASL, "PostLabelingDelay": [1.5, 2.0]}, "multi-PLD"),
    ],
    ids=["tr-zero", "pld-ms", "duration-ms", "no-labeling-type", "multi-pld"],
)
def test_run_quantify_bad_sidecar(tiny_case, tmp_path, capsys, sidecar, fragment):
    asl = write_series(tiny_case, tmp_path / "in", ["m0scan", "control", "label"], sidecar=sidecar)
    run_error(
        capsys,
        tiny_case,
        tmp_path,
        str(Path(asl).with_name("sub-01_asl.json")),
        fragment,
        asl=asl,
        extra=["--quantify"],
    )


def test_run_quantify_without_any_m0(tiny_case, tmp_path, capsys):
    asl = write_series(tiny_case, tmp_path / "in", ["control", "label"], sidecar=PCASL)
    run_error(capsys, tiny_case, tmp_path, asl, "--quantify needs an M0", asl=asl, extra=["--quantify"])
