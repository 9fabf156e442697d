"""Errors that the command line turns into one line: bad input (exit code 2), failed training (exit code 1)."""

from __future__ import annotations

from os import PathLike


class InputError(ValueError):
    """Bad user input: names the file (when there is one) and the problem, in one line."""

    def __init__(self, problem: str, path: str | PathLike | None = None):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class TrainingError(RuntimeError):
    """Training ended without a usable result (e.g. a non-finite super-resolved image); nothing is written."""
