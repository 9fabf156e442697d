"""Single-PLD CBF quantification (ASL white paper) and its sidecar parameters."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from aslsr.errors import InputError
from aslsr.quantify import (
    QuantificationParameters,
    cbf_from_deltam,
    deltam_from_cbf,
    m0_correction,
    m0_estimate,
    parameters_from_sidecar,
)

SHAPE = (6, 5, 4)
SIDECAR = "/data/sub-01_asl.json"
PCASL = {"ArterialSpinLabelingType": "PCASL", "PostLabelingDelay": 1.8, "LabelingDuration": 1.8, "M0Type": "Absent"}
PASL = {
    "ArterialSpinLabelingType": "PASL",
    "PostLabelingDelay": 1.8,
    "BolusCutOffFlag": True,
    "BolusCutOffDelayTime": 0.8,
    "M0Type": "Absent",
}


def test_pcasl_matches_hand_computation() -> None:
    parameters = parameters_from_sidecar(PCASL, SIDECAR)
    assert parameters.labeling_efficiency == 0.85 and parameters.m0_repetition_time_s is None
    expected = 6000 * 0.9 * 1.0 * math.exp(1.8 / 1.65) / (2 * 0.85 * 1.65 * 100.0 * (1 - math.exp(-1.8 / 1.65)))
    cbf = cbf_from_deltam(np.ones(SHAPE), np.full(SHAPE, 100.0), parameters)
    assert cbf.dtype == np.float32 and cbf.shape == SHAPE
    np.testing.assert_allclose(cbf, expected, rtol=1e-6)
    np.testing.assert_allclose(cbf_from_deltam(np.ones(SHAPE), 100.0, parameters), expected, rtol=1e-6)


def test_pasl_matches_hand_computation() -> None:
    parameters = parameters_from_sidecar(PASL, SIDECAR)
    assert parameters.labeling_duration_s == 0.8 and parameters.labeling_efficiency == 0.98
    expected = 6000 * 0.9 * 1.0 * math.exp(1.8 / 1.65) / (2 * 0.98 * 0.8 * 100.0)
    np.testing.assert_allclose(cbf_from_deltam(np.ones(SHAPE), np.full(SHAPE, 100.0), parameters), expected, rtol=1e-6)
    # Q2TIPS lists the first and last saturation pulse: the first one ends the bolus (TI1)
    q2tips = parameters_from_sidecar({**PASL, "BolusCutOffDelayTime": [0.8, 1.6]}, SIDECAR)
    assert q2tips.labeling_duration_s == 0.8


def test_round_trip() -> None:
    rng = np.random.default_rng(0)
    cbf = (20 + 60 * rng.random(SHAPE)).astype(np.float32)
    m0 = (500 + 1000 * rng.random(SHAPE)).astype(np.float32)
    for sidecar in (
        PCASL,
        PASL,
        {**PCASL, "M0Type": "Included", "RepetitionTimePreparation": 2.0, "LabelingEfficiency": 0.7},
    ):
        parameters = parameters_from_sidecar(sidecar, SIDECAR)
        deltam = deltam_from_cbf(cbf, m0, parameters)
        assert deltam.dtype == np.float32
        np.testing.assert_allclose(cbf_from_deltam(deltam, m0, parameters), cbf, rtol=1e-5)


def test_background_m0_gives_zero() -> None:
    parameters = parameters_from_sidecar(PCASL, SIDECAR)
    m0 = np.full(SHAPE, 1000.0)
    m0[0] = 0.0
    m0[1, 0, 0] = 1e-4
    m0[1, 1, 1] = -5.0
    m0[1, 2, 2] = np.nan
    deltam = np.ones(SHAPE)
    deltam[2, 0, 0] = np.inf
    with np.errstate(all="raise"):
        cbf = cbf_from_deltam(deltam, m0, parameters)
    assert np.isfinite(cbf).all()
    assert (cbf[0] == 0).all() and cbf[1, 0, 0] == 0 and cbf[1, 1, 1] == 0 and cbf[1, 2, 2] == 0
    assert cbf[2, 0, 0] == 0 and (cbf[3] > 0).all()
    assert (cbf_from_deltam(deltam, 0.0, parameters) == 0).all()
    assert (cbf_from_deltam(deltam, np.zeros(SHAPE), parameters) == 0).all()


def test_m0_correction() -> None:
    relaxed = parameters_from_sidecar(PCASL, SIDECAR)
    assert m0_correction(relaxed) == 1.0
    short_tr = parameters_from_sidecar({**PCASL, "M0Type": "Included", "RepetitionTimePreparation": 2.0}, SIDECAR)
    assert short_tr.m0_repetition_time_s == 2.0
    assert m0_correction(short_tr) == pytest.approx(1 / (1 - math.exp(-2.0 / 1.3)))
    ratio = cbf_from_deltam(np.ones(SHAPE), 100.0, relaxed) / cbf_from_deltam(np.ones(SHAPE), 100.0, short_tr)
    np.testing.assert_allclose(ratio, 1 / (1 - math.exp(-2.0 / 1.3)), rtol=1e-6)
    # the series' TR says nothing about a separate M0
    separate = parameters_from_sidecar({**PCASL, "M0Type": "Separate", "RepetitionTimePreparation": 2.0}, SIDECAR)
    assert separate.m0_repetition_time_s is None
    # per-volume TRs: the m0scan's
    per_volume = {**PCASL, "M0Type": "Included", "RepetitionTimePreparation": [6.0, 4.0, 4.0]}
    picked = parameters_from_sidecar(per_volume, SIDECAR, volume_types=["m0scan", "control", "label"])
    assert picked.m0_repetition_time_s == 6.0
    with pytest.raises(InputError, match="RepetitionTimePreparation lists different values"):
        parameters_from_sidecar(per_volume, SIDECAR)


def test_m0_correction_falls_back_to_repetition_time_with_a_warning(caplog) -> None:
    caplog.set_level("WARNING", logger="aslsr")
    old = parameters_from_sidecar({**PCASL, "M0Type": "Included", "RepetitionTime": 2.0}, SIDECAR)
    assert old.m0_repetition_time_s == 2.0 and old.m0_repetition_time_field == "RepetitionTime"
    assert m0_correction(old) == pytest.approx(1 / (1 - math.exp(-2.0 / 1.3)))
    assert "no RepetitionTimePreparation" in caplog.text and "sub-01_asl.json" in caplog.text
    caplog.clear()
    both = parameters_from_sidecar(
        {**PCASL, "M0Type": "Included", "RepetitionTime": 2.0, "RepetitionTimePreparation": 5.0}, SIDECAR
    )
    assert both.m0_repetition_time_s == 5.0 and both.m0_repetition_time_field == "RepetitionTimePreparation"
    assert caplog.text == ""
    with pytest.raises(InputError, match="RepetitionTime is 2300: looks like milliseconds"):
        parameters_from_sidecar({**PCASL, "M0Type": "Included", "RepetitionTime": 2300}, SIDECAR)


@pytest.mark.parametrize(
    "extra, efficiency, pulses",
    [
        ({}, 0.85, None),
        ({"BackgroundSuppression": False, "BackgroundSuppressionNumberPulses": 4}, 0.85, None),
        ({"BackgroundSuppression": True, "BackgroundSuppressionNumberPulses": 2}, 0.85 * 0.95**2, 2),
        ({"BackgroundSuppression": True}, 0.85 * 0.95, 1),
        ({"BackgroundSuppression": True, "BackgroundSuppressionNumberPulses": 0}, 0.85, 0),
        ({"BackgroundSuppression": True, "BackgroundSuppressionNumberPulses": 4, "LabelingEfficiency": 0.6}, 0.6, None),
    ],
)
def test_background_suppression_lowers_the_default_efficiency(extra, efficiency, pulses) -> None:
    parameters = parameters_from_sidecar({**PCASL, **extra}, SIDECAR)
    assert parameters.labeling_efficiency == pytest.approx(efficiency, rel=1e-12)
    assert parameters.background_suppression_pulses == pulses


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"BackgroundSuppression": "yes"}, "BackgroundSuppression must be true or false"),
        ({"BackgroundSuppression": True, "BackgroundSuppressionNumberPulses": 1.5}, "must be a whole number"),
        ({"BackgroundSuppression": True, "BackgroundSuppressionNumberPulses": -1}, "must be a whole number"),
    ],
)
def test_bad_background_suppression_fields(extra, message) -> None:
    with pytest.raises(InputError, match=message):
        parameters_from_sidecar({**PCASL, **extra}, SIDECAR)


def test_per_volume_pld_list() -> None:
    parameters = parameters_from_sidecar(
        {**PCASL, "PostLabelingDelay": [0, 1.8, 1.8], "LabelingDuration": [0, 1.8, 1.8]}, SIDECAR
    )
    assert parameters.post_labeling_delay_s == 1.8 and parameters.labeling_duration_s == 1.8


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ArterialSpinLabelingType": None}, r"no ArterialSpinLabelingType"),
        ({"ArterialSpinLabelingType": "FAIR"}, r"ArterialSpinLabelingType 'FAIR' is not one of"),
        ({"PostLabelingDelay": None}, r"no PostLabelingDelay"),
        ({"PostLabelingDelay": 0}, r"PostLabelingDelay must be positive"),
        ({"PostLabelingDelay": -1.8}, r"PostLabelingDelay must be positive"),
        ({"PostLabelingDelay": "1.8"}, r"PostLabelingDelay must be a number"),
        ({"PostLabelingDelay": [1.5, 1.8, 2.0]}, r"PostLabelingDelay lists different values .*single-PLD only"),
        ({"PostLabelingDelay": 1800}, r"PostLabelingDelay is 1800: looks like milliseconds; BIDS times are in seconds"),
        ({"LabelingDuration": None}, r"no LabelingDuration"),
        ({"LabelingDuration": 1800}, r"LabelingDuration is 1800: looks like milliseconds"),
        ({"RepetitionTimePreparation": 0}, r"RepetitionTimePreparation must be positive"),
        ({"RepetitionTimePreparation": 4000}, r"RepetitionTimePreparation is 4000: looks like milliseconds"),
        ({"LabelingEfficiency": 1.2}, r"LabelingEfficiency must be a number in \(0, 1\]"),
        ({"LabelingEfficiency": 0}, r"LabelingEfficiency must be a number in \(0, 1\]"),
    ],
)
def test_pcasl_sidecar_errors(changes: dict, message: str) -> None:
    sidecar = {key: value for key, value in {**PCASL, **changes}.items() if value is not None}
    with pytest.raises(InputError, match=r"sub-01_asl\.json: " + message):
        parameters_from_sidecar(sidecar, SIDECAR)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"BolusCutOffDelayTime": None}, r"no BolusCutOffDelayTime"),
        ({"BolusCutOffDelayTime": 800}, r"BolusCutOffDelayTime is 800: looks like milliseconds"),
        ({"BolusCutOffFlag": False}, r"PASL without a bolus cut-off"),
    ],
)
def test_pasl_sidecar_errors(changes: dict, message: str) -> None:
    sidecar = {key: value for key, value in {**PASL, **changes}.items() if value is not None}
    with pytest.raises(InputError, match=r"sub-01_asl\.json: " + message):
        parameters_from_sidecar(sidecar, SIDECAR)


def test_labeling_type_spellings() -> None:
    legacy = {**PCASL, "LabelingType": "pcasl"}
    del legacy["ArterialSpinLabelingType"]
    assert parameters_from_sidecar(legacy, SIDECAR).labeling_type == "PCASL"
    casl = parameters_from_sidecar({**PCASL, "ArterialSpinLabelingType": "casl", "LabelingEfficiency": 0.7}, SIDECAR)
    assert casl.labeling_type == "CASL" and casl.labeling_efficiency == 0.7


def test_m0_estimate() -> None:
    assert m0_estimate(PCASL, SIDECAR) is None
    assert m0_estimate({"M0Type": "Estimate", "M0Estimate": 1500}, SIDECAR) == 1500.0
    with pytest.raises(InputError, match=r"sub-01_asl\.json: M0Type is Estimate but M0Estimate is missing"):
        m0_estimate({"M0Type": "Estimate"}, SIDECAR)
    with pytest.raises(InputError, match=r"M0Estimate is -1"):
        m0_estimate({"M0Type": "Estimate", "M0Estimate": -1}, SIDECAR)


def test_parameters_dataclass() -> None:
    parameters = parameters_from_sidecar(PCASL, SIDECAR)
    assert parameters.to_dict() == {
        "labeling_type": "PCASL",
        "post_labeling_delay_s": 1.8,
        "labeling_duration_s": 1.8,
        "labeling_efficiency": 0.85,
        "blood_t1_s": 1.65,
        "partition_coefficient": 0.9,
        "m0_repetition_time_s": None,
        "tissue_t1_s": 1.3,
        "m0_repetition_time_field": None,
        "background_suppression_pulses": None,
    }
    with pytest.raises(ValueError):
        dataclasses.replace(parameters, labeling_duration_s=None)
    with pytest.raises(ValueError):
        QuantificationParameters("FAIR", 1.8, 1.8, 0.9)
