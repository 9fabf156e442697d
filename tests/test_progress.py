"""Progress bars are drawn only on a terminal (or when asked for and watched), never into a log file."""

from __future__ import annotations

import io

from aslsr.progress import progress_bar, shows_progress, write_line


class Terminal(io.StringIO):
    """A text stream that says it is a terminal (as stderr does in an interactive shell)."""

    def isatty(self) -> bool:
        return True


def _run(stream, **kwargs) -> list[int]:
    bar = progress_bar(range(50), file=stream, desc="scale 0", mininterval=0, **kwargs)
    seen = list(bar)
    bar.set_postfix({"mse": "0.1"})
    bar.close()
    return seen


def test_a_log_file_gets_no_progress_bar():
    log = io.StringIO()
    assert not shows_progress(log)
    assert _run(log) == list(range(50))
    assert log.getvalue() == ""


def test_a_terminal_gets_the_bar_unless_it_is_switched_off():
    terminal = Terminal()
    assert shows_progress(terminal)
    assert _run(terminal) == list(range(50))
    assert "scale 0" in terminal.getvalue() and "50/50" in terminal.getvalue()
    quiet = Terminal()
    assert _run(quiet, enabled=False) == list(range(50))
    assert quiet.getvalue() == ""


def test_write_line_reaches_a_log_file():
    log = io.StringIO()
    write_line("aslsr: hello", file=log)
    assert log.getvalue() == "aslsr: hello\n"
