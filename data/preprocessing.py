"""Turn a ``RawDataset`` into model-ready train/test (and validation) matrices, following the paper's protocol.

Columns are dropped on the whole feature table before any split (more than 90 % missing, a single value, or
categorical with more than 90 % distinct values); the rows are split with scikit-learn's ``train_test_split``
(stratified for classification, ``random_state=seed``); numerical columns are standardised on the training
rows with missing values becoming 0; categorical columns are target-encoded (binary and regression) or one-hot
encoded (multiclass), or encoded as integer codes for TabNet; labels are ``LabelEncoder`` codes. Every model
input column maps back to the original feature it came from, so explanations can be reported per feature.

The pieces live beside this module: the task check (``data.task``), the column drops and the unencoded frame
(``data.columns``), the encoder and its saved state (``data.encoding``); this module splits the rows and puts
them together into a ``PreparedSplit``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder

from data.columns import column_drops, normalise_frame
from data.encoding import CategoricalEncoding, FeatureEncoder
from data.loading import DataError, RawDataset
from data.task import Mode, Task, check_choice, check_task, target_values

EncodingType = Literal["paper", "onehot", "target", "ordinal"]


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
    check_choice("mode", mode, Mode)
    check_choice("encoding_type", encoding_type, EncodingType)
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
    targets, _ = target_values(raw, mode)  # aligned with rows
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
