"""The default on a case with the LR's noise sd given (a TOML with ``input_noise_sd``), scored as head.py scores.

python given_sd.py CASE OUT TOML      (TOML "-": the default as it is)
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "2026-12-07-cpu-amd-stress"))
from stress import run, score  # noqa: E402

case, out, toml = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
secs = run(case, out, ["--config", toml] if toml != "-" else [])
r = json.load(open(out / "report.json"))
print(
    out.name,
    {k: round(score(case, out / f"{k}.nii.gz")["psnr_brain"], 3) for k in ("dtv", "sr")},
    round(secs),
    r["lr_agreement"],
    r["config"].get("input_noise_sd"),
    r["warnings"],
    flush=True,
)
