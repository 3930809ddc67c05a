"""The preprocessing state of a run: ``preprocessing.json`` and ``background.npz``, written and read back.

``preprocessing.json`` holds the run's identity, the kept features in order with their kinds, the dropped columns,
the label classes, the target column, the fitted encoder (``data.FeatureEncoder.to_state``: scaler statistics,
category vocabularies, target-encoding tables, input names and the input-to-feature map), the test rows' positions
in the dataset, the reference row of a model on the unencoded frame and which model file there is.
``background.npz`` holds the training mean of every model input column ``(D,)`` and up to :data:`BACKGROUND_SIZE`
training rows (model inputs, seeded sample), the background of post-hoc explainers.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from errors import UserError
from experiments.saved_run.safe import FLOAT32_MAX, Fields, json_kind, read_json, read_npz
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
    """The run folder's ``preprocessing.json``, parsed (its fields are checked by :func:`check_preprocessing`).

    Raises:
        UserError: missing (a run written before runs saved their preprocessing), unreadable, of another format
            or version.
    """
    file = path / PREPROCESSING_FILENAME
    if not file.is_file():
        raise UserError(
            f"--run {path} has no {PREPROCESSING_FILENAME}: it is incomplete or was written before runs saved their "
            "preprocessing (rerun it with --force)"
        )
    state = read_json(file)
    if not isinstance(state, dict) or state.get("format") != PREPROCESSING_FORMAT:
        raise UserError(f"{file}: not a preprocessing file of this project")
    if state.get("format_version") != PREPROCESSING_VERSION or isinstance(state.get("format_version"), bool):
        raise UserError(
            f"{file}: unknown format version {state.get('format_version')!r}; this code reads version "
            f"{PREPROCESSING_VERSION}"
        )
    return state


#: The run's tasks and the encoder's target type of each.
_TARGET_TYPES = {"binary": "binary", "multiclass": "multiclass", "regression": "continuous"}
#: The resolved categorical encodings (``paper`` is resolved before it is saved).
_ENCODINGS = ("onehot", "target", "ordinal")
#: The largest seed a run accepts (scikit-learn's and NumPy's seeds are 32-bit).
MAX_SEED = 2**32 - 1


def check_preprocessing(state: Mapping[str, Any], file: Path, spec: MethodSpec, report: Mapping[str, Any]) -> None:
    """Check every field of ``preprocessing.json`` against its schema and against the run's report.

    Types, finite values, positive scales, indices within the data, and agreement with ``output_info.json`` (the
    same method, dataset, seed, task, features, classes and test rows) and with the registry (the method's input
    kind and model file).

    Raises:
        UserError: the first field that fails, with the reason.
    """
    from experiments.saved_run.model_files import model_file

    f = Fields(file)
    f.same(f.get(state, "method"), spec.id, "method", "the run's report")
    mode = f.text(f.get(state, "mode"), "mode", choices=("classification", "regression"))
    task = f.text(f.get(state, "task"), "task", choices=tuple(_TARGET_TYPES))
    if (task == "regression") != (mode == "regression"):
        f.fail("task", f"a {task} task in {mode} mode")
    f.same(task, report["task"], "task", "the run's report")
    f.name(f.get(state, "dataset_id"), "dataset_id")
    f.same(state["dataset_id"], report["dataset_id"], "dataset_id", "the run's report")
    f.same(f.text(f.get(state, "dataset_name"), "dataset_name"), report["dataset_name"], "dataset_name", "the report")
    f.same(f.integer(f.get(state, "seed"), "seed", high=MAX_SEED), report["seed"], "seed", "the run's report")
    f.text(f.get(state, "target"), "target")
    f.text(f.get(state, "input_kind"), "input_kind", choices=(spec.input_kind,))
    features = f.texts(f.get(state, "feature_names"), "feature_names", unique=True)
    if not features:
        f.fail("feature_names", "empty")
    f.same(features, report["feature_names"], "feature_names", "the run's report")
    categorical = [
        f.boolean(flag, f"categorical[{i}]")
        for i, flag in enumerate(f.sequence(f.get(state, "categorical"), "categorical", length=len(features)))
    ]
    dropped = f.mapping(f.get(state, "dropped_columns"), "dropped_columns")
    for name, reason in dropped.items():
        f.text(reason, f"dropped_columns.{name}")
    if "dropped_columns" in report:
        f.same(dropped, report["dropped_columns"], "dropped_columns", "the run's report")
    classes = f.get(state, "classes")
    if task == "regression":
        if classes is not None:
            f.fail("classes", f"{json_kind(classes)} for a regression task (null expected)")
    else:
        classes = f.texts(classes, "classes", unique=True)
        if len(classes) < 2 or (task == "binary") != (len(classes) == 2):
            f.fail("classes", f"{len(classes)} classes for a {task} task")
        f.same(len(classes), report["n_classes"], "classes", "the run's report (n_classes)")
    encoding = f.text(f.get(state, "encoding_type"), "encoding_type", choices=_ENCODINGS)
    encoder = f.mapping(f.get(state, "encoder"), "encoder")
    _check_encoder(f, encoder, features, categorical, classes, encoding, _TARGET_TYPES[task])
    n_test = report["n_test"]
    test_index = f.integers(f.get(state, "test_index"), "test_index", length=n_test)
    if len(set(test_index)) != len(test_index):
        f.fail("test_index", "a row appears twice")
    _check_frame_reference(f, f.get(state, "frame_reference"), spec.input_kind, features, categorical)
    file_of = model_file(spec)
    expected = None if file_of is None else file_of.filename
    f.same(f.get(state, "model_file"), expected, "model_file", f"the registry ({spec.id}: {spec.model_format})")
    f.text(f.get(state, "model_format"), "model_format", none=file_of is None)
    if file_of is None:
        f.text(f.get(state, "model_not_saved"), "model_not_saved")
    elif f.get(state, "model_not_saved") is not None:
        f.fail("model_not_saved", "a reason for a method whose model is saved")


def _check_encoder(
    f: Fields,
    encoder: Mapping[str, Any],
    features: list[str],
    categorical: list[bool],
    classes: list[str] | None,
    encoding: str,
    target_type: str,
) -> None:
    """The encoder state's types and ranges (``FeatureEncoder.from_state`` checks how its parts fit together)."""
    f.same(f.get(encoder, "feature_names", "encoder"), features, "encoder.feature_names", "feature_names")
    f.same(f.get(encoder, "categorical", "encoder"), categorical, "encoder.categorical", "categorical")
    f.same(f.get(encoder, "encoding", "encoder"), encoding, "encoder.encoding", "encoding_type")
    if f.get(encoder, "target_type", "encoder") is not None:
        f.same(encoder["target_type"], target_type, "encoder.target_type", "task")
    elif encoding == "target":
        f.fail("encoder.target_type", "null, but the target encoding needs one")
    if f.get(encoder, "class_names", "encoder") is not None:
        f.same(encoder["class_names"], classes, "encoder.class_names", "classes")
    f.integer(f.get(encoder, "seed", "encoder"), "encoder.seed", high=MAX_SEED)
    n_numerical = categorical.count(False)
    _check_scaler(f, f.get(encoder, "numerical_scaler", "encoder"), "encoder.numerical_scaler", n_numerical)
    names = [name for name, is_cat in zip(features, categorical, strict=True) if is_cat]
    columns = f.sequence(f.get(encoder, "categorical_columns", "encoder"), "encoder.categorical_columns")
    f.sequence(columns, "encoder.categorical_columns", length=len(names))
    widths = set()
    for index, (column, name) in enumerate(zip(columns, names, strict=True)):
        where = f"encoder.categorical_columns[{index}]"
        f.mapping(column, where)
        f.same(f.get(column, "name", where), name, f"{where}.name", "the categorical features")
        categories = f.texts(f.get(column, "categories", where), f"{where}.categories", unique=True)
        if not categories:
            f.fail(f"{where}.categories", "empty")
        if encoding == "target":
            # Classification: smoothed class frequencies; regression: target means (standardised later).
            limits = {"low": 0.0, "high": 1.0} if target_type != "continuous" else {}
            table = f.sequence(f.get(column, "table", where), f"{where}.table", length=len(categories))
            unknown = f.numbers(f.get(column, "unknown", where), f"{where}.unknown", **limits)
            widths.add(len(unknown))
            for row_index, row in enumerate(table):
                f.numbers(row, f"{where}.table[{row_index}]", length=len(unknown), **limits)
    if len(widths) > 1:
        f.fail("encoder.categorical_columns", "target-encoding tables of different widths")
    encoded_scaler = f.get(encoder, "encoded_scaler", "encoder")
    if encoded_scaler is not None:
        if encoding != "target":
            f.fail("encoder.encoded_scaler", f"statistics for the {encoding} encoding, which has none")
        width = next(iter(widths), 0) * len(names)  # W inputs per target-encoded feature
        _check_scaler(f, encoded_scaler, "encoder.encoded_scaler", width)
    cardinalities = f.integers(f.get(encoder, "cardinalities", "encoder"), "encoder.cardinalities", low=1)
    if encoding == "ordinal":
        expected = [len(column["categories"]) + 1 for column in columns]
        f.same(cardinalities, expected, "encoder.cardinalities", "the categories (one more code each)")
    input_names = f.texts(f.get(encoder, "input_names", "encoder"), "encoder.input_names", unique=True)
    n_inputs = len(input_names)
    f.integers(f.get(encoder, "order", "encoder"), "encoder.order", length=n_inputs, high=max(n_inputs - 1, 0))
    high = max(len(features) - 1, 0)
    f.integers(f.get(encoder, "input_to_feature", "encoder"), "encoder.input_to_feature", length=n_inputs, high=high)


def _check_scaler(f: Fields, scaler: Any, field: str, width: int) -> None:
    """A scaler's ``mean`` and ``scale``: ``width`` finite numbers each, every scale positive; both null for a
    column without a training value (it is 0, the training mean, for every row)."""
    if scaler is None:
        if width:
            f.fail(field, f"null, but {width} columns are scaled")
        return
    f.mapping(scaler, field)
    means = f.numbers(f.get(scaler, "mean", field), f"{field}.mean", length=width, none=True)
    scales = f.numbers(f.get(scaler, "scale", field), f"{field}.scale", length=width, none=True, positive=True)
    for index, (mean, scale) in enumerate(zip(means, scales, strict=True)):
        if (mean is None) != (scale is None):
            f.fail(f"{field}.{'mean' if mean is None else 'scale'}[{index}]", "null while its pair is a number")


def _check_frame_reference(
    f: Fields, reference: Any, input_kind: str, features: list[str], categorical: list[bool]
) -> None:
    """The reference row of a model on the unencoded frame: a number (null: no training value) or a category per
    feature; null for models of the encoded matrix."""
    if input_kind != "frame":
        if reference is not None:
            f.fail("frame_reference", f"{json_kind(reference)} for a model of the encoded matrix (null expected)")
        return
    f.mapping(reference, "frame_reference")
    f.same(list(reference), features, "frame_reference", "feature_names (its keys)")
    for name, is_categorical in zip(features, categorical, strict=True):
        if is_categorical:
            f.text(reference[name], f"frame_reference.{name}")
        else:
            f.number(reference[name], f"frame_reference.{name}", none=True)


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
    """``(input_mean (D,), rows (B, D))`` of the run folder's ``background.npz``, checked: float arrays of these
    shapes, ``1 <= B <=`` :data:`BACKGROUND_SIZE`, every value finite and within float32's range.

    Raises:
        UserError: missing, unreadable, pickled (refused), incomplete, or an array that fails (named).
    """
    file = path / BACKGROUND_FILENAME
    if not file.is_file():
        raise UserError(f"--run {path}: incomplete run folder, {BACKGROUND_FILENAME} is missing")
    arrays = read_npz(file)
    for key in ("format_version", "input_mean", "rows"):
        if key not in arrays:
            raise UserError(f"{file}: incomplete, missing {key!r}")
    version = arrays["format_version"]
    if version.shape != () or version.dtype.kind not in "iu" or int(version) != 1:
        raise UserError(f"{file}: field 'format_version': {version!r}; this code reads version 1")
    mean, rows = arrays["input_mean"], arrays["rows"]
    if mean.shape != (n_inputs,) or rows.ndim != 2 or rows.shape[1] != n_inputs:
        raise UserError(f"{file}: arrays of shapes {mean.shape} and {rows.shape} for {n_inputs} model inputs")
    if not 1 <= len(rows) <= BACKGROUND_SIZE:
        raise UserError(f"{file}: field 'rows': {len(rows)} rows; a run keeps 1 to {BACKGROUND_SIZE}")
    for key, values in (("input_mean", mean), ("rows", rows)):
        if values.dtype.kind != "f":
            raise UserError(f"{file}: field {key!r}: {values.dtype} values where floats are expected")
        bad = ~np.isfinite(values) | (np.abs(np.nan_to_num(values)) > FLOAT32_MAX)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise UserError(f"{file}: field {key!r}: {values[where]} at {list(where)} is not a finite float32 value")
    return mean.astype(np.float64), rows.astype(np.float32)
