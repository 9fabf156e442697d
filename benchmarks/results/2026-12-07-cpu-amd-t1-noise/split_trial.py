"""Diagnosis, not a method: which part of generation at 1 mm carries the T1 noise's cost?

The noisy-T1 run's model (``/tmp/zfn/out_noise``, run seed 0) re-applied at 1 mm with the dTV input and the T1
channel taken each from the noisy run or from the plain one (``/tmp/zf/out_lr_new2``: the same case with the
phantom's T1), the brain mask from the M0 as the run makes it; scored by ``zero_fill.py --score``.

    python split_trial.py NOISY_CASE NOISY_RUN PLAIN_RUN
"""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib

from aslsr import masking
from aslsr.generate import super_resolve
from aslsr.io import load_volume
from aslsr.model import Model

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "2026-12-07-cpu-amd-value-range"))
from zero_fill import score  # noqa: E402


def main(case: Path, noisy: Path, plain: Path) -> None:
    model = Model.load(noisy / "model.pt")
    asl, m0 = load_volume(case / "asl_lr.nii.gz"), load_volume(case / "m0_lr.nii.gz")
    target = load_volume(noisy / "t1_registered.nii.gz").grid
    mask = masking.derive_mask(m0, load_volume(noisy / "t1_registered.nii.gz"), asl.grid)
    pairs = {"noisy dTV, noisy T1": (noisy, noisy), "plain dTV, noisy T1": (plain, noisy)}
    pairs |= {"noisy dTV, plain T1": (noisy, plain), "plain dTV, plain T1": (plain, plain)}
    for name, (dtv_run, t1_run) in pairs.items():
        t1 = load_volume(t1_run / "t1_registered.nii.gz")
        dtv = load_volume(dtv_run / "dtv.nii.gz").data
        sr = super_resolve(model, asl, t1, target, t1_on_target=t1.data, dtv_on_target=dtv, brain_mask=mask)
        out = noisy.parent / f"split_{name.replace(', ', '_').replace(' ', '-')}.nii.gz"
        nib.save(nib.Nifti1Image(sr, target.affine), out)
        print(name, score(case, out), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
