"""The default and the fixed box dTV on head.py's ``head`` case (base A with skull and scalp on its T1) with a scalp
shell INNER-(INNER + 6) mm from the brain added to its LR M0 as in ``m0_scalp_mask.py`` (at 4 mm the run's mask takes
the scalp), scored as head.py scores (brain vs the noise-free NR reference).

    python m0_scalp_run.py HEAD_CASE OUT [INNER_MM]      (OUT/case, OUT/default, OUT/dtv_box; OUT/scores.json)
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "2026-12-07-cpu-amd-stress"))
from stress import run, score  # noqa: E402


def add_scalp(case: Path, inner: float) -> None:
    image = nib.load(case / "m0_lr.nii.gz")
    m0 = image.get_fdata(dtype=np.float32)
    brain = np.asarray(nib.load(case / "mask_lr.nii.gz").dataobj) > 0
    distance = ndimage.distance_transform_edt(~brain, sampling=image.header.get_zooms()[:3])
    shell = 1 / (1 + np.exp(-(distance - inner) / 1.5)) - 1 / (1 + np.exp(-(distance - inner - 6) / 1.5))
    with_scalp = np.maximum(m0, 0.8 * float(np.median(m0[brain])) * shell).astype(np.float32)
    nib.save(nib.Nifti1Image(with_scalp, image.affine, image.header), case / "m0_lr.nii.gz")


def main(head_case: Path, out: Path, inner: float) -> None:
    shutil.copytree(head_case, out / "case", dirs_exist_ok=True)
    add_scalp(out / "case", inner)
    seconds = run(out / "case", out / "default", [])
    run(out / "case", out / "dtv_box", ["--method", "dtv", "--acquisition", "box"])
    scores = {k: score(out / "case", out / "default" / f"{k}.nii.gz") for k in ("spline", "dtv", "sr")}
    scores["dtv-box"] = score(out / "case", out / "dtv_box" / "sr.nii.gz")
    report = json.loads((out / "default" / "report.json").read_text())
    mask = np.asarray(nib.load(out / "default" / "mask.nii.gz").dataobj) > 0
    row = {"default_s": seconds, "scores": scores, "mask_voxels_nr": int(mask.sum()), "warnings": report["warnings"]}
    row["noise_estimate"] = report["asl"].get("noise_estimate")
    (out / "scores.json").write_text(json.dumps(row, indent=1))
    print({k: round(v["psnr_brain"], 2) for k, v in scores.items()}, row["mask_voxels_nr"], flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]) if sys.argv[3:] else 4.0)
