"""The T1 edits of BENCHMARKS.md 2026-12-07 "the head's remaining cost is the T1's noise" (diagnosis, not a method).

Base: the value-range entry's k-space case as acquired (``/tmp/zf/case``: `aslsr simulate --seed 7 --tissue-field 0.2
--lesions 0.5 --warp 5 --psf kspace --kspace-window 0.25`; its T1 has the phantom's 1.5 % noise) and the same case with
head.py's ``edit_head`` on its T1 (``/tmp/zfh/case``: skull, scalp and 2 % of the white matter's 90th percentile in
added noise, drawn with ``default_rng(0)`` over the whole T1). Each edit writes a copy of the base case with another
``t1w.nii.gz``:

- ``noscalp``: the head T1 with everything beyond 6 mm of the brain set to 0 (the scalp, 7-13 mm, gone; the
  CSF/skull shells and the added noise kept);
- ``noise``: the plain T1 plus the head edit's own noise draw (no skull, no scalp);
- ``clean``: the T1 of ``aslsr simulate`` with the same options and ``--t1-noise 0`` (``CLEAN_T1``);
- ``tv``: ``noise``'s T1 denoised by Chambolle's TV at weight 0.5 x 0.025 (the T1's total noise relative to the
  white matter; the weight of the lowest T1 RMS error against ``clean`` among 0.25-2 x).

Then, per edit: ``aslsr run --asl case/asl_lr.nii.gz --m0 case/m0_lr.nii.gz --t1 case/t1w.nii.gz --like
case/truth_1mm.nii.gz --seed 0 --config threads.toml`` (threads = 2) and
``../2026-12-07-cpu-amd-value-range/zero_fill.py --score case OUT/sr.nii.gz OUT/dtv.nii.gz``.

    python t1_edits.py EDIT BASE_PLAIN BASE_HEAD OUT_CASE [CLEAN_T1]
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage
from skimage.restoration import denoise_tv_chambolle


def brain_of(t1: np.ndarray) -> np.ndarray:
    """head.py's brain: the voxels above 10 % of the maximum, closed and filled."""
    return ndimage.binary_fill_holes(ndimage.binary_closing(t1 > 0.1 * t1.max(), iterations=3))


def head_noise(plain: np.ndarray) -> np.ndarray:
    """head.py's added noise: sd 2 % of the brain's 90th percentile, ``default_rng(0)``."""
    white = float(np.percentile(plain[brain_of(plain)], 90))
    return np.random.default_rng(0).normal(0.0, 0.02 * white, plain.shape)


def edited(edit: str, plain: np.ndarray, head: np.ndarray, voxel: np.ndarray, clean: np.ndarray | None) -> np.ndarray:
    if edit == "noscalp":
        distance = ndimage.distance_transform_edt(~brain_of(plain), sampling=voxel)
        return np.where(distance <= 6.0, head, 0.0)
    if edit == "noise":
        return plain + head_noise(plain)
    if edit == "clean":
        return clean
    if edit == "tv":
        white = float(np.percentile(plain[brain_of(plain)], 90))
        return denoise_tv_chambolle((plain + head_noise(plain)) / white, weight=0.5 * 0.025, max_num_iter=200) * white
    raise ValueError(edit)


def main(edit: str, base_plain: Path, base_head: Path, out: Path, clean_t1: Path | None) -> None:
    shutil.copytree(base_plain, out, dirs_exist_ok=True)
    image = nib.load(base_plain / "t1w.nii.gz")
    plain = image.get_fdata(dtype=np.float32)
    head = nib.load(base_head / "t1w.nii.gz").get_fdata(dtype=np.float32)
    clean = nib.load(clean_t1).get_fdata(dtype=np.float32) if clean_t1 is not None else None
    data = edited(edit, plain, head, np.asarray(image.header.get_zooms()[:3]), clean)
    nib.save(nib.Nifti1Image(np.asarray(data, np.float32), image.affine, image.header), out / "t1w.nii.gz")


if __name__ == "__main__":
    clean_t1 = Path(sys.argv[5]) if sys.argv[5:] else None
    main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), clean_t1)
