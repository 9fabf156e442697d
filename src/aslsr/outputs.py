"""Where a command may write: the one place that decides whether an output path is safe. Every
command (run, generate, evaluate --json, simulate, reproduce, demo, bids) goes through it; how an
output is then written (locked, staged, published) is :mod:`aslsr.staging`.

The rules, checked before any long work:

- paths are compared after resolving symbolic links (and files by device and inode): an output is
  never an input, never inside an input folder and never holds an input;
- an output never lies inside a raw BIDS dataset (a folder with ``dataset_description.json`` whose
  ``DatasetType`` is not ``derivative``) unless it is in its ``derivatives/`` folder;
- an existing file, or a non-empty folder, is replaced only with ``overwrite``;
- writability is checked by creating (and removing) a file in the folder, never with
  ``os.access`` (which says yes to root on read-only file systems);
- the lock file ``.NAME.lock`` and the staging folder ``.NAME.partial`` of an output lie beside it
  (:func:`lock_path`, :func:`staging_path`); an interrupted run's staged checkpoint is never
  discarded without ``overwrite``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Iterable

from .errors import InputError

PathLike = str | os.PathLike


def resolve(path: PathLike) -> Path:
    """The absolute path with every symbolic link resolved (also for parts that do not exist yet)."""
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def staging_path(out_dir: PathLike) -> Path:
    """The hidden staging folder ``.NAME.partial`` beside the (resolved) output folder."""
    real = resolve(out_dir)
    return real.parent / f".{real.name}.partial"


def lock_path(output: PathLike) -> Path:
    """The lock file ``.NAME.lock`` beside the (resolved) output."""
    real = resolve(output)
    return real.parent / f".{real.name}.lock"


def check_output(
    path: PathLike,
    *,
    kind: str,
    inputs: Iterable[PathLike | None] = (),
    overwrite: bool = False,
    allow_raw_bids_root: bool = False,
) -> Path:
    """Check that ``path`` may be written as a ``kind`` ("file" or "folder") output; return it resolved.

    Raises :class:`InputError` naming ``path`` when it is (or lies in, or holds) one of ``inputs``,
    lies inside a raw BIDS dataset outside its ``derivatives/``, is an existing file without
    ``overwrite`` (file outputs), is a file (folder outputs) or a folder (file outputs), or
    cannot be written. A non-empty folder is the caller's to judge (see :func:`check_run_folder`).
    """
    if kind not in ("file", "folder"):
        raise ValueError(f"kind must be 'file' or 'folder', not {kind!r}")
    given = Path(path)
    real = resolve(given)
    if kind == "file":
        if real.is_dir():
            raise InputError("is a folder; give a file name", given)
        if real.exists() and not overwrite:
            raise InputError("exists (use --overwrite to replace it)", given)
    elif real.exists() and not real.is_dir():
        raise InputError("exists and is not a folder", given)
    for source in inputs:
        if source is not None:
            _check_not_an_input(given, real, kind, Path(source))
    _check_not_in_raw_bids(given, real, allow_root=allow_raw_bids_root)
    check_writable(given, real, kind)
    return real


def check_run_folder(
    path: PathLike,
    *,
    inputs: Iterable[PathLike | None] = (),
    overwrite: bool = False,
    resume: bool = False,
    checkpoint_name: str | None = None,
) -> Path:
    """:func:`check_output` for a folder that a resumable command fills (``aslsr run``).

    A non-empty folder needs ``overwrite``; ``resume`` continues from ``checkpoint_name`` in the
    staging folder, and an interrupted run's checkpoint is never discarded without one of them.
    """
    if overwrite and resume:
        raise InputError("give only one of --overwrite and --resume")
    real = check_output(path, kind="folder", inputs=inputs, overwrite=overwrite)
    if checkpoint_name is not None:
        interrupted = staging_path(real) / checkpoint_name
        if interrupted.exists() and not (overwrite or resume):
            raise InputError(
                f"an interrupted run left its training state in {interrupted.parent.name}; continue "
                "it with --resume or start again with --overwrite",
                path,
            )
    if real.is_dir() and any(real.iterdir()) and not overwrite:
        if resume:
            raise InputError("this run is already complete; nothing to resume (use --overwrite to run it again)", path)
        raise InputError(
            "output folder is not empty (use --overwrite or --resume)"
            if checkpoint_name
            else "output folder is not empty (use --overwrite)",
            path,
        )
    return real


def check_writable(given: Path, real: Path, kind: str = "folder") -> None:
    """Create and remove a file where ``real`` will be written (its nearest existing folder, and the
    folder itself when it exists), so that a read-only place is refused before any work."""
    parent = real.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"cannot be created: {parent} is not a folder", given)
    places = [parent] + ([real] if kind == "folder" and real.is_dir() else [])
    for place in places:
        try:
            handle, name = tempfile.mkstemp(prefix=".aslsr-write-test-", dir=place)
            os.close(handle)
            os.unlink(name)
        except OSError as error:
            raise InputError(f"cannot write in {place} ({error.strerror or error})", given) from None


def _check_not_an_input(given: Path, real: Path, kind: str, source: Path) -> None:
    source_real = resolve(source)
    if real == source_real or _same_file(real, source_real):
        raise InputError(f"is the input {source}; an output never replaces an input", given)
    if source_real in real.parents and not _in_bids_derivatives(real, source_real):
        raise InputError(f"lies inside the input folder {source}; choose an output outside it", given)
    if kind == "folder" and real in source_real.parents:
        raise InputError(f"holds the input {source}; choose an output folder that holds no input", given)


def _same_file(a: Path, b: Path) -> bool:
    try:
        first, second = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def raw_bids_root(real: Path) -> Path | None:
    """The raw BIDS dataset that ``real`` (a resolved path) lies in or is, else None.

    The nearest folder upwards with a ``dataset_description.json`` decides: a derivative dataset
    (``DatasetType`` "derivative") is not raw; any other or unreadable description is.
    """
    for folder in [real, *real.parents]:
        description = folder / "dataset_description.json"
        if description.is_file():
            return None if _dataset_type(description) == "derivative" else folder
    return None


def _dataset_type(description: Path) -> str:
    try:
        payload = json.loads(description.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError, RecursionError):
        return "raw"
    return str(payload.get("DatasetType", "raw")) if isinstance(payload, dict) else "raw"


def _in_bids_derivatives(real: Path, root: Path) -> bool:
    derivatives = root / "derivatives"
    return (root / "dataset_description.json").is_file() and (real == derivatives or derivatives in real.parents)


def _check_not_in_raw_bids(given: Path, real: Path, *, allow_root: bool) -> None:
    root = raw_bids_root(real)
    if root is None or _in_bids_derivatives(real, root) or (allow_root and real == root):
        return
    where = "is" if real == root else "lies inside"
    raise InputError(
        f"{where} the raw BIDS dataset {root}; write outputs to {root / 'derivatives'} or outside the dataset", given
    )


def existing_outputs(folder: PathLike, names: Iterable[str]) -> list[str]:
    """Which of ``names`` already exist in ``folder``."""
    folder = Path(folder)
    return [name for name in names if (folder / name).exists() or (folder / name).is_symlink()]


def listed_outputs(folder: PathLike, manifest: str = "report.json") -> list[str]:
    """The output names an earlier run listed under ``"outputs"`` in ``folder/manifest`` ([] if none)."""
    try:
        listed = json.loads((Path(folder) / manifest).read_text())["outputs"]
    except (OSError, ValueError, RecursionError, KeyError, TypeError):
        return []
    return [name for name in listed if isinstance(name, str)] if isinstance(listed, list) else []


def run_inputs(asl: PathLike, *others: PathLike | None) -> list[Path]:
    """The files a run reads: the ASL with its BIDS sidecar and ``_aslcontext.tsv``, and ``others``."""
    from .aslseries import context_path, sidecar_path

    return [Path(asl), sidecar_path(asl), context_path(asl), *(Path(p) for p in others if p is not None)]
