"""Where a command may write: the one place that decides whether an output path is safe, and how
outputs are staged and published. Every command (run, generate, evaluate --json, simulate,
reproduce, demo, bids) goes through it.

The rules, checked before any long work:

- paths are compared after resolving symbolic links (and files by device and inode): an output is
  never an input, never inside an input folder and never holds an input;
- an output never lies inside a raw BIDS dataset (a folder with ``dataset_description.json`` whose
  ``DatasetType`` is not ``derivative``) unless it is in its ``derivatives/`` folder;
- an existing file, or a non-empty folder, is replaced only with ``overwrite``;
- writability is checked by creating (and removing) a file in the folder, never with
  ``os.access`` (which says yes to root on read-only file systems);
- a lock file ``.NAME.lock`` beside each output, held while it is written, refuses a second
  process that would write the same output;
- a folder output is written into the hidden staging folder ``.NAME.partial`` beside it and
  published only on success. An existing folder (or the folder a symbolic link points to, or the
  current folder) is written into, one atomic rename per file, never replaced itself; a file
  output is written to a temporary file beside it and renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable

from .errors import InputError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: locks by exclusive creation only
    fcntl = None  # type: ignore[assignment]

PathLike = str | os.PathLike


def resolve(path: PathLike) -> Path:
    """The absolute path with every symbolic link resolved (also for parts that do not exist yet)."""
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def staging_path(out_dir: PathLike) -> Path:
    """The hidden staging folder ``.NAME.partial`` beside the (resolved) output folder."""
    real = resolve(out_dir)
    return real.parent / f".{real.name}.partial"


def lock_path(output: PathLike) -> Path:
    real = resolve(output)
    return real.parent / f".{real.name}.lock"


# --------------------------------------------------------------------------------------------------
# checks


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


# --------------------------------------------------------------------------------------------------
# locks


class OutputLock:
    """An exclusive lock on one output (``.NAME.lock`` beside it), removed when released.

    Acquiring fails at once with :class:`InputError` when another process holds it.
    """

    def __init__(self, output: PathLike, *, given: PathLike | None = None):
        self.path = lock_path(output)
        self.given = Path(given if given is not None else output)
        self._fd: int | None = None

    def acquire(self) -> "OutputLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            flags = os.O_RDWR | os.O_CREAT | (os.O_EXCL if fcntl is None else 0)
            try:
                fd = os.open(self.path, flags, 0o644)
            except FileExistsError:
                raise self._busy() from None
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    raise self._busy() from None
                if not self._still_ours(fd):
                    os.close(fd)  # the previous holder removed the file meanwhile: lock the new one
                    continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._fd = fd
            return self

    def _still_ours(self, fd: int) -> bool:
        try:
            on_disk, held = os.stat(self.path), os.fstat(fd)
        except OSError:
            return False
        return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)

    def _busy(self) -> InputError:
        try:
            pid = self.path.read_text().strip()
        except OSError:
            pid = ""
        who = f"another aslsr process (pid {pid})" if pid.isdigit() else "another aslsr process"
        return InputError(
            f"{who} is writing this output (lock {self.path.name}); wait for it to finish, or "
            f"remove {self.path} if no such process runs",
            self.given,
        )

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()


# --------------------------------------------------------------------------------------------------
# staging and publishing


class StagedFolder:
    """Context manager: a locked, hidden staging folder for a folder output, published on success.

    ``keep`` keeps an existing staging folder (to resume from it). When the block fails (or ends
    without :meth:`publish`), the staging folder is removed, except the entries named in
    ``keep_on_failure`` (a training checkpoint); ``on_kept(staging)`` is then called.
    """

    def __init__(
        self,
        out_dir: PathLike,
        *,
        keep: bool = False,
        keep_on_failure: Iterable[str] = (),
        on_kept: Callable[[Path], None] | None = None,
    ):
        self.out = resolve(out_dir)
        self.path = staging_path(self.out)
        self.keep = keep
        self.keep_on_failure = tuple(keep_on_failure)
        self.on_kept = on_kept
        self.lock = OutputLock(self.out, given=out_dir)
        self.published = False

    def __enter__(self) -> "StagedFolder":
        self.lock.acquire()
        try:
            if not self.keep:
                shutil.rmtree(self.path, ignore_errors=True)
            self.path.mkdir(exist_ok=True)
        except BaseException:
            self.lock.release()
            raise
        return self

    def publish(self, *, owned: Iterable[str] = ()) -> Path:
        """Move every staged entry into the output folder (see :func:`publish_folder`)."""
        publish_folder(self.path, self.out, owned=owned)
        self.published = True
        return self.out

    def __exit__(self, exc_type, exc, traceback) -> None:
        try:
            if not self.published and self.path.exists():
                kept = [entry for entry in self.path.iterdir() if entry.name in self.keep_on_failure]
                if not kept:
                    shutil.rmtree(self.path, ignore_errors=True)
                else:
                    for entry in self.path.iterdir():
                        if entry.name not in self.keep_on_failure:
                            _remove(entry)
                    if self.on_kept is not None:
                        self.on_kept(self.path)
        finally:
            self.lock.release()


def publish_folder(staging: Path, out: Path, *, owned: Iterable[str] = ()) -> None:
    """Put the staged entries into ``out`` (resolved): one rename of the staging folder when ``out``
    does not exist, else one atomic rename per entry into the existing folder (which is kept: a
    symbolic link to it, or a shell's current folder, stay valid). Entries of ``out`` named in
    ``owned`` (written by an earlier run of the same command) that were not staged are removed;
    any other existing entry is left alone."""
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(out)
        return
    staged = {entry.name for entry in staging.iterdir()}
    for name in sorted(staged):
        destination = out / name
        if destination.is_dir() and not destination.is_symlink():
            shutil.rmtree(destination)
        os.replace(staging / name, destination)
    for name in set(owned) - staged:
        if name and "/" not in name and name not in (".", ".."):
            _remove(out / name)
    staging.rmdir()


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    elif entry.exists() or entry.is_symlink():
        entry.unlink()


class StagedFile:
    """Context manager for a file output: locked, written to a temporary file beside it (the path
    it yields), renamed into place on success, removed on failure."""

    def __init__(self, path: PathLike, *, suffix: str = ""):
        from .io import atomic_path

        self.real = resolve(path)
        self.lock = OutputLock(self.real, given=path)
        self._atomic = atomic_path(self.real, suffix)

    def __enter__(self) -> Path:
        self.lock.acquire()
        try:
            return self._atomic.__enter__()
        except BaseException:
            self.lock.release()
            raise

    def __exit__(self, exc_type, exc, traceback) -> None:
        try:
            self._atomic.__exit__(exc_type, exc, traceback)
        finally:
            self.lock.release()


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
