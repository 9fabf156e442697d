"""The SR of a finished ``aslsr run`` made again with ``consistency_region`` "all" (the step everywhere, as until
2026-12-07) and "brain" (the default since), the same trained model; both scored against the phantom's truth.

    python region_trial.py CASE_DIR RUN_DIR [THREADS]

CASE_DIR: an ``aslsr simulate`` folder (``ref_clean.nii.gz``, or ``truth_1mm.nii.gz`` averaged onto the run's grid
for a run to the T1's grid; ``mask.nii.gz`` and ``lesion.nii.gz`` resampled onto it, as ``score_runs.py`` of
2026-12-07-cpu-amd-dtv-steps does); RUN_DIR: the run's folder (``model.pt``, ``report.json``,
``dtv.nii.gz``, ``t1_registered.nii.gz``, ``spline.nii.gz``). The brain mask on the ASL grid is made as the run made
it (from its M0, else the T1). Prints PSNR dB / SSIM over the whole volume and in the brain, and the lesion ROI's
contrast error (lesion.nii.gz > 0 as one region), for both and for the run's dTV and spline, and how far each is
from the run's own sr.nii.gz (0 for the region the run was made with).
"""

import dataclasses
import json
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from aslsr.config import replace
from aslsr.generate import refines_acquisition_dtv, super_resolve
from aslsr.grids import Grid, resample, resample_average
from aslsr.io import Volume, load_volume
from aslsr.masking import derive_mask
from aslsr.metrics import evaluate
from aslsr.model import Model


def region_on(path: Path, grid: Grid) -> np.ndarray:
    volume = load_volume(path, allow_constant=True)
    return resample(volume.data.astype(np.float32), volume.affine, grid, order=1) > 0.5


def reference(case: Path, grid: Grid) -> np.ndarray:
    truth = load_volume(case / "ref_clean.nii.gz")
    if truth.grid != grid:
        truth = load_volume(case / "truth_1mm.nii.gz")
        return resample_average(truth.data, truth.affine, grid)
    return truth.data


@dataclasses.dataclass
class FinishedRun:
    """A finished run's model and what its generation used: ASL, registered T1, grid, dTV, brain mask (ASL grid)."""

    model: Model
    asl: Volume
    t1: Volume
    target: Grid
    written: np.ndarray
    dtv: np.ndarray
    brain_on_asl: np.ndarray

    @classmethod
    def read(cls, run: Path) -> "FinishedRun":
        report = json.loads((run / "report.json").read_text())
        asl, t1 = load_volume(report["inputs"]["asl"]), load_volume(run / "t1_registered.nii.gz")
        m0 = load_volume(report["inputs"]["m0"]) if report["inputs"].get("m0") else None
        written = nib.load(run / "sr.nii.gz")
        dtv = nib.load(run / "dtv.nii.gz").get_fdata().astype(np.float32)
        target = Grid(written.shape, written.affine)
        return cls(
            Model.load(run / "model.pt"), asl, t1, target, written.get_fdata(), dtv, derive_mask(m0, t1, asl.grid)
        )

    def sr(self) -> np.ndarray:
        """The SR made again with the model's current config."""
        refines = refines_acquisition_dtv(self.model, self.asl, self.target, self.brain_on_asl)
        return super_resolve(
            self.model,
            self.asl,
            self.t1,
            self.target,
            t1_on_target=self.t1.data,
            dtv_on_target=self.dtv if refines else None,
            brain_mask=self.brain_on_asl,
        )


def main(case: Path, run: Path) -> None:
    finished = FinishedRun.read(run)
    model, target, dtv = finished.model, finished.target, finished.dtv
    predictions = {}
    for region in ("all", "brain"):
        model.config = replace(model.config, consistency_region=region)
        clock = time.perf_counter()
        predictions[region] = finished.sr()
        same = float(np.abs(predictions[region] - finished.written).max())
        print(f"{region}: {time.perf_counter() - clock:.0f} s; max |difference| from the run's sr.nii.gz {same:.3g}")
    predictions["dtv"] = dtv
    predictions["spline"] = nib.load(run / "spline.nii.gz").get_fdata()
    lesion = region_on(case / "lesion.nii.gz", target) if (case / "lesion.nii.gz").exists() else None
    results = evaluate(
        reference(case, target), predictions, mask=region_on(case / "mask.nii.gz", target), lesion=lesion
    )
    for name, scores in results.items():
        error = scores.get("lesion_contrast_error")
        print(
            f"{name:7s} whole {scores['psnr']:.2f} / {scores['ssim']:.4f}  brain {scores['psnr_brain']:.2f} / "
            f"{scores['ssim_brain']:.4f}  lesion error {'-' if error is None else f'{100 * error:.2f} %'}"
        )


if __name__ == "__main__":
    torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 2)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
