"""What ``aslsr reproduce`` compares and how: the methods, the references and the scores of a run.

PSNR and SSIM follow ``docs/metrics.md``, computed by :mod:`aslsr.metrics` from the NIfTI files a
run wrote, so every number can be checked from them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from . import metrics
from .io import load_volume

#: (row label, output file stem of ``aslsr run``) of the compared methods, in table order.
METHODS = (("nearest", "nearest"), ("linear", "linear"), ("spline", "spline"), ("dTV", "dtv"), ("proposed", "sr"))
#: (column key, phantom file role, label) of the references of Experiment 1.
REFERENCES = (("nr", "asl_nr", "NR"), ("hr", "ref_hr", "HR"), ("clean", "ref_clean", "noise-free"))

Rows = dict[str, dict[str, Any]]


def score_methods(
    run_dir: Path,
    references: Mapping[str, np.ndarray],
    mask: np.ndarray,
    lesion: np.ndarray,
    lesion_reference: str,
    methods: Sequence[tuple[str, str]] = METHODS,
) -> Rows:
    """Score a run's NIfTI outputs: ``{method: {"psnr_<ref>[_brain]", "ssim_<ref>[_brain]", lesion...}}``.

    Lesion contrast (ratio, the reference's ratio and the error) is taken against ``lesion_reference``.
    """
    predictions = {label: load_volume(run_dir / f"{stem}.nii.gz", allow_constant=True).data for label, stem in methods}
    rows: Rows = {label: {} for label in predictions}
    for key, reference in references.items():
        results = metrics.evaluate(
            reference, predictions, mask=mask, lesion=lesion if key == lesion_reference else None
        )
        for label, values in results.items():
            for metric in ("psnr", "ssim"):
                rows[label][f"{metric}_{key}"] = values[metric]
                rows[label][f"{metric}_{key}_brain"] = values[f"{metric}_brain"]
            if "lesion_contrast" in values:
                rows[label].update(
                    {
                        "lesion_contrast": values["lesion_contrast"],
                        f"lesion_contrast_ref_{key}": values["lesion_contrast_ref"],
                        "lesion_contrast_error": values["lesion_contrast_error"],
                    }
                )
    return rows
