"""Report only, run once: the departures measured one at a time, all in one case, at a phantom seed used nowhere else.

``aslsr simulate --seed 11`` with a k-space readout (Tukey 0.5) on an oblique ASL grid stored LPS, noise 8, a T1
stored LPS at 1.2 mm with 15 % bias, a smooth CBF field, GM heterogeneity, a hypo- and a hyper-perfused lesion,
vessels and a 6 mm warp; then head.py's head on the T1 (skull, scalp, 2 % more noise) and a scalp on the LR M0
7-13 mm from the brain (``m0_scalp_run.add_scalp``). Runs: the default, the fixed box dTV of #14, and the strongest
dTV (the acquisition read by ``auto``, lambda per noise, k = 2); experiment 1 (NR grid, M0 given, run seed 0),
scored as stress.py scores (brain vs the noise-free NR reference).

    python all_at_once.py OUT      (OUT/case, OUT/default, OUT/dtv_box, OUT/dtv_noise; OUT/all_at_once.json)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "2026-12-07-cpu-amd-t1-head"))
sys.path.insert(0, str(HERE.parent / "2026-12-07-cpu-amd-stress"))
from head import add_head  # noqa: E402
from m0_scalp_run import add_scalp  # noqa: E402
from stress import REPO, run, score  # noqa: E402

OPTIONS = (
    "--seed 11 --psf kspace --kspace-window 0.5 --noise-sd 8 --oblique 4 -3 8 --asl-orientation LPS "
    "--t1-orientation LPS --t1-voxel-size 1.2 --t1-bias 0.15 --tissue-field 0.3 --gm-heterogeneity 0.3 "
    "--lesions 0.4 1.6 --vessels 4 4 --warp 6"
)


def make_case(case: Path) -> None:
    command = [sys.executable, "-m", "aslsr", "simulate", str(case), "--overwrite", "--quiet", *OPTIONS.split()]
    subprocess.run(command, check=True, cwd=REPO)
    image = nib.load(case / "t1w.nii.gz")
    data = add_head(np.asarray(image.get_fdata(dtype=np.float32)), np.asarray(image.header.get_zooms()[:3]))
    nib.save(nib.Nifti1Image(data, image.affine, image.header), case / "t1w.nii.gz")
    add_scalp(case, 7.0)


def main(root: Path) -> None:
    case = root / "case"
    if not (case / "phantom.json").is_file():
        make_case(case)
    (root / "dtv_noise.toml").write_text("dtv_lambda_per_noise = 2.0\n")
    row = {"options": OPTIONS, "default_s": run(case, root / "default", [])}
    run(case, root / "dtv_box", ["--method", "dtv", "--acquisition", "box"])
    run(case, root / "dtv_noise", ["--method", "dtv", "--config", str(root / "dtv_noise.toml")])
    scores = {k: score(case, root / "default" / f"{k}.nii.gz") for k in ("linear", "spline", "dtv", "sr")}
    scores["dtv-box"] = score(case, root / "dtv_box" / "sr.nii.gz")
    scores["dtv-noise"] = score(case, root / "dtv_noise" / "sr.nii.gz")
    report = json.loads((root / "default" / "report.json").read_text())
    row |= {"scores": scores, "warnings": report["warnings"], "config": report["config"], "asl": report["asl"]}
    row["registration"] = report.get("registration")
    (root / "all_at_once.json").write_text(json.dumps(row, indent=1))
    print({k: round(v["psnr_brain"], 2) for k, v in scores.items()}, flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
