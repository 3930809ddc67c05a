"""A unit and its file: :class:`Unit` (one dataset, ρ, seed and model), where its rows live (:func:`unit_path`)
and what one row holds (:class:`UnitRow`, the one definition of a unit file's columns).

A unit file ``units/<dataset>/rho<ρ>/seed<s>/<model>.csv`` holds one :class:`UnitRow` per (explanation, metric),
written atomically when the unit is done, with the hash of the settings that produced it.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import pandas as pd

UNITS_DIRNAME = "units"


@dataclass(frozen=True)
class Unit:
    """One (dataset, ρ, seed, model): trained once, explained by all its explainers."""

    dataset: str
    rho: float
    seed: int
    model: str


def unit_path(output_dir: str | Path, unit: Unit) -> Path:
    """The file of a unit's rows."""
    return (
        Path(output_dir) / UNITS_DIRNAME / unit.dataset / f"rho{unit.rho:g}" / f"seed{unit.seed}" / f"{unit.model}.csv"
    )


@dataclass(frozen=True)
class UnitRow:
    """One row of a unit file: one explanation of one trained model, scored by one metric.

    Attributes:
        dataset, rho, seed, model: the unit.
        entry, entry_label, explainer, native: the explanation (``planning.Entry``).
        metric, value, ci_low, ci_high, direction: the score, its bootstrap interval over rows and which way is
            better.
        model_test_mse, model_train_mse: the explained model's errors (standardised target units).
        fit_seconds, explain_seconds, explain_train_seconds, metric_seconds, ground_truth_seconds: wall seconds of
            the model's fit, of explaining the test and the training rows, of the metric and of the ground truth
            it compares with (0 for the other metrics).
        roar_fits, roar_cached_fits: ROAR retrains of the metric, fitted and taken from the cache.
        n_train, n_test, d, compat, profile: settings shown beside the numbers.
        settings_hash: ``config.settings_hash`` of the unit's settings.
        unit_seconds, unit_cpu_seconds: wall and CPU seconds of the whole unit (CPU: this process's own time; on a
            shared machine the wall time also counts other people's jobs).
    """

    dataset: str
    rho: float
    seed: int
    model: str
    entry: str
    entry_label: str
    explainer: str
    native: bool
    metric: str
    value: float
    ci_low: float
    ci_high: float
    direction: str
    model_test_mse: float
    model_train_mse: float
    fit_seconds: float
    explain_seconds: float
    explain_train_seconds: float
    metric_seconds: float
    ground_truth_seconds: float
    roar_fits: int
    roar_cached_fits: int
    n_train: int
    n_test: int
    d: int
    compat: bool
    profile: str
    settings_hash: str
    unit_seconds: float
    unit_cpu_seconds: float


#: The columns of a unit file, in order.
UNIT_COLUMNS: tuple[str, ...] = tuple(column.name for column in fields(UnitRow))


def unit_frame(rows: list[UnitRow]) -> pd.DataFrame:
    """A unit's rows as a frame with the unit file's columns."""
    return pd.DataFrame([asdict(row) for row in rows], columns=list(UNIT_COLUMNS))


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """A frame as CSV bytes (full float precision)."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format="%.10g")
    return buffer.getvalue().encode()
