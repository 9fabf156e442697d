"""The run's QC figure (``qc.png``): three views of every output beside the T1, and the loss curves.

Slices are shown as :mod:`aslsr.figure_slices` describes (world orientation, neurological display).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory
from scipy import ndimage

from .figure_slices import (
    ASL_CMAP,
    ASL_UNITS,
    VIEWS,
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
from .grids import Grid, resample
from .io import Volume

_WORLD_NAMES = "xyz"
EDGE_COLOR = (0.0, 1.0, 1.0)  # cyan: stands out on inferno
_LOSS_STYLE = {
    "mse": "tab:blue",
    "lowpass": "tab:orange",
    "gp": "tab:purple",
    "adv_g": "tab:green",
    "loss_d": "tab:red",
    "validation": "0.35",
    "validation_ema": "black",
}
#: Legend names of the terms whose key is not self-explanatory: the held-out loss (alpha * MSE, plus the low-pass
#: term where it is on, over the held-out blocks of the whole volume) decides best weights and training length.
_LOSS_LABEL = {"validation": "held-out loss (live)", "validation_ema": "held-out loss (average)"}
#: losses.csv's columns of the two loss panels; the adversarial panel is drawn only for a run that logged its terms.
RECONSTRUCTION_TERMS = ("mse", "lowpass", "gp", "validation", "validation_ema")
ADVERSARIAL_TERMS = ("adv_g", "loss_d")


def qc_figure(
    path: str | os.PathLike,
    *,
    lr: Volume,
    linear: np.ndarray,
    spline: np.ndarray,
    sr: np.ndarray,
    t1: np.ndarray,
    mask: np.ndarray,
    grid: Grid,
    history: Sequence[dict],
    dtv: np.ndarray | None = None,
    stored: Grid | None = None,
) -> Path:
    """Write the run's ``qc.png``: 3 views x (LR, linear, spline, [dTV,] SR, T1, SR + T1 edges) and the losses.

    ``stored``: the grid the ASL was stored on where ``lr`` is it brought back to its acquired grid (named in the
    title)."""
    arrays = {
        "linear": linear,
        "spline": spline,
        "SR": sr,
        "T1": t1,
        "mask": mask,
        **({"dTV": dtv} if dtv is not None else {}),
    }
    for name, array in arrays.items():
        if np.shape(array) != grid.shape:
            raise ValueError(f"{name} has shape {np.shape(array)}, the target grid is {grid.shape}")
    mask = np.asarray(mask) > 0
    lr_nearest = resample(lr.data, lr.affine, grid, order=0)
    asl_window = intensity_window(linear, mask)
    t1_window = intensity_window(t1, mask, (0.5, 99.9))
    edge_region = ndimage.binary_dilation(mask, iterations=2) if mask.any() else np.ones(grid.shape, bool)
    centre = np.array(ndimage.center_of_mass(mask)) if mask.any() else (np.array(grid.shape) - 1) / 2.0
    centre = np.clip(np.round(centre).astype(int), 0, np.array(grid.shape) - 1)

    columns = [
        ("LR (nearest)", lr_nearest),
        ("linear", linear),
        ("spline", spline),
        *([("dTV", dtv)] if dtv is not None else []),
        ("SR", sr),
        ("T1 (registered)", t1),
        ("SR + T1 edges", sr),
    ]
    indices = {view: int(centre[slice_axis(grid, view)]) for view in VIEWS}
    crops = {view: brain_box(*slice_view(mask, grid, view, indices[view])) for view in VIEWS}
    ratios = [box_ratio(crops[view], slice_view(mask, grid, view, indices[view])[1]) for view in VIEWS]
    figure, outer, layout = _qc_layout(ratios, len(columns))
    image = None
    for row, view in enumerate(VIEWS):
        index, crop = indices[view], crops[view]
        for column, (label, volume) in enumerate(columns):
            axes = figure.add_subplot(layout[row, column])
            plane, aspect = slice_view(volume, grid, view, index)
            if label.startswith("T1"):
                axes.imshow(
                    plane[crop],
                    cmap="gray",
                    vmin=t1_window[0],
                    vmax=t1_window[1],
                    aspect=aspect,
                    interpolation="nearest",
                )
            else:
                image = axes.imshow(
                    plane[crop],
                    cmap=ASL_CMAP,
                    vmin=asl_window[0],
                    vmax=asl_window[1],
                    aspect=aspect,
                    interpolation="nearest",
                )
            if label.endswith("edges"):
                _overlay_edges(
                    axes,
                    slice_view(t1, grid, view, index)[0][crop],
                    slice_view(edge_region, grid, view, index)[0][crop],
                    aspect,
                )
            bare_axes(axes)
            if row == 0:
                axes.set_title(label, fontsize=11)
            if column == 0:
                axes.set_ylabel(view, fontsize=11)
                axes.text(
                    0.5,
                    0.02,
                    _plane_position(grid, view, centre, index),
                    transform=axes.transAxes,
                    ha="center",
                    va="bottom",
                    fontsize=8,
                    color="white",
                    path_effects=[patheffects.withStroke(linewidth=2, foreground="black")],
                )
                edge_labels(axes, view)
    colorbar_axes = figure.add_subplot(layout[:, -1])
    colorbar = figure.colorbar(image, cax=colorbar_axes)
    colorbar.set_label(f"{ASL_UNITS}; window {asl_window[0]:.3g} to {asl_window[1]:.3g}", fontsize=10)

    adversarial = any(np.isfinite(_number(row.get(key))) for row in history for key in ADVERSARIAL_TERMS)
    loss_layout = outer[1].subgridspec(1, 2 if adversarial else 1, wspace=0.14)
    adversarial_axes = figure.add_subplot(loss_layout[0, 1]) if adversarial else None
    _plot_losses(figure.add_subplot(loss_layout[0, 0]), adversarial_axes, history)
    height = figure.get_figheight()
    figure.suptitle(_qc_title(lr.grid, grid, stored), fontsize=12, y=1 - 0.2 / height)
    figure.text(
        0.5,
        1 - 0.5 / height,
        "neurological display (subject's right on the right), slices through the "
        "brain's centre, cropped to the brain; one ASL window for all ASL panels (1st-99.5th "
        "percentile of linear in the brain mask); cyan: T1 edges",
        ha="center",
        fontsize=9,
        color="0.3",
    )
    return save_png(figure, path)


def _qc_layout(ratios: list[float], n_columns: int, width: float = 15.0):
    """Figure and grid specs sized (inches) so the image rows fill the width without big gaps."""
    left, right, wspace, hspace, colorbar = 0.06, 0.94, 0.04, 0.07, 0.05
    units = n_columns + colorbar
    column_width = width * (right - left) / (units * (1 + wspace * n_columns / (n_columns + 1)))
    images = column_width * (sum(ratios) + hspace * (len(ratios) - 1) * float(np.mean(ratios)))
    top, gap, losses, bottom = 1.0, 0.75, 2.4, 0.55
    height = top + images + gap + losses + bottom
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    outer = figure.add_gridspec(
        2,
        1,
        height_ratios=[images, losses],
        left=left,
        right=right,
        top=1 - top / height,
        bottom=bottom / height,
        hspace=gap / ((images + losses) / 2),
    )
    layout = outer[0].subgridspec(
        len(ratios),
        n_columns + 1,
        height_ratios=ratios,
        hspace=hspace,
        wspace=wspace,
        width_ratios=[1] * n_columns + [colorbar],
    )
    return figure, outer, layout


def _plane_position(grid: Grid, view: str, centre: np.ndarray, index: int) -> str:
    """E.g. ``z = +12.0 mm (k = 20)``: where the slice plane through ``centre`` lies in world space."""
    axis = slice_axis(grid, view)
    point = centre.astype(float).copy()
    point[axis] = index
    normal = view_axes(view)[0]
    coordinate = float(grid.index_to_world(point)[normal])
    return f"{_WORLD_NAMES[normal]} = {coordinate:+.1f} mm ({'ijk'[axis]} = {index})"


def _overlay_edges(axes: Axes, t1_plane: np.ndarray, region: np.ndarray, aspect: float) -> None:
    """Draw Canny edges of the T1 slice (inside ``region``) over an image already in ``axes``."""
    from skimage.feature import canny

    plane = np.nan_to_num(t1_plane.astype(np.float64))
    region = region > 0
    if not region.any() or np.ptp(plane[region]) == 0:
        return
    edges = canny(plane, sigma=1.0, low_threshold=0.6, high_threshold=0.85, mask=region, use_quantiles=True)
    rgba = np.zeros(edges.shape + (4,), dtype=np.float32)
    rgba[edges] = (*EDGE_COLOR, 1.0)
    axes.imshow(rgba, aspect=aspect, interpolation="nearest")


def _plot_losses(recon_axes: Axes, adv_axes: Axes | None, history: Sequence[dict]) -> None:
    """Loss curves on a cumulative iteration axis: non-negative terms (log y) and, on ``adv_axes`` when the run had a
    critic (None: no such panel), the adversarial terms."""
    recon_axes.set_title(
        "reconstruction terms, and the held-out loss (alpha x mse + beta x lowpass) (log scale)", fontsize=10
    )
    panels = [(recon_axes, RECONSTRUCTION_TERMS, True)]
    if adv_axes is not None:
        adv_axes.set_title("adversarial terms (WGAN-GP)", fontsize=10)
        panels.append((adv_axes, ADVERSARIAL_TERMS, False))
    for axes, _, _ in panels:
        axes.set_xlabel("iteration (cumulative over scales)", fontsize=9)
        axes.tick_params(labelsize=8)
    if not history:
        for axes, _, _ in panels:
            axes.text(
                0.5,
                0.5,
                "no training history",
                ha="center",
                va="center",
                transform=axes.transAxes,
                fontsize=11,
                color="0.4",
            )
            axes.set_xticks([])
            axes.set_yticks([])
        return
    x, starts = _cumulative_iterations(history)
    for axes, keys, log in panels:
        plotted = False
        for key in keys:
            y = np.array([_number(row.get(key)) for row in history])
            keep = np.isfinite(y) & ((y > 0) if log else True)
            if keep.any():
                axes.plot(x[keep], y[keep], lw=1.0, color=_LOSS_STYLE[key], label=_LOSS_LABEL.get(key, key))
                plotted = True
        if plotted:
            if log:
                axes.set_yscale("log")
            axes.legend(fontsize=8, loc="best")
        else:
            axes.text(0.5, 0.5, "not logged", ha="center", va="center", transform=axes.transAxes, color="0.4")
            axes.set_yticks([])
        labels = blended_transform_factory(axes.transData, axes.transAxes)
        for scale, start in starts if len(starts) > 1 else []:  # one scale (the default): nothing to tell apart
            axes.axvline(start, color="0.5", lw=0.8, ls="--")
            axes.text(start, 0.98, f" scale {scale}", transform=labels, fontsize=8, va="top", ha="left", color="0.3")
        if len(x):
            axes.set_xlim(min(0.0, float(x.min())), max(float(x.max()), 1.0))


def _cumulative_iterations(history: Sequence[dict]) -> tuple[np.ndarray, list[tuple[Any, float]]]:
    """x position of every history row and (scale, first x) of every scale, in order of appearance."""
    x = np.zeros(len(history))
    starts: list[tuple[Any, float]] = []
    offset, current, length, position = 0.0, object(), 0.0, 0
    for n, row in enumerate(history):
        scale = row.get("scale", 0)
        if scale != current:
            offset += length
            current, length, position = scale, 0.0, 0
            starts.append((scale, offset))
        iteration = _number(row.get("iteration"))
        iteration = float(position) if not np.isfinite(iteration) else iteration
        x[n] = offset + iteration
        length = max(length, iteration + 1.0)
        position += 1
    return x, starts


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _qc_title(lr_grid: Grid, target: Grid, stored: Grid | None = None) -> str:
    def describe(grid: Grid) -> str:
        shape = "x".join(str(n) for n in grid.shape)
        voxel = " x ".join(f"{v:.3g}" for v in grid.voxel_size)
        code = "".join(
            ("LR", "PA", "IS")[a][int(c[a] > 0)] for c in grid.directions.T for a in [int(np.argmax(np.abs(c)))]
        )
        return f"{shape} voxels of {voxel} mm ({code})"

    acquired = ""
    if stored is not None:
        acquired = f", acquired (stored zero-filled at {' x '.join(f'{v:.3g}' for v in stored.voxel_size)} mm)"
    return f"aslsr QC  |  LR input {describe(lr_grid)}{acquired}  ->  target {describe(target)}"
