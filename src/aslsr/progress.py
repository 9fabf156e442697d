"""Progress bars that appear only where someone watches them.

A bar is drawn on stderr when it is a terminal (or in a Jupyter notebook); in a batch log, a pipe
or a file it is switched off, so a 600-iteration run does not leave kilobytes of carriage-return
updates in a log. Every progress bar of the package comes from :func:`progress_bar`.
"""

from __future__ import annotations

import sys
from typing import IO, Any, Iterable

from tqdm.auto import tqdm


def shows_progress(stream: IO[str] | None = None) -> bool:
    """Whether a bar written to ``stream`` (default: stderr) is seen live: a terminal or a notebook."""
    stream = sys.stderr if stream is None else stream
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
    return _in_notebook()


def progress_bar(
    iterable: Iterable | None = None, *, enabled: bool = True, file: IO[str] | None = None, **kwargs: Any
) -> tqdm:
    """``tqdm(iterable, **kwargs)``, drawn only when ``enabled`` and :func:`shows_progress` for ``file``.

    A disabled bar still iterates and accepts ``set_postfix``/``update``/``close`` (as tqdm does).
    """
    file = sys.stderr if file is None else file
    return tqdm(iterable, disable=not (enabled and shows_progress(file)), file=file, **kwargs)


def _in_notebook() -> bool:
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return type(shell).__name__ == "ZMQInteractiveShell"


def write_line(text: str, file: IO[str] | None = None) -> None:
    """Write one line to ``file`` (default stderr) without breaking a progress bar drawn there."""
    tqdm.write(text, file=sys.stderr if file is None else file)
