"""Edits of the ASL's value range that CBF pipelines make: negative values clipped, magnitudes, a masked background.

- ``clipped``: every negative LR voxel set to 0 (a CBF map with negative flow thresholded away: half of the
  background's noise and the noise's low tail in white matter become 0).
- ``magnitude``: the LR's absolute value (a magnitude image: the background's noise folded onto positive values).
- ``masked``: the LR set to 0 beyond 2 LR voxels outside the brain (a CBF map written inside a brain mask only).

Each edit is made from head.py's base A case (`--seed 7 --tissue-field 0.2 --lesions 0.5 --warp 5`) and run and
scored as head.py does (the default and the fixed box dTV, run seed 0, PSNR in the brain against the noise-free
reference; the reference is the same for every edit).

    python value_range.py OUT EDIT[,EDIT...]   (OUT/plain/case as head.py makes it; OUT/head.json)
"""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "2026-12-07-cpu-amd-t1-head"))
import head  # noqa: E402


def edit_values(plain: Path, out: Path, change) -> None:
    image = nib.load(plain / "asl_lr.nii.gz")
    data = np.asarray(image.get_fdata(dtype=np.float32))
    brain = np.asarray(nib.load(plain / "mask_lr.nii.gz").dataobj) > 0
    nib.save(nib.Nifti1Image(change(data, brain).astype(np.float32), image.affine, image.header), out / "asl_lr.nii.gz")


head.EDITS.update(
    {
        "clipped": lambda plain, out: edit_values(plain, out, lambda x, brain: np.maximum(x, 0.0)),
        "magnitude": lambda plain, out: edit_values(plain, out, lambda x, brain: np.abs(x)),
        "masked": lambda plain, out: edit_values(
            plain, out, lambda x, brain: np.where(ndimage.binary_dilation(brain, iterations=2), x, 0.0)
        ),
    }
)

if __name__ == "__main__":
    head.main(Path(sys.argv[1]), sys.argv[2].split(","), "--tissue-field 0.2 --lesions 0.5 --warp 5".split())
