"""Tables of consistency_sweep.jsonl (consistency_sweep.py's rows): PSNR in the brain (mean over run seeds 0-2)
and the worst lesion's signed contrast error per run seed, on the noisy and the noise-free LR."""

import collections
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1] if len(sys.argv) > 1 else "consistency_sweep.jsonl")]
IMAGES = ["spline", "off", "lp1.0", "lp0.7", "lp0.5", "full", "acq_lp1.0"]
HALF = {"fields-box": "tune", "hyper-gauss-las": "tune", "kspace-mild": "tune", "oblique-vessels": "tune"}
psnr, lesion = collections.defaultdict(list), collections.defaultdict(list)
for r in rows:
    key = (r["case"], r["lr"], r["image"])
    psnr[key].append((r["run"].split("/")[-1], r["psnr"]))
    errors = [v["contrast"] for k, v in r.items() if k.startswith("lesion")]
    if errors:
        lesion[key].append((r["run"].split("/")[-1], max(errors, key=abs)))
cases = sorted({r["case"] for r in rows}, key=lambda c: (HALF.get(c, "report") != "tune", c))


def table(values_by_key, cell) -> None:
    print("| variant (half) | LR | " + " | ".join(IMAGES) + " |")
    print("|---|---|" + "---|" * len(IMAGES))
    for case in cases:
        for lr in ("noisy", "clean"):
            cells = []
            for image in IMAGES:
                values = [v for _, v in sorted(values_by_key.get((case, lr, image), []))]
                cells.append(cell(values) if values else "-")
            if any(c != "-" for c in cells):
                print(f"| {case} ({HALF.get(case, 'report')}) | {lr} | " + " | ".join(cells) + " |")


table(psnr, lambda values: f"{sum(values) / len(values):.2f}")
print()
table(lesion, lambda values: " / ".join(f"{v:+.2f}" for v in values))
