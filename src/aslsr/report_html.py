"""One self-contained HTML page per subject: summary, warnings, registration, figures, outputs, config.

The page has no external CSS, JavaScript or network access; figures are embedded as base64 PNG
data URIs. Every value taken from the report is escaped, and the output depends only on the input
(no generation date), so the same run gives the same bytes.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any

from .io import atomic_path

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; line-height: 1.4; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; font-weight: 600; }
td.num { text-align: right; font-family: monospace; }
.warn { background: #fff4e0; border: 2px solid #e69500; padding: 0.6em 1em; border-radius: 4px; }
.ok { background: #eef8ee; border: 1px solid #7b7; padding: 0.6em 1em; border-radius: 4px; }
.note { color: #a33; font-style: italic; }
.hint { color: #666; font-size: 0.9em; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-weight: 600; margin-top: 0.3em; }
code { font-family: monospace; background: #f4f4f4; padding: 0 0.2em; }
"""

TIMING_KEYS = ("load_s", "registration_s", "acquisition_s", "training_s", "generation_s", "writing_s")


def _e(value: Any) -> str:
    """The value as escaped text (``None`` as a dash)."""
    return "&mdash;" if value is None else html.escape(str(value), quote=True)


def _num(value: Any, digits: int = 3) -> str:
    """A number rounded for display, or the escaped value when it is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _e(value)
    return _e(f"{value:.{digits}g}" if isinstance(value, float) else value)


def _vec(values: Any, digits: int = 4) -> str:
    """A list of numbers as ``a × b × c``."""
    if not isinstance(values, (list, tuple)):
        return _e(values)
    return " &times; ".join(_num(v, digits) for v in values)


def _table(rows: list[tuple[str, str]]) -> str:
    """A two-column table; keys are escaped here, values must already be HTML."""
    body = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts as dotted ``(key, value)`` pairs, in insertion order."""
    if isinstance(value, dict):
        out: list[tuple[str, Any]] = []
        for key, item in value.items():
            out += _flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return out
    return [(prefix, value)]


def _grid(grid: Any) -> str:
    """A grid's shape and voxel size."""
    grid = grid if isinstance(grid, dict) else {}
    return f"{_vec(grid.get('shape'))} voxels, {_vec(grid.get('voxel_size_mm'))} mm"


def _summary(report: dict) -> str:
    """Input, grids, device, timings, memory and the LR-agreement QC number."""
    asl = report.get("asl") or {}
    grids = report.get("grids") or {}
    timings = report.get("timings") or {}
    agreement = report.get("lr_agreement") or {}
    types = asl.get("volume_types")
    types_text = ", ".join(f"{k}: {v}" for k, v in types.items()) if isinstance(types, dict) else types
    rows = [
        ("ASL input", _e((report.get("inputs") or {}).get("asl"))),
        ("ASL kind", _e(asl.get("kind"))),
        ("Volume types", _e(types_text)),
        ("Pairs averaged", _e(asl.get("pairs_averaged"))),
        ("M0 source", _e(asl.get("m0_source"))),
        ("Units", _e(asl.get("units"))),
        ("Registration target", _e(asl.get("registration_target"))),
    ]
    motion = asl.get("realignment")
    if isinstance(motion, dict):
        rows.append(
            (
                "Series realignment",
                f"{_e(motion.get('volumes_resampled'))} of {_e(motion.get('volumes_registered'))} volumes moved and "
                f"resampled; displacement up to {_num(motion.get('max_displacement_mm'), 3)} mm "
                f"(mean {_num(motion.get('mean_displacement_mm'), 3)} mm)",
            )
        )
    if asl.get("quantification"):
        rows.append(
            ("CBF quantification", "<br>".join(f"{_e(k)}: {_num(v, 4)}" for k, v in _flatten(asl["quantification"])))
        )
    rows += [
        ("Grids", f"{_grid(grids.get('asl'))} &rarr; {_grid(grids.get('target'))}"),
        ("Scale factor", _vec(report.get("scale_factor"))),
        (
            "Device",
            f"{_e(report.get('device'))} ({_e(report.get('device_name'))}), {_e(report.get('threads'))} threads",
        ),
        ("Seed", _e(report.get("seed"))),
        ("Mask source", _e(report.get("mask_source"))),
    ]
    numbers = [v for v in timings.values() if isinstance(v, (int, float))]
    stages = ", ".join(f"{_e(k.removesuffix('_s'))} {_num(timings[k])}" for k in TIMING_KEYS if k in timings)
    extra = ", ".join(f"{_e(k)} {_num(v)}" for k, v in timings.items() if k not in TIMING_KEYS)
    rows.append(
        (
            "Time (s)",
            f"total {_num(float(sum(numbers)))}" + (f": {stages}" if stages else "") + (f"; {extra}" if extra else ""),
        )
    )
    rows.append(
        (
            "Peak memory (MB)",
            _num(report.get("peak_memory_mb"), 6)
            + (f"; GPU {_num(report['peak_gpu_memory_mb'], 6)}" if "peak_gpu_memory_mb" in report else ""),
        )
    )
    ratio = agreement.get("ratio_to_spline")
    flag = " <strong>(look closely)</strong>" if agreement.get("departs") else ""
    rows.append(
        (
            "LR agreement",
            f"ratio {_num(ratio)}{flag} (SR rms {_num(agreement.get('sr_rms'))}, "
            f"spline rms {_num(agreement.get('spline_rms'))}, ASL noise sd {_num(agreement.get('noise_sd'))})"
            "<br><span class='hint'>SR averaged back onto the ASL grid vs the ASL, relative to spline "
            "interpolation; above 2, and above 1.5x the ASL's noise, means look closely.</span>",
        )
    )
    solver = report.get("dtv") or {}
    if solver:
        dtv_only = report.get("method") == "dtv"
        rows.append(
            (
                "Method",
                _e(report.get("method", "gan"))
                + (" (sr.nii.gz is the dTV reconstruction; no model.pt)" if dtv_only else ""),
            )
        )
        stop = "converged" if solver.get("converged") else "iteration limit"
        rows.append(
            (
                "dTV baseline",
                f"{_e(solver.get('iterations'))} iterations ({stop}), "
                f"{_num(solver.get('seconds'))} s on {_e(solver.get('device'))}; "
                f"LR rms {_num(agreement.get('dtv_rms'))}"
                "<br><span class='hint'>directional TV guided by the T1 (dtv.nii.gz); settings in the "
                "configuration (dtv_*, acquisition*).</span>",
            )
        )
    return "<h2>Summary</h2>" + _table(rows)


def _warnings(report: dict) -> str:
    """The run's warnings in a highlighted box, or a plain "none"."""
    warnings = report.get("warnings") or []
    if not warnings:
        return "<h2>Warnings</h2><div class='ok'>none</div>"
    items = "".join(f"<li>{_e(w)}</li>" for w in warnings)
    return f"<h2>Warnings</h2><div class='warn'><ul>{items}</ul></div>"


def _registration(report: dict) -> str:
    """Whether T1 -> ASL registration ran, and its rotation, translation, metric and time."""
    reg = report.get("registration") or {}
    rows = [("Performed", _e(reg.get("performed")))]
    labels = [
        ("rotation_deg", "Rotation (deg)"),
        ("translation_mm", "Translation (mm)"),
        ("metric_before", "Metric before"),
        ("metric_after", "Metric after"),
        ("seconds", "Time (s)"),
    ]
    rows += [(label, _num(reg[key], 4)) for key, label in labels if key in reg]
    if "metric" in reg:
        rows.append(("Metric", _e(reg["metric"])))
    matrix = reg.get("matrix_asl_to_t1_ras_mm")
    if isinstance(matrix, list) and matrix:
        cells = "".join(
            "<tr>" + "".join(f"<td class='num'>{_num(v, 4)}</td>" for v in row) + "</tr>"
            for row in matrix
            if isinstance(row, list)
        )
        rows.append(("Matrix (ASL \u2192 T1, RAS mm)", f"<table>{cells}</table>"))
    if reg.get("warnings"):
        rows.append(("Warnings", "<br>".join(_e(w) for w in reg["warnings"])))
    return "<h2>Registration</h2>" + _table(rows)


def _figures(figures: dict[str, str | os.PathLike]) -> str:
    """Each PNG embedded as a data URI under its caption; a missing file gets a note instead."""
    parts = ["<h2>Figures</h2>"]
    for caption, path in figures.items():
        try:
            data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        except OSError:
            parts.append(
                f"<p class='note'>figure &ldquo;{_e(caption)}&rdquo; not available "
                f"(could not read {_e(Path(path).name)})</p>"
            )
            continue
        parts.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{_e(caption)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>"
        )
    if len(parts) == 1:
        parts.append("<p>none</p>")
    return "".join(parts)


def _outputs(outputs: dict[str, str] | None) -> str:
    """Output names linked by their relative paths."""
    if not outputs:
        return ""
    rows = "".join(
        f'<tr><th>{_e(name)}</th><td><a href="{_e(link)}">{_e(link)}</a></td></tr>' for name, link in outputs.items()
    )
    return f"<h2>Outputs</h2><table>{rows}</table>"


def _config(report: dict) -> str:
    """The resolved configuration (and provenance) in a collapsible table."""
    rows = [(k, _e(v)) for k, v in _flatten(report.get("config") or {})]
    provenance = [("command", _e(report.get("command")))]
    provenance += [(f"inputs.{k}", _e(v)) for k, v in (report.get("inputs") or {}).items()]
    provenance += [(f"versions.{k}", _e(v)) for k, v in (report.get("versions") or {}).items()]
    return (
        "<h2>Configuration</h2><details><summary>resolved configuration</summary>"
        + _table(rows)
        + "</details><details><summary>command, inputs and versions</summary>"
        + _table(provenance)
        + "</details>"
    )


def subject_report_html(
    path: str | os.PathLike,
    *,
    title: str,
    report: dict,
    figures: dict[str, str | os.PathLike],
    outputs: dict[str, str] | None = None,
) -> Path:
    """Write one subject's self-contained HTML report to ``path`` (atomically) and return the path."""
    path = Path(path)
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{_e(title)}</h1><p class='sub'>aslsr {_e(report.get('aslsr_version', 'unknown'))}</p>"
        + _summary(report)
        + _warnings(report)
        + _registration(report)
        + _figures(figures)
        + _outputs(outputs)
        + _config(report)
        + "</body></html>\n"
    )
    with atomic_path(path, ".html") as temporary:
        temporary.write_text(page, encoding="utf-8")
    return path
