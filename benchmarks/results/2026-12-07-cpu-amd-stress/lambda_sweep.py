"""dTV's weight lambda against the noise: the dTV alone at several lambdas on phantom cases (NR grid).

For each case folder (``aslsr simulate`` output) the T1 aligned by the phantom (t1w_aligned, the truth's
registration) is averaged onto the NR grid, the acquisition is read off the LR as ``auto`` does (with the
M0's brain mask), the noise sd of the LR is read off its background (``aslsr.noise.estimate_noise``), and
dTV runs through that acquisition model and through the box model of the LR's box equivalent (the
generator's input at the learnt zoom) at each lambda. PSNR dB in the brain vs ref_clean.

    python lambda_sweep.py CASE [CASE ...]            (fixed lambdas, LAMBDAS)
    python lambda_sweep.py --per-noise CASE [CASE ...]  (dtv_lambda_per_noise = each of PER_NOISE)
"""

import sys
from pathlib import Path

import torch

from aslsr import metrics
from aslsr.acquisition import as_box_acquisition
from aslsr.acquisition_estimate import resolve_acquisition
from aslsr.baselines import dtv_baseline
from aslsr.config import Config, replace
from aslsr.grids import resample_average
from aslsr.io import load_volume
from aslsr.masking import derive_mask
from aslsr.noise import estimate_noise

LAMBDAS = (0.025, 0.05, 0.1, 0.2, 0.4)
PER_NOISE = (1.0, 1.5, 2.0, 3.0, 4.0)


def sweep(case: Path, per_noise: bool) -> None:
    asl, m0 = load_volume(case / "asl_lr.nii.gz"), load_volume(case / "m0_lr.nii.gz")
    ref = load_volume(case / "ref_clean.nii.gz")
    t1 = load_volume(case / "t1w_aligned.nii.gz")
    t1_nr = resample_average(t1.data, t1.affine, ref.grid)
    mask_lr = derive_mask(m0, t1, asl.grid)
    config, _ = resolve_acquisition(replace(Config(), acquisition="auto"), asl, mask_lr)
    noise = estimate_noise(asl, mask_lr).sd
    box = as_box_acquisition(asl, config)
    noise_box = estimate_noise(box, mask_lr).sd
    brain = load_volume(case / "mask.nii.gz", allow_constant=True).data > 0.5
    cpu = torch.device("cpu")
    rows = {}
    field = "dtv_lambda_per_noise" if per_noise else "dtv_lambda"
    values = PER_NOISE if per_noise else LAMBDAS
    for lam in values:
        acq = dtv_baseline(asl, t1_nr, ref.grid, replace(config, **{field: lam}), device=cpu)
        boxed = dtv_baseline(box, t1_nr, ref.grid, replace(config, acquisition="box", **{field: lam}), device=cpu)
        rows[lam] = (acq, boxed)
    scores = {
        lam: [metrics.evaluate(ref.data, {"p": r.image}, mask=brain)["p"]["psnr_brain"] for r in pair]
        for lam, pair in rows.items()
    }
    scale = rows[values[0]][0].scale
    acq_text = config.acquisition + (
        f" tukey {config.acquisition_tukey_alpha}" if config.acquisition == "kspace" else ""
    )
    print(
        f"{case.parent.name}/{case.name}: {acq_text}; noise sd {noise:.3g} (box equivalent {noise_box:.3g}), "
        f"99th pct {scale:.3g}, sd/p99 {noise / scale:.4f}"
    )
    print(f"  {field}: " + "  ".join(f"{lam:>6}" for lam in values))
    print("  acquisition:    " + "  ".join(f"{scores[lam][0]:6.2f} ({rows[lam][0].lam:.3f})" for lam in values))
    print(
        "  box equivalent: " + "  ".join(f"{scores[lam][1]:6.2f} ({rows[lam][1].lam:.3f})" for lam in values),
        flush=True,
    )


if __name__ == "__main__":
    torch.set_num_threads(2)
    per_noise = "--per-noise" in sys.argv[1:]
    for folder in [a for a in sys.argv[1:] if a != "--per-noise"]:
        sweep(Path(folder), per_noise)
