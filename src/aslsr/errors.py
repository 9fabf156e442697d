"""Errors that the command line turns into one line and exit code 2."""

from __future__ import annotations

from os import PathLike


class InputError(Exception):
    """Bad user input: names the file (when there is one) and the problem, in one line."""

    def __init__(self, problem: str, path: str | PathLike | None = None):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)
