"""Raw rows in, normalised rows out: the rows to explain with a saved run, from its test set or from a file.

:func:`test_set_rows` reloads the run's test rows from the dataset its report names; :func:`file_rows` reads a
CSV/TSV or Parquet file with the dataset's original columns; :func:`prepare_rows` checks either against the run and
normalises them as in training (an unseen category becomes the missing category, with a warning).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from errors import UserError

if TYPE_CHECKING:
    import pandas as pd

    from experiments.saved_run.reader import SavedRun


@dataclass(frozen=True)
class Rows:
    """Raw rows to explain, in the dataset's original columns.

    Attributes:
        frame: the rows (original columns; extra columns are ignored).
        labels: the rows' numbers as the user gave them (test-set rows or file rows), ``(N,)``.
        y_true: the true targets as text ``(N,)``, or None when the rows have none.
        source: where they come from, in words.
        dataset_rows: the rows' positions in the run's dataset (test-set rows only), or None.
    """

    frame: pd.DataFrame
    labels: np.ndarray
    y_true: np.ndarray | None
    source: str
    dataset_rows: np.ndarray | None = None


def test_set_rows(run: SavedRun, rows: Sequence[int] | None = None) -> Rows:
    """The run's test rows (all, or those numbered ``rows``), reloaded from the dataset its report names.

    Raises:
        UserError: the dataset cannot be loaded, is no longer the run's (another file content), or a row number
            is beyond the test set.
    """
    from experiments.config import DEFAULT_DATASET_ID, DataConfig

    data = DataConfig.from_mapping(run.report.get("config", {}))
    data.check_sources()  # one source of data, as the run itself checked
    if data.dataset_path is None and not data.dataset:  # an OpenML id: the report's own, nothing else
        openml_id = DEFAULT_DATASET_ID if data.dataset_id is None else data.dataset_id
        if openml_id != run.report["dataset_id"]:
            raise UserError(
                f"{run.path}: its configuration names dataset {openml_id!r}, its report {run.report['dataset_id']!r}"
            )
    raw = data.load()
    if str(raw.dataset_id) != str(run.report["dataset_id"]):
        raise UserError(
            f"the run's dataset {run.report['dataset_id']} now loads as {raw.dataset_id} (the file changed): "
            "explain rows of a file with --data"
        )
    index = np.asarray(run.state["test_index"], dtype=np.int64)
    chosen = _chosen(rows, len(index), "the run's test set")
    positions = index[chosen]
    if positions.size and positions.max() >= len(raw.X):
        raise UserError(f"the run's dataset has {len(raw.X)} rows, fewer than its saved test rows need")
    return Rows(
        frame=raw.X.iloc[positions].reset_index(drop=True),
        labels=chosen,
        y_true=_targets(raw.y.iloc[positions], run.mode),
        source="test set",
        dataset_rows=positions,
    )


def _targets(values: pd.Series, mode: str) -> np.ndarray:
    """True targets ``(N,)``: floats for regression (NaN where missing); for classification the labels as text,
    written as the class names are (an integral float label ``1.0`` is the class ``1``), None where missing."""
    import pandas as pd

    if mode == "regression":
        return pd.to_numeric(values.astype(object), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)

    def text(value: Any) -> str | None:
        if value is None or value is pd.NA or (isinstance(value, float | np.floating) and not np.isfinite(value)):
            return None
        if isinstance(value, float | np.floating) and float(value).is_integer():
            return str(int(value))
        return str(value)

    return np.asarray([text(value) for value in values], dtype=object)


def _chosen(rows: Sequence[int] | None, n: int, what: str) -> np.ndarray:
    if n == 0:
        raise UserError(f"{what} has no rows")
    if rows is None:
        return np.arange(n)
    beyond = [int(row) for row in rows if not 0 <= int(row) < n]
    if beyond:
        raise UserError(f"row {beyond[0]} is out of range: {what} has {n} rows (0..{n - 1})")
    return np.asarray(list(rows), dtype=np.int64)


#: Files ``read_rows`` reads, by suffix.
_ROW_FILE_KINDS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def file_rows(run: SavedRun, path: str | Path, rows: Sequence[int] | None = None) -> Rows:
    """The rows (all, or those numbered ``rows``, from 0) of a CSV/TSV or Parquet file with the original columns.

    Categorical columns are read as text (a category ``1`` stays ``'1'``, as in training); a column named like the
    run's target gives the true values.

    Raises:
        UserError: an unknown file type, a missing or unreadable file, or a row number beyond the file.
    """
    import pandas as pd

    path = Path(path)
    suffixes = [suffix.lower() for suffix in path.suffixes]
    kind = next((_ROW_FILE_KINDS[s] for s in reversed(suffixes[-2:]) if s in _ROW_FILE_KINDS), None)
    if kind is None:
        raise UserError(f"--data {path}: unknown file type (use .csv, .tsv, .parquet or .pq)")
    if not path.is_file():
        raise UserError(f"--data {path} does not exist")
    text_columns = {name: str for name, is_cat in zip(run.feature_names, run.categorical, strict=True) if is_cat}
    separator = "\t" if ".tsv" in suffixes else ","
    try:
        if kind == "csv":
            # pandas renames a repeated column "a" to "a.1": the raw header shows the duplicate.
            header = pd.read_csv(path, sep=separator, header=None, nrows=1, dtype=str, keep_default_na=False)
            _refuse_duplicates(path, [str(name) for name in header.iloc[0]] if len(header) else [])
            frame = pd.read_csv(path, sep=separator, dtype=text_columns)
        else:
            frame = pd.read_parquet(path)
    except UserError:
        raise
    except ImportError as error:
        raise UserError(f"--data {path}: reading it needs {error.name or 'pyarrow'}") from None
    except Exception as error:  # noqa: BLE001 - pandas/pyarrow parse errors share no base class
        raise UserError(
            f"--data {path}: cannot read it ({type(error).__name__}: {' '.join(str(error).split())[:160]})"
        ) from None
    frame.columns = [str(column) for column in frame.columns]
    _refuse_duplicates(path, list(frame.columns))
    chosen = _chosen(rows, len(frame), f"--data {path}")
    target = run.state.get("target")
    y_true = _targets(frame[target].iloc[chosen], run.mode) if target in frame.columns else None
    return Rows(frame=frame.iloc[chosen].reset_index(drop=True), labels=chosen, y_true=y_true, source=str(path))


def _refuse_duplicates(path: Path, names: list[str]) -> None:
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UserError(f"--data {path}: duplicated column names {repeated[:5]} (which one is the feature?)")


def prepare_rows(run: SavedRun, rows: Rows) -> tuple[pd.DataFrame, list[str]]:
    """Check raw rows against the run and normalise them as in training; returns them and the warnings.

    An unseen category (not among the training categories) is treated as the missing category
    (``data.MISSING_CATEGORY``), and an infinite number as a missing one (as in training), each with a warning that
    names it; so is a feature that had no value in training (the model sees its training mean, 0, for every row).

    Raises:
        UserError: a feature column is missing, a numerical value is not a number, or one so large that its
            standardised model input leaves float32's range (it would silently become the training mean).
    """
    import pandas as pd

    from data import MISSING_CATEGORY
    from data.preprocessing import normalise_frame

    frame = rows.frame
    missing = [name for name in run.feature_names if name not in frame.columns]
    if missing:
        shown = ", ".join(repr(name) for name in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise UserError(f"{rows.source}: missing feature column(s) {shown} (the run uses {len(run.feature_names)})")
    for name, is_categorical in zip(run.feature_names, run.categorical, strict=True):
        column = frame[name]
        if is_categorical or pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column):
            continue
        text = column.astype(str).str.strip()
        parsed = pd.to_numeric(text.where(column.notna() & (text != "")), errors="coerce")
        bad = np.flatnonzero((column.notna() & (text != "")).to_numpy() & parsed.isna().to_numpy())
        if bad.size:
            raise UserError(
                f"{rows.source}: column {name!r}, row {int(rows.labels[bad[0]])}: {column.iloc[bad[0]]!r} is not a number"
            )
    warnings = _number_warnings(run, rows)
    normalised = normalise_frame(frame.loc[:, run.feature_names], run.categorical)
    for name, is_categorical in zip(run.feature_names, run.categorical, strict=True):
        if not is_categorical:
            continue
        known = run.vocabulary(name) | {MISSING_CATEGORY}
        values = normalised[name]
        unseen = ~values.isin(known)
        for value in pd.unique(values[unseen]):
            where = rows.labels[np.flatnonzero((values == value).to_numpy())]
            shown = ", ".join(str(int(i)) for i in where[:5]) + (" ..." if where.size > 5 else "")
            warnings.append(f"column {name!r}: unseen category {value!r} (row {shown}) treated as missing")
        normalised.loc[unseen, name] = MISSING_CATEGORY
    return normalised, warnings


def _rows_text(rows: Rows, positions: np.ndarray) -> str:
    where = rows.labels[positions]
    return ", ".join(str(int(i)) for i in where[:5]) + (" ..." if where.size > 5 else "")


def _number_warnings(run: SavedRun, rows: Rows) -> list[str]:
    """Warnings for infinite numbers (treated as missing, as in training) and features without a training value;
    an error for a number whose standardised input overflows float32.

    Raises:
        UserError: a number too large for the model's float32 inputs.
    """
    import pandas as pd

    from experiments.saved_run.safe import FLOAT32_MAX

    numerical = [name for name, is_cat in zip(run.feature_names, run.categorical, strict=True) if not is_cat]
    scaler = run.state["encoder"]["numerical_scaler"] if run.spec.input_kind == "matrix" else None
    warnings = []
    for index, name in enumerate(numerical):
        values = pd.to_numeric(rows.frame[name].astype(object), errors="coerce").to_numpy(dtype=np.float64)
        infinite = np.flatnonzero(np.isinf(values))
        if infinite.size:
            warnings.append(
                f"column {name!r}: infinite value (row {_rows_text(rows, infinite)}) treated as missing, as in training"
            )
        if scaler is None:
            continue
        mean, scale = scaler["mean"][index], scaler["scale"][index]
        if mean is None:
            warnings.append(f"column {name!r} had no value in training: the model sees its training mean for every row")
            continue
        with np.errstate(over="ignore", invalid="ignore"):
            standardised = (values - mean) / scale
        overflow = np.flatnonzero(np.isfinite(values) & ~(np.abs(standardised) <= FLOAT32_MAX))
        if overflow.size:
            first = overflow[0]
            raise UserError(
                f"{rows.source}: column {name!r}, row {int(rows.labels[first])}: {float(values[first])!r} is too large: its "
                "standardised model input leaves float32's range"
            )
    return warnings
