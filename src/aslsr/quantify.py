"""Single-PLD CBF quantification: the ASL white paper's model (Alsop et al. 2015, MRM 73:102).

All times are in seconds and CBF is in ml/100g/min. Arrays keep NIfTI voxel order (i, j, k); the
functions work voxel-wise, so any shape that broadcasts against the M0 works.

Labelling efficiency: the sidecar's ``LabelingEfficiency`` when given (it should then already
include any loss to background suppression). Otherwise the white paper's value for the labelling
type, times 0.95 for each background-suppression inversion pulse when ``BackgroundSuppression`` is
true (``BackgroundSuppressionNumberPulses``, 1 when not given): the convention ASLPrep uses; the
white paper notes the loss without giving a number. The M0 image is assumed to be acquired without
background suppression, as BIDS asks.

M0 recovery: an M0 acquired with a short TR is corrected by 1 / (1 - exp(-TR / T1_tissue)), with
TR the sidecar's ``RepetitionTimePreparation``; older sidecars without it give ``RepetitionTime``,
which is used instead with a warning (for most sequences the two agree for the M0 scan).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass

import numpy as np

from .errors import InputError

BLOOD_T1_S = 1.65  # arterial blood T1 at 3 T
PARTITION_COEFFICIENT = 0.9  # brain/blood water partition coefficient lambda, ml/g
EFFICIENCY = {"PCASL": 0.85, "CASL": 0.85, "PASL": 0.98}
TISSUE_T1_S = 1.3  # grey-matter T1 for the M0 saturation-recovery correction
# M0 at or below this fraction of its 99th percentile is air: CBF there is 0, not deltaM noise divided by
# M0 noise (which reaches thousands of ml/100g/min and dominates the image the generator learns from).
BACKGROUND_FRACTION = 0.1
MAX_DELAY_S = 10.0  # PLD, labelling duration and bolus cut-off above this are milliseconds
MAX_TIME_S = 30.0  # any other time above this is milliseconds
BACKGROUND_SUPPRESSION_PULSE_EFFICIENCY = 0.95  # labelling efficiency kept by each inversion pulse

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuantificationParameters:
    """Sequence parameters, times in seconds. ``labeling_duration_s`` is tau (PCASL/CASL) or TI1 (PASL)."""

    labeling_type: str
    post_labeling_delay_s: float  # PASL: the inversion time TI
    labeling_duration_s: float | None
    labeling_efficiency: float
    blood_t1_s: float = BLOOD_T1_S
    partition_coefficient: float = PARTITION_COEFFICIENT
    m0_repetition_time_s: float | None = None  # TR of the M0 image; None: fully relaxed
    tissue_t1_s: float = TISSUE_T1_S
    m0_repetition_time_field: str | None = None  # the sidecar field the M0's TR came from
    background_suppression_pulses: int | None = None  # pulses counted into the default efficiency

    def __post_init__(self) -> None:
        if self.labeling_type not in EFFICIENCY:
            raise ValueError(f"labeling_type must be one of {sorted(EFFICIENCY)}, not {self.labeling_type!r}")
        if self.labeling_duration_s is None or not self.labeling_duration_s > 0:
            raise ValueError(f"{self.labeling_type} needs a positive labeling_duration_s")
        if not self.post_labeling_delay_s > 0 or not 0 < self.labeling_efficiency <= 1:
            raise ValueError("post_labeling_delay_s must be positive and labeling_efficiency in (0, 1]")

    def to_dict(self) -> dict:
        return asdict(self)


def m0_correction(parameters: QuantificationParameters) -> float:
    """Saturation-recovery factor for an M0 acquired with a short TR: 1 / (1 - exp(-TR / T1_tissue)), else 1."""
    tr = parameters.m0_repetition_time_s
    return 1.0 if tr is None else 1.0 / (1.0 - math.exp(-tr / parameters.tissue_t1_s))


def _scale(parameters: QuantificationParameters) -> float:
    """CBF (ml/100g/min) per unit of deltaM / M0 (white paper equations 1 and 2)."""
    p = parameters
    numerator = 6000.0 * p.partition_coefficient * math.exp(p.post_labeling_delay_s / p.blood_t1_s)
    if p.labeling_type == "PASL":
        return numerator / (2.0 * p.labeling_efficiency * p.labeling_duration_s)
    saturation = 1.0 - math.exp(-p.labeling_duration_s / p.blood_t1_s)
    return numerator / (2.0 * p.labeling_efficiency * p.blood_t1_s * saturation)


def _effective_m0(m0: np.ndarray | float, parameters: QuantificationParameters) -> tuple[np.ndarray, np.ndarray]:
    """(M0 corrected for short TR, mask of voxels that are not background)."""
    m0 = np.asarray(m0, dtype=np.float64)
    finite = np.isfinite(m0)
    threshold = 0.0
    if m0.ndim and finite.any():
        threshold = max(BACKGROUND_FRACTION * float(np.percentile(m0[finite], 99)), 0.0)
    return m0 * m0_correction(parameters), finite & (m0 > threshold)


def cbf_from_deltam(deltam: np.ndarray, m0: np.ndarray | float, parameters: QuantificationParameters) -> np.ndarray:
    """CBF in ml/100g/min (float32) from deltaM = control - label and M0 (same units as deltaM).

    Background voxels (M0 at most BACKGROUND_FRACTION of its 99th percentile) and non-finite results give 0.
    """
    m0_eff, valid = _effective_m0(m0, parameters)
    deltam = np.asarray(deltam, dtype=np.float64)
    with np.errstate(all="ignore"):
        cbf = np.where(valid, _scale(parameters) * deltam / np.where(valid, m0_eff, 1.0), 0.0)
        cbf = cbf.astype(np.float32)
    return np.where(np.isfinite(cbf), cbf, np.float32(0.0))


def deltam_from_cbf(cbf: np.ndarray, m0: np.ndarray | float, parameters: QuantificationParameters) -> np.ndarray:
    """deltaM (float32, M0's units) that :func:`cbf_from_deltam` turns back into ``cbf`` (ml/100g/min)."""
    m0_eff, valid = _effective_m0(m0, parameters)
    with np.errstate(all="ignore"):
        deltam = np.where(valid, np.asarray(cbf, dtype=np.float64) * m0_eff / _scale(parameters), 0.0)
    return deltam.astype(np.float32)


def parameters_from_sidecar(
    metadata: dict,
    path: str | os.PathLike | None,
    *,
    volume_types: list[str] | tuple[str, ...] | None = None,
) -> QuantificationParameters:
    """Quantification parameters from a BIDS ASL sidecar; :class:`InputError` naming ``path`` and the field.

    Per-volume lists (BIDS) must hold one value for the perfusion volumes (zeros, which BIDS uses for
    volumes without a PLD such as m0scan, are skipped); ``volume_types`` picks the M0's
    RepetitionTimePreparation from such a list. A BolusCutOffDelayTime list (Q2TIPS: first and last
    saturation pulse) gives TI1 from its first value: the first pulse ends the bolus. The sidecar's
    RepetitionTimePreparation is used as the M0's TR only when the M0 is in the series (M0Type
    "Included" or unset); for a separate M0 pass its TR with ``dataclasses.replace``.
    """
    labeling_type = _labeling_type(metadata, path)
    pld = _single_time(metadata, "PostLabelingDelay", path, MAX_DELAY_S)
    if labeling_type == "PASL":
        if metadata.get("BolusCutOffFlag") is False:
            raise InputError(
                "PASL without a bolus cut-off (BolusCutOffFlag false) cannot be quantified "
                "with the single-PLD model: it needs BolusCutOffDelayTime (TI1)",
                path,
            )
        cutoff = metadata.get("BolusCutOffDelayTime")
        duration = _time(
            cutoff[0] if isinstance(cutoff, list) and cutoff else cutoff, "BolusCutOffDelayTime", path, MAX_DELAY_S
        )
    else:
        duration = _single_time(metadata, "LabelingDuration", path, MAX_DELAY_S)
    efficiency = metadata.get("LabelingEfficiency")
    pulses = None
    if efficiency is None:
        pulses = _background_suppression_pulses(metadata, path)
        efficiency = EFFICIENCY[labeling_type] * BACKGROUND_SUPPRESSION_PULSE_EFFICIENCY ** (pulses or 0)
    if not _is_number(efficiency) or not 0 < efficiency <= 1:
        raise InputError(f"LabelingEfficiency must be a number in (0, 1], not {efficiency!r}", path)
    tr, field = _m0_repetition_time(metadata, path, volume_types)
    return QuantificationParameters(
        labeling_type,
        pld,
        duration,
        float(efficiency),
        m0_repetition_time_s=tr,
        m0_repetition_time_field=field,
        background_suppression_pulses=pulses,
    )


def _background_suppression_pulses(metadata: dict, path) -> int | None:
    """Inversion pulses of background suppression (None without it; 1 when the count is not given)."""
    flag = metadata.get("BackgroundSuppression")
    if flag is None or flag is False:
        return None
    if flag is not True:
        raise InputError(f"BackgroundSuppression must be true or false, not {flag!r}", path)
    count = metadata.get("BackgroundSuppressionNumberPulses", 1)
    if not _is_number(count) or count < 0 or count != int(count):
        raise InputError(f"BackgroundSuppressionNumberPulses must be a whole number, not {count!r}", path)
    return int(count)


def m0_estimate(metadata: dict, path: str | os.PathLike | None) -> float | None:
    """M0Estimate (a single M0 value in the ASL images' units) when M0Type is "Estimate", else None."""
    if str(metadata.get("M0Type", "")).lower() != "estimate":
        return None
    value = metadata.get("M0Estimate")
    if not _is_number(value) or not value > 0:
        raise InputError(
            f"M0Type is Estimate but M0Estimate is {'missing' if value is None else repr(value)}; "
            "it must be a positive number",
            path,
        )
    return float(value)


def separate_m0_repetition_time(metadata: dict, path: str | os.PathLike | None) -> tuple[float | None, str | None]:
    """The TR (s) in a separate M0 image's own sidecar and the field it came from
    (RepetitionTimePreparation, else RepetitionTime with a warning); (None, None) without one."""
    return _m0_repetition_time({**metadata, "M0Type": "Included"}, path, None)


def _labeling_type(metadata: dict, path) -> str:
    value = metadata.get("ArterialSpinLabelingType", metadata.get("LabelingType"))
    if value is None:
        raise InputError(
            "no ArterialSpinLabelingType (PCASL, CASL or PASL) in the sidecar; CBF quantification needs it", path
        )
    if not isinstance(value, str) or value.upper() not in EFFICIENCY:
        raise InputError(f"ArterialSpinLabelingType {value!r} is not one of PCASL, CASL, PASL", path)
    return value.upper()


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _time(value, field: str, path, limit: float) -> float:
    """A checked time in seconds."""
    if value is None:
        raise InputError(f"no {field} in the sidecar; CBF quantification needs it (seconds)", path)
    if not _is_number(value):
        raise InputError(f"{field} must be a number of seconds, not {value!r}", path)
    if not value > 0:
        raise InputError(f"{field} must be positive, not {value!r}", path)
    if value > limit:
        raise InputError(f"{field} is {value!r}: looks like milliseconds; BIDS times are in seconds", path)
    return float(value)


def _single_time(metadata: dict, field: str, path, limit: float) -> float:
    """A time that may be a per-volume list, as long as its non-zero values agree (single-PLD)."""
    value = metadata.get(field)
    if isinstance(value, list):
        if not all(_is_number(v) for v in value):
            raise InputError(f"{field} must be a number or a list of numbers of seconds, not {value!r}", path)
        distinct = sorted({float(v) for v in value if v != 0})
        if len(distinct) > 1:
            raise InputError(
                f"{field} lists different values {distinct}: multi-PLD data is not supported; single-PLD only", path
            )
        value = distinct[0] if distinct else 0
    return _time(value, field, path, limit)


def _m0_repetition_time(metadata: dict, path, volume_types) -> tuple[float | None, str | None]:
    """(TR of the M0 in s, the field it came from), or (None, None) when the M0 is taken as relaxed."""
    field = "RepetitionTimePreparation" if "RepetitionTimePreparation" in metadata else "RepetitionTime"
    value = metadata.get(field)
    values = value if isinstance(value, list) else [] if value is None else [value]
    times = [_time(v, field, path, MAX_TIME_S) for v in values]
    if not times or str(metadata.get("M0Type", "Included")).lower() != "included":
        return None, None  # no TR, or the series' own TR while the M0 (with its own sidecar) is elsewhere
    if volume_types is not None and len(volume_types) == len(times):
        times = [t for t, kind in zip(times, volume_types) if kind == "m0scan"] or times
    if len(set(times)) > 1:
        raise InputError(f"{field} lists different values {sorted(set(times))}; cannot tell which is the M0's", path)
    if field == "RepetitionTime":
        logger.warning(
            "%s: no RepetitionTimePreparation; the M0 recovery correction uses RepetitionTime (%g s)", path, times[0]
        )
    return times[0], field
