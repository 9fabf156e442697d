"""``aslsr simulate`` as a library call: a phantom case, a phantom variant, or a raw BIDS dataset of
phantom subjects, written into a checked and locked output folder.

:func:`simulate_phantom` takes the command's options by name. Without a variant option it writes
the default phantom (:func:`aslsr.phantom.simulate`), or with ``bids=True`` a BIDS dataset of
such subjects (:func:`aslsr.phantom_bids.simulate_bids`); a named variant or any variant option
(:data:`VARIANT_OPTIONS`) makes a :class:`aslsr.phantom_spec.PhantomSpec` (:func:`variant_spec`)
that :func:`aslsr.phantom_variant_simulation.simulate_variant` writes. The output folder must be
empty unless ``overwrite`` and is checked as every output is (:mod:`aslsr.outputs`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import InputError
from .outputs import check_output
from .phantom import PhantomConfig, simulate
from .phantom_bids import simulate_bids
from .phantom_spec import PhantomSpec
from .phantom_variant_simulation import simulate_variant
from .phantom_variants import variant as named_variant
from .staging import OutputLock

#: The most phantom subjects one BIDS dataset holds.
MAX_SUBJECTS = 1000
#: The subjects of a BIDS dataset when ``subjects`` is not given.
DEFAULT_SUBJECTS = 2
#: The default phantom's options (:class:`aslsr.phantom.PhantomConfig` fields), shared by variants.
PHANTOM_OPTIONS = (
    "nr_shape",
    "nr_voxel_size",
    "noise_sd",
    "max_rotation_deg",
    "max_translation_mm",
    "t1_orientation",
    "t1_voxel_size",
)
#: Each variant option -> (the PhantomSpec field it sets, then how: a callable that converts the
#: value, None to take it as it is, or for ``psf`` the PSF field it sets). ``vessels`` (tubes,
#: spots) sets ``vessel_tubes`` and ``vessel_spots``.
VARIANT_OPTIONS = {
    "psf": ("psf", None),
    "kspace_window": ("psf", "window"),
    "psf_fwhm": ("psf", "fwhm_voxels"),
    "slice_thickness": ("psf", "slice_thickness_voxels"),
    "asl_orientation": ("asl_orientation", None),
    "oblique": ("asl_rotation_deg", tuple),
    "warp": ("warp_mm", None),
    "tissue_field": ("tissue_field_sd", None),
    "gm_heterogeneity": ("gm_heterogeneity_sd", None),
    "lesions": ("lesions", tuple),
    "t1_bias": ("t1_bias", None),
    "t1_noise": ("t1_noise", None),
    "t1_gamma": ("t1_gamma", None),
    "template_resolution": ("template_resolution_mm", None),
}
#: Every option :func:`simulate_phantom` takes by name.
OPTIONS = (*PHANTOM_OPTIONS, *VARIANT_OPTIONS, "vessels")


@dataclass(frozen=True)
class Simulation:
    """What :func:`simulate_phantom` wrote into ``out_dir``.

    Attributes
    ----------
    out_dir
        The output folder, as given.
    case
        One case (default phantom or variant): ``case.json``'s content with absolute file paths.
    spec
        The variant simulated, or None for the default phantom.
    config
        The default phantom's options (of the case, or of the first BIDS subject).
    dataset
        A BIDS dataset's ``{"subjects": [labels], "files": [paths relative to out_dir]}``.
    """

    out_dir: Path
    case: dict | None = None
    spec: PhantomSpec | None = None
    config: PhantomConfig | None = None
    dataset: dict | None = None

    @property
    def n_files(self) -> int:
        """Files written: a case's images, ``case.json`` and a variant's ``phantom.json``; every file
        of a BIDS dataset."""
        if self.dataset is not None:
            return len(self.dataset["files"])
        return len(self.case["files"]) + 1 + (self.spec is not None)


def variant_spec(
    variant: str | None = None, *, seed: int = 0, lesion: bool = False, **options: Any
) -> PhantomSpec | None:
    """The phantom variant that ``variant`` and the options ask for, or None for the default phantom.

    Parameters
    ----------
    variant
        A named variant (:data:`aslsr.phantom_variants.VARIANTS`); None starts from a plain
        :class:`PhantomSpec`.
    seed
        The variant's seed.
    lesion
        Without ``lesions``: the variant's lesions, or one hypo-perfused lesion (CBF x 0.4).
    options
        :data:`PHANTOM_OPTIONS`, :data:`VARIANT_OPTIONS` and ``vessels`` by name; None means not given.

    Returns
    -------
    PhantomSpec or None
        None when neither ``variant`` nor a variant option (nor ``vessels``) is given.
    """
    vessels = options.pop("vessels", None)
    given = {key: options.pop(key) for key in VARIANT_OPTIONS if options.get(key) is not None}
    if variant is None and not given and vessels is None:
        return None
    spec = named_variant(variant) if variant else PhantomSpec()
    fields: dict = {}
    psf = {"kind": given.pop("psf")} if "psf" in given else {}
    for key, value in given.items():
        name, convert = VARIANT_OPTIONS[key]
        if name == "psf":
            psf[convert] = value
        else:
            fields[name] = convert(value) if convert else value
    if vessels is not None:
        fields["vessel_tubes"], fields["vessel_spots"] = vessels
    if lesion and "lesions" not in fields:
        fields["lesions"] = spec.lesions or (0.4,)
    if psf:
        fields["psf"] = replace(spec.psf, **psf)
    shared = {key: value for key, value in options.items() if key in PHANTOM_OPTIONS and value is not None}
    return replace(spec, seed=seed, **shared, **fields)


def simulate_phantom(
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    lesion: bool = False,
    variant: str | None = None,
    bids: bool = False,
    subjects: int | None = None,
    overwrite: bool = False,
    **options: Any,
) -> Simulation:
    """Simulate a phantom case, a phantom variant or a raw BIDS dataset of phantom subjects.

    Parameters
    ----------
    out_dir
        The output folder: created, or empty unless ``overwrite``; locked while it is written.
    seed
        The random seed (a BIDS dataset's subject i has ``seed + i - 1``).
    lesion
        Add a hypo-perfused lesion (CBF x 0.4) that the T1 does not show.
    variant
        A named variant (:data:`aslsr.phantom_variants.VARIANTS`).
    bids
        Write a raw BIDS dataset of default phantom subjects (4D pCASL series, T1w; ground truth in
        ``derivatives/phantom``) instead of one case; takes no variant.
    subjects
        The number of BIDS subjects, 1 to :data:`MAX_SUBJECTS` (default 2); only with ``bids``.
    overwrite
        Write into a non-empty folder.
    options
        :data:`OPTIONS` by name, None meaning not given: grids (``nr_shape`` in voxels,
        ``nr_voxel_size`` and ``t1_voxel_size`` in mm), ``noise_sd`` (ml/100g/min), the T1 motion
        (``max_rotation_deg``, ``max_translation_mm``), ``t1_orientation``, and the variant options.

    Returns
    -------
    Simulation
        The case written (absolute paths), or the BIDS dataset's subjects and files.

    Raises
    ------
    InputError
        A bad output folder or option, before anything is written.
    """
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(f"simulate_phantom() got unknown options: {', '.join(unknown)}")
    out = Path(out_dir)
    real = check_output(out, kind="folder", overwrite=overwrite, allow_raw_bids_root=bids)
    if real.is_dir() and any(real.iterdir()) and not overwrite:
        raise InputError("output folder is not empty (use --overwrite)", out)
    shared = {key: options.get(key) for key in PHANTOM_OPTIONS if options.get(key) is not None}
    for key in ("nr_shape", "nr_voxel_size"):
        if key in shared:
            shared[key] = tuple(shared[key])
    if subjects is not None and not bids:
        raise InputError("--subjects needs --bids")
    if subjects is not None and not 1 <= subjects <= MAX_SUBJECTS:
        raise InputError(f"--subjects must be between 1 and {MAX_SUBJECTS}, got {subjects}")
    spec = variant_spec(variant, seed=seed, lesion=lesion, **{**options, **shared})
    if spec is not None and bids:
        raise InputError("--bids does not take phantom variants")
    with OutputLock(out):
        if spec is not None:
            return Simulation(out, case=simulate_variant(out, spec), spec=spec)
        config = PhantomConfig(seed=seed, lesion=lesion, **shared)
        if bids:
            n_subjects = DEFAULT_SUBJECTS if subjects is None else subjects
            return Simulation(out, config=config, dataset=simulate_bids(out, n_subjects=n_subjects, config=config))
        return Simulation(out, case=simulate(out, config), config=config)
