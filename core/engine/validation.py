"""Argument checks shared by every component.

Each check raises ``ValueError`` with a message of the form ``"<name>: must be ..., got <value>"``
so the spec parser can prefix the field path (``optimizer.learning_rate: must be ...``).
Booleans are refused where numbers are expected: ``True`` is an int in Python but never a
learning rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def number(name: str, value: Any, *, low: float | None = None, high: float | None = None,
           low_inclusive: bool = True, high_inclusive: bool = True) -> float:
    """A finite real number, optionally within ``[low, high]`` (bounds inclusive by default)."""
    if not _is_number(value) or not math.isfinite(float(value)):
        raise ValueError(f"{name}: must be a finite number, got {value!r}")
    v = float(value)
    if low is not None and (v < low or (v == low and not low_inclusive)):
        op = ">=" if low_inclusive else ">"
        raise ValueError(f"{name}: must be {op} {low:g}, got {value!r}")
    if high is not None and (v > high or (v == high and not high_inclusive)):
        op = "<=" if high_inclusive else "<"
        raise ValueError(f"{name}: must be {op} {high:g}, got {value!r}")
    return v


def positive(name: str, value: Any, *, high: float | None = None) -> float:
    """A finite number > 0."""
    if not _is_number(value) or not math.isfinite(float(value)) or float(value) <= 0:
        raise ValueError(f"{name}: must be a positive number, got {value!r}")
    return number(name, value, high=high)


def non_negative(name: str, value: Any, *, high: float | None = None) -> float:
    """A finite number >= 0."""
    if not _is_number(value) or not math.isfinite(float(value)) or float(value) < 0:
        raise ValueError(f"{name}: must be a non-negative number, got {value!r}")
    return number(name, value, high=high)


def fraction(name: str, value: Any, *, allow_one: bool = False) -> float:
    """A probability-like number in [0, 1) (or [0, 1] with ``allow_one``)."""
    upper = "1]" if allow_one else "1)"
    if not _is_number(value) or not math.isfinite(float(value)):
        raise ValueError(f"{name}: must be a number in [0, {upper}, got {value!r}")
    v = float(value)
    if v < 0 or v > 1 or (v == 1 and not allow_one):
        raise ValueError(f"{name}: must be a number in [0, {upper}, got {value!r}")
    return v


def integer(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    """An integer (floats such as ``3.0`` are refused: a count is written as a count)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}: must be an integer, got {value!r}")
    if low is not None and value < low:
        what = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise ValueError(f"{name}: must be {what}, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name}: must be an integer <= {high}, got {value!r}")
    return value


def positive_int(name: str, value: Any, *, high: int | None = None) -> int:
    """An integer >= 1."""
    return integer(name, value, low=1, high=high)


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name}: must be true or false, got {value!r}")
    return value


def choice(name: str, value: Any, allowed: list | tuple) -> Any:
    if value not in allowed or isinstance(value, bool) != any(isinstance(a, bool) for a in allowed if a == value):
        shown = ", ".join(repr(a) if isinstance(a, str) else str(a).lower() for a in allowed)
        raise ValueError(f"{name}: must be one of {shown}, got {value!r}")
    return value


def check_params(family: str, name: str, params: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
    """Refuse parameters a component does not declare, naming the ones it does."""
    for key in params:
        if key not in defaults:
            allowed = ", ".join(defaults) if defaults else "none"
            raise ValueError(f"{key}: unknown parameter for {family} {name!r}; allowed: {allowed}")
