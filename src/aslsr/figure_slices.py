"""How the figures show a slice: world orientation, display window and the panels' common drawing.

Every slice is shown in world orientation, whatever the voxel order of the grid (RAS, LAS, LPS,
permuted or oblique): :func:`slice_view` picks the voxel axis closest to each world axis and flips
it so that the display is *neurological*: the subject's right (+x) on the right of the panel,
anterior (+y) up in axial views, superior (+z) up in coronal and sagittal views, anterior on the
right in sagittal views. Voxel aspect ratios are kept. The figures (PNG, matplotlib Agg, no pyplot
global state) are :mod:`aslsr.figure_qc` and :mod:`aslsr.figure_comparison`.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .grids import Grid
from .io import atomic_path

VIEWS = ("axial", "coronal", "sagittal")
# world axes (0 = x/R, 1 = y/A, 2 = z/S) of each view: (slice normal, horizontal, vertical)
_VIEW_AXES = {"axial": (2, 0, 1), "coronal": (1, 0, 2), "sagittal": (0, 1, 2)}
# labels at the (left, right) edges of each view
_EDGE_LABELS = {"axial": ("L", "R"), "coronal": ("L", "R"), "sagittal": ("P", "A")}
ASL_CMAP = "inferno"
ASL_UNITS = "ASL (input units)"
DPI = 120


def world_axes(grid: Grid) -> tuple[list[int], list[int]]:
    """For world x, y, z: the closest voxel axis (a permutation) and the sign of its direction."""
    cosines = np.abs(grid.directions)  # rows: world axes, columns: voxel axes
    best = max(itertools.permutations(range(3)), key=lambda perm: sum(cosines[w, perm[w]] for w in range(3)))
    axes = list(best)
    signs = [1 if grid.directions[w, axes[w]] >= 0 else -1 for w in range(3)]
    return axes, signs


def slice_axis(grid: Grid, view: str) -> int:
    """The voxel axis along which ``view`` ("axial", "coronal", "sagittal") slices ``grid``."""
    return world_axes(grid)[0][view_axes(view)[0]]


def slice_view(volume: np.ndarray, grid: Grid, view: str, index: int | None = None) -> tuple[np.ndarray, float]:
    """One 2D slice of ``volume`` (on ``grid``) in world display orientation, and its imshow aspect.

    ``index`` is the voxel index along :func:`slice_axis` (default: the middle). The returned array
    is meant for ``imshow(..., origin="upper", aspect=aspect)``: row 0 is the top of the display.
    """
    volume = np.asarray(volume)
    if volume.shape != grid.shape:
        raise ValueError(f"volume shape {volume.shape} does not match grid {grid.shape}")
    normal_w, horizontal_w, vertical_w = view_axes(view)
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


def view_axes(view: str) -> tuple[int, int, int]:
    """The world axes (slice normal, horizontal, vertical) of ``view``; a ValueError for another name."""
    if view not in _VIEW_AXES:
        raise ValueError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")
    return _VIEW_AXES[view]


def bare_axes(axes: Axes) -> None:
    """No ticks, no spines, black behind the image."""
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_facecolor("black")
    for spine in axes.spines.values():
        spine.set_visible(False)


def edge_labels(axes: Axes, view: str) -> None:
    """The orientation letters (L/R or P/A) at the left and right edges of a panel."""
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


def brain_box(mask_plane: np.ndarray, aspect: float, margin: float = 6.0) -> tuple[slice, slice]:
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


def box_ratio(box: tuple[slice, slice], aspect: float) -> float:
    """Displayed height / width of a cropped plane, clipped so no row gets absurdly thin or tall."""
    rows, columns = box
    return float(np.clip((rows.stop - rows.start) * aspect / (columns.stop - columns.start), 0.4, 1.6))


def save_png(figure: Figure, path: str | os.PathLike) -> Path:
    """Save ``figure`` as PNG atomically (see :class:`aslsr.io.atomic_path`)."""
    path = Path(path)
    with atomic_path(path, ".png") as temporary:
        figure.savefig(temporary, format="png", dpi=DPI, facecolor="white")
    return path
