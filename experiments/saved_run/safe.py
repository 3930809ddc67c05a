"""The safe reader's primitives: files of a results folder are parsed, never unpickled, and checked field by field.

``.npz`` files are opened with ``allow_pickle=False`` (:func:`read_npz`): an object array, which only pickle could
read, is refused with a :class:`~errors.UserError`, as is a corrupt or truncated file. JSON documents are parsed
refusing ``NaN``/``Infinity`` (:func:`read_json`), and :class:`Fields` reads their fields with their types and
ranges: a value that fails is refused with the file, the field and the reason, never used with a silent change.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from errors import UserError


def read_npz(file: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, refusing pickled (object) arrays.

    Raises:
        UserError: unreadable, truncated, or holding an array that only pickle could read (refused).
    """
    try:
        with np.load(file, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise UserError(
                f"{file}: refused: it holds pickled objects, and a results folder is never unpickled"
            ) from None
        raise UserError(f"{file}: unreadable ({error})") from None
    except Exception as error:  # zipfile.BadZipFile, zlib and OS errors of a corrupt or truncated file
        raise UserError(f"{file}: unreadable ({type(error).__name__}: {error})") from None


# ----------------------------------------------------------------------------------------------------------
# JSON documents and their fields

#: The largest magnitude a model input can have (they are float32): statistics beyond it come from no real run.
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: The largest count or index read from a file (integers beyond it are not exact in float64).
MAX_COUNT = 2**53


def read_json(file: Path) -> Any:
    """A JSON document of a results folder, refusing ``NaN`` and ``Infinity`` (this project never writes them:
    a non-finite number is written as ``null``).

    Raises:
        UserError: unreadable, not JSON, or holding a non-finite number (the message names its field).
    """
    try:
        document = json.loads(file.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise UserError(f"{file}: unreadable ({type(error).__name__}: {' '.join(str(error).split())[:160]})") from None
    found = _non_finite(document, "")
    if found is not None:
        field, value = found
        raise UserError(
            f"{file}: field {field!r}: {value} (this project writes a missing number as null, never NaN or infinity)"
        )
    return document


def _non_finite(value: Any, field: str) -> tuple[str, float] | None:
    """The first ``(field, value)`` holding a non-finite float, depth first; None if there is none."""
    pending = [(field, value)]
    while pending:
        field, value = pending.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return field or "(the document)", value
        if isinstance(value, dict):
            pending.extend((f"{field}.{key}" if field else str(key), item) for key, item in value.items())
        elif isinstance(value, list):
            pending.extend((f"{field}[{index}]", item) for index, item in enumerate(value))
    return None


class Fields:
    """Typed reading of the fields of one file a stranger may have written.

    Each method takes a value and the field it came from (``encoder.numerical_scaler.scale[3]``), checks its type
    and range and returns it; a value that fails is one :class:`~errors.UserError` naming the file, the field and
    the reason, never a silent change.
    """

    def __init__(self, file: Path) -> None:
        self.file = file

    def fail(self, field: str, reason: str) -> NoReturn:
        raise UserError(f"{self.file}: field {field!r}: {reason}")

    def get(self, mapping: Mapping[str, Any], key: str, field: str = "") -> Any:
        """``mapping[key]``, or a failure naming the missing field."""
        name = f"{field}.{key}" if field else key
        if not isinstance(mapping, Mapping):
            self.fail(field or "(the document)", f"{json_kind(mapping)} where an object is expected")
        if key not in mapping:
            self.fail(name, "missing")
        return mapping[key]

    def mapping(self, value: Any, field: str, *, none: bool = False) -> dict | None:
        if value is None and none:
            return None
        if not isinstance(value, dict):
            self.fail(field, f"{json_kind(value)} where an object is expected")
        return value

    def sequence(self, value: Any, field: str, *, length: int | None = None) -> list:
        if not isinstance(value, list):
            self.fail(field, f"{json_kind(value)} where a list is expected")
        if length is not None and len(value) != length:
            self.fail(field, f"{len(value)} entries where {length} are expected")
        return value

    def integer(self, value: Any, field: str, *, low: int = 0, high: int = MAX_COUNT) -> int:
        """An integer in ``[low, high]`` (a bool or a float is refused)."""
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(field, f"{json_kind(value)} where an integer is expected")
        if not low <= value <= high:
            self.fail(field, f"{_shown(value)} is outside [{low}, {high}]")
        return value

    def number(
        self,
        value: Any,
        field: str,
        *,
        low: float = -FLOAT32_MAX,
        high: float = FLOAT32_MAX,
        positive: bool = False,
        none: bool = False,
    ) -> float | None:
        """A finite number in ``[low, high]`` (``> 0`` when ``positive``), or None when ``none`` allows it."""
        if value is None and none:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(field, f"{json_kind(value)} where a number is expected")
        if isinstance(value, int) and abs(value) > MAX_COUNT:
            value = float(value) if abs(value) < 10**308 else math.inf
        if not math.isfinite(value) or not low <= value <= high:
            self.fail(field, f"{_shown(value)} is outside [{low:.4g}, {high:.4g}]")
        if positive and not value > 0:
            self.fail(field, f"{_shown(value)} is not positive")
        return float(value)

    def text(self, value: Any, field: str, *, choices: Sequence[str] | None = None, none: bool = False) -> str | None:
        if value is None and none:
            return None
        if not isinstance(value, str):
            self.fail(field, f"{json_kind(value)} where a string is expected")
        if choices is not None and value not in choices:
            self.fail(field, f"{_shown(value)} is none of {list(choices)}")
        return value

    def boolean(self, value: Any, field: str) -> bool:
        if not isinstance(value, bool):
            self.fail(field, f"{json_kind(value)} where true or false is expected")
        return value

    def name(self, value: Any, field: str) -> str:
        """One plain path component (``experiments.results.plain_component``)."""
        from experiments.results import plain_component

        return plain_component(value, f"{self.file}: field {field!r}")

    def texts(self, value: Any, field: str, *, length: int | None = None, unique: bool = False) -> list[str]:
        items = [self.text(item, f"{field}[{i}]") for i, item in enumerate(self.sequence(value, field, length=length))]
        if unique and len(set(items)) != len(items):
            repeated = next(item for item in items if items.count(item) > 1)
            self.fail(field, f"{_shown(repeated)} appears twice")
        return items

    def numbers(self, value: Any, field: str, *, length: int | None = None, **limits: Any) -> list[float | None]:
        items = self.sequence(value, field, length=length)
        return [self.number(item, f"{field}[{i}]", **limits) for i, item in enumerate(items)]

    def integers(self, value: Any, field: str, *, length: int | None = None, **limits: Any) -> list[int]:
        items = self.sequence(value, field, length=length)
        return [self.integer(item, f"{field}[{i}]", **limits) for i, item in enumerate(items)]

    def same(self, value: Any, expected: Any, field: str, where: str) -> None:
        """Fail unless ``value == expected`` (same JSON type too): two files of one run must agree."""
        if value != expected or type(value) is not type(expected):
            self.fail(field, f"{_shown(value)}, but {where} says {_shown(expected)}")


def json_kind(value: Any) -> str:
    """A value's JSON kind and, shortened, the value: ``string 'abc'``."""
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "object"}
    if value is None:
        return "null"
    return f"{kinds.get(type(value), type(value).__name__)} {_shown(value)}"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
