"""The task check: what the target is (binary, multiclass, regression) and whether it suits the mode.

A target that does not suit the mode is a ``DataError`` (one line, exit code 2) before anything is trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from data.loading import DataError, RawDataset

Mode = Literal["classification", "regression"]
Task = Literal["binary", "multiclass", "regression"]


@dataclass(frozen=True, eq=False)
class TaskInfo:
    """What ``check_task`` found out about the target.

    Attributes:
        task: ``binary``, ``multiclass`` or ``regression``.
        n_classes: Number of classes (None for regression).
        has_target: Boolean mask over the rows of the dataset: ``True`` where the target is present.
        n_missing_target: Rows without a target (they are dropped, not an error).
    """

    task: Task
    n_classes: int | None
    has_target: np.ndarray
    n_missing_target: int


def check_task(raw: RawDataset, mode: Mode = "classification") -> TaskInfo:
    """Check that the target suits the mode before anything is trained.

    Args:
        raw: The loaded dataset.
        mode: ``classification`` or ``regression``.

    Returns:
        The task, the number of classes and which rows have a target.

    Raises:
        DataError: A continuous target in classification mode, a non-numeric one in regression mode, a single
            class or a constant target, a class with fewer than 2 examples, or no target value at all.
    """
    check_choice("mode", mode, Mode)
    labels, has_target = target_values(raw, mode)
    n_missing = int((~has_target).sum())
    if mode == "regression":
        if np.unique(labels).size < 2:
            raise DataError(f"the regression target {raw.target!r} is constant: nothing to learn")
        return TaskInfo("regression", None, has_target, n_missing)

    counts = pd.Series(labels).value_counts()
    if len(counts) < 2:
        raise DataError(f"the target {raw.target!r} has a single class ({counts.index[0]!s}): nothing to classify")
    rare = counts[counts < 2]
    if len(rare):
        shown = ", ".join(f"{label!s} ({n})" for label, n in rare.head(5).items())
        raise DataError(
            f"the target {raw.target!r} has classes with fewer than 2 examples ({shown}): "
            "a stratified train/test split needs at least 2 per class"
        )
    return TaskInfo("binary" if len(counts) == 2 else "multiclass", len(counts), has_target, n_missing)


def target_values(raw: RawDataset, mode: Mode) -> tuple[np.ndarray, np.ndarray]:
    """The present target values (float64 for regression, labels for classification) and the presence mask."""
    y = raw.y
    numeric = pd.api.types.is_numeric_dtype(y.dtype) and not pd.api.types.is_bool_dtype(y.dtype)
    if mode == "regression":
        if numeric:
            values = y.to_numpy(dtype="float64", na_value=np.nan)
        else:
            # Numbers stored as text or as a nominal attribute ('1.5') are still a numeric target.
            values = pd.to_numeric(y.astype("string"), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
            if np.isnan(values[y.notna().to_numpy()]).any():
                raise DataError(
                    f"the target {raw.target!r} is not numeric (e.g. {y.dropna().iloc[0]!r}): use --mode classification"
                )
        has_target = np.isfinite(values)  # an infinite target is as unusable as a missing one
        if not has_target.any():
            raise DataError(f"the target {raw.target!r} has no values")
        return values[has_target], has_target

    has_target = y.notna().to_numpy()
    if not has_target.any():
        raise DataError(f"the target {raw.target!r} has no values")
    present = y[has_target]
    if numeric and pd.api.types.is_float_dtype(present.dtype):
        values = present.to_numpy(dtype="float64")
        if not np.isfinite(values).all() or not np.array_equal(values, np.round(values)):
            raise DataError(
                f"the target {raw.target!r} looks continuous ({present.nunique()} distinct non-integer values): "
                "use --mode regression"
            )
        return values.astype("int64"), has_target  # 0.0/1.0 read from a CSV with gaps are the classes 0/1
    if isinstance(present.dtype, pd.CategoricalDtype):
        # Keep the categories' own type (numbers sort as numbers), but only the categories that occur.
        return present.astype(present.cat.categories.dtype).to_numpy(), has_target
    if numeric:
        return present.to_numpy(), has_target
    return present.astype(str).to_numpy(), has_target


def check_choice(name: str, value: object, options: Any) -> None:
    """Raise a ValueError unless ``value`` is one of the ``Literal`` type ``options``."""
    allowed = get_args(options)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
