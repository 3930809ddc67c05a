"""Saved runs: what a finished run writes so that its model can be used later, and the safe reader of a run folder.

A run folder (``<output_dir>/<run_id>/<dataset_id>/<seed>/``) holds, beside ``output_info.json`` and
``explanations.npz``, everything needed to turn raw rows (the dataset's original columns) into the model's inputs
and to rebuild the fitted model (:func:`run_files` writes them, :func:`load_run` reads them):

* ``preprocessing.json``: the run's identity, the kept features in order with their kinds, the dropped columns,
  the label classes, the target column, the fitted encoder (``data.FeatureEncoder.to_state``: scaler statistics,
  category vocabularies, target-encoding tables, input names and the input-to-feature map), the test rows'
  positions in the dataset, the reference row of a model on the unencoded frame and which model file there is.
* ``background.npz``: the training mean of every model input column ``(D,)`` and up to
  :data:`BACKGROUND_SIZE` training rows (model inputs, seeded sample), the background of post-hoc explainers.
* the model, per method (:data:`MODEL_FORMATS`): the networks' snapshot ensemble as ``model.pt`` (state dicts,
  the estimator's parameters and fitted attributes: tensors, strings and numbers only, read with
  ``torch.load(weights_only=True)``); CatBoost in its own binary format ``model.cbm``; logistic regression, the
  decision tree and the random forest as plain arrays in ``model.npz`` (coefficients and scaler statistics; the
  trees' node arrays). EBM and TabNet runs save no model (:data:`UNSUPPORTED_MODELS` says why).

**Safety.** Reading someone else's results folder never executes code: JSON is parsed, ``.npz`` files are opened
with ``allow_pickle=False``, ``model.pt`` with ``torch.load(weights_only=True)`` (PyTorch's restricted unpickler:
tensors and plain containers only), ``model.cbm`` by CatBoost's own parser. A file that would need pickle is
refused with a :class:`~errors.UserError`; ``pickle``, ``joblib`` and ``weights_only=False`` are never used here.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from errors import UserError
from experiments.results import (
    MODEL_FILENAME,
    RESULTS_FILENAME,
    SCHEMA_VERSION,
    json_bytes,
    npz_bytes,
    read_report,
)
from methods import MethodSpec, Mode, get_method

if TYPE_CHECKING:
    import pandas as pd

    from data import FeatureEncoder, PreparedSplit

PREPROCESSING_FILENAME = "preprocessing.json"
BACKGROUND_FILENAME = "background.npz"
CATBOOST_FILENAME = "model.cbm"
ARRAYS_FILENAME = "model.npz"
#: The ``format`` field of ``preprocessing.json`` and the version this code writes and reads.
PREPROCESSING_FORMAT = "preprocessing"
PREPROCESSING_VERSION = 1
#: ``model.pt``'s ``format_version``: 1 (no key) held the state dicts only; 2 adds the estimator's parameters and
#: fitted attributes, enough to rebuild it.
NETWORK_FORMAT_VERSION = 2
#: ``model.npz``'s ``format_version``.
ARRAYS_FORMAT_VERSION = 1
#: Training rows kept as the background of post-hoc explainers (shap's default background size).
BACKGROUND_SIZE = 100

#: How each method's fitted model is saved: the file and its format.
MODEL_FORMATS: dict[str, tuple[str, str]] = {
    "inn": (MODEL_FILENAME, "torch state dicts (weights_only)"),
    "tabresnet": (MODEL_FILENAME, "torch state dicts (weights_only)"),
    "senn": (MODEL_FILENAME, "torch state dicts (weights_only)"),
    "disenn": (MODEL_FILENAME, "torch state dicts (weights_only)"),
    "cnn": (MODEL_FILENAME, "torch state dicts (weights_only)"),
    "catboost": (CATBOOST_FILENAME, "CatBoost binary model (cbm)"),
    "logistic_regression": (ARRAYS_FILENAME, "numpy arrays: scaler statistics, coefficients, intercepts"),
    "decision_tree": (ARRAYS_FILENAME, "numpy arrays: the tree's nodes and values"),
    "random_forest": (ARRAYS_FILENAME, "numpy arrays: every tree's nodes and values"),
}
#: Methods whose fitted model is not saved, and why (a reloaded run of one says so).
UNSUPPORTED_MODELS: dict[str, str] = {
    "ebm": "interpret saves an EBM only by pickling it (its JSON export has no supported loader, only a private "
    "'UNTESTED' one), and a results folder is never unpickled",
    "tabnet": "pytorch-tabnet rebuilds its network only through its own save/load, which unpickles with torch.load; "
    "a results folder is never unpickled",
}


# ----------------------------------------------------------------------------------------------------------
# Writing


def run_files(
    spec: MethodSpec, model: Any, split: PreparedSplit, *, target: str, config: Mapping[str, Any]
) -> dict[str, bytes]:
    """The files that make a finished run reusable: ``preprocessing.json``, ``background.npz`` and the model file.

    Args:
        spec: the run's method.
        model: the fitted estimator.
        split: the run's split (its fitted encoder, classes, test rows).
        target: the dataset's target column.
        config: the run's configuration (``seed``).

    Returns:
        ``{file name: content}`` for :func:`experiments.results.write_run_atomically`.
    """
    files: dict[str, bytes] = {}
    model_file = MODEL_FORMATS.get(spec.id, (None, None))[0]
    if model_file == MODEL_FILENAME:
        files[MODEL_FILENAME] = network_file(model, split, spec.id, config)
    elif model_file == CATBOOST_FILENAME:
        files[CATBOOST_FILENAME] = catboost_bytes(model)
    elif model_file == ARRAYS_FILENAME:
        files[ARRAYS_FILENAME] = npz_bytes(sklearn_arrays(spec.id, model))
    files[PREPROCESSING_FILENAME] = json_bytes(preprocessing_state(spec, split, target=target, model_file=model_file))
    files[BACKGROUND_FILENAME] = npz_bytes(background_arrays(split, seed=int(config.get("seed", 0))))
    return files


def preprocessing_state(
    spec: MethodSpec, split: PreparedSplit, *, target: str, model_file: str | None
) -> dict[str, Any]:
    """``preprocessing.json``: everything that turns raw rows into the model's inputs (plain JSON types)."""
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
        "model_format": MODEL_FORMATS.get(spec.id, (None, None))[1],
        "model_not_saved": UNSUPPORTED_MODELS.get(spec.id),
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


#: Estimator parameters that describe where and how a run trained, not the model: restored as these values.
_RUN_ONLY_PARAMETERS = {"device": "cpu", "progress": False, "compile": False}


def network_file(model: Any, split: Any, method: str, config: Mapping[str, Any]) -> bytes:
    """``model.pt``: the snapshot ensemble's state dicts and what rebuilds the estimator (tensors and plain values).

    Keys: ``format_version`` (2), ``method``, ``mode``, ``estimator`` (class name), ``network``, ``n_inputs``,
    ``n_outputs``, ``hyperparameters`` (architecture), ``params`` (every estimator parameter), ``snapshots``
    (state dicts), ``fitted`` (``classes_``, ``reference_``, ``n_features_in_``, ``threads_``, and for regressors
    ``target_mean_``/``target_scale_``), ``input_names``, ``classes`` (the class labels), and for regressors
    ``target_mean``/``target_scale``.
    """
    import torch

    members = model.model_.members
    regression = split.task == "regression"
    fitted: dict[str, Any] = {
        "reference_": torch.as_tensor(np.asarray(model.reference_, dtype=np.float64)),
        "n_features_in_": int(model.n_features_in_),
        "threads_": None if getattr(model, "threads_", None) is None else int(model.threads_),
        "classes_": None if regression else torch.as_tensor(np.asarray(model.classes_)),
    }
    for name in ("product_mean_", "product_scale_"):  # INN with product_inputs="standardised"
        if getattr(model, name, None) is not None:
            fitted[name] = torch.as_tensor(np.asarray(getattr(model, name), dtype=np.float64))
    payload = {
        "format_version": NETWORK_FORMAT_VERSION,
        "method": method,
        "mode": "regression" if regression else "classification",
        "estimator": type(model).__name__,
        "network": type(members[0]).__name__,
        "n_inputs": members[0].n_inputs,
        "n_outputs": members[0].n_outputs,
        "hyperparameters": {name: config[name] for name in ("nr_blocks", "hidden_size", "dropout") if name in config},
        "params": {name: _json_value(value) for name, value in model.get_params().items()},
        "snapshots": [{key: value.cpu() for key, value in member.state_dict().items()} for member in members],
        "fitted": fitted,
        "input_names": list(split.input_names),
        "classes": split.classes,
    }
    if regression:
        payload["target_mean"], payload["target_scale"] = model.target_mean_, model.target_scale_
        fitted["target_mean_"], fitted["target_scale_"] = float(model.target_mean_), float(model.target_scale_)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def _json_value(value: Any) -> Any:
    """An estimator parameter as a plain value (numpy scalars and arrays become Python numbers and lists)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray | tuple):
        return [_json_value(item) for item in value]
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot save the estimator parameter value {value!r} as plain data")


def catboost_bytes(model: Any) -> bytes:
    """The fitted CatBoost model in CatBoost's own binary format (``cbm``; no pickle)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / CATBOOST_FILENAME
        model.save_model(str(path), format="cbm")
        return path.read_bytes()


def sklearn_arrays(method: str, model: Any) -> dict[str, np.ndarray]:
    """``model.npz`` of a scikit-learn baseline: its fitted state as plain arrays (no object arrays).

    Logistic regression / ridge: the scaler's ``mean``/``scale``/``var`` and the linear model's ``coef``,
    ``intercept``; trees: every tree's ``nodes`` (scikit-learn's structured node array), ``values``,
    ``max_depth`` and ``node_count``. Always: ``format_version``, ``method``, ``estimator`` (class name),
    ``params`` (its parameters as JSON text), ``classes`` (empty for regression), ``n_features``.
    """
    import sklearn

    final = model.steps[-1][1] if hasattr(model, "steps") else model
    arrays: dict[str, np.ndarray] = {
        "format_version": np.asarray(ARRAYS_FORMAT_VERSION),
        "method": np.asarray(method),
        "sklearn_version": np.asarray(sklearn.__version__),
        "estimator": np.asarray(type(final).__name__),
        "params": np.asarray(json.dumps({k: _json_value(v) for k, v in final.get_params(deep=False).items()})),
        "classes": np.asarray(getattr(final, "classes_", np.empty(0, dtype=np.int64))),
        "n_features": np.asarray(int(final.n_features_in_)),
    }
    if method == "logistic_regression":
        scaler = model.steps[0][1]
        arrays.update(
            scaler_mean=np.asarray(scaler.mean_, dtype=np.float64),
            scaler_scale=np.asarray(scaler.scale_, dtype=np.float64),
            scaler_var=np.asarray(scaler.var_, dtype=np.float64),
            scaler_n_samples=np.asarray(scaler.n_samples_seen_),
            coef=np.asarray(final.coef_, dtype=np.float64),
            intercept=np.atleast_1d(np.asarray(final.intercept_, dtype=np.float64)),
        )
        return arrays
    trees = getattr(final, "estimators_", [final])
    arrays["n_trees"] = np.asarray(len(trees))
    arrays["n_outputs"] = np.asarray(int(final.n_outputs_))
    for index, tree in enumerate(trees):
        state = tree.tree_.__getstate__()  # plain arrays and ints: the node table and the leaf values
        arrays[f"tree{index}_nodes"] = state["nodes"]
        arrays[f"tree{index}_values"] = state["values"]
        arrays[f"tree{index}_max_depth"] = np.asarray(state["max_depth"])
        arrays[f"tree{index}_node_count"] = np.asarray(state["node_count"])
        arrays[f"tree{index}_n_classes"] = np.asarray(tree.tree_.n_classes, dtype=np.int64)
        arrays[f"tree{index}_max_features"] = np.asarray(int(tree.max_features_))
    return arrays


# ----------------------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True, eq=False)
class SavedRun:
    """A finished run read back from its folder: its report, preprocessing and rebuilt model.

    Attributes:
        path: the run folder.
        report: its ``output_info.json``.
        spec: its method.
        state: its ``preprocessing.json``.
        encoder: the restored encoder (raw rows -> model input matrix).
        model: the rebuilt, fitted estimator.
        input_mean: ``(D,)`` the training mean of every model input column.
        background: ``(B, D)`` training rows (model inputs) for post-hoc explainers.
    """

    path: Path
    report: dict[str, Any]
    spec: MethodSpec
    state: dict[str, Any]
    encoder: FeatureEncoder
    model: Any
    input_mean: np.ndarray
    background: np.ndarray

    @property
    def mode(self) -> Mode:
        return self.state["mode"]

    @property
    def task(self) -> str:
        return self.state["task"]

    @property
    def feature_names(self) -> list[str]:
        return list(self.state["feature_names"])

    @property
    def categorical(self) -> list[bool]:
        return list(self.state["categorical"])

    @property
    def classes(self) -> list[str] | None:
        return self.state["classes"]

    @property
    def input_names(self) -> list[str]:
        return self.encoder.input_names

    @property
    def input_to_feature(self) -> np.ndarray:
        return self.encoder.input_to_feature

    @property
    def run_id(self) -> str:
        return str(self.report["run_id"])

    def vocabulary(self, feature: str) -> set[str]:
        """The categories of a categorical feature seen in training (``MISSING_CATEGORY`` if it occurred)."""
        for column in self.state["encoder"]["categorical_columns"]:
            if column["name"] == feature:
                return {str(category) for category in column["categories"]}
        raise KeyError(feature)

    def model_inputs(self, frame: pd.DataFrame) -> Any:
        """What the model takes for normalised rows (:func:`prepare_rows`): the float32 matrix, or the frame.

        Shape:
            frame ``(N, F)`` -> ``(N, D)`` matrix, or the ``(N, F)`` frame for native categoricals
        """
        if self.spec.input_kind == "frame":
            return frame.loc[:, self.feature_names]
        return self.encoder.transform(frame)

    def predict(self, inputs: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """Predicted labels (class names; regression: values) ``(N,)`` and class probabilities ``(N, C)`` or None."""
        if self.task == "regression":
            return np.asarray(self.model.predict(inputs), dtype=np.float64).reshape(-1), None
        proba = np.asarray(self.model.predict_proba(inputs), dtype=np.float64)
        codes = np.asarray(self.model.classes_)[proba.argmax(axis=1)].astype(np.int64)
        return np.asarray(self.classes, dtype=object)[codes], proba

    def split_view(self, inputs: Any) -> SavedSplit:
        """The run's split as the registry's ``MethodSpec.explain`` reads it, explaining ``inputs``."""
        import pandas as pd

        frame_train = None
        if self.state["frame_reference"] is not None:
            reference = self.state["frame_reference"]
            frame_train = pd.DataFrame(
                {
                    name: pd.Series([reference[name]], dtype=object if is_cat else "float64")
                    for name, is_cat in zip(self.feature_names, self.categorical, strict=True)
                }
            )
        return SavedSplit(
            X_train=self.input_mean[None, :],
            X_test=inputs,
            frame_train=frame_train,
            frame_test=inputs if self.spec.input_kind == "frame" else None,
            feature_names=self.feature_names,
            input_names=self.input_names,
            input_to_feature=self.input_to_feature,
            classes=self.classes,
            task=self.task,
        )


@dataclass(frozen=True, eq=False)
class SavedSplit:
    """The part of a ``data.PreparedSplit`` that ``MethodSpec.explain`` reads, for a saved run.

    The registry's explain reads the training part only to take the reference input: the mean of every training
    column (for a frame: the mean of numerical columns and the most frequent category of categorical ones). So the
    training part here is that summary as one row, which gives the same reference as the whole training part.
    """

    X_train: np.ndarray
    X_test: Any
    frame_train: Any
    frame_test: Any
    feature_names: list[str]
    input_names: list[str]
    input_to_feature: np.ndarray
    classes: list[str] | None
    task: str


def load_run(path: str | Path) -> SavedRun:
    """Read a finished run folder and rebuild its model, without executing anything from the folder.

    Raises:
        UserError: not a run folder, an incomplete one, one of an unknown schema or written before runs saved
            their preprocessing, a method whose model is not saved (EBM, TabNet), or a file that is corrupt or
            would need unpickling (refused).
    """
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"--run {path} is not a directory")
    try:
        report = read_report(path / RESULTS_FILENAME)
    except ValueError as error:
        raise UserError(f"--run {path} is not a finished run: {error}") from None
    if report["schema_version"] != SCHEMA_VERSION:
        raise UserError(
            f"--run {path}: results of schema version {report['schema_version']}, from before runs saved their "
            "preprocessing; rerun it with --force"
        )
    try:
        spec = get_method(report["method"])
    except ValueError:
        raise UserError(f"--run {path}: unknown method {report['method']!r}") from None
    state = _read_preprocessing(path)
    if state["method"] != spec.id or str(state["dataset_id"]) != str(report["dataset_id"]):
        raise UserError(f"--run {path}: {PREPROCESSING_FILENAME} belongs to another run")
    if spec.id in UNSUPPORTED_MODELS:
        raise UserError(f"--run {path}: a {spec.label} run cannot be reloaded: {UNSUPPORTED_MODELS[spec.id]}")
    encoder = _restore_encoder(path, state)
    input_mean, background = _read_background(path, len(encoder.input_names))
    model_file = MODEL_FORMATS[spec.id][0]
    if not (path / model_file).is_file():
        raise UserError(f"--run {path}: incomplete run folder, {model_file} is missing")
    if model_file == MODEL_FILENAME:
        model = load_network(path / model_file, spec, state, n_inputs=len(encoder.input_names))
    elif model_file == CATBOOST_FILENAME:
        model = load_catboost(path / model_file, state)
    else:
        model = load_sklearn(path / model_file, spec, state)
    n_inputs = len(encoder.input_names)
    if spec.input_kind == "matrix" and int(getattr(model, "n_features_in_", n_inputs)) != n_inputs:
        raise UserError(f"--run {path}: the model takes {model.n_features_in_} inputs, the encoder makes {n_inputs}")
    return SavedRun(path, report, spec, state, encoder, model, input_mean, background)


def _read_preprocessing(path: Path) -> dict[str, Any]:
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


def _restore_encoder(path: Path, state: Mapping[str, Any]) -> FeatureEncoder:
    from data import FeatureEncoder

    try:
        encoder = FeatureEncoder.from_state(state["encoder"])
    except ValueError as error:
        raise UserError(f"{path / PREPROCESSING_FILENAME}: {error}") from None
    if encoder.feature_names != list(state["feature_names"]):
        raise UserError(f"{path / PREPROCESSING_FILENAME}: the encoder's features differ from the run's")
    return encoder


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


def _read_background(path: Path, n_inputs: int) -> tuple[np.ndarray, np.ndarray]:
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


def load_network(file: Path, spec: MethodSpec, state: Mapping[str, Any], *, n_inputs: int) -> Any:
    """Rebuild a network estimator from ``model.pt`` (``torch.load(weights_only=True)``), on the CPU, in eval mode.

    Args:
        file: the ``model.pt``.
        spec: the run's method.
        state: the run's ``preprocessing.json``.
        n_inputs: the model inputs the run's encoder makes (the networks are built for exactly these).

    Raises:
        UserError: the file would need unpickling (refused), is corrupt, of format version 1, or does not match
            the method or the encoder.
    """
    import torch

    from methods import neural_estimator_class
    from models.networks import SnapshotEnsemble

    try:
        payload = torch.load(io.BytesIO(file.read_bytes()), map_location="cpu", weights_only=True)
    except Exception as error:  # pickle.UnpicklingError for anything but tensors and plain values; corrupt zips
        reason = " ".join(str(error).split())[:160]
        raise UserError(
            f"{file}: refused: not a plain weights file, and a results folder is never unpickled ({reason})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format_version") != NETWORK_FORMAT_VERSION:
        version = payload.get("format_version", 1) if isinstance(payload, dict) else None
        raise UserError(
            f"{file}: model file format {version!r}; this code reads {NETWORK_FORMAT_VERSION} (runs written before "
            "models saved their estimator state need a rerun with --force)"
        )
    mode = state["mode"]
    estimator_class = neural_estimator_class(spec.id, mode)
    if payload.get("method") != spec.id or payload.get("estimator") != estimator_class.__name__:
        raise UserError(f"{file}: a {payload.get('estimator')!r} model, not the run's {estimator_class.__name__}")
    if payload.get("n_inputs") != n_inputs:
        raise UserError(f"{file}: a network of {payload.get('n_inputs')!r} inputs; the run's encoder makes {n_inputs}")
    try:
        params = {**payload["params"], **_RUN_ONLY_PARAMETERS}
        estimator = estimator_class(**params)
        fitted = payload["fitted"]
        for name in ("product_mean_", "product_scale_"):  # the network's input scaling is built from them
            if fitted.get(name) is not None:
                setattr(estimator, name, fitted[name].numpy().astype(np.float64))
        with torch.random.fork_rng(devices=[]):  # the initial weights are overwritten: leave the caller's RNG alone
            members = []
            for snapshot in payload["snapshots"]:
                network = estimator._build_network(n_inputs, int(payload["n_outputs"]))
                network.load_state_dict(snapshot, strict=True)
                members.append(network.eval())
        estimator.model_ = SnapshotEnsemble(members).eval()
        estimator.reference_ = fitted["reference_"].numpy().astype(np.float64)
        estimator.n_features_in_ = int(fitted["n_features_in_"])
        estimator.threads_ = fitted["threads_"]
        estimator.device_ = torch.device("cpu")
        if mode == "regression":
            estimator.target_mean_ = float(fitted["target_mean_"])
            estimator.target_scale_ = float(fitted["target_scale_"])
        else:
            estimator.classes_ = fitted["classes_"].numpy()
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as error:
        reason = " ".join(str(error).split())[:200]
        raise UserError(
            f"{file}: does not rebuild the {estimator_class.__name__} ({type(error).__name__}: {reason})"
        ) from None
    return estimator


def load_catboost(file: Path, state: Mapping[str, Any]) -> Any:
    """Rebuild a CatBoost model from its ``cbm`` file (CatBoost's own parser; no pickle).

    Raises:
        UserError: catboost is missing or the file is not a CatBoost model.
    """
    from errors import MissingDependencyError

    try:
        import catboost
    except ImportError as exc:
        raise MissingDependencyError("catboost", "reloading a CatBoost run") from exc
    model = catboost.CatBoostRegressor() if state["mode"] == "regression" else catboost.CatBoostClassifier()
    try:
        model.load_model(blob=file.read_bytes(), format="cbm")
    except catboost.CatBoostError as error:
        raise UserError(f"{file}: not a CatBoost model ({' '.join(str(error).split())[:160]})") from None
    return model


def load_sklearn(file: Path, spec: MethodSpec, state: Mapping[str, Any]) -> Any:
    """Rebuild a scikit-learn baseline from ``model.npz`` (plain arrays, ``allow_pickle=False``).

    Raises:
        UserError: the file would need unpickling (refused), is incomplete, or was written by a scikit-learn
            whose tree layout differs from this one's.
    """
    arrays = read_npz(file)
    try:
        if int(arrays["format_version"]) != ARRAYS_FORMAT_VERSION or str(arrays["method"]) != spec.id:
            raise UserError(f"{file}: not a {spec.id} model file of format version {ARRAYS_FORMAT_VERSION}")
        params = json.loads(str(arrays["params"]))
        classes = np.asarray(arrays["classes"])
        if spec.id == "logistic_regression":
            return _linear_model(arrays, params, classes, state["mode"])
        return _tree_model(arrays, params, classes, spec.id, state["mode"])
    except UserError:
        raise
    except (KeyError, TypeError, ValueError) as error:
        version = str(arrays.get("sklearn_version", "?"))
        raise UserError(
            f"{file}: does not rebuild the model ({type(error).__name__}: {error}; saved with scikit-learn {version})"
        ) from None


def _linear_model(arrays: Mapping[str, np.ndarray], params: dict, classes: np.ndarray, mode: str) -> Any:
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler()
    scaler.mean_ = np.asarray(arrays["scaler_mean"], dtype=np.float64)
    scaler.scale_ = np.asarray(arrays["scaler_scale"], dtype=np.float64)
    scaler.var_ = np.asarray(arrays["scaler_var"], dtype=np.float64)
    scaler.n_samples_seen_ = np.asarray(arrays["scaler_n_samples"])
    scaler.n_features_in_ = int(arrays["n_features"])
    linear = Ridge(**params) if mode == "regression" else LogisticRegression(**params)
    coef = np.asarray(arrays["coef"], dtype=np.float64)
    linear.coef_ = coef
    linear.intercept_ = np.asarray(arrays["intercept"], dtype=np.float64)
    if mode == "regression":
        linear.intercept_ = float(linear.intercept_[0]) if coef.ndim == 1 else linear.intercept_
    else:
        linear.classes_ = classes
    linear.n_features_in_ = int(arrays["n_features"])
    return make_pipeline(scaler, linear)


def check_tree_arrays(
    nodes: np.ndarray, values: np.ndarray, *, n_features: int, n_outputs: int, n_classes: np.ndarray
) -> None:
    """Check a tree's node table before scikit-learn's compiled code walks it (it trusts the indices).

    Every internal node's children must come after it (as scikit-learn builds trees: no cycle, no index out of
    range) and its feature must be an input column; leaves have no children; the values must be
    ``(nodes, outputs, classes)``.

    Raises:
        ValueError: the table breaks one of these (a corrupt or crafted file).
    """
    if nodes.dtype.names is None or not {"left_child", "right_child", "feature"} <= set(nodes.dtype.names):
        raise ValueError("the node table has no child and feature fields")
    count = len(nodes)
    left, right = nodes["left_child"].astype(np.int64), nodes["right_child"].astype(np.int64)
    feature = nodes["feature"].astype(np.int64)
    leaf = left == -1
    index = np.arange(count)
    internal_ok = (left > index) & (right > index) & (left < count) & (right < count)
    internal_ok &= (feature >= 0) & (feature < n_features)
    if count == 0 or not np.all(np.where(leaf, right == -1, internal_ok)):
        raise ValueError("the node table's children or features are out of range")
    if values.shape != (count, n_outputs, int(np.max(n_classes, initial=1))):
        raise ValueError(f"tree values of shape {values.shape} for {count} nodes")


def _tree_model(arrays: Mapping[str, np.ndarray], params: dict, classes: np.ndarray, method: str, mode: str) -> Any:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
    from sklearn.tree._tree import Tree

    regression = mode == "regression"
    n_features, n_outputs = int(arrays["n_features"]), int(arrays["n_outputs"])
    tree_class = DecisionTreeRegressor if regression else DecisionTreeClassifier
    tree_params = {} if method == "random_forest" else params
    trees = []
    for index in range(int(arrays["n_trees"])):
        n_classes = np.asarray(arrays[f"tree{index}_n_classes"], dtype=np.intp)
        nodes, values = arrays[f"tree{index}_nodes"], arrays[f"tree{index}_values"]
        check_tree_arrays(nodes, values, n_features=n_features, n_outputs=n_outputs, n_classes=n_classes)
        structure = Tree(n_features, n_classes, n_outputs)
        structure.__setstate__(  # the node table as arrays: scikit-learn checks its dtype against its own layout
            {
                "max_depth": int(arrays[f"tree{index}_max_depth"]),
                "node_count": len(nodes),
                "nodes": nodes,
                "values": values,
            }
        )
        tree = tree_class(**tree_params)
        tree.tree_ = structure
        tree.n_features_in_ = n_features
        tree.n_outputs_ = n_outputs
        tree.max_features_ = int(arrays[f"tree{index}_max_features"])
        if not regression:
            tree.classes_ = classes
            tree.n_classes_ = int(n_classes[0])
        trees.append(tree)
    if method == "decision_tree":
        return trees[0]
    forest = (RandomForestRegressor if regression else RandomForestClassifier)(**params)
    forest.estimators_ = trees
    forest.estimator_ = tree_class()
    forest.n_features_in_ = n_features
    forest.n_outputs_ = n_outputs
    if not regression:
        forest.classes_ = classes
        forest.n_classes_ = int(len(classes))
    return forest


# ----------------------------------------------------------------------------------------------------------
# Raw rows in, normalised rows out


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
    from experiments.config import DataConfig

    raw = DataConfig.from_mapping(run.report.get("config", {})).load()
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
    if rows is None:
        return np.arange(n)
    chosen = np.asarray(list(rows), dtype=np.int64)
    beyond = chosen[(chosen < 0) | (chosen >= n)]
    if beyond.size:
        raise UserError(f"row {int(beyond[0])} is out of range: {what} has {n} rows (0..{n - 1})")
    return chosen


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
    try:
        if kind == "csv":
            frame = pd.read_csv(path, sep="\t" if ".tsv" in suffixes else ",", dtype=text_columns)
        else:
            frame = pd.read_parquet(path)
    except ImportError as error:
        raise UserError(f"--data {path}: reading it needs {error.name or 'pyarrow'}") from None
    except Exception as error:  # noqa: BLE001 - pandas/pyarrow parse errors share no base class
        raise UserError(
            f"--data {path}: cannot read it ({type(error).__name__}: {' '.join(str(error).split())[:160]})"
        ) from None
    frame.columns = [str(column) for column in frame.columns]
    if frame.columns.duplicated().any():
        raise UserError(
            f"--data {path}: duplicated column names {sorted(set(frame.columns[frame.columns.duplicated()]))[:5]}"
        )
    chosen = _chosen(rows, len(frame), f"--data {path}")
    target = run.state.get("target")
    y_true = _targets(frame[target].iloc[chosen], run.mode) if target in frame.columns else None
    return Rows(frame=frame.iloc[chosen].reset_index(drop=True), labels=chosen, y_true=y_true, source=str(path))


def prepare_rows(run: SavedRun, rows: Rows) -> tuple[pd.DataFrame, list[str]]:
    """Check raw rows against the run and normalise them as in training; returns them and the warnings.

    An unseen category (not among the training categories) is treated as the missing category
    (``data.MISSING_CATEGORY``), with a warning that names it.

    Raises:
        UserError: a feature column is missing, or a numerical value is not a number.
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
    normalised = normalise_frame(frame.loc[:, run.feature_names], run.categorical)
    warnings: list[str] = []
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
