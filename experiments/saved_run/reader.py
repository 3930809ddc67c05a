"""The safe reader of a run folder: :func:`load_run` reads a finished run back as a :class:`SavedRun` (its report,
preprocessing state and rebuilt model) without executing anything in the folder.

**Safety.** Reading someone else's results folder never executes code: JSON is parsed, ``.npz`` files are opened
with ``allow_pickle=False``, ``model.pt`` with ``torch.load(weights_only=True)`` (PyTorch's restricted unpickler:
tensors and plain containers only), ``model.cbm`` by CatBoost's own parser. A file that would need pickle is
refused with a :class:`~errors.UserError`; ``pickle``, ``joblib`` and ``weights_only=False`` are never used here.
A symlink that leads out of the folder is refused before any file is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from errors import UserError
from experiments.results import RESULTS_FILENAME, SCHEMA_VERSION, check_symlinks_inside, metric_keys, read_report
from experiments.saved_run.model_files import model_file
from experiments.saved_run.safe import Fields, read_json
from experiments.saved_run.state import (
    BACKGROUND_FILENAME,
    MAX_SEED,
    PREPROCESSING_FILENAME,
    check_preprocessing,
    read_background,
    read_preprocessing,
    restore_encoder,
)
from methods import MethodSpec, Mode, get_method, method_ids, run_id

if TYPE_CHECKING:
    import pandas as pd

    from data import FeatureEncoder


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
        """Predicted labels (class names; regression: values) ``(N,)`` and class probabilities ``(N, C)`` or None.

        Raises:
            UserError: the model gives a non-finite prediction (a corrupt model file).
        """
        if self.task == "regression":
            values = np.asarray(self.model.predict(inputs), dtype=np.float64).reshape(-1)
            self._check_finite(values)
            return values, None
        proba = np.asarray(self.model.predict_proba(inputs), dtype=np.float64)
        self._check_finite(proba)
        codes = np.asarray(self.model.classes_)[proba.argmax(axis=1)].astype(np.int64)
        return np.asarray(self.classes, dtype=object)[codes], proba

    def _check_finite(self, values: np.ndarray) -> None:
        if not np.isfinite(values).all():
            raise UserError(
                f"--run {self.path}: the model gives non-finite predictions for these rows (a corrupt model)"
            )

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

    Every field of ``output_info.json`` and ``preprocessing.json`` and every array of ``background.npz`` is checked
    against its schema (:func:`check_report`, ``state.check_preprocessing``, ``state.read_background``) before it is
    used; a symlink leading out of the folder is refused before anything is read.

    Raises:
        UserError: not a run folder, an incomplete one, one of an unknown schema or written before runs saved
            their preprocessing, a method whose model is not saved (EBM, TabNet), a field that fails its schema, or
            a file that is corrupt or would need unpickling (refused).
    """
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"--run {path} is not a directory")
    check_symlinks_inside(path)  # before anything in it is read
    file = path / RESULTS_FILENAME
    try:
        report = read_report(file)
    except ValueError as error:
        raise UserError(f"--run {path} is not a finished run: {error}") from None
    if report["schema_version"] != SCHEMA_VERSION:
        raise UserError(
            f"--run {path}: results of schema version {report['schema_version']}, from before runs saved their "
            "preprocessing; rerun it with --force"
        )
    read_json(file)  # refuses NaN and infinity anywhere in the report
    spec = check_report(report, file)
    saved_model = model_file(spec)
    if saved_model is None:
        raise UserError(f"--run {path}: a {spec.label} run cannot be reloaded: {spec.model_not_saved}")
    state = read_preprocessing(path)
    check_preprocessing(state, path / PREPROCESSING_FILENAME, spec, report)
    needed = {RESULTS_FILENAME, PREPROCESSING_FILENAME, BACKGROUND_FILENAME, saved_model.filename}
    for name in sorted(needed - set(report["saved_files"])):
        raise UserError(f"{file}: field 'saved_files': {name} is not listed; the run folder is not whole")
    for name in sorted(needed):
        if not (path / name).is_file():
            raise UserError(f"--run {path}: incomplete run folder, {name} is missing")
    encoder = restore_encoder(path, state)
    n_inputs = len(encoder.input_names)
    if report["n_inputs"] != n_inputs:
        raise UserError(f"{file}: field 'n_inputs': {report['n_inputs']}, but the encoder makes {n_inputs} inputs")
    input_mean, background = read_background(path, n_inputs)
    model = saved_model.load(path / saved_model.filename, spec, state, n_inputs=n_inputs)
    if spec.input_kind == "matrix" and int(getattr(model, "n_features_in_", n_inputs)) != n_inputs:
        raise UserError(f"--run {path}: the model takes {model.n_features_in_} inputs, the encoder makes {n_inputs}")
    return SavedRun(path, report, spec, state, encoder, model, input_mean, background)


#: Report fields of every run that are numbers of seconds.
_TIMES = ("time", "train_time", "inference_time")
#: Report fields of some runs, and the kind of each (checked when present).
_OPTIONAL_TEXT = ("importance_method",)
#: The data flags of the run's configuration that ``test_set_rows`` reads (to reload the test rows).
_DATA_FLAGS = ("dataset", "dataset_path", "target", "openml_cache_dir")


def check_report(report: Mapping[str, Any], file: Path) -> MethodSpec:
    """Check every field a saved run reads from ``output_info.json`` (and the types and ranges of the others a
    run always writes); returns the run's method.

    The identity (``run_id``, ``method``, ``variant``, ``dataset_id``, ``seed``) must be plain names that agree
    with each other and the registry; counts are integers, metrics and times finite numbers in their ranges,
    importances shares that sum to 1 and whose top 10 are ``top_10_features``; ``saved_files`` are plain names.

    Raises:
        UserError: the first field that fails, with the reason.
    """
    f = Fields(file)
    f.text(f.get(report, "kind"), "kind", choices=("run",))
    method = f.text(f.get(report, "method"), "method", choices=method_ids())
    spec = get_method(method)
    variant = f.text(f.get(report, "variant"), "variant", none=True)
    try:
        expected_id = run_id(method, variant)
    except ValueError as error:
        f.fail("variant", str(error))
    f.name(f.get(report, "run_id"), "run_id")
    f.same(report["run_id"], expected_id, "run_id", "method and variant")
    f.name(f.get(report, "dataset_id"), "dataset_id")
    f.text(f.get(report, "dataset_name"), "dataset_name")
    f.name(f.integer(f.get(report, "seed"), "seed", high=MAX_SEED), "seed")
    task = f.text(f.get(report, "task"), "task", choices=("binary", "multiclass", "regression"))
    n_classes = f.integer(f.get(report, "n_classes"), "n_classes")
    if (task == "regression") != (n_classes == 0) or task == "binary" and n_classes != 2:
        f.fail("n_classes", f"{n_classes} classes for a {task} task")
    for key in ("n_train", "n_test", "n_inputs"):
        f.integer(f.get(report, key), key, low=1)
    features = f.texts(f.get(report, "feature_names"), "feature_names", unique=True)
    f.same(f.get(report, "n_features"), len(features), "n_features", "feature_names (its length)")
    for key in metric_keys(task):
        limits = {"low": 0.0} if key.endswith("_mse") else {"low": 0.0, "high": 1.0}
        f.number(f.get(report, key), key, none=True, **limits)
    for key in (*_TIMES, "explain_time"):
        if key in report or key in _TIMES:
            f.number(f.get(report, key), key, low=0.0)
    f.same(report["time"], report["train_time"], "time", "train_time")
    _check_importances(f, report, features)
    config = f.mapping(f.get(report, "config"), "config")
    for key in _DATA_FLAGS:
        f.text(config.get(key), f"config.{key}", none=True)
    if config.get("dataset_id") is not None:
        f.integer(config["dataset_id"], "config.dataset_id")
    versions = f.mapping(f.get(report, "versions"), "versions")
    for name, version in versions.items():
        f.text(version, f"versions.{name}")
    created = f.text(f.get(report, "created"), "created")
    try:
        datetime.fromisoformat(created)
    except ValueError:
        f.fail("created", f"{created[:60]!r} is not an ISO date and time")
    for key in _OPTIONAL_TEXT:
        if key in report:
            f.text(report[key], key)
    if "training_warning" in report:
        f.text(report["training_warning"], "training_warning", none=True)
    if "dropped_columns" in report:
        for name, reason in f.mapping(report["dropped_columns"], "dropped_columns").items():
            f.text(reason, f"dropped_columns.{name}")
    if "explanation" in report:
        _check_explanation_block(f, f.mapping(report["explanation"], "explanation"))
    for key in ("epoch_losses",):
        if key in report:
            f.numbers(report[key], key, none=True)
    if "snapshot_steps" in report:
        f.integers(report["snapshot_steps"], "snapshot_steps")
    if report.get("best_epoch") is not None:
        f.integer(report["best_epoch"], "best_epoch")
    for index, name in enumerate(f.texts(f.get(report, "saved_files"), "saved_files", unique=True)):
        f.name(name, f"saved_files[{index}]")
    return spec


def _check_importances(f: Fields, report: Mapping[str, Any], features: list[str]) -> None:
    """``feature_importances`` (shares of the features summing to 1; empty when the explanation is over learned
    concepts, whose shares are ``concept_importances``), the signed shares and the top 10 derived from them."""
    shares = f.mapping(f.get(report, "feature_importances"), "feature_importances")
    if shares:
        f.same(list(shares), features, "feature_importances", "feature_names (its keys)")
    values = [f.number(v, f"feature_importances.{k}", low=0.0, high=1.0) for k, v in shares.items()]
    if values and abs(sum(values) - 1.0) > 1e-6:
        f.fail("feature_importances", f"shares that sum to {sum(values):.6g}, not 1")
    if "concept_importances" in report:
        for name, value in f.mapping(report["concept_importances"], "concept_importances").items():
            f.number(value, f"concept_importances.{name}", low=0.0, high=1.0)
    if "feature_importances_signed" in report:
        signed = f.mapping(report["feature_importances_signed"], "feature_importances_signed")
        if signed:
            f.same(list(signed), features, "feature_importances_signed", "feature_names (its keys)")
        for name, value in signed.items():
            f.number(value, f"feature_importances_signed.{name}", low=-1.0, high=1.0)
    ranked = sorted(shares.items(), key=lambda item: item[1], reverse=True)[:10]
    f.same(f.get(report, "top_10_features"), [name for name, _ in ranked], "top_10_features", "feature_importances")
    weights = [weight for _, weight in ranked]
    f.same(f.get(report, "top_10_features_weights"), weights, "top_10_features_weights", "feature_importances")


def _check_explanation_block(f: Fields, block: Mapping[str, Any]) -> None:
    for key in ("explainer", "reference", "output", "description"):
        f.text(f.get(block, key, "explanation"), f"explanation.{key}")
    for key in ("exact", "signed"):
        f.boolean(f.get(block, key, "explanation"), f"explanation.{key}")
    f.number(block.get("additivity_error"), "explanation.additivity_error", low=0.0, none=True)
