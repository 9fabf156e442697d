"""The noise a run reads, as `aslsr run` reads it: the run's mask (from the M0 and the aligned T1), `auto` resolved
with the M0 check, then the LR's box equivalent under that model; prints both readings, their ratio and the source.

    python run_noise_reading.py CASE [CASE ...]     (simulated cases with asl_lr, m0_lr, t1w_aligned)
"""

from __future__ import annotations

import sys
from pathlib import Path

from aslsr import masking, noise
from aslsr.acquisition import as_box_acquisition
from aslsr.acquisition_estimate import resolve_acquisition
from aslsr.config import preset
from aslsr.io import load_volume

if __name__ == "__main__":
    print("| case | acquisition resolved | background reading | brain reading | brain / background | source |")
    print("|---|---|---|---|---|---|")
    for path in map(Path, sys.argv[1:]):
        asl, m0, t1 = (load_volume(path / f) for f in ("asl_lr.nii.gz", "m0_lr.nii.gz", "t1w_aligned.nii.gz"))
        mask = masking.derive_mask(m0, t1, asl.grid)
        config, _ = resolve_acquisition(preset("fast"), asl, mask, m0=m0, t1=t1)
        box = as_box_acquisition(asl, config)
        outside, inside = noise.background_noise(box, mask), noise.brain_noise(box, mask)
        chosen = noise.estimate_noise(box, mask)
        print(
            f"| {path.name} | {config.acquisition} {config.acquisition_window} | {outside.sd:.3f} | {inside.sd:.3f} "
            f"| {inside.sd / outside.sd:.2f} | {chosen.source} |",
            flush=True,
        )
