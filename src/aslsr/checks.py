"""Typed, range-checked values: small check builders for tables of ``field -> check``.

A check takes a value and returns None when it is acceptable, else what was expected (a phrase
such as ``"an integer from 1 to 8"``). :func:`problems` runs a table over a mapping and words
each failure as ``"FIELD must be EXPECTED, got VALUE"``. Booleans never pass as numbers, NaN and
infinities never pass as numbers, and strings never pass as either.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Mapping

Check = Callable[[Any], "str | None"]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def integer(low: int | None = None, high: int | None = None) -> Check:
    """An ``int`` (not a bool, not a float) in ``[low, high]``."""
    expected = "an integer" + _range_text(low, high)

    def check(value: Any) -> str | None:
        ok = _is_int(value) and (low is None or value >= low) and (high is None or value <= high)
        return None if ok else expected

    return check


def number(low: float | None = None, high: float | None = None, *, above: bool = False) -> Check:
    """A finite int or float in ``[low, high]`` (``(low, high]`` with ``above``)."""
    expected = "a finite number" + (
        f" above {low:g}" + (f" and at most {high:g}" if high is not None else "") if above else _range_text(low, high)
    )

    def check(value: Any) -> str | None:
        if not _is_real(value):
            return expected
        ok = (low is None or (value > low if above else value >= low)) and (high is None or value <= high)
        return None if ok else expected

    return check


def boolean() -> Check:
    return lambda value: None if isinstance(value, bool) else "true or false"


def choice(*options: Any) -> Check:
    expected = "one of " + ", ".join(repr(option) for option in options)
    return lambda value: None if any(value == o and type(value) is type(o) for o in options) else expected


def optional(inner: Check) -> Check:
    """None, or what ``inner`` accepts."""

    def check(value: Any) -> str | None:
        problem = None if value is None else inner(value)
        return None if problem is None else f"unset or {problem}"

    return check


def sequence(item: Check, *, length: int | None = None, min_length: int = 1, max_length: int | None = None) -> Check:
    """A list or tuple (``length`` items, or ``min_length`` to ``max_length``) of what ``item`` accepts."""
    if length is not None:
        count = f"{length}"
    else:
        count = f"{min_length} to {max_length}" if max_length is not None else f"at least {min_length}"

    def check(value: Any) -> str | None:
        sample = item(object())
        expected = f"a list of {count} values, each {sample}"
        if not isinstance(value, (list, tuple)):
            return expected
        if (
            (length is not None and len(value) != length)
            or len(value) < min_length
            or (max_length is not None and len(value) > max_length)
        ):
            return expected
        return expected if any(item(v) is not None for v in value) else None

    return check


def problems(values: Mapping[str, Any], table: Mapping[str, Check]) -> list[str]:
    """One phrase per field of ``table`` whose value in ``values`` fails its check."""
    found = []
    for name, check in table.items():
        if name not in values:
            continue
        expected = check(values[name])
        if expected is not None:
            found.append(f"{name} must be {expected}, got {describe(values[name])}")
    return found


def describe(value: Any) -> str:
    """A short, safe rendering of a bad value (type named for non-numbers)."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    if isinstance(value, (bool, int, float)) or value is None:
        return text
    return f"{text} ({_kind(value)})"


def _kind(value: Any) -> str:
    names = {str: "a string", list: "a list", tuple: "a list", dict: "a table"}
    return names.get(type(value), f"a {type(value).__name__}")


def _range_text(low: float | None, high: float | None) -> str:
    low, high = _text(low), _text(high)
    if low is not None and high is not None:
        return f" from {low} to {high}"
    if low is not None:
        return f" >= {low}"
    if high is not None:
        return f" <= {high}"
    return ""


def _text(value: float | None) -> str | None:
    return None if value is None else str(value) if isinstance(value, int) else f"{value:g}"
