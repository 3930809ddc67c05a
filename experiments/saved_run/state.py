"""The preprocessing state of a run: ``preprocessing.json`` and ``background.npz``, written and read back.

``preprocessing.json`` holds the run's identity, the kept features in order with their kinds, the dropped columns,
the label classes, the target column, the fitted encoder (``data.FeatureEncoder.to_state``: scaler statistics,
category vocabularies, target-encoding tables, input names and the input-to-feature map), the test rows' positions
in the dataset, the reference row of a model on the unencoded frame and which model file there is.
``background.npz`` holds the training mean of every model input column ``(D,)`` and up to :data:`BACKGROUND_SIZE`
training rows (model inputs, seeded sample), the background of post-hoc explainers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from errors import UserError
from experiments.saved_run.safe import read_npz
from methods import MethodSpec

if TYPE_CHECKING:
    from data import FeatureEncoder, PreparedSplit

PREPROCESSING_FILENAME = "preprocessing.json"
BACKGROUND_FILENAME = "background.npz"
#: The ``format`` field of ``preprocessing.json`` and the version this code writes and reads.
PREPROCESSING_FORMAT = "preprocessing"
PREPROCESSING_VERSION = 1
#: Training rows kept as the background of post-hoc explainers (shap's default background size).
BACKGROUND_SIZE = 100


# ----------------------------------------------------------------------------------------------------------
# Writing


def preprocessing_state(
    spec: MethodSpec,
    split: PreparedSplit,
    *,
    target: str,
    model_file: str | None,
    model_format: str | None,
) -> dict[str, Any]:
    """``preprocessing.json``: everything that turns raw rows into the model's inputs (plain JSON types).

    Args:
        spec: the run's method.
        split: the run's split (its fitted encoder, classes, test rows).
        target: the dataset's target column.
        model_file: the name of the model file (None when the method saves none).
        model_format: the model file's format in words (None when the method saves none).
    """
    from methods.spec import reference_inputs

    frame_reference = None
    if spec.input_kind == "frame":
        train, _ = spec.inputs(split)
        row, _ = reference_inputs(train, "mean")
        frame_reference = {str(column): _plain(row[column].iloc[0]) for column in row.columns}
    return {
        "format": PREPROCESSING_FORMAT,
        "format_version": PREPROCESSING_VERSION,
        "method": spec.id,
        "mode": "regression" if split.task == "regression" else "classification",
        "task": split.task,
        "dataset_id": split.dataset_id,
        "dataset_name": split.dataset_name,
        "seed": split.seed,
        "target": str(target),
        "input_kind": spec.input_kind,
        "feature_names": list(split.feature_names),
        "categorical": [bool(flag) for flag in split.categorical_features],
        "dropped_columns": dict(split.dropped_columns),
        "classes": None if split.classes is None else [str(name) for name in split.classes],
        "encoding_type": split.encoding_type,
        "encoder": split.encoder.to_state(),
        "test_index": [int(i) for i in split.test_index],
        "frame_reference": frame_reference,
        "model_file": model_file,
        "model_format": model_format,
        "model_not_saved": spec.model_not_saved or None,
    }


def _plain(value: Any) -> Any:
    """A scalar as a JSON value (a NaN mean of an all-missing column becomes None)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def background_arrays(split: PreparedSplit, *, seed: int) -> dict[str, np.ndarray]:
    """``background.npz``: the training mean of every model input ``(D,)`` and a seeded sample of training rows."""
    rows = np.random.default_rng(seed).permutation(split.n_train)[:BACKGROUND_SIZE]
    return {
        "format_version": np.asarray(1),
        "input_mean": split.X_train.mean(axis=0, dtype=np.float64),
        "rows": split.X_train[np.sort(rows)],
    }


# ----------------------------------------------------------------------------------------------------------
# Reading


def read_preprocessing(path: Path) -> dict[str, Any]:
    """The run folder's ``preprocessing.json``.

    Raises:
        UserError: missing (a run written before runs saved their preprocessing), unreadable, of another format
            or version, or incomplete.
    """
    file = path / PREPROCESSING_FILENAME
    if not file.is_file():
        raise UserError(
            f"--run {path} has no {PREPROCESSING_FILENAME}: it is incomplete or was written before runs saved their "
            "preprocessing (rerun it with --force)"
        )
    try:
        state = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{file}: unreadable ({error})") from None
    if not isinstance(state, dict) or state.get("format") != PREPROCESSING_FORMAT:
        raise UserError(f"{file}: not a preprocessing file of this project")
    if state.get("format_version") != PREPROCESSING_VERSION:
        raise UserError(
            f"{file}: unknown format version {state.get('format_version')!r}; this code reads version "
            f"{PREPROCESSING_VERSION}"
        )
    required = ("method", "mode", "task", "feature_names", "categorical", "classes", "encoder", "test_index")
    missing = [key for key in required if key not in state]
    if missing:
        raise UserError(f"{file}: incomplete, missing {missing}")
    return state


def restore_encoder(path: Path, state: Mapping[str, Any]) -> FeatureEncoder:
    """The run's fitted encoder, restored from its state (lookup tables; nothing in the state is code).

    Raises:
        UserError: the encoder state is malformed or describes other features than the run's.
    """
    from data import FeatureEncoder

    try:
        encoder = FeatureEncoder.from_state(state["encoder"])
    except ValueError as error:
        raise UserError(f"{path / PREPROCESSING_FILENAME}: {error}") from None
    if encoder.feature_names != list(state["feature_names"]):
        raise UserError(f"{path / PREPROCESSING_FILENAME}: the encoder's features differ from the run's")
    return encoder


def read_background(path: Path, n_inputs: int) -> tuple[np.ndarray, np.ndarray]:
    """``(input_mean (D,), rows (B, D))`` of the run folder's ``background.npz``.

    Raises:
        UserError: missing, unreadable, pickled (refused), incomplete or of shapes that do not fit ``n_inputs``.
    """
    file = path / BACKGROUND_FILENAME
    if not file.is_file():
        raise UserError(f"--run {path}: incomplete run folder, {BACKGROUND_FILENAME} is missing")
    arrays = read_npz(file)
    try:
        mean = np.asarray(arrays["input_mean"], dtype=np.float64)
        rows = np.asarray(arrays["rows"], dtype=np.float32)
    except KeyError as error:
        raise UserError(f"{file}: incomplete, missing {error}") from None
    if mean.shape != (n_inputs,) or rows.ndim != 2 or rows.shape[1] != n_inputs or not len(rows):
        raise UserError(f"{file}: arrays of shapes {mean.shape} and {rows.shape} for {n_inputs} model inputs")
    return mean, rows
