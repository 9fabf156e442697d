"""Diagnosis, not a method: does the generator lose at 1 mm because its T1 channel is noisier there than in training?

Training sees the T1 averaged onto the pyramid's grids (3.75 x 3.75 x 2.5 mm and coarser: its noise divided by 6
and more); at the T1's 1 mm the generator meets the T1's full noise. Here each pyramid scale's T1 gets white noise
added so that its noise sd equals the T1's own (``T1_SD``: the T1's true total noise sd, known for this phantom edit,
1.5 % + 2 % of the white matter: sqrt(3.33^2 + 4.41^2) = 5.53), everything else as the default, SR to 1 mm.

    python t1_noise_matched_trial.py CASE OUT [T1_SD]
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

from aslsr import train

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "2026-12-07-cpu-amd-value-range"))
from t1_scale_trial import run_default_at_1mm  # noqa: E402


def main(case: Path, out: Path, t1_sd: float) -> None:
    original = train.build_pyramid

    def build_pyramid(asl, t1, grids, mask=None):
        scales = original(asl, t1, grids, mask)
        t1_voxel = float(np.prod(t1.grid.voxel_size))
        rng = np.random.default_rng(1)
        matched = []
        for scale in scales:
            averaged = t1_sd * np.sqrt(t1_voxel / float(np.prod(scale.grid.voxel_size)))
            extra = float(np.sqrt(max(t1_sd**2 - averaged**2, 0.0)))
            print(f"scale {scale.grid.shape}: T1 noise {averaged:.2f} + {extra:.2f} added", flush=True)
            noisy = scale.t1 + rng.normal(0.0, extra, scale.t1.shape).astype(np.float32)
            matched.append(dataclasses.replace(scale, t1=noisy))
        return matched

    train.build_pyramid = build_pyramid
    run_default_at_1mm(case, out)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]) if sys.argv[3:] else 5.53)
