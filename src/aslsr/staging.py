"""How an output is written safely: locked, staged out of sight, and published only on success.

Paths and checks are :mod:`aslsr.outputs`'s; this module writes:

- a lock file ``.NAME.lock`` beside each output, held while it is written, refuses a second
  process that would write the same output (:class:`OutputLock`);
- a folder output is written into the hidden staging folder ``.NAME.partial`` beside it and
  published only on success (:class:`StagedFolder`). An existing folder (or the folder a symbolic
  link points to, or the current folder) is written into, one atomic rename per file, never
  replaced itself (:func:`publish_folder`);
- a file output is written to a temporary file beside it and renamed into place (:class:`StagedFile`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable, Iterable

from .errors import InputError
from .outputs import PathLike, lock_path, resolve, staging_path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: locks by exclusive creation only
    fcntl = None  # type: ignore[assignment]


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
