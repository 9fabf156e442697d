"""Experiment 2's scores of one run folder against the phantom's 1 mm truth, in the brain, as table 2 has them.

python score_experiment2.py PHANTOM RUN
"""

import sys
from pathlib import Path

import numpy as np

from aslsr import metrics
from aslsr.grids import resample
from aslsr.io import load_volume

phantom, run = Path(sys.argv[1]), Path(sys.argv[2])
truth = load_volume(phantom / "truth_1mm.nii.gz")
on_truth = {}
for name in ("mask", "lesion"):
    volume = load_volume(phantom / f"{name}.nii.gz")
    on_truth[name] = resample(volume.data.astype(np.float32), volume.affine, truth.grid, order=1) > 0.5
for name in ("linear", "dtv", "sr"):
    image = load_volume(run / f"{name}.nii.gz")
    assert image.grid == truth.grid, f"{name} is not on the truth's grid"
    psnr = metrics.psnr(truth.data, image.data, on_truth["mask"])
    ssim = metrics.ssim(truth.data, image.data, on_truth["mask"])
    error = metrics.lesion_contrast_error(truth.data, image.data, on_truth["lesion"], on_truth["mask"])
    print(f"{name}: PSNR brain {psnr:.2f} dB, SSIM brain {ssim:.4f}, lesion contrast error {100 * error:.1f} %")
