"""BIDS ASL series input: aslcontext/sidecar reading and reduction of 4D series to 3D maps."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from aslsr.aslseries import AslSeries, context_path, load_asl_series, read_aslcontext, read_sidecar, sidecar_path
from aslsr.errors import InputError
from aslsr.grids import Grid

SHAPE = (6, 5, 4)
AFFINE = np.array([[-2.0, 0, 0, 30], [0, 2.5, 0, -20], [0, 0, 3.0, 5], [0, 0, 0, 1]])


def _maps(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    control = (100 + 10 * rng.random(SHAPE)).astype(np.float32)
    return {
        "control": control,
        "deltam": (1 + rng.random(SHAPE)).astype(np.float32),
        "m0": (200 + 20 * rng.random(SHAPE)).astype(np.float32),
    }


def _series(
    folder: Path,
    types: list[str],
    volumes: list[np.ndarray],
    sidecar: dict | None = None,
    name: str = "sub-01_asl.nii.gz",
    context: str | None = None,
) -> Path:
    path = folder / name
    data = np.stack(volumes, axis=-1) if len(volumes) > 1 else volumes[0]
    nib.save(nib.Nifti1Image(np.asarray(data, np.float32), AFFINE), str(path))
    context_path(path).write_text(context if context is not None else "volume_type\n" + "\n".join(types) + "\n")
    if sidecar is not None:
        sidecar_path(path).write_text(json.dumps(sidecar))
    return path


def _pairs(maps: dict, order: tuple[str, str], n: int = 3) -> tuple[list[str], list[np.ndarray]]:
    """m0scan, then n pairs in ``order``; each pair has its own noise so that pairing matters."""
    types, volumes = ["m0scan"], [maps["m0"]]
    for i in range(n):
        control = maps["control"] + i
        values = {"control": control, "label": control - maps["deltam"] * (1 + 0.1 * i)}
        types += list(order)
        volumes += [values[order[0]], values[order[1]]]
    return types, volumes


def test_paths() -> None:
    assert context_path("/d/sub-01_asl.nii.gz") == Path("/d/sub-01_aslcontext.tsv")
    assert context_path("/d/sub-01_asl.nii") == Path("/d/sub-01_aslcontext.tsv")
    assert context_path("/d/perfusion.nii.gz") == Path("/d/perfusion_aslcontext.tsv")
    assert sidecar_path("/d/sub-01_asl.nii.gz") == Path("/d/sub-01_asl.json")
    assert sidecar_path("/d/perfusion.nii") == Path("/d/perfusion.json")


@pytest.mark.parametrize("name", ["sub-01_asl.nii.gz", "sub-01_asl.nii"])
def test_control_label_order_does_not_matter(tmp_path: Path, name: str) -> None:
    maps = _maps()
    results = []
    for order in [("control", "label"), ("label", "control")]:
        folder = tmp_path / "_".join(order)
        folder.mkdir()
        types, volumes = _pairs(maps, order)
        results.append(load_asl_series(_series(folder, types, volumes, {"M0Type": "Included"}, name)))
    first, second = results
    expected = maps["deltam"] * np.mean([1.0, 1.1, 1.2])
    for series in results:
        assert isinstance(series, AslSeries)
        assert series.kind == "deltam" and series.n_pairs == 3
        assert series.perfusion.data.dtype == np.float32
        assert series.perfusion.grid == Grid(SHAPE, AFFINE)
        np.testing.assert_allclose(series.perfusion.data, expected, rtol=1e-5)
        np.testing.assert_allclose(series.m0.data, maps["m0"], rtol=1e-6)
        np.testing.assert_allclose(series.control_mean.data, maps["control"] + 1, rtol=1e-6)
        assert series.metadata == {"M0Type": "Included"}
    assert first.volume_types[:3] == ("m0scan", "control", "label")
    assert second.volume_types[:3] == ("m0scan", "label", "control")


def test_m0_mean_and_norf_ignored(tmp_path: Path) -> None:
    maps = _maps()
    types = ["noRF", "m0scan", "m0scan", "deltam", "deltam"]
    volumes = [np.full(SHAPE, 1e6, np.float32), maps["m0"], maps["m0"] + 10, maps["deltam"], maps["deltam"] + 2]
    series = load_asl_series(_series(tmp_path, types, volumes))
    np.testing.assert_allclose(series.m0.data, maps["m0"] + 5, rtol=1e-6)
    np.testing.assert_allclose(series.perfusion.data, maps["deltam"] + 1, rtol=1e-6)
    assert series.kind == "deltam" and series.n_pairs == 0 and series.control_mean is None
    assert series.metadata == {}


def test_cbf_volumes(tmp_path: Path) -> None:
    maps = _maps()
    series = load_asl_series(_series(tmp_path, ["cbf", "cbf"], [maps["deltam"] * 40, maps["deltam"] * 60]))
    assert series.kind == "cbf" and series.m0 is None
    np.testing.assert_allclose(series.perfusion.data, maps["deltam"] * 50, rtol=1e-6)


def test_3d_image(tmp_path: Path) -> None:
    maps = _maps()
    path = tmp_path / "pwi.nii"
    nib.save(nib.Nifti1Image(maps["deltam"], AFFINE), str(path))
    series = load_asl_series(path)
    assert series.kind == "deltam" and series.m0 is None and series.control_mean is None
    np.testing.assert_array_equal(series.perfusion.data, maps["deltam"])
    assert series.perfusion.grid == Grid(SHAPE, AFFINE)
    # a trailing singleton axis is still 3D; the context says cbf
    cbf = _series(tmp_path, ["cbf"], [maps["deltam"][..., None] * 50], {"Units": "mL/100g/min"})
    assert load_asl_series(cbf).kind == "cbf"
    context_path(cbf).unlink()
    assert load_asl_series(cbf).kind == "cbf"  # from the sidecar's Units alone
    sidecar_path(cbf).unlink()
    assert load_asl_series(cbf).kind == "deltam"


def test_3d_image_of_a_non_perfusion_type(tmp_path: Path) -> None:
    path = _series(tmp_path, ["m0scan"], [_maps()["m0"]])
    with pytest.raises(InputError, match=r"aslcontext\.tsv: a single 3D volume of type 'm0scan'"):
        load_asl_series(path)


def test_4d_without_context(tmp_path: Path) -> None:
    path = _series(tmp_path, ["deltam", "deltam"], [_maps()["deltam"]] * 2)
    context_path(path).unlink()
    with pytest.raises(InputError, match=r"sub-01_asl\.nii\.gz: a 4D ASL series needs sub-01_aslcontext\.tsv"):
        load_asl_series(path)


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ("type\ncontrol\nlabel\n", r"no 'volume_type' column"),
        ("volume_type\ncontrol\ntag\n", r"line 3: unknown volume type 'tag'"),
        ("volume_type\ncontrol\nlabel\ncontrol\n", r"lists 3 volume types but the ASL series has 2 volumes"),
        ("", r"no 'volume_type' column"),
    ],
)
def test_bad_context(tmp_path: Path, context: str, message: str) -> None:
    maps = _maps()
    path = _series(tmp_path, [], [maps["control"], maps["control"] - 1], context=context)
    with pytest.raises(InputError, match=r"sub-01_aslcontext\.tsv: " + message):
        load_asl_series(path)


def test_read_aslcontext(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"missing\.tsv: no such file"):
        read_aslcontext(tmp_path / "missing.tsv", 2)
    path = tmp_path / "x_aslcontext.tsv"
    path.write_text("onset\tvolume_type\r\n0\tLabel\r\n1\tcontrol\r\n2\tnorf\r\n")
    assert read_aslcontext(path, 3) == ["label", "control", "noRF"]


@pytest.mark.parametrize(
    ("types", "message"),
    [
        (["control", "label", "control"], r"has 2 control and 1 label volumes"),
        (["control", "label", "deltam"], r"mixes control, label and deltam volumes; give one kind"),
        (["deltam", "cbf", "deltam"], r"mixes deltam and cbf volumes; give one kind"),
        (["m0scan", "noRF", "m0scan"], r"has no perfusion volumes"),
    ],
)
def test_bad_volume_mix(tmp_path: Path, types: list[str], message: str) -> None:
    maps = _maps()
    path = _series(tmp_path, types, [maps["control"], maps["control"] - 1, maps["control"] - 2])
    with pytest.raises(InputError, match=r"sub-01_aslcontext\.tsv: " + message):
        load_asl_series(path)


def test_read_sidecar(tmp_path: Path) -> None:
    assert read_sidecar(tmp_path / "none.json") == {}
    path = tmp_path / "bad.json"
    path.write_text('{"PostLabelingDelay": 1.8,}')
    with pytest.raises(InputError, match=r"bad\.json: not valid JSON"):
        read_sidecar(path)
    path.write_text("[1.8]")
    with pytest.raises(InputError, match=r"bad\.json: the JSON sidecar must hold an object, not a list"):
        read_sidecar(path)


def test_bad_sidecar_beside_series(tmp_path: Path) -> None:
    maps = _maps()
    path = _series(tmp_path, ["deltam", "deltam"], [maps["deltam"]] * 2)
    sidecar_path(path).write_text("not json")
    with pytest.raises(InputError, match=r"sub-01_asl\.json: not valid JSON"):
        load_asl_series(path)


def test_constant_perfusion(tmp_path: Path) -> None:
    maps = _maps()
    path = _series(tmp_path, ["control", "label"], [maps["control"], maps["control"]])
    with pytest.raises(InputError, match=r"sub-01_asl\.nii\.gz: the perfusion image is constant"):
        load_asl_series(path)


def test_nonfinite_voxels(tmp_path: Path) -> None:
    maps = _maps()
    label = maps["control"] - maps["deltam"]
    label[0, 0, 0] = label[1, 2, 3] = np.nan
    path = _series(tmp_path, ["control", "label"], [maps["control"], label])
    with pytest.raises(InputError, match=r"sub-01_asl\.nii\.gz: the perfusion mean: 2 voxels are NaN"):
        load_asl_series(path)
    series = load_asl_series(path, allow_nonfinite=True)
    assert series.perfusion.data[0, 0, 0] == 0 and series.perfusion.data[1, 2, 3] == 0
    assert np.isfinite(series.perfusion.data).all()
    np.testing.assert_allclose(series.perfusion.data[2:], maps["deltam"][2:], rtol=1e-5)


def test_nonfinite_m0(tmp_path: Path) -> None:
    maps = _maps()
    m0 = maps["m0"].copy()
    m0[3, 3, 3] = np.inf
    path = _series(tmp_path, ["m0scan", "deltam"], [m0, maps["deltam"]])
    with pytest.raises(InputError, match=r"the m0 mean: 1 voxel is NaN or infinite"):
        load_asl_series(path)
    assert load_asl_series(path, allow_nonfinite=True).m0.data[3, 3, 3] == 0


def test_image_errors_come_from_io(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"missing_asl\.nii\.gz: no such file"):
        load_asl_series(tmp_path / "missing_asl.nii.gz")
    path = tmp_path / "sub-01_asl.nii"
    path.write_text("not a nifti")
    with pytest.raises(InputError, match=r"sub-01_asl\.nii: not a readable NIfTI image"):
        load_asl_series(path)


def test_truncated_series(tmp_path: Path) -> None:
    maps = _maps()
    path = _series(tmp_path, ["deltam", "deltam"], [maps["deltam"]] * 2, name="sub-01_asl.nii")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(InputError, match=r"sub-01_asl\.nii: the file is cut short"):
        load_asl_series(path)
    big = np.random.default_rng(1).random((20, 20, 20), dtype=np.float32)  # gzip reads small files whole
    gz = _series(tmp_path, ["deltam", "deltam"], [big, big + 1])
    gz.write_bytes(gz.read_bytes()[:-1000])
    with pytest.raises(InputError, match=r"sub-01_asl\.nii\.gz: could not read the voxel data"):
        load_asl_series(gz)


def _top_level_sidecars(root: Path) -> dict:
    """Move every subject's asl.json, aslcontext.tsv and T1w.json to the dataset's top level."""
    sidecar = json.loads((root / "sub-01/perf/sub-01_asl.json").read_text())
    for subject in sorted(p.name for p in root.glob("sub-*")):
        for name, top in (
            (f"perf/{subject}_asl.json", "asl.json"),
            (f"anat/{subject}_T1w.json", "T1w.json"),
            (f"perf/{subject}_aslcontext.tsv", "aslcontext.tsv"),
        ):
            (root / subject / name).replace(root / top)
    return sidecar


def test_sidecars_at_the_top_of_a_bids_dataset_apply_to_every_run(tmp_path: Path) -> None:
    from conftest import TINY

    from aslsr.phantom import PhantomConfig
    from aslsr.phantom_bids import simulate_bids

    root = tmp_path / "raw"
    simulate_bids(root, n_subjects=1, config=PhantomConfig(**TINY), n_pairs=2)
    asl = root / "sub-01/perf/sub-01_asl.nii.gz"
    beside = load_asl_series(asl)
    sidecar = _top_level_sidecars(root)
    inherited = load_asl_series(asl)
    assert inherited.metadata == sidecar == beside.metadata and inherited.metadata_path == root / "asl.json"
    assert inherited.volume_types == beside.volume_types and inherited.n_pairs == 2
    np.testing.assert_array_equal(inherited.perfusion.data, beside.perfusion.data)
    # a closer sidecar overrides the dataset's keys
    (root / "sub-01/sub-01_asl.json").write_text(json.dumps({"PostLabelingDelay": 1.5}))
    closer = load_asl_series(asl)
    assert closer.metadata == {**sidecar, "PostLabelingDelay": 1.5}
    assert closer.metadata_path == root / "sub-01/sub-01_asl.json"
    # outside a BIDS dataset nothing is inherited
    (root / "dataset_description.json").unlink()
    with pytest.raises(InputError, match="needs sub-01_aslcontext.tsv beside it"):
        load_asl_series(asl)
