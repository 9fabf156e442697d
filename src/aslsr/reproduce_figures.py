"""The figures of ``aslsr reproduce``: Figs. 2 and 3 (experiment 1) and Fig. 4 (experiment 2).

Each is a :func:`aslsr.figure_comparison.comparison_figure` through the lesion.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from scipy import ndimage

from .figure_comparison import comparison_figure
from .figure_slices import intensity_window, slice_axis
from .grids import Grid
from .io import load_volume
from .reproduce_scoring import METHODS, REFERENCES


def figure_experiment1(
    path: Path,
    run_dir: Path,
    references: Mapping[str, np.ndarray],
    grid: Grid,
    view: str,
    mask: np.ndarray,
    lesion: np.ndarray,
    window: tuple[float, float],
    hr_factor: int,
    units: str,
) -> None:
    """Fig. 2 / Fig. 3 layout: the references on top, LR input and the three SR methods below."""
    names = {"nr": "NR reference", "hr": f"HR reference ({hr_factor}x averages)", "clean": "noise-free"}
    panels = [(names[key], references[key]) for key, _, _ in REFERENCES]
    for label, stem in METHODS:
        title = "LR input (nearest)" if stem == "nearest" else label
        panels.append((title, load_volume(run_dir / f"{stem}.nii.gz", allow_constant=True).data))
    rows = [[name for name, _ in panels[:3]], [name for name, _ in panels[3:]]]
    figure_name = "Fig. 2" if view == "sagittal" else "Fig. 3"
    comparison_figure(
        path,
        panels=panels,
        grid=grid,
        view=view,
        rows=rows,
        window=window,
        mask=mask,
        slice_index=lesion_slice(lesion, grid, view),
        units=units,
        title=f"Experiment 1 ({figure_name}), {'transaxial' if view == 'axial' else view} view "
        "through the lesion: SR of the LR ASL onto the NR grid",
    )


def figure_experiment2(
    out: Path,
    run_dir: Path,
    truth: np.ndarray,
    target: Grid,
    fine_mask: np.ndarray,
    fine_lesion: np.ndarray,
    units: str,
) -> None:
    """``fig_experiment2.png``: axial and sagittal views of experiment 2's outputs, the T1 and the truth."""

    def image(name: str) -> np.ndarray:
        return load_volume(run_dir / f"{name}.nii.gz", allow_constant=True).data

    window = intensity_window(truth, fine_mask)
    t1 = image("t1_registered")
    t1_low, t1_high = intensity_window(t1, fine_mask, (0.5, 99.9))
    t1_shown = window[0] + (t1 - t1_low) * (window[1] - window[0]) / max(t1_high - t1_low, 1e-12)
    panels = [
        ("NR input (nearest)", image("nearest")),
        ("linear", image("linear")),
        ("dTV", image("dtv")),
        ("proposed (SR)", image("sr")),
        ("T1 (registered, rescaled)", t1_shown),
        (f"truth ({voxel_label(target)} mm)", truth),
    ]
    with tempfile.TemporaryDirectory(dir=out) as scratch:
        parts = []
        for view in ("axial", "sagittal"):
            parts.append(
                comparison_figure(
                    Path(scratch) / f"{view}.png",
                    panels=panels,
                    grid=target,
                    view=view,
                    mask=fine_mask,
                    window=window,
                    slice_index=lesion_slice(fine_lesion, target, view),
                    units=units,
                    title=f"Experiment 2 (Fig. 4), {view} view through the lesion: NR -> {voxel_label(target)} mm",
                )
            )
        stack_images(parts, out / "fig_experiment2.png")


def stack_images(paths: Sequence[Path], out: Path) -> Path:
    """Stack PNG images vertically (left-aligned, padded with white) into one PNG."""
    from matplotlib.image import imread, imsave

    images = [np.atleast_3d(imread(path))[..., :3] for path in paths]
    width = max(image.shape[1] for image in images)
    padded = [np.pad(image, ((0, 0), (0, width - image.shape[1]), (0, 0)), constant_values=1.0) for image in images]
    imsave(out, np.clip(np.concatenate(padded, axis=0), 0.0, 1.0))
    return out


def lesion_slice(lesion: np.ndarray, grid: Grid, view: str) -> int | None:
    """The slice (along the view's voxel axis) through the lesion's centre of mass."""
    if not lesion.any():
        return None
    return int(round(ndimage.center_of_mass(lesion)[slice_axis(grid, view)]))


def voxel_label(grid: Grid) -> str:
    """The voxel size of ``grid`` as text, e.g. ``2 x 2 x 2.5``."""
    return " x ".join(f"{v:.3g}" for v in grid.voxel_size)
