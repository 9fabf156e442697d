"""Sharpness and texture of super-resolved images against the noise-free reference, in the brain.

PSNR and SSIM reward the conditional mean; an adversarial loss is meant to buy texture instead: fine
detail with the reference's energy even where its exact placement is not known. This script measures
both sides on images of one grid (all arrays in the reference's voxel order):

- ``gradient_energy``: mean |grad x|^2 / mean |grad ref|^2 over the brain (central differences, per voxel).
  1 = as much edge energy as the truth; < 1 blurred; > 1 noise or over-sharpening.
- ``detail_energy``: var(HP x) / var(HP ref) over the brain, HP = x - Gaussian(x, sigma = 1 voxel):
  the energy of the finest detail, whatever its placement (a texture statistic).
- ``detail_correlation``: Pearson correlation of HP x with HP ref over the brain: how much of that
  detail is the true detail (1 = all of it, 0 = none).
- PSNR / SSIM in the brain (``aslsr.metrics``, the definitions of docs/metrics.md).

    python benchmarks/texture.py --ref REF.nii.gz --mask MASK.nii.gz NAME=IMAGE.nii.gz ... [--markdown]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from aslsr import metrics

DETAIL_SIGMA_VOXELS = 1.0


def _high_pass(image: np.ndarray) -> np.ndarray:
    return image - ndimage.gaussian_filter(image, DETAIL_SIGMA_VOXELS, mode="nearest")


def _gradient_energy(image: np.ndarray, brain: np.ndarray) -> float:
    return float(sum((g[brain] ** 2).mean() for g in np.gradient(image)))


def texture_scores(ref: np.ndarray, image: np.ndarray, brain: np.ndarray) -> dict[str, float]:
    """Sharpness and texture statistics of ``image`` against ``ref`` over the boolean ``brain`` mask.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = ndimage.gaussian_filter(rng.random((24, 24, 24)), 1.0)
    >>> brain = np.ones(ref.shape, bool)
    >>> scores = texture_scores(ref, ref, brain)
    >>> round(scores["detail_correlation"], 3), round(scores["gradient_energy"], 3)
    (1.0, 1.0)
    >>> texture_scores(ref, ndimage.gaussian_filter(ref, 2.0), brain)["gradient_energy"] < 0.5
    True
    """
    ref, image = np.asarray(ref, np.float64), np.asarray(image, np.float64)
    detail_ref, detail = _high_pass(ref)[brain], _high_pass(image)[brain]
    return {
        "psnr": metrics.psnr(ref, image, mask=brain),
        "ssim": metrics.ssim(ref, image, mask=brain),
        "gradient_energy": _gradient_energy(image, brain) / _gradient_energy(ref, brain),
        "detail_energy": float(detail.var() / detail_ref.var()),
        "detail_correlation": float(np.corrcoef(detail, detail_ref)[0, 1]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", type=Path, required=True, help="noise-free reference on the images' grid")
    parser.add_argument("--mask", type=Path, required=True, help="brain mask on the same grid")
    parser.add_argument("images", nargs="+", help="NAME=PATH of images on the reference's grid")
    args = parser.parse_args(argv)
    ref = np.asarray(nib.load(args.ref).dataobj, np.float64)
    brain = np.asarray(nib.load(args.mask).dataobj) > 0
    print("| image | PSNR (dB) | SSIM | gradient energy | detail energy | detail correlation |")
    print("|---|---|---|---|---|---|")
    for item in args.images:
        name, _, path = item.partition("=")
        s = texture_scores(ref, np.asarray(nib.load(path).dataobj, np.float64), brain)
        print(
            f"| {name} | {s['psnr']:.2f} | {s['ssim']:.4f} | {s['gradient_energy']:.2f} "
            f"| {s['detail_energy']:.2f} | {s['detail_correlation']:.3f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
