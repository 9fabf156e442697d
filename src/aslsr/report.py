"""Quality-control and comparison figures (PNG, matplotlib Agg, no pyplot global state).

Every slice is shown in world orientation, whatever the voxel order of the grid (RAS, LAS, LPS,
permuted or oblique): :func:`slice_view` picks the voxel axis closest to each world axis and flips
it so that the display is *neurological*: the subject's right (+x) on the right of the panel,
anterior (+y) up in axial views, superior (+z) up in coronal and sagittal views, anterior on the
right in sagittal views. Voxel aspect ratios are kept.
"""

from __future__ import annotations

import itertools
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

from .grids import Grid, resample
from .io import Volume, atomic_path

VIEWS = ("axial", "coronal", "sagittal")
# world axes (0 = x/R, 1 = y/A, 2 = z/S) of each view: (slice normal, horizontal, vertical)
_VIEW_AXES = {"axial": (2, 0, 1), "coronal": (1, 0, 2), "sagittal": (0, 1, 2)}
# labels at the (left, right) edges of each view
_EDGE_LABELS = {"axial": ("L", "R"), "coronal": ("L", "R"), "sagittal": ("P", "A")}
_WORLD_NAMES = "xyz"
ASL_CMAP = "inferno"
EDGE_COLOR = (0.0, 1.0, 1.0)  # cyan: stands out on inferno
ASL_UNITS = "ASL (input units)"
DPI = 120
_LOSS_STYLE = {
    "mse": "tab:blue",
    "lowpass": "tab:orange",
    "gp": "tab:purple",
    "adv_g": "tab:green",
    "loss_d": "tab:red",
}


def world_axes(grid: Grid) -> tuple[list[int], list[int]]:
    """For world x, y, z: the closest voxel axis (a permutation) and the sign of its direction."""
    cosines = np.abs(grid.directions)  # rows: world axes, columns: voxel axes
    best = max(itertools.permutations(range(3)), key=lambda perm: sum(cosines[w, perm[w]] for w in range(3)))
    axes = list(best)
    signs = [1 if grid.directions[w, axes[w]] >= 0 else -1 for w in range(3)]
    return axes, signs


def slice_axis(grid: Grid, view: str) -> int:
    """The voxel axis along which ``view`` ("axial", "coronal", "sagittal") slices ``grid``."""
    return world_axes(grid)[0][_view(view)[0]]


def slice_view(volume: np.ndarray, grid: Grid, view: str, index: int | None = None) -> tuple[np.ndarray, float]:
    """One 2D slice of ``volume`` (on ``grid``) in world display orientation, and its imshow aspect.

    ``index`` is the voxel index along :func:`slice_axis` (default: the middle). The returned array
    is meant for ``imshow(..., origin="upper", aspect=aspect)``: row 0 is the top of the display.
    """
    volume = np.asarray(volume)
    if volume.shape != grid.shape:
        raise ValueError(f"volume shape {volume.shape} does not match grid {grid.shape}")
    normal_w, horizontal_w, vertical_w = _view(view)
    axes, signs = world_axes(grid)
    normal, horizontal, vertical = axes[normal_w], axes[horizontal_w], axes[vertical_w]
    index = grid.shape[normal] // 2 if index is None else int(index)
    if not 0 <= index < grid.shape[normal]:
        raise ValueError(f"slice index {index} is outside 0..{grid.shape[normal] - 1} for the {view} view")
    plane = np.take(volume, index, axis=normal)  # remaining voxel axes in increasing order
    if horizontal < vertical:
        plane = plane.T  # now (vertical, horizontal)
    if signs[horizontal_w] < 0:
        plane = plane[:, ::-1]
    if signs[vertical_w] > 0:
        plane = plane[::-1, :]  # world "up" at row 0
    aspect = float(grid.voxel_size[vertical] / grid.voxel_size[horizontal])
    return np.ascontiguousarray(plane), aspect


def intensity_window(
    image: np.ndarray, mask: np.ndarray | None = None, percentiles: tuple[float, float] = (1.0, 99.5)
) -> tuple[float, float]:
    """Display window: percentiles of the finite voxels of ``image`` inside ``mask`` (all if empty)."""
    image = np.asarray(image, dtype=np.float64)
    values = image[np.asarray(mask, dtype=bool)] if mask is not None else image.ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        values = image[np.isfinite(image)]
    if values.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(values, percentiles))
    if high <= low:
        spread = max(abs(low) * 0.01, 1e-6)
        low, high = low - spread, high + spread
    return low, high


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
) -> Path:
    """Write the run's ``qc.png``: 3 views x (LR, linear, spline, [dTV,] SR, T1, SR + T1 edges) and the losses."""
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
    crops = {view: _brain_box(*slice_view(mask, grid, view, indices[view])) for view in VIEWS}
    ratios = [_box_ratio(crops[view], slice_view(mask, grid, view, indices[view])[1]) for view in VIEWS]
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
            _bare(axes)
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
                _edge_labels(axes, view)
    colorbar_axes = figure.add_subplot(layout[:, -1])
    colorbar = figure.colorbar(image, cax=colorbar_axes)
    colorbar.set_label(f"{ASL_UNITS}; window {asl_window[0]:.3g} to {asl_window[1]:.3g}", fontsize=10)

    loss_layout = outer[1].subgridspec(1, 2, wspace=0.14)
    _plot_losses(figure.add_subplot(loss_layout[0, 0]), figure.add_subplot(loss_layout[0, 1]), history)
    height = figure.get_figheight()
    figure.suptitle(_qc_title(lr.grid, grid), fontsize=12, y=1 - 0.2 / height)
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
    return _save(figure, path)


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
    _view(view)
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
        _brain_box(slice_view(brain, grid, view, slice_index)[0], aspect)
        if brain is not None
        else (slice(0, plane.shape[0]), slice(0, plane.shape[1]))
    )
    ratio = _box_ratio(crop, aspect)

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
            _bare(axes)
            axes.set_title(name, fontsize=11)
            if row == 0 and column == 0:
                _edge_labels(axes, view)
    bar_x = left + n_columns * panel_w + (n_columns - 1) * gap_w + 0.15
    bar = figure.add_axes((bar_x / width, 0.15 / height, 0.15 / width, (height - top - 0.15) / height))
    figure.colorbar(image, cax=bar).set_label(units, fontsize=10)
    if title:
        figure.suptitle(title, fontsize=12, y=1 - 0.12 / height, va="top")
    return _save(figure, path)


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


def _view(view: str) -> tuple[int, int, int]:
    if view not in _VIEW_AXES:
        raise ValueError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")
    return _VIEW_AXES[view]


def _bare(axes: Axes) -> None:
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_facecolor("black")
    for spine in axes.spines.values():
        spine.set_visible(False)


def _edge_labels(axes: Axes, view: str) -> None:
    left, right = _EDGE_LABELS[view]
    style = {
        "fontsize": 10,
        "fontweight": "bold",
        "color": "white",
        "va": "center",
        "transform": axes.transAxes,
        "path_effects": [patheffects.withStroke(linewidth=2.5, foreground="black")],
    }
    axes.text(0.03, 0.5, left, ha="left", **style)
    axes.text(0.97, 0.5, right, ha="right", **style)


def _brain_box(mask_plane: np.ndarray, aspect: float, margin: float = 6.0) -> tuple[slice, slice]:
    """Rows and columns of a 2D mask's bounding box plus about ``margin`` pixels; the whole plane if empty."""
    rows, columns = np.nonzero(mask_plane)
    if rows.size == 0:
        return slice(0, mask_plane.shape[0]), slice(0, mask_plane.shape[1])
    row_margin = max(2, int(round(margin / max(aspect, 1e-3))))
    column_margin = max(2, int(round(margin)))
    return (
        slice(max(0, rows.min() - row_margin), min(mask_plane.shape[0], rows.max() + row_margin + 1)),
        slice(max(0, columns.min() - column_margin), min(mask_plane.shape[1], columns.max() + column_margin + 1)),
    )


def _box_ratio(box: tuple[slice, slice], aspect: float) -> float:
    """Displayed height / width of a cropped plane, clipped so no row gets absurdly thin or tall."""
    rows, columns = box
    return float(np.clip((rows.stop - rows.start) * aspect / (columns.stop - columns.start), 0.4, 1.6))


def _plane_position(grid: Grid, view: str, centre: np.ndarray, index: int) -> str:
    """E.g. ``z = +12.0 mm (k = 20)``: where the slice plane through ``centre`` lies in world space."""
    axis = slice_axis(grid, view)
    point = centre.astype(float).copy()
    point[axis] = index
    normal = _VIEW_AXES[view][0]
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


def _plot_losses(recon_axes: Axes, adv_axes: Axes, history: Sequence[dict]) -> None:
    """Loss curves on a cumulative iteration axis: non-negative terms (log y) and adversarial terms."""
    recon_axes.set_title("reconstruction terms (log scale)", fontsize=10)
    adv_axes.set_title("adversarial terms (WGAN-GP)", fontsize=10)
    for axes in (recon_axes, adv_axes):
        axes.set_xlabel("iteration (cumulative over scales)", fontsize=9)
        axes.tick_params(labelsize=8)
    if not history:
        for axes in (recon_axes, adv_axes):
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
    for axes, keys, log in ((recon_axes, ("mse", "lowpass", "gp"), True), (adv_axes, ("adv_g", "loss_d"), False)):
        plotted = False
        for key in keys:
            y = np.array([_number(row.get(key)) for row in history])
            keep = np.isfinite(y) & ((y > 0) if log else True)
            if keep.any():
                axes.plot(x[keep], y[keep], lw=1.0, color=_LOSS_STYLE[key], label=key)
                plotted = True
        if plotted:
            if log:
                axes.set_yscale("log")
            axes.legend(fontsize=8, loc="upper right")
        else:
            axes.text(0.5, 0.5, "not logged", ha="center", va="center", transform=axes.transAxes, color="0.4")
            axes.set_yticks([])
        labels = blended_transform_factory(axes.transData, axes.transAxes)
        for scale, start in starts:
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


def _qc_title(lr_grid: Grid, target: Grid) -> str:
    def describe(grid: Grid) -> str:
        shape = "x".join(str(n) for n in grid.shape)
        voxel = " x ".join(f"{v:.3g}" for v in grid.voxel_size)
        code = "".join(
            ("LR", "PA", "IS")[a][int(c[a] > 0)] for c in grid.directions.T for a in [int(np.argmax(np.abs(c)))]
        )
        return f"{shape} voxels of {voxel} mm ({code})"

    return f"aslsr QC  |  LR input {describe(lr_grid)}  ->  target {describe(target)}"


def _save(figure: Figure, path: str | os.PathLike) -> Path:
    """Save ``figure`` as PNG atomically (see :class:`aslsr.io.atomic_path`)."""
    path = Path(path)
    with atomic_path(path, ".png") as temporary:
        figure.savefig(temporary, format="png", dpi=DPI, facecolor="white")
    return path
