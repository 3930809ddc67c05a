"""argparse value types: each parses one command-line value or raises ``argparse.ArgumentTypeError``.

The bottom of the project's import order (beside :mod:`errors`): the registry's method flags, the experiment
scripts, the studies and the benchmarks all take their value types from here.
"""

from __future__ import annotations

import argparse
import re


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _parse(int, text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def batch_size(text: str) -> int:
    """argparse type: a batch size, an integer >= 2 (batch norm cannot train on a single row)."""
    value = _parse(int, text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be an integer >= 2 (batch norm cannot train on one row), got {text}")
    return value


def at_least_one(text: str) -> float:
    """argparse type: a finite float >= 1."""
    value = _parse(float, text)
    if not value >= 1 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number >= 1, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = _parse(int, text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def boolean(text: str) -> bool:
    """argparse type: ``true``/``false`` (also ``1``/``0``, ``yes``/``no``; any case)."""
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"must be true or false, got {text}")


def positive_float(text: str) -> float:
    """argparse type: a finite float > 0."""
    value = _parse(float, text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite float >= 0."""
    value = _parse(float, text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def probability(text: str) -> float:
    """argparse type: a float in [0, 1]."""
    value = _parse(float, text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def open_fraction(text: str) -> float:
    """argparse type: a float strictly between 0 and 1."""
    value = _parse(float, text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {text}")
    return value


def dropout_rate(text: str) -> float:
    """argparse type: a float in [0, 1)."""
    value = _parse(float, text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _parse(kind: type, text: str):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {kind.__name__}, got {text!r}") from None


def interactions(text: str) -> int | float | str:
    """argparse type of ``--ebm_interactions``: a count (``10``), a fraction of the features (``0.5``) or ``3x``."""
    if re.fullmatch(r"\d+(\.\d+)?x", text):
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count, a fraction or 'Nx', got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return int(value) if value >= 1 and value.is_integer() else value
