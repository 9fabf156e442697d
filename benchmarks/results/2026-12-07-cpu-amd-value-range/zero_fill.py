"""A k-space-acquired ASL (and M0) reconstructed on a finer matrix than acquired, as scanners deliver them.

Many products reconstruct the acquired k-space zero-filled to twice the matrix (a GE 3D spiral pCASL acquired
at ~3.6 mm is stored at 1.9 mm): the NIfTI's voxels are half the acquired ones and its spectrum, noise
included, is empty beyond the acquired band. ``zero_fill`` pads the LR's spectrum in-plane by ``factor`` (the
Nyquist plane split in two halves) and writes ``asl_zf.nii.gz`` / ``m0_zf.nii.gz`` beside the case's files; voxel
0 keeps its centre, the voxel size is divided by ``factor``.

    python zero_fill.py CASE [FACTOR]
    python zero_fill.py --score CASE SR.nii.gz [...]   (PSNR / SSIM in the brain vs truth_1mm on its grid)
"""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np


def zero_fill(data: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    spectrum = np.fft.fftn(data)
    for axis, factor in enumerate(factors):
        n = data.shape[axis]
        if factor == 1:
            continue
        spectrum = np.moveaxis(spectrum, axis, 0)
        half = n // 2
        padded = np.zeros((n * factor, *spectrum.shape[1:]), complex)
        padded[:half] = spectrum[:half]
        padded[-half:] = spectrum[-half:]
        if n % 2 == 0:  # the Nyquist plane is shared by +k and -k
            padded[half] = spectrum[half] / 2
            padded[-half] = spectrum[half] / 2
        else:
            padded[half] = spectrum[half]
        spectrum = np.moveaxis(padded, 0, axis)
    return np.real(np.fft.ifftn(spectrum)) * np.prod(factors)


def main(case: Path, factor: int) -> None:
    for name in ("asl_lr", "m0_lr"):
        image = nib.load(case / f"{name}.nii.gz")
        factors = (factor, factor, 1)
        data = zero_fill(np.asarray(image.get_fdata()), factors).astype(np.float32)
        affine = image.affine @ np.diag([1 / f for f in factors] + [1])
        nib.save(nib.Nifti1Image(data, affine), case / f"{name.split('_')[0]}_zf.nii.gz")


def score(case: Path, prediction: Path) -> dict[str, float]:
    from aslsr import metrics
    from aslsr.grids import resample
    from aslsr.io import load_volume

    truth = load_volume(case / "truth_1mm.nii.gz")
    pred = load_volume(prediction, allow_constant=True)
    if pred.grid != truth.grid:
        raise ValueError(f"{prediction} is not on truth_1mm's grid")
    brain = load_volume(case / "mask.nii.gz", allow_constant=True)
    mask = resample(brain.data.astype(np.float32), brain.affine, truth.grid, order=1) > 0.5
    row = metrics.evaluate(truth.data, {"p": pred.data}, mask=mask)["p"]
    return {"psnr_brain": round(row["psnr_brain"], 3), "ssim_brain": round(row["ssim_brain"], 4)}


if __name__ == "__main__":
    if sys.argv[1] == "--score":
        for path in sys.argv[3:]:
            print(path, score(Path(sys.argv[2]), Path(path)), flush=True)
    else:
        main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 2)
