"""Score the dtv.nii.gz and sr.nii.gz of benchmarks/panel.py run folders (brain, vs ref_clean), with the dTV's lambda.

python score_runs.py PANEL_OUT METHOD [METHOD ...]
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from panel import score  # noqa: E402

root, methods = Path(sys.argv[1]), sys.argv[2:]
print("| variant | " + " | ".join(f"{m} dTV (lambda) | {m} SR" for m in methods) + " |")
print("|---|" + "---|---|" * len(methods))
for case in sorted(root.glob("*/seed0")):
    cells = []
    for method in methods:
        run = case / method
        lam = json.loads((run / "report.json").read_text())["dtv"]["lam"]
        dtv, sr = (score(case / "phantom", run / name)["psnr_brain"] for name in ("dtv.nii.gz", "sr.nii.gz"))
        cells += [f"{dtv:.2f} ({lam:.3f})", f"{sr:.2f}"]
    print(f"| {case.parent.name} | " + " | ".join(cells) + " |", flush=True)
