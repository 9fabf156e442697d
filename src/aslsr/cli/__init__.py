"""The ``aslsr`` command line: a thin layer over the library API (one module per command).

Every command's module has ``add_parser(subparsers)`` which registers its arguments and sets
``func(args) -> int``. Bad input raises :class:`aslsr.errors.InputError`, which becomes one line on
stderr and exit code 2.

The command line configures :mod:`logging` (the library only logs): messages of the ``aslsr``
loggers go to stderr, INFO and above by default, WARNING and above with ``--quiet`` (which also
switches progress bars off), DEBUG with ``-v``. ``--quiet`` and ``-v`` work before or after the command.
It also lets glibc's malloc keep freed memory for reuse in its own process
(:func:`aslsr.devices.keep_freed_memory`: the same results; a 1 mm run took 4:43 instead of 5:29).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .._version import __version__
from ..devices import keep_freed_memory
from ..errors import InputError, TrainingError
from ..progress import write_line

COMMANDS = ("run", "generate", "evaluate", "simulate", "reproduce", "demo", "bids")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aslsr", description="Unsupervised multi-scale GAN super-resolution of ASL MRI with a T1 prior."
    )
    parser.add_argument("--version", action="version", version=f"aslsr {__version__}")
    _add_verbosity_arguments(parser, dest_prefix="global_")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
            continue  # command not built yet
        module.add_parser(subparsers)
    for command in subparsers.choices.values():
        _add_verbosity_arguments(command)
    return parser


def _add_verbosity_arguments(parser: argparse.ArgumentParser, dest_prefix: str = "") -> None:
    """``-q/--quiet`` and ``-v/--verbose`` (a command that has its own ``--quiet`` keeps it)."""
    if "--quiet" not in parser._option_string_actions:
        parser.add_argument(
            "-q",
            "--quiet",
            dest=f"{dest_prefix}quiet",
            action="store_true",
            help="only warnings and errors; no progress bars",
        )
    parser.add_argument(
        "-v", "--verbose", dest=f"{dest_prefix}verbose", action="count", default=0, help="more detail (debug messages)"
    )


def verbosity(args: argparse.Namespace) -> tuple[bool, int]:
    """``(quiet, verbose)`` from the flags given before the command and after it, together."""
    quiet = bool(getattr(args, "quiet", False) or getattr(args, "global_quiet", False))
    return quiet, int(getattr(args, "verbose", 0) or 0) + int(getattr(args, "global_verbose", 0) or 0)


LOGGER = "aslsr"


class _Handler(logging.StreamHandler):
    """Writes records through tqdm, so that a message does not break a progress bar on the terminal."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            write_line(self.format(record), file=self.stream)
        except Exception:  # as logging.Handler does
            self.handleError(record)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = "aslsr: " if record.levelno < logging.WARNING else f"aslsr: {record.levelname.lower()}: "
        return prefix + super().format(record)


def configure_logging(*, quiet: bool = False, verbose: int = 0, stream=None) -> logging.Logger:
    """Send the ``aslsr`` loggers' messages to ``stream`` (default stderr), one line each.

    INFO and above by default; WARNING and above when ``quiet``; DEBUG when ``verbose``. Replaces a
    handler set by an earlier call, so calling it again (as tests do) does not duplicate lines.
    """
    logger = logging.getLogger(LOGGER)
    for handler in [h for h in logger.handlers if isinstance(h, _Handler)]:
        logger.removeHandler(handler)
    handler = _Handler(sys.stderr if stream is None else stream)
    handler.setFormatter(_Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    return logger


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    args.quiet, args.verbose = verbosity(args)
    configure_logging(quiet=args.quiet, verbose=args.verbose)
    keep_freed_memory()
    try:
        return int(args.func(args) or 0)
    except InputError as error:
        print(f"aslsr {args.command}: error: {error}", file=sys.stderr)
        return 2
    except TrainingError as error:
        print(f"aslsr {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"aslsr {args.command}: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"aslsr {args.command}: error: out of memory", file=sys.stderr)
        return 1
    except OSError as error:  # the file system refused (disk full, read-only, gone): one line, not a traceback
        where = f"{error.filename}: " if error.filename else ""
        print(f"aslsr {args.command}: error: {where}{error.strerror or error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
