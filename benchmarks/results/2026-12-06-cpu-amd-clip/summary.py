"""The BENCHMARKS.md "2026-12-06 late" tables from this folder's records: the report half at run seeds 0-2 with the
clip (against the evening entry's default and the fixed dTV), and the worst-lesion error averaged over phantom seeds
0-2 (seed 0: the mean of the three clip runs; seeds 1-2: phantom_seeds12_panel.json). Run it in this folder."""

import json

CLIP = [
    "../2026-12-06-cpu-amd-lesion-draws/clip5_report_seed0_stability.json",
    "clip5_report_seeds12_first_stability.json",
    "clip5_report_seed2_rest_stability.json",
]
DTV_BOX = {"hypo-box": 32.09, "lesions-kspace-lpi": 33.62, "oblique-gauss-hyper": 26.68, "lowsnr-kspace-las": 30.12}
DEFAULT = {  # the evening entry's default (no clip), run seeds 0 / 1 / 2
    "hypo-box": (33.52, 33.38, 33.42),
    "lesions-kspace-lpi": (34.96, 35.10, 35.18),
    "oblique-gauss-hyper": (27.85, 27.78, 27.97),
    "lowsnr-kspace-las": (31.79, 31.71, 31.66),
}

runs = [run for path in CLIP for run in json.load(open(path))]
panel = {(r["variant"], r["seed"], r["method"]): r for r in json.load(open("phantom_seeds12_panel.json"))["records"]}


def worst_lesion(record):
    return 100 * max(lesion["error"] for lesion in record["lesions"].values())


def span(values, minus):
    return f"{min(values) - minus:+.2f}..{max(values) - minus:+.2f}"


print("| variant | clip, seeds 0 / 1 / 2 | spread | - default | - dTV (box) | - dTV-auto | - best interp. | lesion % |")
print("|---|---|---|---|---|---|---|---|")
changes = []
for variant, box in DTV_BOX.items():
    seeds = sorted((r for r in runs if r["case"] == variant), key=lambda r: r["seed"])
    psnr = [r["sr_psnr"] for r in seeds]
    change = [round(p, 2) - d for p, d in zip(psnr, DEFAULT[variant])]
    changes += change
    best = max(seeds[0]["linear_psnr"], seeds[0]["spline_psnr"])
    lesions = " / ".join(f"{100 * r['sr_lesion_error']:.2f}" for r in seeds)
    print(
        f"| {variant} | {' / '.join(f'{p:.2f}' for p in psnr)} | {max(psnr) - min(psnr):.2f} | "
        f"{' / '.join(f'{c:+.2f}' for c in change)} | {span(psnr, box)} | {span(psnr, seeds[0]['dtv_psnr'])} | "
        f"{span(psnr, best)} | {lesions} / spline {100 * seeds[0]['spline_lesion_error']:.2f} |"
    )
print(f"\nmean change {sum(changes) / len(changes):+.3f} dB ({min(changes):+.2f} to {max(changes):+.2f})\n")

print("| variant | SR per phantom seed 0 / 1 / 2 | mean | spline per phantom seed | mean |")
print("|---|---|---|---|---|")
for variant in DTV_BOX:
    seed0 = [r for r in runs if r["case"] == variant]
    sr = [sum(100 * r["sr_lesion_error"] for r in seed0) / len(seed0)]
    spline = [100 * seed0[0]["spline_lesion_error"]]
    sr += [worst_lesion(panel[(variant, s, "aslsr")]) for s in (1, 2)]
    spline += [worst_lesion(panel[(variant, s, "spline")]) for s in (1, 2)]
    print(
        f"| {variant} | {' / '.join(f'{e:.2f}' for e in sr)} | {sum(sr) / 3:.2f} | "
        f"{' / '.join(f'{e:.2f}' for e in spline)} | {sum(spline) / 3:.2f} |"
    )
