"""A unit and its file: :class:`Unit` (one dataset, ρ, seed and model), where its rows live (:func:`unit_path`)
and what one row holds (:class:`UnitRow`, the one definition of a unit file's columns).

A unit file ``units/<dataset>/rho<ρ>/seed<s>/<model>.csv`` holds one :class:`UnitRow` per (explanation, metric),
written atomically when the unit is done, with the hash of the settings that produced it. A unit file is data
from a folder that may come from anyone: :func:`read_unit` checks it against :class:`UnitRow` (columns, types,
finite numbers, the unit its path names) and refuses it with the reason (:class:`DamagedUnitFile`), and every
path the benchmark writes is proven to lie under its output directory (``experiments.results.resolve_inside``).
"""

from __future__ import annotations

import io
import math
import re
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.results import plain_component
from studies.xai_bench.config import BENCHMARK_METRICS, metric_direction

UNITS_DIRNAME = "units"


@dataclass(frozen=True)
class Unit:
    """One (dataset, ρ, seed, model): trained once, explained by all its explainers."""

    dataset: str
    rho: float
    seed: int
    model: str


def unit_path(output_dir: str | Path, unit: Unit) -> Path:
    """The file of a unit's rows.

    Raises:
        UserError: the unit's dataset or model is not a plain file name.
    """
    dataset, model = plain_component(unit.dataset, "dataset"), plain_component(unit.model, "model")
    return Path(output_dir) / UNITS_DIRNAME / dataset / f"rho{unit.rho:g}" / f"seed{unit.seed}" / f"{model}.csv"


_RHO_DIR, _SEED_DIR = re.compile(r"rho(.+)"), re.compile(r"seed(\d+)")


def unit_of_path(path: Path) -> Unit | None:
    """The unit a file of ``units/<dataset>/rho<ρ>/seed<s>/<model>.csv`` belongs to; ``None`` if the path names
    none (its names come from the folder itself)."""
    rho_match, seed_match = _RHO_DIR.fullmatch(path.parent.parent.name), _SEED_DIR.fullmatch(path.parent.name)
    if rho_match is None or seed_match is None or path.suffix != ".csv":
        return None
    try:
        rho = float(rho_match.group(1))
    except ValueError:
        return None
    if not (math.isfinite(rho) and f"rho{rho:g}" == path.parent.parent.name):
        return None
    return Unit(path.parent.parent.parent.name, rho, int(seed_match.group(1)), path.stem)


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


# ----------------------------------------------------------------------------------------------------------
# Reading a unit file


class DamagedUnitFile(Exception):
    """A unit file that does not hold a unit's rows (truncated, edited, of another unit); ``str`` is the reason."""


#: Columns that may hold NaN (a metric undefined on every row); every other number must be finite.
_MAY_BE_NAN = ("value", "ci_low", "ci_high")
#: Columns whose values must not be negative.
_NON_NEGATIVE = (
    "model_test_mse",
    "model_train_mse",
    "fit_seconds",
    "explain_seconds",
    "explain_train_seconds",
    "metric_seconds",
    "ground_truth_seconds",
    "roar_fits",
    "roar_cached_fits",
    "n_train",
    "n_test",
    "d",
    "seed",
    "unit_seconds",
    "unit_cpu_seconds",
)


def _column_types() -> dict[str, type]:
    return typing.get_type_hints(UnitRow)


def _check_column(frame: pd.DataFrame, name: str, kind: type) -> None:
    column = frame[name]
    if kind is str:
        if not column.map(lambda value: isinstance(value, str) and value != "").all():
            raise DamagedUnitFile(f"column {name} has empty or missing values")
        return
    if kind is bool:
        if column.dtype != bool:
            raise DamagedUnitFile(f"column {name} holds values other than True and False")
        return
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        raise DamagedUnitFile(f"column {name} holds values that are not numbers")
    values = column.to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    if name in _MAY_BE_NAN:
        finite |= np.isnan(values)
    if not finite.all():
        raise DamagedUnitFile(f"column {name} holds missing or infinite numbers")
    if kind is int and not (values == np.round(values)).all():
        raise DamagedUnitFile(f"column {name} holds numbers that are not integers")
    if name in _NON_NEGATIVE and (values < 0).any():
        raise DamagedUnitFile(f"column {name} holds negative numbers")


def read_unit(path: str | Path, unit: Unit) -> pd.DataFrame:
    """The rows of ``unit`` stored at ``path``, checked against :class:`UnitRow`.

    Checked: the file parses as CSV with exactly the unit file's columns and at least one row; text columns hold
    text, flags ``True``/``False``, numbers are finite (``value``, ``ci_low``, ``ci_high`` may be NaN), integers
    integral, counts, errors and seconds not negative; the rows are ``unit``'s (dataset, ρ, seed and model of the
    path), of one settings hash, with known metrics in their directions, each (entry, metric) once.

    Raises:
        DamagedUnitFile: the file fails a check (the message says which).
    """
    types = _column_types()
    text_columns = {name: str for name, kind in types.items() if kind is str}
    try:
        frame = pd.read_csv(path, dtype=text_columns)
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DamagedUnitFile(f"not a readable CSV file ({' '.join(str(error).split())[:120]})") from None
    if tuple(frame.columns) != UNIT_COLUMNS:
        missing = [name for name in UNIT_COLUMNS if name not in frame.columns]
        extra = [str(name) for name in frame.columns if name not in UNIT_COLUMNS]
        raise DamagedUnitFile(
            f"columns differ from a unit file's (missing {missing or 'none'}, unknown {extra or 'none'})"
        )
    if frame.empty:
        raise DamagedUnitFile("no rows")
    for name, kind in types.items():
        _check_column(frame, name, kind)
    for name, expected in (("dataset", unit.dataset), ("model", unit.model)):
        if set(frame[name]) != {expected}:
            raise DamagedUnitFile(f"column {name} is not {expected!r} as its path says")
    rho_names = {f"rho{rho:g}" for rho in frame["rho"]}
    if set(frame["seed"]) != {unit.seed} or rho_names != {f"rho{unit.rho:g}"}:
        raise DamagedUnitFile(f"rho or seed differ from its path's (rho{unit.rho:g}, seed{unit.seed})")
    hashes = set(frame["settings_hash"])
    if len(hashes) != 1 or not re.fullmatch(r"[0-9a-f]{16}", next(iter(hashes))):
        raise DamagedUnitFile("its settings_hash is not one 16-digit hexadecimal hash")
    unknown = sorted(set(frame["metric"]) - set(BENCHMARK_METRICS))
    if unknown:
        raise DamagedUnitFile(f"unknown metrics {unknown}")
    if not (frame["direction"] == frame["metric"].map(metric_direction)).all():
        raise DamagedUnitFile("a metric's direction is wrong")
    if frame.duplicated(["entry", "metric"]).any():
        raise DamagedUnitFile("an (entry, metric) pair appears twice")
    return frame
