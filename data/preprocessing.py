"""Turn a ``RawDataset`` into model-ready train/test (and validation) matrices, following the paper's protocol.

Columns are dropped on the whole feature table before any split (more than 90 % missing, a single value, or
categorical with more than 90 % distinct values); the rows are split with scikit-learn's ``train_test_split``
(stratified for classification, ``random_state=seed``); numerical columns are standardised on the training
rows with missing values becoming 0; categorical columns are target-encoded (binary and regression) or one-hot
encoded (multiclass), or encoded as integer codes for TabNet; labels are ``LabelEncoder`` codes. Every model
input column maps back to the original feature it came from, so explanations can be reported per feature.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.preprocessing import LabelEncoder, OneHotEncoder, OrdinalEncoder, StandardScaler, TargetEncoder

from data.loading import DataError, RawDataset

Mode = Literal["classification", "regression"]
Task = Literal["binary", "multiclass", "regression"]
EncodingType = Literal["paper", "onehot", "target", "ordinal"]
CategoricalEncoding = Literal["onehot", "target", "ordinal"]

MISSING_CATEGORY = "<missing>"
"""The category string that stands for a missing categorical value (missing is a category of its own)."""

MAX_MISSING_FRACTION = 0.9
MAX_CATEGORICAL_UNIQUE_FRACTION = 0.9


# --------------------------------------------------------------------------------------------------------------
# Task checks


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
    _check_choice("mode", mode, Mode)
    labels, has_target = _target_values(raw, mode)
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


def _target_values(raw: RawDataset, mode: Mode) -> tuple[np.ndarray, np.ndarray]:
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


# --------------------------------------------------------------------------------------------------------------
# Column drops


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


# --------------------------------------------------------------------------------------------------------------
# Encoding


class FeatureEncoder:
    """Encodes normalised frames into float32 model matrices, with the map from inputs to original features.

    Numerical columns: ``StandardScaler`` fitted on the training rows, missing values -> 0 after scaling.
    Categorical columns (``MISSING_CATEGORY`` is a category of its own):

    - ``onehot``: one 0/1 input per training category, named ``feature=value``; unseen categories -> all 0.
    - ``target``: scikit-learn's ``TargetEncoder`` (cross-fitted on the training rows, so a row's own label does
      not leak into its encoding). For classification the encodings are class frequencies in [0, 1] and are
      used as they are, as in the paper's protocol (standardising them measurably hurt: credit-g's mean test
      AUROC over seeds 0-4 fell from 0.794 to 0.777); for regression they are in target units (possibly
      thousands), so they are standard-scaled like numerical columns. One input per feature, named after it;
      multiclass gives one input per class, named ``feature[class]``.
    - ``ordinal``: codes ``0..k-1`` for the ``k`` categories seen in training; missing and unseen values share
      the extra code ``k`` (cardinality ``k + 1``). Codes are not scaled (TabNet embeds them).

    With ``scale_all=True`` every encoded input column is standardised on the training rows: the one-hot and the
    target-encoded columns too (not the ordinal codes, which are indices). A column's scale then no longer
    decides how strongly INN's L1 term holds back its generated weight (see ``docs/defaults.md``).

    Inputs follow the order of the original features.

    Args:
        feature_names: Original feature names (after drops), length F.
        categorical: One flag per feature.
        encoding: ``onehot``, ``target`` or ``ordinal``.
        target_type: ``binary``, ``multiclass`` or ``continuous``; needed for ``target``.
        class_names: Labels of the class codes, to name multiclass target-encoded inputs (default: the codes).
        seed: Random state of the target encoder's cross-fitting.
        scale_all: Standardise the one-hot and target-encoded columns too (default: numerical columns only, and
            the target encodings of a regression).
    """

    def __init__(
        self,
        feature_names: list[str],
        categorical: list[bool],
        *,
        encoding: CategoricalEncoding,
        target_type: Literal["binary", "multiclass", "continuous"] | None = None,
        class_names: list[str] | None = None,
        seed: int = 0,
        scale_all: bool = False,
    ) -> None:
        _check_choice("encoding", encoding, CategoricalEncoding)
        if encoding == "target" and target_type is None:
            raise ValueError("the target encoding needs a target_type")
        if len(feature_names) != len(categorical):
            raise ValueError(f"{len(feature_names)=} does not match {len(categorical)=}")
        self.feature_names = list(feature_names)
        self.categorical = [bool(c) for c in categorical]
        self.encoding = encoding
        self.target_type = target_type
        self.class_names = None if class_names is None else list(class_names)
        self.seed = seed
        self.scale_all = bool(scale_all)
        self._numerical = [n for n, c in zip(self.feature_names, self.categorical, strict=True) if not c]
        self._categorical = [n for n, c in zip(self.feature_names, self.categorical, strict=True) if c]

    # ---- fitting and transforming

    def fit_transform(self, frame: pd.DataFrame, y: np.ndarray) -> np.ndarray:
        """Fit on the training frame and return its encoding, shape (N, D).

        The target encoding of the training rows is cross-fitted (what ``TargetEncoder.fit_transform`` does),
        so it differs from ``transform`` on the same rows: use this result for training.
        """
        frame = self._prepare(frame)
        numerical = frame[self._numerical].to_numpy(dtype="float64")
        categorical = frame[self._categorical].to_numpy(dtype=object)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing training column has no mean
            self.scaler_ = StandardScaler().fit(numerical) if self._numerical else None
        self.cardinalities_: list[int] = []
        if not self._categorical:
            encoded = np.empty((len(frame), 0))
            widths: list[int] = []
            names: list[str] = []
        elif self.encoding == "onehot":
            self.categorical_encoder_ = OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype="float64")
            encoded = self.categorical_encoder_.fit_transform(categorical)
            widths = [len(c) for c in self.categorical_encoder_.categories_]
            names = [
                f"{feature}={value}"
                for feature, values in zip(self._categorical, self.categorical_encoder_.categories_, strict=True)
                for value in values
            ]
        elif self.encoding == "target":
            # The same folds as TargetEncoder's default (5, shuffled; stratified for classes), seeded.
            folds = KFold if self.target_type == "continuous" else StratifiedKFold
            self.categorical_encoder_ = TargetEncoder(
                target_type=self.target_type, cv=folds(n_splits=5, shuffle=True, random_state=self.seed)
            )
            encoded = self.categorical_encoder_.fit_transform(categorical, y)
            scaled = self.target_type == "continuous" or self.scale_all
            self.encoded_scaler_ = StandardScaler().fit(encoded) if scaled else None
            if self.encoded_scaler_ is not None:
                encoded = self.encoded_scaler_.transform(encoded)
            if self.target_type == "multiclass":
                # TargetEncoder orders its outputs feature-major: f1[c1], f1[c2], ..., f2[c1], ...
                classes = self.categorical_encoder_.classes_
                if self.class_names is not None:
                    classes = [self.class_names[int(code)] for code in classes]
                widths = [len(classes)] * len(self._categorical)
                names = [f"{feature}[{cls}]" for feature in self._categorical for cls in classes]
            else:
                widths = [1] * len(self._categorical)
                names = list(self._categorical)
        else:
            levels = [np.unique(column[column != MISSING_CATEGORY]) for column in categorical.T]
            self.categorical_encoder_ = OrdinalEncoder(
                categories=levels, handle_unknown="use_encoded_value", unknown_value=-1, dtype="float64"
            )
            self.categorical_encoder_.fit(categorical)
            self.cardinalities_ = [len(level) + 1 for level in levels]
            encoded = self._ordinal_codes(categorical)
            widths = [1] * len(self._categorical)
            names = list(self._categorical)

        if self.scale_all and self.encoding == "onehot" and self._categorical:
            self.encoded_scaler_ = StandardScaler().fit(encoded)
            encoded = self.encoded_scaler_.transform(encoded)

        # Put the inputs in the order of the original features: a stable sort by owning feature.
        position = {name: i for i, name in enumerate(self.feature_names)}
        owner = np.concatenate(
            [
                np.array([position[n] for n in self._numerical], dtype="int64"),
                np.repeat(np.array([position[n] for n in self._categorical], dtype="int64"), widths),
            ]
        )
        self.order_ = np.argsort(owner, kind="stable")
        self.input_to_feature_ = owner[self.order_]
        all_names = self._numerical + names
        self.input_names_ = [all_names[i] for i in self.order_]
        return self._assemble(self._scale_numerical(numerical), encoded)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode new rows (original or normalised columns; extra columns are ignored), shape (N, D)."""
        if not hasattr(self, "order_"):
            raise RuntimeError("FeatureEncoder is not fitted: call fit_transform first")
        frame = self._prepare(frame)
        numerical = frame[self._numerical].to_numpy(dtype="float64")
        categorical = frame[self._categorical].to_numpy(dtype=object)
        if not self._categorical:
            encoded = np.empty((len(frame), 0))
        elif self.encoding == "ordinal":
            encoded = self._ordinal_codes(categorical)
        else:
            encoded = self.categorical_encoder_.transform(categorical)
            if self.encoding in ("target", "onehot") and getattr(self, "encoded_scaler_", None) is not None:
                encoded = self.encoded_scaler_.transform(encoded)
        return self._assemble(self._scale_numerical(numerical), encoded)

    # ---- fitted description

    @property
    def input_names(self) -> list[str]:
        """Model input column names, length D."""
        return list(self.input_names_)

    @property
    def input_to_feature(self) -> np.ndarray:
        """For every input column, the index of its original feature in ``feature_names``, shape (D,)."""
        return self.input_to_feature_.copy()

    @property
    def categorical_input_indices(self) -> list[int] | None:
        """Positions of the integer-coded inputs (``ordinal`` only, else None)."""
        if self.encoding != "ordinal":
            return None
        is_categorical = np.asarray(self.categorical, dtype=bool)[self.input_to_feature_]
        return [int(i) for i in np.flatnonzero(is_categorical)]

    @property
    def categorical_cardinalities(self) -> list[int] | None:
        """Number of codes of each integer-coded input, aligned with ``categorical_input_indices``."""
        if self.encoding != "ordinal":
            return None
        by_feature = dict(zip(self._categorical, self.cardinalities_, strict=True))
        indices = self.categorical_input_indices or []
        return [by_feature[self.feature_names[self.input_to_feature_[i]]] for i in indices]

    # ---- saving and restoring

    def to_state(self) -> dict[str, Any]:
        """The fitted encoder as plain JSON types (lists, str, float, int, bool, None), for a saved run.

        It holds the feature names, their kinds and order, the numerical columns' scaler statistics, every
        categorical column's vocabulary (the training categories, ``MISSING_CATEGORY`` included when it occurred)
        and, for the target encoding, its table (the encoding of every category; the value of an unseen category)
        and the encoded columns' scaler (regression), plus the input order and names. Non-finite statistics (an
        all-missing training column has no mean) are ``None``. :meth:`from_state` restores an encoder whose
        :meth:`transform` gives the same matrix; nothing in the state is code.

        Raises:
            RuntimeError: the encoder is not fitted.
        """
        if not hasattr(self, "order_"):
            raise RuntimeError("FeatureEncoder is not fitted: call fit_transform first")
        columns: list[dict[str, Any]] = []
        if self._categorical:
            encoder = self.categorical_encoder_
            for index, name in enumerate(self._categorical):
                column: dict[str, Any] = {"name": name, "categories": [str(c) for c in encoder.categories_[index]]}
                if self.encoding == "target":
                    table, unknown = _target_table(encoder, index)
                    column["table"] = [_floats(row) for row in table]
                    column["unknown"] = _floats(unknown)
                columns.append(column)
        encoded_scaler = getattr(self, "encoded_scaler_", None) if self.encoding == "target" else None
        return {
            "feature_names": list(self.feature_names),
            "categorical": list(self.categorical),
            "encoding": self.encoding,
            "target_type": self.target_type,
            "class_names": self.class_names,
            "seed": int(self.seed),
            "numerical_scaler": _scaler_state(self.scaler_),
            "categorical_columns": columns,
            "encoded_scaler": _scaler_state(encoded_scaler),
            "cardinalities": [int(c) for c in self.cardinalities_],
            "order": [int(i) for i in self.order_],
            "input_names": list(self.input_names_),
            "input_to_feature": [int(i) for i in self.input_to_feature_],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> FeatureEncoder:
        """An encoder restored from :meth:`to_state`; its :meth:`transform` equals the original's.

        The restored encoder transforms (and describes its inputs) but cannot be refitted from the state: its
        scalers and categorical encoders are lookup tables, not scikit-learn objects.

        Raises:
            ValueError: the state is malformed (a missing key, a wrong type, inconsistent sizes).
        """
        try:
            encoder = cls(
                [str(name) for name in state["feature_names"]],
                [bool(flag) for flag in state["categorical"]],
                encoding=state["encoding"],
                target_type=state["target_type"],
                class_names=state["class_names"],
                seed=int(state["seed"]),
            )
            encoder.scaler_ = _Standardiser.from_state(state["numerical_scaler"], len(encoder._numerical))
            columns = list(state["categorical_columns"])
            if [column["name"] for column in columns] != encoder._categorical:
                raise ValueError("the categorical columns do not match the categorical features")
            encoder.categorical_encoder_ = _LookupEncoder.from_state(encoder.encoding, columns)
            encoder.encoded_scaler_ = None
            if encoder.encoding == "target" and state["encoded_scaler"] is not None:  # regression only
                width = encoder.categorical_encoder_.width
                encoder.encoded_scaler_ = _Standardiser.from_state(state["encoded_scaler"], width)
            encoder.cardinalities_ = [int(c) for c in state["cardinalities"]]
            encoder.order_ = np.asarray(state["order"], dtype="int64")
            encoder.input_names_ = [str(name) for name in state["input_names"]]
            encoder.input_to_feature_ = np.asarray(state["input_to_feature"], dtype="int64")
        except (KeyError, TypeError, IndexError) as error:
            raise ValueError(f"malformed encoder state ({type(error).__name__}: {error})") from None
        n_inputs = len(encoder.input_names_)
        width = len(encoder._numerical) + (encoder.categorical_encoder_.width if encoder._categorical else 0)
        if not (
            encoder.order_.shape == encoder.input_to_feature_.shape == (n_inputs,)
            and width == n_inputs
            and np.array_equal(np.sort(encoder.order_), np.arange(n_inputs))
            and (n_inputs == 0 or 0 <= encoder.input_to_feature_.min() <= encoder.input_to_feature_.max())
            and (n_inputs == 0 or encoder.input_to_feature_.max() < len(encoder.feature_names))
        ):
            raise ValueError(f"malformed encoder state: {n_inputs} input names for {width} encoded columns")
        return encoder

    # ---- internals

    def _prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [name for name in self.feature_names if name not in frame.columns]
        if missing:
            raise DataError(f"the frame lacks the feature columns {', '.join(map(str, missing[:5]))}")
        return normalise_frame(frame[self.feature_names], self.categorical)

    def _scale_numerical(self, numerical: np.ndarray) -> np.ndarray:
        if self.scaler_ is None:
            return numerical
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing training column has no mean
            scaled = self.scaler_.transform(numerical)
        return scaled

    def _ordinal_codes(self, categorical: np.ndarray) -> np.ndarray:
        codes = self.categorical_encoder_.transform(categorical)
        extra = np.asarray(self.cardinalities_, dtype="float64") - 1  # code k for missing and unseen values
        return np.where(codes < 0, extra, codes)

    def _assemble(self, numerical: np.ndarray, encoded: np.ndarray) -> np.ndarray:
        matrix = np.hstack([numerical, encoded])[:, self.order_]
        # Missing numericals become 0 (= the training mean) after scaling; overflow is clipped, never inf.
        matrix = np.nan_to_num(matrix, nan=0.0, posinf=0.0, neginf=0.0)
        matrix = matrix.astype(np.float32)
        return np.nan_to_num(matrix, nan=0.0, posinf=0.0, neginf=0.0)


# --------------------------------------------------------------------------------------------------------------
# A restored encoder's parts: what the fitted scikit-learn objects compute, as plain tables


def _floats(values: Any) -> list[float | None]:
    """Floats for JSON: non-finite values become None (JSON has no NaN)."""
    return [float(v) if np.isfinite(v) else None for v in np.asarray(values, dtype="float64").reshape(-1)]


def _array(values: Any) -> np.ndarray:
    """The inverse of :func:`_floats`: None becomes NaN."""
    return np.array([np.nan if v is None else float(v) for v in values], dtype="float64")


def _scaler_state(scaler: Any) -> dict[str, list[float | None]] | None:
    if scaler is None:
        return None
    return {"mean": _floats(scaler.mean_), "scale": _floats(scaler.scale_)}


def _target_table(encoder: TargetEncoder, index: int) -> tuple[np.ndarray, np.ndarray]:
    """The encodings of feature ``index``'s categories ``(k, W)`` and of an unseen category ``(W,)``.

    ``TargetEncoder.encodings_`` is feature-major (``W`` classes per feature for a multiclass target, else 1).
    """
    width = len(encoder.classes_) if encoder.target_type_ == "multiclass" else 1
    table = np.stack([encoder.encodings_[index * width + c] for c in range(width)], axis=1)
    unknown = np.broadcast_to(np.asarray(encoder.target_mean_, dtype="float64"), (width,))
    return table, unknown


class _Standardiser:
    """``(x − mean) / scale`` with a fitted ``StandardScaler``'s statistics (the arithmetic of its ``transform``)."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray) -> None:
        self.mean_ = mean
        self.scale_ = scale

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None, width: int) -> _Standardiser | None:
        if state is None:
            if width:
                raise ValueError(f"the state lacks the statistics of {width} scaled columns")
            return None
        mean, scale = _array(state["mean"]), _array(state["scale"])
        if mean.shape != (width,) or scale.shape != (width,):
            raise ValueError(f"scaler statistics of {mean.size} and {scale.size} columns for {width} columns")
        return cls(mean, scale)

    def transform(self, values: np.ndarray) -> np.ndarray:
        values = np.array(values, dtype="float64")
        values -= self.mean_
        values /= self.scale_
        return values


class _LookupEncoder:
    """The categorical encoders of ``FeatureEncoder`` as lookups in their vocabularies (``transform`` only).

    ``onehot``: one 0/1 column per category, unseen -> all 0 (``handle_unknown="ignore"``); ``target``: the
    table's row of the category, unseen -> the unseen row (the target mean); ``ordinal``: the category's code,
    unseen -> -1 (``FeatureEncoder`` maps it to the extra code).
    """

    def __init__(
        self,
        encoding: CategoricalEncoding,
        categories: list[list[str]],
        tables: list[np.ndarray] | None = None,
        unknown: list[np.ndarray] | None = None,
    ) -> None:
        self.encoding = encoding
        self.categories_ = [np.asarray(c, dtype=object) for c in categories]
        self._indices = [pd.Index(c, dtype=object) for c in categories]
        if any(not index.is_unique for index in self._indices):
            raise ValueError("a categorical vocabulary repeats a category")
        self._tables = tables
        self._unknown = unknown

    @classmethod
    def from_state(cls, encoding: CategoricalEncoding, columns: list[Mapping[str, Any]]) -> _LookupEncoder:
        categories = [[str(c) for c in column["categories"]] for column in columns]
        if encoding != "target":
            return cls(encoding, categories)
        tables = [np.array([_array(row) for row in column["table"]], dtype="float64") for column in columns]
        unknown = [_array(column["unknown"]) for column in columns]
        widths = {u.shape[0] for u in unknown}
        if len(widths) > 1 or any(
            t.shape != (len(c), u.shape[0]) for t, c, u in zip(tables, categories, unknown, strict=True)
        ):
            raise ValueError("target-encoding tables of inconsistent sizes")
        return cls(encoding, categories, tables, unknown)

    @property
    def width(self) -> int:
        """Encoded columns in all."""
        if self.encoding == "onehot":
            return sum(len(c) for c in self.categories_)
        if self.encoding == "target":
            return sum(u.shape[0] for u in self._unknown or [])
        return len(self.categories_)

    def transform(self, categorical: np.ndarray) -> np.ndarray:
        """Shape: categorical ``(N, K)`` strings -> float64 ``(N, width)``."""
        parts = []
        for j, index in enumerate(self._indices):
            codes = index.get_indexer(categorical[:, j])
            known = codes >= 0
            if self.encoding == "onehot":
                part = np.zeros((len(codes), len(index)))
                part[np.flatnonzero(known), codes[known]] = 1.0
            elif self.encoding == "target":
                part = np.where(known[:, None], self._tables[j][np.maximum(codes, 0)], self._unknown[j][None, :])
            else:
                part = codes.astype("float64")[:, None]
            parts.append(part)
        return np.hstack(parts) if parts else np.empty((categorical.shape[0], 0))


# --------------------------------------------------------------------------------------------------------------
# The split


@dataclass(frozen=True, eq=False)
class PreparedSplit:
    """Model-ready matrices of one seed's split, with everything needed to explain and report them.

    Shapes use N (rows of a part), F (original features after drops) and D (model inputs).

    Attributes:
        X_train: float32 (N_train, D); no NaN or inf. Likewise ``X_test`` and ``X_valid`` (None without a
            validation part).
        y_train: int64 codes ``0..C-1`` (classification) or float64 values, unscaled (regression). Likewise
            ``y_test``, ``y_valid``.
        classes: Original labels as strings, in code order (None for regression).
        feature_names: Original features after the drops, length F.
        input_names: Model input columns, length D (one-hot inputs are ``feature=value``).
        input_to_feature: int64 (D,), the index into ``feature_names`` of each input's original feature.
        categorical_features: One flag per entry of ``feature_names``.
        dropped_columns: ``{column: reason}`` for the columns the protocol dropped.
        train_index: Row positions in ``raw.X`` of the training rows, in the order of ``X_train``. Likewise
            ``test_index``, ``valid_index``.
        frame_train: The unencoded training rows after drops (categorical as ``str`` with
            ``MISSING_CATEGORY``, numerical float64 with NaN), indexed by row position, for CatBoost. Likewise
            ``frame_test``, ``frame_valid``.
        categorical_input_indices: ``ordinal`` only: positions of the integer-coded inputs (else None).
        categorical_cardinalities: ``ordinal`` only: their number of codes (else None).
        encoder: The fitted ``FeatureEncoder`` (see ``transform``).
        label_encoder: The fitted ``LabelEncoder`` (None for regression).
        task: ``binary``, ``multiclass`` or ``regression``.
        n_classes: Number of classes C (None for regression).
        encoding_type: The categorical encoding used (``paper`` resolved to ``target`` or ``onehot``).
        n_missing_target: Rows dropped because their target was missing.
        notes: Human-readable notes on what was dropped.
        scale_all_inputs: Whether every encoded input column was standardised (``prepare_split``).
    """

    dataset_name: str
    dataset_id: int | str
    mode: Mode
    seed: int
    test_split_size: float
    validation_size: float
    X_train: np.ndarray
    X_test: np.ndarray
    X_valid: np.ndarray | None
    y_train: np.ndarray
    y_test: np.ndarray
    y_valid: np.ndarray | None
    classes: list[str] | None
    feature_names: list[str]
    input_names: list[str]
    input_to_feature: np.ndarray
    categorical_features: list[bool]
    dropped_columns: dict[str, str]
    train_index: np.ndarray
    test_index: np.ndarray
    valid_index: np.ndarray | None
    frame_train: pd.DataFrame
    frame_test: pd.DataFrame
    frame_valid: pd.DataFrame | None
    categorical_input_indices: list[int] | None
    categorical_cardinalities: list[int] | None
    encoder: FeatureEncoder
    label_encoder: LabelEncoder | None
    task: Task
    n_classes: int | None
    encoding_type: CategoricalEncoding
    n_missing_target: int = 0
    notes: list[str] = field(default_factory=list)
    scale_all_inputs: bool = False

    @property
    def n_features(self) -> int:
        """F, the number of original features after drops."""
        return len(self.feature_names)

    @property
    def n_inputs(self) -> int:
        """D, the number of model input columns."""
        return len(self.input_names)

    @property
    def n_train(self) -> int:
        return len(self.y_train)

    @property
    def n_test(self) -> int:
        return len(self.y_test)

    @property
    def n_valid(self) -> int:
        return 0 if self.y_valid is None else len(self.y_valid)

    @property
    def categorical_feature_names(self) -> list[str]:
        """The categorical entries of ``feature_names``."""
        return [n for n, c in zip(self.feature_names, self.categorical_features, strict=True) if c]

    @property
    def categorical_feature_indices(self) -> list[int]:
        """Positions of the categorical features in ``feature_names`` (and in the frames' columns)."""
        return [i for i, c in enumerate(self.categorical_features) if c]

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode new rows exactly like the test rows (original columns; dropped and extra ones ignored).

        Shape:
            frame (N, any columns including ``feature_names``) -> float32 (N, D).
        """
        return self.encoder.transform(frame)

    def decode_labels(self, codes: np.ndarray) -> np.ndarray:
        """Class codes back to the original labels (as ``str``)."""
        if self.classes is None:
            raise ValueError("a regression split has no classes")
        return np.asarray(self.classes, dtype=object)[np.asarray(codes, dtype="int64")]

    def summary(self) -> dict[str, Any]:
        """The split's facts for a results record (JSON-serialisable)."""
        return {
            "dataset_id": self.dataset_id,
            "dataset_name": self.dataset_name,
            "seed": self.seed,
            "task": self.task,
            "n_classes": self.n_classes,
            "n_train": self.n_train,
            "n_valid": self.n_valid,
            "n_test": self.n_test,
            "n_features": self.n_features,
            "n_inputs": self.n_inputs,
            "feature_names": list(self.feature_names),
            "encoding_type": self.encoding_type,
            "dropped_columns": dict(self.dropped_columns),
            "n_missing_target": self.n_missing_target,
        }


def prepare_split(
    raw: RawDataset,
    *,
    mode: Mode = "classification",
    seed: int = 0,
    test_split_size: float = 0.2,
    encoding_type: EncodingType = "paper",
    validation_size: float = 0.0,
    scale_all_inputs: bool = False,
) -> PreparedSplit:
    """Drop columns, split the rows and encode them, per the paper's protocol.

    The test rows depend only on the data, ``seed`` and ``test_split_size``: the validation part (the HPO
    protocol, 60/20/20 with ``validation_size=0.2``) is split off the training part afterwards, stratified and
    with the same ``random_state``, sized ``validation_size`` of the WHOLE data. So a run with and a run without
    validation are tested on the same rows.

    Args:
        raw: The loaded dataset.
        mode: ``classification`` (stratified split, label codes) or ``regression`` (plain split, float target).
        seed: ``random_state`` of the splits and of the target encoder's cross-fitting.
        test_split_size: Fraction of the rows in the test part, in (0, 1).
        encoding_type: ``paper`` (target encoding for binary and regression, one-hot for multiclass),
            ``onehot``, ``target`` or ``ordinal`` (integer codes for TabNet).
        validation_size: Fraction of all rows in the validation part; 0 for none.
        scale_all_inputs: Standardise every encoded input column on the training rows (one-hot and
            target-encoded ones too; ordinal codes stay codes). Default: the paper's protocol, numerical columns
            only (and target encodings of a regression).

    Returns:
        The prepared split.

    Raises:
        DataError: The target does not suit the mode (see ``check_task``), no feature column survives the
            drops, or a part would be too small for a stratified split.
        ValueError: An argument out of range.
    """
    _check_choice("mode", mode, Mode)
    _check_choice("encoding_type", encoding_type, EncodingType)
    if not 0.0 < test_split_size < 1.0:
        raise ValueError(f"test_split_size must be in (0, 1), got {test_split_size=}")
    if not 0.0 <= validation_size < 1.0 - test_split_size:
        raise ValueError(f"validation_size must be in [0, 1 - test_split_size), got {validation_size=}")

    info = check_task(raw, mode)
    notes: list[str] = []
    if info.n_missing_target:
        notes.append(f"dropped {info.n_missing_target} row(s) with a missing target")

    dropped = column_drops(raw.X, raw.categorical)
    notes.extend(f"dropped column {name!r}: {reason}" for name, reason in dropped.items())
    kept = [i for i, name in enumerate(raw.X.columns) if name not in dropped]
    if not kept:
        raise DataError(f"no feature column of {raw.name} is usable: all {raw.X.shape[1]} were dropped")
    feature_names = [str(raw.X.columns[i]) for i in kept]
    categorical = [bool(raw.categorical[i]) for i in kept]
    frame = normalise_frame(raw.X.iloc[:, kept], categorical)
    frame.columns = feature_names
    frame.index = pd.RangeIndex(len(frame))

    rows = np.flatnonzero(info.has_target)
    targets, _ = _target_values(raw, mode)  # aligned with rows
    classification = mode == "classification"
    train_rows, test_rows, valid_rows = _split_rows(
        rows, targets, classification, seed, test_split_size, validation_size
    )

    target_at = pd.Series(targets, index=rows)  # row position -> target value
    label_encoder: LabelEncoder | None = None
    if classification:
        label_encoder = LabelEncoder().fit(target_at[train_rows].to_numpy())

        def encode(part: np.ndarray) -> np.ndarray:
            return label_encoder.transform(target_at[part].to_numpy()).astype("int64")
    else:

        def encode(part: np.ndarray) -> np.ndarray:
            return target_at[part].to_numpy(dtype="float64")

    y_train = encode(train_rows)
    resolved = _resolve_encoding(encoding_type, info.task)
    target_type = {"binary": "binary", "multiclass": "multiclass", "regression": "continuous"}[info.task]
    classes = None if label_encoder is None else [str(c) for c in label_encoder.classes_]
    encoder = FeatureEncoder(
        feature_names,
        categorical,
        encoding=resolved,
        target_type=target_type,
        class_names=classes,
        seed=seed,
        scale_all=scale_all_inputs,
    )
    X_train = encoder.fit_transform(frame.loc[train_rows], y_train)

    frame_valid = None if valid_rows is None else frame.loc[valid_rows]
    return PreparedSplit(
        dataset_name=raw.name,
        dataset_id=raw.dataset_id,
        mode=mode,
        seed=seed,
        test_split_size=test_split_size,
        validation_size=validation_size,
        X_train=X_train,
        X_test=encoder.transform(frame.loc[test_rows]),
        X_valid=None if frame_valid is None else encoder.transform(frame_valid),
        y_train=y_train,
        y_test=encode(test_rows),
        y_valid=None if valid_rows is None else encode(valid_rows),
        classes=classes,
        feature_names=feature_names,
        input_names=encoder.input_names,
        input_to_feature=encoder.input_to_feature,
        categorical_features=categorical,
        dropped_columns=dropped,
        train_index=train_rows,
        test_index=test_rows,
        valid_index=valid_rows,
        frame_train=frame.loc[train_rows],
        frame_test=frame.loc[test_rows],
        frame_valid=frame_valid,
        categorical_input_indices=encoder.categorical_input_indices,
        categorical_cardinalities=encoder.categorical_cardinalities,
        encoder=encoder,
        label_encoder=label_encoder,
        task=info.task,
        n_classes=info.n_classes,
        encoding_type=resolved,
        n_missing_target=info.n_missing_target,
        notes=notes,
        scale_all_inputs=bool(scale_all_inputs),
    )


def _split_rows(
    rows: np.ndarray,
    targets: np.ndarray,
    stratified: bool,
    seed: int,
    test_split_size: float,
    validation_size: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Train/test(/valid) row positions; sklearn's ValueErrors about tiny classes become DataErrors."""
    try:
        train, test, train_targets, _ = train_test_split(
            rows, targets, test_size=test_split_size, random_state=seed, stratify=targets if stratified else None
        )
        valid = None
        if validation_size > 0:
            train, valid = train_test_split(
                train,
                test_size=validation_size / (1.0 - test_split_size),
                random_state=seed,
                stratify=train_targets if stratified else None,
            )
    except ValueError as exc:
        raise DataError(f"cannot split {len(rows)} rows with {test_split_size=} and {validation_size=}: {exc}") from exc
    return (
        np.asarray(train, dtype="int64"),
        np.asarray(test, dtype="int64"),
        None if valid is None else np.asarray(valid, dtype="int64"),
    )


def _resolve_encoding(encoding_type: EncodingType, task: Task) -> CategoricalEncoding:
    if encoding_type == "paper":
        return "onehot" if task == "multiclass" else "target"
    return encoding_type


def _check_choice(name: str, value: object, options: Any) -> None:
    allowed = get_args(options)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
