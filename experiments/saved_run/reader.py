"""The safe reader of a run folder: :func:`load_run` reads a finished run back as a :class:`SavedRun` (its report,
preprocessing state and rebuilt model) without executing anything in the folder.

**Safety.** Reading someone else's results folder never executes code: JSON is parsed, ``.npz`` files are opened
with ``allow_pickle=False``, ``model.pt`` with ``torch.load(weights_only=True)`` (PyTorch's restricted unpickler:
tensors and plain containers only), ``model.cbm`` by CatBoost's own parser. A file that would need pickle is
refused with a :class:`~errors.UserError`; ``pickle``, ``joblib`` and ``weights_only=False`` are never used here.
A symlink that leads out of the folder is refused before any file is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from errors import UserError
from experiments.results import RESULTS_FILENAME, SCHEMA_VERSION, check_symlinks_inside, read_report
from experiments.saved_run.model_files import model_file
from experiments.saved_run.state import PREPROCESSING_FILENAME, read_background, read_preprocessing, restore_encoder
from methods import MethodSpec, Mode, get_method

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
    check_symlinks_inside(path)  # before anything in it is read
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
    state = read_preprocessing(path)
    for key, value in (("method", spec.id), ("dataset_id", report["dataset_id"])):
        if str(state.get(key)) != str(value):
            raise UserError(
                f"--run {path}: {PREPROCESSING_FILENAME} belongs to another run: {key} {state.get(key)!r} there, "
                f"{value!r} in {RESULTS_FILENAME}"
            )
    file = model_file(spec)
    if file is None:
        raise UserError(f"--run {path}: a {spec.label} run cannot be reloaded: {spec.model_not_saved}")
    encoder = restore_encoder(path, state)
    input_mean, background = read_background(path, len(encoder.input_names))
    if not (path / file.filename).is_file():
        raise UserError(f"--run {path}: incomplete run folder, {file.filename} is missing")
    model = file.load(path / file.filename, spec, state, n_inputs=len(encoder.input_names))
    n_inputs = len(encoder.input_names)
    if spec.input_kind == "matrix" and int(getattr(model, "n_features_in_", n_inputs)) != n_inputs:
        raise UserError(f"--run {path}: the model takes {model.n_features_in_} inputs, the encoder makes {n_inputs}")
    return SavedRun(path, report, spec, state, encoder, model, input_mean, background)
