"""scikit-learn estimators for INN and TabResNet: classifiers and regressors on numeric matrices.

The estimators take an already encoded matrix (see ``data.prepare_split``); hyperparameters are
constructor parameters with the command-line flag names, fitted state ends in ``_``, and ``fit`` writes
nothing to disk. ``INNClassifier.explain`` / ``INNRegressor.explain`` return the exact per-example
linear models that produced the predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from models.device import resolve_device
from models.networks import INNNetwork, SnapshotEnsemble, TabResNetNetwork
from models.training import (
    TrainingConfig,
    limit_threads,
    predict_in_batches,
    resolve_threads,
    train_snapshot_ensemble,
)

ClassBalance = Literal["oversample", "weight", "none"]
CLASS_BALANCES: tuple[ClassBalance, ...] = ("oversample", "weight", "none")


@dataclass(frozen=True)
class Explanation:
    """The per-example linear models of an INN and what they add up to.

    ``contributions.sum(axis=1) + bias == logits`` holds exactly (up to float rounding).

    Attributes:
        weights: ``(N, D + 1, C)`` generated weights; the last row is the bias.
        contributions: ``(N, D, C)`` ``W_j(x) · x_j`` per input column.
        bias: ``(N, C)``.
        logits: ``(N, C)`` the model's outputs (for a regressor in target units).
    """

    weights: np.ndarray
    contributions: np.ndarray
    bias: np.ndarray
    logits: np.ndarray


class _NeuralEstimator(BaseEstimator):
    """Shared parameters, fitting and batched inference of the four estimators.

    Besides the training hyperparameters (the command-line flags), two parameters only affect speed:
    ``threads`` (CPU threads while fitting; ``None``: one thread for small batches, see
    ``models.training.resolve_threads``) and ``compile`` (``torch.compile`` the training forward, ``True``
    for the default backend or a backend name; it pays off only for long runs, since compiling takes
    seconds to minutes).
    """

    _interpretable: bool = False

    def __init__(
        self,
        *,
        nr_blocks: int = 2,
        hidden_size: int = 128,
        nr_epochs: int = 100,
        batch_size: int = 64,
        learning_rate: float = 0.01,
        weight_decay: float = 0.01,
        weight_norm: float = 0.1,
        dropout: float = 0.0,
        augmentation_probability: float = 0.0,
        scheduler_t_mult: float = 2.0,
        nr_restarts: int = 3,
        class_balance: ClassBalance = "weight",
        categorical_inputs: Sequence[int] | None = None,
        device: str = "auto",
        seed: int = 0,
        progress: bool = False,
        threads: int | None = None,
        compile: bool | str = False,
    ) -> None:
        self.nr_blocks = nr_blocks
        self.hidden_size = hidden_size
        self.nr_epochs = nr_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.weight_norm = weight_norm
        self.dropout = dropout
        self.augmentation_probability = augmentation_probability
        self.scheduler_t_mult = scheduler_t_mult
        self.nr_restarts = nr_restarts
        self.class_balance = class_balance
        self.categorical_inputs = categorical_inputs
        self.device = device
        self.seed = seed
        self.progress = progress
        self.threads = threads
        self.compile = compile

    # ----------------------------------------------------------------------------------------------- fit
    def _check_params(self) -> None:
        for name in ("nr_blocks", "hidden_size", "nr_epochs", "batch_size", "nr_restarts"):
            minimum = 0 if name == "nr_blocks" else 1
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        for name in ("learning_rate",):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("weight_decay", "weight_norm"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not 0.0 <= self.augmentation_probability <= 1.0:
            raise ValueError(f"augmentation_probability must be in [0, 1], got {self.augmentation_probability!r}")
        if not self.scheduler_t_mult >= 1:
            raise ValueError(f"scheduler_t_mult must be >= 1, got {self.scheduler_t_mult!r}")
        if self.threads is not None and (not isinstance(self.threads, int | np.integer) or self.threads < 1):
            raise ValueError(f"threads must be None or an integer >= 1, got {self.threads!r}")
        if not isinstance(self.compile, bool | str):
            raise ValueError(f"compile must be a bool or a torch.compile backend name, got {self.compile!r}")
        if self.class_balance not in CLASS_BALANCES:
            raise ValueError(f"class_balance must be one of {CLASS_BALANCES}, got {self.class_balance!r}")

    def _training_config(self) -> TrainingConfig:
        return TrainingConfig(
            nr_epochs=self.nr_epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            weight_norm=self.weight_norm if self._interpretable else 0.0,
            augmentation_probability=self.augmentation_probability,
            scheduler_t_mult=self.scheduler_t_mult,
            nr_restarts=self.nr_restarts,
        )

    def _numerical_mask(self, n_inputs: int) -> torch.Tensor:
        mask = torch.ones(n_inputs, dtype=torch.bool)
        if self.categorical_inputs is not None and len(self.categorical_inputs) > 0:
            index = np.asarray(self.categorical_inputs, dtype=np.int64)
            if index.min() < 0 or index.max() >= n_inputs:
                raise ValueError(f"categorical_inputs must index the {n_inputs} input columns")
            mask[torch.from_numpy(index)] = False
        return mask

    def _fit_network(
        self, x: np.ndarray, target: np.ndarray, *, objective: str, n_outputs: int, class_weights: np.ndarray | None
    ) -> None:
        self._check_params()
        if x.shape[0] < 2:  # batch norm cannot train on a single row
            raise ValueError(f"training needs at least 2 samples, got n_samples={x.shape[0]}")
        device = resolve_device(self.device)
        network_type = INNNetwork if self._interpretable else TabResNetNetwork
        # Initialise from the seed without touching the caller's global torch RNG state.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            network = network_type(
                n_inputs=x.shape[1],
                n_outputs=n_outputs,
                hidden_size=self.hidden_size,
                nr_blocks=self.nr_blocks,
                dropout=self.dropout,
            )
        network.to(device)
        x_tensor = torch.as_tensor(x, dtype=torch.float32, device=device)
        target_dtype = torch.int64 if objective == "multiclass" else torch.float32
        y_tensor = torch.as_tensor(target, dtype=target_dtype, device=device)
        weights = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32, device=device)
        threads = resolve_threads(self.threads, batch_size=self.batch_size, hidden_size=self.hidden_size, device=device)
        # Dropout masks come from torch's global generator: fork and seed it, so that the seed alone decides
        # the result (whatever the caller's RNG state) and the caller's state is left alone.
        with limit_threads(threads), torch.random.fork_rng(devices=_cuda_indices(device)):
            torch.manual_seed(self.seed)
            result = train_snapshot_ensemble(
                network,
                x_tensor,
                y_tensor,
                objective=objective,
                config=self._training_config(),
                seed=self.seed,
                class_weights=weights,
                numerical=self._numerical_mask(x.shape[1]),
                progress=self.progress,
                compile=self.compile,
            )
        self.model_: SnapshotEnsemble = result.ensemble
        self.epoch_losses_ = result.epoch_losses
        self.snapshot_steps_ = result.schedule.snapshot_steps
        self.device_ = device
        # Inference runs with the thread count of training: two threads on small matrices are slower as soon
        # as another process shares the cores (5-50x in sweeps), and one count keeps results machine-independent.
        self.threads_ = threads

    # ----------------------------------------------------------------------------------------- inference
    def _raw_outputs(self, X, *, with_weights: bool = False) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        check_is_fitted(self, "model_")
        x = validate_data(self, X, reset=False, dtype=np.float32)
        with limit_threads(getattr(self, "threads_", None)):
            logits, weights = predict_in_batches(self.model_, torch.from_numpy(x), with_weights=with_weights)
        return logits.numpy(), None if weights is None else weights.numpy(), x

    def _explain(self, X, scale: float = 1.0, shift: float = 0.0) -> Explanation:
        logits, weights, x = self._raw_outputs(X, with_weights=True)
        # In place: the only arrays allocated here are the outputs themselves.
        if scale != 1.0:
            weights *= scale
            logits *= scale
        if shift != 0.0:
            logits += shift
        contributions = np.multiply(weights[:, :-1, :], x[:, :, None])
        bias = weights[:, -1, :] + shift
        return Explanation(weights=weights, contributions=contributions, bias=bias, logits=logits)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


def _cuda_indices(device: torch.device) -> list[int]:
    """The CUDA device whose RNG state ``torch.random.fork_rng`` must save (none on the CPU)."""
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def _class_weights(codes: np.ndarray, n_classes: int) -> np.ndarray:
    """Balanced weights ``n / (K · count_k)``, as scikit-learn's ``class_weight='balanced'``."""
    counts = np.bincount(codes, minlength=n_classes).astype(np.float64)
    return codes.size / (n_classes * np.maximum(counts, 1.0))


def oversample_indices(codes: np.ndarray, seed: int) -> np.ndarray:
    """Row indices that repeat every class's rows (with random extras) up to the majority class size."""
    rng = np.random.default_rng(seed)
    counts = np.bincount(codes)
    target = counts.max()
    parts = []
    for label in np.flatnonzero(counts):  # a loop over classes, not over examples
        rows = np.flatnonzero(codes == label)
        extra = rng.choice(rows, size=target - rows.size, replace=True)
        parts.append(np.concatenate([rows, extra]))
    return rng.permutation(np.concatenate(parts))


class _NeuralClassifier(ClassifierMixin, _NeuralEstimator):
    def fit(self, X, y):
        """Fit on a numeric matrix ``X`` ``(N, D)`` and labels ``y`` ``(N,)`` (any hashable labels)."""
        x, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        n_classes = len(self.classes_)
        if n_classes < 2:
            raise ValueError(f"classification needs at least 2 classes, got only one class ({self.classes_[0]!r})")
        class_weights = None
        if self.class_balance == "weight":
            class_weights = _class_weights(codes, n_classes)
        elif self.class_balance == "oversample":
            rows = oversample_indices(codes, self.seed)
            x, codes = x[rows], codes[rows]
        objective = "binary" if n_classes == 2 else "multiclass"
        self._fit_network(
            x,
            codes,
            objective=objective,
            n_outputs=1 if n_classes == 2 else n_classes,
            class_weights=class_weights,
        )
        return self

    def decision_function(self, X) -> np.ndarray:
        """Logits: ``(N,)`` for binary tasks (of the second class), ``(N, C)`` otherwise."""
        logits, _, _ = self._raw_outputs(X)
        return logits[:, 0] if len(self.classes_) == 2 else logits

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(N, C)``."""
        logits = torch.from_numpy(self._raw_outputs(X)[0]).double()
        if len(self.classes_) == 2:
            positive = torch.sigmoid(logits[:, 0])
            return torch.stack([1 - positive, positive], dim=1).numpy()
        return torch.softmax(logits, dim=1).numpy()

    def predict(self, X) -> np.ndarray:
        """The most probable class label per row."""
        proba = self.predict_proba(X)  # first: it raises NotFittedError before ``classes_`` is read
        return self.classes_[proba.argmax(axis=1)]


class _NeuralRegressor(RegressorMixin, _NeuralEstimator):
    def fit(self, X, y):
        """Fit on ``X`` ``(N, D)`` and real targets ``y`` ``(N,)``; the target is standardised internally."""
        x, y = validate_data(self, X, y, dtype=np.float32, y_numeric=True)
        y = np.asarray(y, dtype=np.float64)
        self.target_mean_ = float(y.mean())
        self.target_scale_ = float(y.std()) or 1.0
        standardised = (y - self.target_mean_) / self.target_scale_
        self._fit_network(x, standardised, objective="regression", n_outputs=1, class_weights=None)
        return self

    def predict(self, X) -> np.ndarray:
        """Predictions in target units ``(N,)``."""
        logits, _, _ = self._raw_outputs(X)
        return logits[:, 0].astype(np.float64) * self.target_scale_ + self.target_mean_


class INNClassifier(_NeuralClassifier):
    """Interpretable neural network (INN) classifier: a hypernetwork generates a linear model per example.

    ``explain(X)`` returns those linear models; their contributions plus bias equal ``decision_function``.
    """

    _interpretable = True

    def explain(self, X) -> Explanation:
        """Per-example weights, contributions and bias; logits ``(N, C)`` with ``C = 1`` for binary tasks."""
        return self._explain(X)


class INNRegressor(_NeuralRegressor):
    """Interpretable neural network (INN) regressor; explanations are in target units."""

    _interpretable = True

    def explain(self, X) -> Explanation:
        """Per-example weights, contributions and bias in target units; ``logits`` are the predictions."""
        return self._explain(X, scale=self.target_scale_, shift=self.target_mean_)


class TabResNetClassifier(_NeuralClassifier):
    """TabResNet classifier: INN's backbone with a plain output layer (the black-box counterpart)."""


class TabResNetRegressor(_NeuralRegressor):
    """TabResNet regressor: INN's backbone with a plain output layer (the black-box counterpart)."""


#: Every estimator of this module, by method id and mode (the tests are parametrized over it).
ESTIMATORS: dict[tuple[str, str], type[_NeuralEstimator]] = {
    ("inn", "classification"): INNClassifier,
    ("inn", "regression"): INNRegressor,
    ("tabresnet", "classification"): TabResNetClassifier,
    ("tabresnet", "regression"): TabResNetRegressor,
}
