"""The paper's column drops (decided on the whole feature table) and the unencoded representation of a frame."""

from __future__ import annotations

import numpy as np
import pandas as pd

MISSING_CATEGORY = "<missing>"
"""The category string that stands for a missing categorical value (missing is a category of its own)."""

MAX_MISSING_FRACTION = 0.9
MAX_CATEGORICAL_UNIQUE_FRACTION = 0.9


def column_drops(X: pd.DataFrame, categorical: list[bool]) -> dict[str, str]:
    """Columns the paper drops, decided on the whole feature table (no labels, no split).

    Args:
        X: All feature columns.
        categorical: One flag per column of ``X``.

    Returns:
        ``{column: reason}`` in column order; the first matching reason wins.
    """
    n_rows = max(len(X), 1)
    missing = X.isna().mean()
    # Missing values are not counted as a value here (pandas' nunique default, as in the paper's protocol).
    unique = X.nunique(dropna=True)
    drops: dict[str, str] = {}
    for column, is_categorical in zip(X.columns, categorical, strict=True):
        if missing[column] > MAX_MISSING_FRACTION:
            drops[column] = f"more than {MAX_MISSING_FRACTION:.0%} missing values ({missing[column]:.1%})"
        elif unique[column] <= 1:
            drops[column] = "a single unique value"
        elif is_categorical and unique[column] / n_rows > MAX_CATEGORICAL_UNIQUE_FRACTION:
            drops[column] = (
                f"categorical with more than {MAX_CATEGORICAL_UNIQUE_FRACTION:.0%} unique values "
                f"({unique[column]} of {len(X)} rows)"
            )
    return drops


def normalise_frame(frame: pd.DataFrame, categorical: list[bool]) -> pd.DataFrame:
    """The unencoded representation: categorical columns as ``str`` (missing -> ``MISSING_CATEGORY``), numerical
    columns as float64 with infinities treated as missing. Idempotent.
    """
    columns: dict[str, pd.Series] = {}
    for name, is_categorical in zip(frame.columns, categorical, strict=True):
        column = frame[name]
        if is_categorical:
            columns[name] = column.astype(object).where(column.notna(), MISSING_CATEGORY).astype(str)
        else:
            values = pd.to_numeric(column, errors="coerce").astype("float64")
            columns[name] = values.where(np.isfinite(values))
    return pd.DataFrame(columns, index=frame.index)
