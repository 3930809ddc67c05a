"""Step 1 of a unit: its synthetic data as a ``PreparedSplit`` and its model, trained through the method registry.

:class:`TrainedModels` fits a method on given rows and caches fits by their data (the ROAR metrics' retrains repeat
many of them); :func:`fit_model` draws a unit's data, trains its model once and measures its errors.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from data.synthetic import SyntheticData, make_synthetic
from studies.xai_bench.config import BenchmarkConfig
from studies.xai_bench.unit_file import Unit

Predict = Callable[[np.ndarray], np.ndarray]


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    """``function()`` and the wall seconds it took."""
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def synthetic_split(data: SyntheticData, dataset_id: str) -> Any:
    """A ``data.PreparedSplit`` of synthetic data, so that registry methods build and explain as usual.

    The model inputs are the features themselves (no scaling: the Gaussian conditionals of the metrics are in
    these units), one column per feature; the frames hold the same values for frame-input methods (EBM).
    """
    from data import PreparedSplit

    names = list(data.feature_names)
    frame_train = pd.DataFrame(data.X_train, columns=names)
    frame_test = pd.DataFrame(data.X_test, columns=names)
    return PreparedSplit(
        dataset_name=dataset_id,
        dataset_id=dataset_id,
        mode="regression",
        seed=0,
        test_split_size=data.X_test.shape[0] / (data.X_train.shape[0] + data.X_test.shape[0]),
        validation_size=0.0,
        X_train=data.X_train.astype(np.float32),
        X_test=data.X_test.astype(np.float32),
        X_valid=None,
        y_train=data.y_train,
        y_test=data.y_test,
        y_valid=None,
        classes=None,
        feature_names=names,
        input_names=names,
        input_to_feature=np.arange(data.d),
        categorical_features=[False] * data.d,
        dropped_columns={},
        train_index=np.arange(data.X_train.shape[0]),
        test_index=np.arange(data.X_test.shape[0]),
        valid_index=None,
        frame_train=frame_train,
        frame_test=frame_test,
        frame_valid=None,
        categorical_input_indices=None,
        categorical_cardinalities=None,
        encoder=None,
        label_encoder=None,
        task="regression",
        n_classes=None,
        encoding_type="target",
        notes=["synthetic data: the inputs are the features, unscaled"],
    )


def _model_input(spec: Any, names: Sequence[str]) -> Callable[[np.ndarray], Any]:
    """Converts numpy rows of features into what the method's estimator takes."""
    if spec.input_kind == "frame":
        return lambda rows: pd.DataFrame(np.asarray(rows, dtype=np.float64), columns=list(names))
    return lambda rows: np.asarray(rows, dtype=np.float32)


class TrainedModels:
    """Fits a method on given training rows, caching fits by their data (ROAR retrains repeat many of them)."""

    def __init__(self, spec: Any, split: Any, params: Mapping[str, Any], seed: int) -> None:
        self.spec, self.split, self.params, self.seed = spec, split, dict(params), seed
        self.to_input = _model_input(spec, split.feature_names)
        self.cache: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
        self.fits = 0
        self.hits = 0

    @staticmethod
    def key(X: np.ndarray, y: np.ndarray) -> str:
        digest = hashlib.sha1(np.ascontiguousarray(X, dtype=np.float64).tobytes())
        digest.update(np.ascontiguousarray(y, dtype=np.float64).tobytes())
        return digest.hexdigest()

    def predictor(self, model: Any) -> Callable[[np.ndarray], np.ndarray]:
        to_input = self.to_input
        return lambda rows: np.asarray(model.predict(to_input(rows)), dtype=np.float64).reshape(-1)

    def fit_model(self, X: np.ndarray, y: np.ndarray) -> Any:
        """A fresh model fitted on ``(X, y)`` (not cached)."""
        from errors import UserError

        model = self.spec.build(self.split, seed=self.seed, device="cpu", n_jobs=1, params=self.params)
        try:
            model.fit(self.to_input(X), y)
        except FloatingPointError as error:
            raise UserError(str(error)) from None
        return model

    def remember(self, X: np.ndarray, y: np.ndarray, model: Any) -> None:
        self.cache[self.key(X, y)] = self.predictor(model)

    def fit(self, X: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """``xai.metrics.Fit``: the predict function of a model fitted on ``(X, y)``."""
        key = self.key(X, y)
        if key in self.cache:
            self.hits += 1
            return self.cache[key]
        self.fits += 1
        predict = self.predictor(self.fit_model(X, y))
        self.cache[key] = predict
        return predict


@dataclass
class FittedModel:
    """A unit's data and its trained model (step 1), with what the later steps share.

    Attributes:
        data: the unit's synthetic data (exact conditionals in ``data.distribution``).
        split: the same data as a ``PreparedSplit`` (:func:`synthetic_split`).
        spec: the model's ``MethodSpec``.
        trained: the unit's fits (the model, then the ROAR retrains, cached by their data).
        model: the trained estimator.
        predict: its predictions on numpy rows of features.
        fit_seconds: wall seconds of the fit.
        test_mse, train_mse: its errors (standardised target units).
    """

    data: SyntheticData
    split: Any
    spec: Any
    trained: TrainedModels
    model: Any
    predict: Predict
    fit_seconds: float
    test_mse: float
    train_mse: float
    _targets: dict[str, Any] = field(default_factory=dict, repr=False)

    def posthoc_target(self, reference: str) -> Any:
        """The ``ExplanationTarget`` the post-hoc explainers explain (built once, on first use)."""
        from explainers.posthoc import target_from_estimator

        if reference not in self._targets:
            self._targets[reference] = target_from_estimator(
                self.model,
                self.data.X_train,
                feature_names=self.data.feature_names,
                reference=reference,
                to_model_input=self.trained.to_input,
            )
        return self._targets[reference]


def fit_model(config: BenchmarkConfig, unit: Unit, *, log: Callable[[str], None] = lambda _: None) -> FittedModel:
    """Draw a unit's data and train its model once (step 1)."""
    from methods import REGISTRY

    spec = REGISTRY[unit.model]
    data = make_synthetic(
        unit.dataset,
        d=config.d,
        rho=unit.rho,
        n_train=config.n_train,
        n_test=config.n_test,
        noise=config.noise,
        seed=unit.seed,
        compat=config.compat,
    )
    split = synthetic_split(data, unit.dataset)
    trained = TrainedModels(spec, split, config.params_for(unit.model), unit.seed)
    model, fit_seconds = timed(lambda: trained.fit_model(data.X_train, data.y_train))
    trained.remember(data.X_train, data.y_train, model)
    predict = trained.predictor(model)
    test_mse = float(np.mean((predict(data.X_test) - data.y_test) ** 2))
    train_mse = float(np.mean((predict(data.X_train) - data.y_train) ** 2))
    log(f"{unit}: fitted in {fit_seconds:.1f}s, test MSE {test_mse:.4f}")
    return FittedModel(data, split, spec, trained, model, predict, fit_seconds, test_mse, train_mse)
