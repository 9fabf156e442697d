"""The tables of ``aslsr reproduce``: markdown (best value per column in bold) and CSV (full precision)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable, Mapping, Sequence

from .reproduce_scoring import REFERENCES, Rows

_FORMATS = (
    ("psnr", "{:.2f}", max),
    ("ssim", "{:.4f}", max),
    ("lesion_contrast_error", "{:.3f}", min),
    ("lesion_contrast", "{:.3f}", None),
    ("training_s", "{:.1f}", None),
)


def write_table1(out: Path, table: Rows, caption: str) -> None:
    """``table1.md`` (brain-mask and whole-volume tables) and ``table1.csv`` (one row per method)."""
    labels = {key: label for key, _, label in REFERENCES}
    brain = [f"{m}_{k}_brain" for k in labels for m in ("psnr", "ssim")]
    whole = [f"{m}_{k}" for k in labels for m in ("psnr", "ssim")]
    lesion = ["lesion_contrast", "lesion_contrast_error"]
    titles = {
        **{f"{m}_{k}{s}": f"{labels[k]} {m.upper()}" for k in labels for m in ("psnr", "ssim") for s in ("", "_brain")},
        "lesion_contrast": "lesion ratio",
        "lesion_contrast_error": "ratio error",
    }
    reference_ratio = next(iter(table.values()))["lesion_contrast_ref_clean"]
    lines = [
        f"Table 1. Experiment 1 (paper Section 3.1, Table 1): SR of the LR ASL onto the NR grid, scored "
        f"against the NR, HR and noise-free references. {caption} Lesion ratio of the noise-free "
        f"map: {reference_ratio:.3f}.",
        "",
        "**In the brain mask**",
        "",
        *markdown_table(table, brain + lesion, titles),
        "",
        "**Whole volume**",
        "",
        *markdown_table(table, whole, titles),
    ]
    (out / "table1.md").write_text("\n".join(lines) + "\n")
    write_csv(out / "table1.csv", table, whole + brain + lesion + ["lesion_contrast_ref_clean"])


def write_table2(out: Path, table: Rows, caption: str, note: str, voxels: str) -> None:
    """``table2.md`` and ``table2.csv``: experiment 2 scored against the truth (``note``: how it was
    brought onto the SR grid of ``voxels`` mm)."""
    columns = [
        "psnr_truth_brain",
        "ssim_truth_brain",
        "psnr_truth",
        "ssim_truth",
        "lesion_contrast",
        "lesion_contrast_error",
    ]
    titles = {
        "psnr_truth_brain": "PSNR brain",
        "ssim_truth_brain": "SSIM brain",
        "psnr_truth": "PSNR whole",
        "ssim_truth": "SSIM whole",
        "lesion_contrast": "lesion ratio",
        "lesion_contrast_error": "ratio error",
    }
    lines = [
        f"Table 2. Experiment 2 (paper Fig. 4): SR of the NR ASL to the T1 voxel size ({voxels} mm), "
        f"scored against the phantom's ground truth ({note}; the paper had no such truth). "
        f"{caption.replace('of the noise-free map', 'of the truth')}",
        "",
        *markdown_table(table, columns, titles),
    ]
    (out / "table2.md").write_text("\n".join(lines) + "\n")
    write_csv(out / "table2.csv", table, columns + ["lesion_contrast_ref_truth"])


def write_rows(stem: Path, rows: Rows, caption: str, title: str, columns: Sequence[str], first_column: str) -> None:
    """``<stem>.md`` (caption and one markdown table) and ``<stem>.csv`` with ``columns``."""
    titles = {
        "psnr_hr_brain": "HR PSNR",
        "ssim_hr_brain": "HR SSIM",
        "psnr_clean_brain": "noise-free PSNR",
        "ssim_clean_brain": "noise-free SSIM",
        "lesion_contrast_error": "lesion ratio error",
        "training_s": "training s",
    }
    lines = [f"{title} {caption}", "", *markdown_table(rows, columns, titles, first_column)]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    write_csv(stem.with_suffix(".csv"), rows, columns, first_column)


def markdown_table(
    rows: Rows, columns: Sequence[str], titles: Mapping[str, str], first_column: str = "method"
) -> list[str]:
    """A markdown table: one line per row, the best number of each PSNR/SSIM/error column in bold."""
    best = {}
    for column in columns:
        choose = _format(column)[1]
        values = [row[column] for row in rows.values() if isinstance(row.get(column), float)]
        if choose is not None and values:
            best[column] = choose(values)
    numeric = [any(isinstance(row.get(c), float) for row in rows.values()) for c in columns]
    lines = [
        "| " + " | ".join([first_column] + [titles.get(c, c) for c in columns]) + " |",
        "|---|" + "".join("---:|" if n else "---|" for n in numeric),
    ]
    for name, row in rows.items():
        cells = []
        for column in columns:
            value = row.get(column, "")
            text = _format(column)[0].format(value) if isinstance(value, float) else str(value)
            cells.append(f"**{text}**" if column in best and value == best[column] else text)
        lines.append("| " + " | ".join([name] + cells) + " |")
    return lines


def write_csv(path: Path, rows: Rows, columns: Sequence[str], first_column: str = "method") -> None:
    """One CSV line per row; numbers at full precision (``str(float)`` round-trips exactly)."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([first_column, *columns])
        for name, row in rows.items():
            writer.writerow([name, *(row.get(column, "") for column in columns)])


def _format(column: str) -> tuple[str, Callable | None]:
    for prefix, text, choose in _FORMATS:
        if column.startswith(prefix):
            return text, choose
    return "{:.4g}", None
