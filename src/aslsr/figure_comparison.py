"""A comparison figure: one view of several named images on one grid, side by side in one window.

Slices are shown as :mod:`aslsr.figure_slices` describes (world orientation, neurological display).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import ndimage

from .figure_slices import (
    ASL_CMAP,
    ASL_UNITS,
    bare_axes,
    box_ratio,
    brain_box,
    edge_labels,
    intensity_window,
    save_png,
    slice_axis,
    slice_view,
    view_axes,
)
from .grids import Grid


def comparison_figure(
    path: str | os.PathLike,
    *,
    panels: Sequence[tuple[str, np.ndarray]],
    grid: Grid,
    view: str,
    rows: Sequence[Sequence[str]] | None = None,
    window: tuple[float, float] | None = None,
    slice_index: int | None = None,
    title: str = "",
    mask: np.ndarray | None = None,
    units: str = ASL_UNITS,
) -> Path:
    """Write a grid of one ``view`` of several named images on ``grid``, all in the same window.

    ``rows`` arranges the panel names (default: one row, in order). ``window`` defaults to the 1st to
    99.5th percentile of the first panel inside ``mask``, or without a mask to 0 (or the 1st
    percentile, if higher) to the 99.5th percentile of the whole first panel. With ``mask`` the
    panels are cropped to the brain. ``slice_index`` (along :func:`slice_axis`) defaults to the
    mask's centre of mass, else the middle slice.
    """
    view_axes(view)
    images = dict(panels)
    if not images:
        raise ValueError("comparison_figure needs at least one panel")
    for name, array in [*images.items(), *([("mask", mask)] if mask is not None else [])]:
        if np.shape(array) != grid.shape:
            raise ValueError(f"panel {name!r} has shape {np.shape(array)}, the grid is {grid.shape}")
    layout_rows = [list(row) for row in rows] if rows is not None else [[name for name, _ in panels]]
    missing = [name for row in layout_rows for name in row if name not in images]
    if missing or not any(layout_rows):
        raise ValueError(f"rows must name given panels; unknown: {', '.join(missing) or '(none named)'}")
    brain = np.asarray(mask) > 0 if mask is not None else None
    first = np.asarray(panels[0][1], dtype=np.float64)
    if window is None and brain is not None and brain.any():
        window = intensity_window(first, brain)
    elif window is None:
        low, high = intensity_window(first)
        window = (max(low, 0.0), high) if high > 0 else (low, high)
    if slice_index is None and brain is not None and brain.any():
        slice_index = int(round(ndimage.center_of_mass(brain)[slice_axis(grid, view)]))
    plane, aspect = slice_view(first, grid, view, slice_index)
    crop = (
        brain_box(slice_view(brain, grid, view, slice_index)[0], aspect)
        if brain is not None
        else (slice(0, plane.shape[0]), slice(0, plane.shape[1]))
    )
    ratio = box_ratio(crop, aspect)

    n_rows, n_columns = len(layout_rows), max(len(row) for row in layout_rows)
    panel_w, gap_w, gap_h, left, top = 2.6, 0.08, 0.35, 0.15, 0.35 + (0.45 if title else 0.0)
    panel_h = panel_w * ratio
    width = left + n_columns * panel_w + (n_columns - 1) * gap_w + 1.1
    height = top + n_rows * panel_h + (n_rows - 1) * gap_h + 0.15
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    image = None
    for row, names in enumerate(layout_rows):
        for column, name in enumerate(names):
            x, y = left + column * (panel_w + gap_w), height - top - (row + 1) * panel_h - row * gap_h
            axes = figure.add_axes((x / width, y / height, panel_w / width, panel_h / height))
            plane, aspect = slice_view(images[name], grid, view, slice_index)
            image = axes.imshow(
                plane[crop], cmap=ASL_CMAP, vmin=window[0], vmax=window[1], aspect=aspect, interpolation="nearest"
            )
            bare_axes(axes)
            axes.set_title(name, fontsize=11)
            if row == 0 and column == 0:
                edge_labels(axes, view)
    bar_x = left + n_columns * panel_w + (n_columns - 1) * gap_w + 0.15
    bar = figure.add_axes((bar_x / width, 0.15 / height, 0.15 / width, (height - top - 0.15) / height))
    figure.colorbar(image, cax=bar).set_label(units, fontsize=10)
    if title:
        figure.suptitle(title, fontsize=12, y=1 - 0.12 / height, va="top")
    return save_png(figure, path)
