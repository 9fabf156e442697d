"""Looked at, not adopted: the default's SR blended with the strongest dTV, (1 - w) SR + w dTV-noise, scored as
panel.py scores (brain PSNR vs the noise-free NR reference) at w = 0, 0.25, 0.5, 1. Images already written: the tune
half at this entry's commit (``panel.py --half tune --methods aslsr dtv-auto-noise --out /tmp/panel_tune_now``), the
all-at-once case and its plain twin (this entry), and the report half's seed-0 runs of the 2026-12-07 midday and
afternoon entries (``/tmp/panel_report``, the kspace ones' default from ``/tmp/panel_rule``; one thread per run).

    python blend_check.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np

from aslsr.io import load_volume

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from panel import score  # noqa: E402

REPORT, RULE = Path("/tmp/panel_report"), Path("/tmp/panel_rule")
TUNE = Path("/tmp/panel_tune_now")
CASES = {
    f"{name} (tune)": (
        TUNE / name / "seed0" / "phantom",
        TUNE / name / "seed0" / "aslsr",
        TUNE / name / "seed0" / "dtv-auto-noise",
    )
    for name in ("fields-box", "hyper-gauss-las", "kspace-mild", "oblique-vessels")
}
CASES |= {
    name: (Path(root, "case"), Path(root, "default"), Path(root, "dtv_noise"))
    for name, root in (("all-at-once", "/tmp/all"), ("all-at-once plain", "/tmp/all_plain"))
}
for name in ("hypo-box", "oblique-gauss-hyper", "lesions-kspace-lpi", "lowsnr-kspace-las"):
    default = (RULE if "kspace" in name else REPORT) / name / "seed0" / "aslsr"
    CASES[name] = (REPORT / name / "seed0" / "phantom", default, REPORT / name / "seed0" / "dtv-auto-noise")

for name, (case, default, dtv) in CASES.items():
    sr, strongest = load_volume(default / "sr.nii.gz"), load_volume(dtv / "sr.nii.gz")
    row = []
    for weight in (0.0, 0.25, 0.5, 1.0):
        blend = ((1.0 - weight) * sr.data + weight * strongest.data).astype(np.float32)
        path = Path("/tmp/blend_check.nii.gz")
        nib.save(nib.Nifti1Image(blend, sr.affine), path)
        row.append(round(score(case, path)["psnr_brain"], 2))
    print(name, row, flush=True)
