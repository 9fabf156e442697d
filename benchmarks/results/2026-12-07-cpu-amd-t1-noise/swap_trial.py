"""Diagnosis, not a method: the all-at-once case's model (``OUT/default``) re-applied with the strongest dTV (``OUT/
dtv_noise/sr.nii.gz``: lambda per noise) as the input it refines, in place of the run's ``dtv.nii.gz``; scored as
panel.py scores (brain vs the noise-free NR reference, lesion contrast errors).

    python swap_trial.py CASE RUN STRONGER_DTV
"""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib

from aslsr import masking
from aslsr.generate import super_resolve
from aslsr.io import load_volume
from aslsr.model import Model

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from panel import score  # noqa: E402


def main(case: Path, run: Path, stronger: Path) -> None:
    model = Model.load(run / "model.pt")
    asl, m0 = load_volume(case / "asl_lr.nii.gz"), load_volume(case / "m0_lr.nii.gz")
    t1 = load_volume(run / "t1_registered.nii.gz")
    mask = masking.derive_mask(m0, t1, asl.grid)
    for name, path in (("the run's dtv.nii.gz", run / "dtv.nii.gz"), ("the stronger dTV", stronger)):
        dtv = load_volume(path).data
        sr = super_resolve(model, asl, t1, t1.grid, t1_on_target=t1.data, dtv_on_target=dtv, brain_mask=mask)
        out = run.parent / f"swap_{path.parent.name}.nii.gz"
        nib.save(nib.Nifti1Image(sr, t1.grid.affine), out)
        row = score(case, out)
        lesions = {k: round(v["error"] * 100, 1) for k, v in row.get("lesions", {}).items()}
        print(f"{name}: {row['psnr_brain']:.3f} dB, lesion errors {lesions} %", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
