"""The all-at-once case without its T1 and M0 edits (the phantom's own T1 with 1.5 % noise, an M0 without scalp):
the default and the strongest dTV only, scored as stress.py scores. (Run as an ad-hoc copy with the same steps and
paths; this file is that copy formatted.)

    python all_at_once_plain.py      (/tmp/all_plain/case, default, dtv_noise; /tmp/all_plain/scores.json)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "2026-12-07-cpu-amd-stress"))
import all_at_once as a  # noqa: E402
from stress import run, score  # noqa: E402

root = Path("/tmp/all_plain")
case = root / "case"
command = [sys.executable, "-m", "aslsr", "simulate", str(case), "--overwrite", "--quiet", *a.OPTIONS.split()]
subprocess.run(command, check=True, cwd=a.REPO)
(root / "dtv_noise.toml").write_text("dtv_lambda_per_noise = 2.0\n")
run(case, root / "default", [])
run(case, root / "dtv_noise", ["--method", "dtv", "--config", str(root / "dtv_noise.toml")])
scores = {k: score(case, root / "default" / f"{k}.nii.gz") for k in ("spline", "dtv", "sr")}
scores["dtv-noise"] = score(case, root / "dtv_noise" / "sr.nii.gz")
(root / "scores.json").write_text(json.dumps(scores, indent=1))
lesions = {k: {n: round(v["error"] * 100, 1) for n, v in row.get("lesions", {}).items()} for k, row in scores.items()}
print({k: (round(v["psnr_brain"], 2), lesions[k]) for k, v in scores.items()})
