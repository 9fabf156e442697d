"""The ``aslsr`` command line: a thin layer over the library API (one module per command).

Every command's module has ``add_parser(subparsers)`` which registers its arguments and sets
``func(args) -> int``. Bad input raises :class:`aslsr.errors.InputError`, which becomes one line on
stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from ..errors import InputError

COMMANDS = ("run", "generate", "evaluate", "simulate", "reproduce", "demo", "bids")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aslsr", description="Unsupervised multi-scale GAN super-resolution of ASL MRI with a T1 prior.")
    parser.add_argument("--version", action="version", version=f"aslsr {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
            continue  # command not built yet
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except InputError as error:
        print(f"aslsr {args.command}: error: {error}", file=sys.stderr)
        return 2
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
