"""Does an M0 with scalp signal make a brain mask that includes the scalp? (the 2026-12-07 late evening note's worry)

The case's LR M0 with a scalp shell added on its own grid: 7-13 mm from the brain (or INNER to INNER + 6 mm; the
phantom's LR brain mask; soft edges of 1.5 mm), at 0.8x the brain's median M0 (scalp water and muscle), the skull
gap dark. The brain mask a run makes from an M0 (``masking.brain_mask_from_image``) is compared with the plain M0's.

    python m0_scalp_mask.py CASE [INNER_MM]
"""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from aslsr import masking
from aslsr.io import Volume, load_volume


def main(case: Path, inner: float) -> None:
    m0 = load_volume(case / "m0_lr.nii.gz")
    brain = np.asarray(nib.load(case / "mask_lr.nii.gz").dataobj) > 0
    distance = ndimage.distance_transform_edt(~brain, sampling=m0.grid.voxel_size)
    shell = 1 / (1 + np.exp(-(distance - inner) / 1.5)) - 1 / (1 + np.exp(-(distance - inner - 6) / 1.5))
    with_scalp = np.maximum(m0.data, 0.8 * float(np.median(m0.data[brain])) * shell).astype(np.float32)
    plain = masking.brain_mask_from_image(m0)
    scalp = masking.brain_mask_from_image(Volume(with_scalp, m0.grid))
    print(f"scalp {inner:g}-{inner + 6:g} mm; voxel {m0.grid.voxel_size} mm; true brain {brain.sum()} voxels; ", end="")
    print(f"mask from the plain M0 {plain.sum()}, ", end="")
    print(f"from the M0 with scalp {scalp.sum()} ({(scalp & brain).sum()} in the brain, {(scalp & ~brain).sum()} out)")


if __name__ == "__main__":
    main(Path(sys.argv[1]), float(sys.argv[2]) if sys.argv[2:] else 7.0)
