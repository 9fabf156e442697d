"""Diagnosis, not a method: is the head's remaining cost at 1 mm the T1 channel's scaling?

``pyramid.Normalizer.fit`` scales the T1 by its 0.5th / 99.5th percentiles over the ASL's field of view; a scalp at
1.2x the white matter raises the upper one. Here the run of part 3 (the k-space case with head.py's head, SR to 1 mm)
is made with the T1's percentiles taken from the plain (skull-stripped) T1 of the same case, everything else as the
default; if the SR comes back to the plain run's level, the scaling is the cause.

    python t1_scale_trial.py CASE_WITH_HEAD PLAIN_T1_LOW PLAIN_T1_HIGH OUT
"""

from __future__ import annotations

import sys
from pathlib import Path

from aslsr import config as configs
from aslsr import pipeline, pyramid
from aslsr.inputs import TargetSpec


def main(case: Path, low: float, high: float, out: Path) -> None:
    original = pyramid.Normalizer.fit.__func__

    def fit(cls, asl, t1):
        fitted = original(cls, asl, t1)
        print("T1 percentiles as fitted", fitted.t1_low, fitted.t1_high, "-> used", low, high, flush=True)
        return cls(asl_scale=fitted.asl_scale, t1_low=low, t1_high=high)

    pyramid.Normalizer.fit = classmethod(fit)
    run_default_at_1mm(case, out)


def run_default_at_1mm(case: Path, out: Path) -> None:
    """The default (``fast``, two threads, run seed 0) on ``case`` with its M0, SR onto ``truth_1mm``'s grid."""
    config = configs.replace(configs.preset("fast"), threads=2, seed=0)
    pipeline.run(
        case / "asl_lr.nii.gz",
        case / "t1w.nii.gz",
        out,
        config=config,
        target=TargetSpec(like=case / "truth_1mm.nii.gz"),
        m0_path=case / "m0_lr.nii.gz",
        options=pipeline.RunOptions(overwrite=True),
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), Path(sys.argv[4]))
