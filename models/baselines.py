"""The five baselines of the paper: a registry of how to build, feed and explain each of them.

Every baseline is a default configuration of its library (plus balanced class weights where the library has
them), as in the paper. A :class:`BaselineSpec` says which encoding of ``data.prepare_split`` the model wants,
whether it reads the encoded matrix or the unencoded frame (CatBoost's native categoricals), builds the
classifier or regressor for a split, and maps the fitted model to one importance per ORIGINAL feature
(one-hot and other input columns are summed back with ``input_to_feature``).

``catboost`` and ``pytorch_tabnet`` are optional: they are imported inside the factories, and a missing package
raises :class:`~experiments.errors.MissingDependencyError` naming what to install.

Example:
    >>> spec = BASELINES["random_forest"]
    >>> split = prepare_split(raw, mode="classification", seed=0, encoding_type=spec.encoding)
    >>> model = spec.build(split, seed=0, device="cpu", n_jobs=1)
    >>> X_train, X_test = spec.inputs(split)
    >>> model.fit(X_train, split.y_train)
    >>> spec.importances(model, split)  # (F,), one per original feature
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split

from experiments.errors import MissingDependencyError
from models.device import resolve_device

if TYPE_CHECKING:  # only for annotations: the data package is not needed to import this module
    from data import PreparedSplit

Mode = Literal["classification", "regression"]
Encoding = Literal["paper", "onehot", "target", "ordinal"]
InputKind = Literal["matrix", "frame"]
BaselineName = Literal["catboost", "random_forest", "logistic_regression", "decision_tree", "tabnet"]

# ------------------------------------------------------------------------------------------------------------
# The registry


@dataclass(frozen=True)
class BaselineSpec:
    """How to build, feed and explain one baseline.

    Attributes:
        method: The method id (a results-tree directory name).
        encoding: The ``encoding_type`` to ask ``data.prepare_split`` for.
        input_kind: ``matrix`` (the float32 encoded matrix) or ``frame`` (the unencoded frame after drops).
        defaults: Default model parameters per mode; overrides must use these keys.
        factory: ``factory(split, seed=, device=, n_jobs=, params=)`` -> an unfitted estimator with ``fit``,
            ``predict`` and (classification) ``predict_proba``.
        importance_fn: ``importance_fn(fitted_model, split)`` -> importances ``(F,)`` per original feature.
        importance_method: What the importances are, in words (recorded in the report).
        uses_device: Whether the model can run on a GPU (otherwise it always runs on the CPU).
    """

    method: str
    encoding: Encoding
    input_kind: InputKind
    defaults: Mapping[Mode, Mapping[str, Any]]
    factory: Callable[..., Any] = field(repr=False)
    importance_fn: Callable[[Any, PreparedSplit], np.ndarray] = field(repr=False)
    importance_method: str = ""
    uses_device: bool = False

    def resolve_params(self, mode: Mode, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The default parameters of ``mode`` updated with ``overrides``.

        Raises:
            ValueError: an override names a parameter this baseline does not have.
        """
        params = dict(self.defaults[mode])
        unknown = sorted(set(overrides or {}) - set(params))
        if unknown:
            raise ValueError(f"{self.method} ({mode}) has no parameters {unknown}; known: {sorted(params)}")
        params.update(overrides or {})
        return params

    def build(
        self,
        split: PreparedSplit,
        *,
        seed: int,
        device: str | torch.device = "cpu",
        n_jobs: int = 1,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """An unfitted classifier or regressor (by ``split.task``) configured for ``split``."""
        resolved = self.resolve_params(_mode(split), params)
        return self.factory(split, seed=seed, device=resolve_device(device), n_jobs=n_jobs, params=resolved)

    def inputs(self, split: PreparedSplit) -> tuple[Any, Any]:
        """The model inputs ``(train, test)`` of ``split``: matrices, or frames for native categoricals."""
        if self.input_kind == "frame":
            return _catboost_frame(split, split.frame_train), _catboost_frame(split, split.frame_test)
        return split.X_train, split.X_test

    def importances(self, model: Any, split: PreparedSplit) -> np.ndarray:
        """Non-negative importances ``(F,)``, one per original feature of ``split`` (not normalised)."""
        values = np.abs(np.asarray(self.importance_fn(model, split), dtype=np.float64))
        if values.shape != (len(split.feature_names),):
            raise ValueError(
                f"{self.method}: importances of shape {values.shape}, expected ({len(split.feature_names)},)"
            )
        return values


def predict_output(model: Any, X: Any, task: str) -> np.ndarray:
    """Class probabilities ``(N, C)`` for classification, predictions ``(N,)`` for regression."""
    if task == "regression":
        return np.asarray(model.predict(X), dtype=np.float64).reshape(-1)
    return np.asarray(model.predict_proba(X), dtype=np.float64)


def aggregate_inputs(values: np.ndarray, input_to_feature: np.ndarray, n_features: int) -> np.ndarray:
    """Sum per-input-column values ``(D,)`` into per-original-feature values ``(F,)``."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    index = np.asarray(input_to_feature, dtype=np.int64)
    if values.shape != index.shape:
        raise ValueError(f"{values.shape[0]} input values but input_to_feature of length {index.shape[0]}")
    return np.bincount(index, weights=values, minlength=n_features)


def _mode(split: PreparedSplit) -> Mode:
    return "regression" if split.task == "regression" else "classification"


# ------------------------------------------------------------------------------------------------------------
# scikit-learn baselines (on the encoded matrix)


def _random_forest(split: PreparedSplit, *, seed: int, device: torch.device, n_jobs: int, params: dict) -> Any:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    if split.task == "regression":
        return RandomForestRegressor(random_state=seed, n_jobs=n_jobs, **params)
    return RandomForestClassifier(class_weight="balanced", random_state=seed, n_jobs=n_jobs, **params)


def _decision_tree(split: PreparedSplit, *, seed: int, device: torch.device, n_jobs: int, params: dict) -> Any:
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    if split.task == "regression":
        return DecisionTreeRegressor(random_state=seed, **params)
    return DecisionTreeClassifier(class_weight="balanced", random_state=seed, **params)


def _logistic_regression(split: PreparedSplit, *, seed: int, device: torch.device, n_jobs: int, params: dict) -> Any:
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # Standardising every input column (target-encoded and one-hot ones included) makes the L2 penalty act
    # evenly and makes |coefficient| comparable across columns, which is what the importance reads.
    if split.task == "regression":
        return make_pipeline(StandardScaler(), Ridge(**params))
    return make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", random_state=seed, **params))


def _tree_importances(model: Any, split: PreparedSplit) -> np.ndarray:
    return aggregate_inputs(model.feature_importances_, split.input_to_feature, len(split.feature_names))


def _linear_importances(model: Any, split: PreparedSplit) -> np.ndarray:
    # |coef| summed over classes: a signed sum would let opposite effects on different classes cancel.
    coef = np.abs(np.atleast_2d(model[-1].coef_)).sum(axis=0)
    return aggregate_inputs(coef, split.input_to_feature, len(split.feature_names))


# ------------------------------------------------------------------------------------------------------------
# CatBoost (native categoricals on the unencoded frame)


def _catboost_frame(split: PreparedSplit, frame: pd.DataFrame) -> pd.DataFrame:
    """The frame in ``feature_names`` order; its categorical columns are already strings, missing a category."""
    return frame.loc[:, list(split.feature_names)]


def _catboost(split: PreparedSplit, *, seed: int, device: torch.device, n_jobs: int, params: dict) -> Any:
    try:
        import catboost
    except ImportError as exc:
        raise MissingDependencyError("catboost", "the CatBoost baseline") from exc

    options: dict[str, Any] = {
        "random_seed": seed,
        "thread_count": n_jobs,
        "cat_features": list(split.categorical_feature_names),
        "allow_writing_files": False,  # no catboost_info/ folder in the user's working directory
        "verbose": False,
        **params,
    }
    if device.type == "cuda":
        options.update(task_type="GPU", devices=str(device.index or 0))
    if split.task == "regression":
        return catboost.CatBoostRegressor(**options)
    # An explicit loss: a training split that misses a class must not silently turn multiclass into binary.
    loss = "Logloss" if split.n_classes == 2 else "MultiClass"
    return catboost.CatBoostClassifier(loss_function=loss, auto_class_weights="Balanced", **options)


def _catboost_importances(model: Any, split: PreparedSplit) -> np.ndarray:
    # One value per frame column, i.e. per original feature (PredictionValuesChange).
    return np.asarray(model.get_feature_importance(), dtype=np.float64)


# ------------------------------------------------------------------------------------------------------------
# TabNet (categorical embeddings on the ordinal matrix)


class TabNetBaseline(BaseEstimator):
    """TabNet with an internal, seeded validation split for early stopping and quiet, deterministic training.

    The validation rows are taken from the training rows passed to :meth:`fit` (stratified for
    classification), so the test rows are never seen. Classification samples batches class-balanced
    (TabNet's ``weights=1``); regression standardises the target and undoes it in :meth:`predict`.
    The global torch RNG is forked during ``fit``, so training neither depends on nor changes it.

    Args:
        task: ``binary``, ``multiclass`` or ``regression``.
        cat_idxs: Positions of the categorical (ordinal-coded) input columns.
        cat_dims: Number of codes of each of those columns.
        cat_emb_dim: Embedding size of each categorical column.
        n_d: Width of the decision layer.
        n_a: Width of the attention layer.
        n_steps: Number of decision steps.
        gamma: Feature re-use coefficient of the attention (1: a feature is used at one step only).
        lambda_sparse: Weight of the attention-sparsity loss.
        learning_rate: Adam learning rate.
        max_epochs: Maximum number of epochs.
        patience: Epochs without validation improvement before stopping (0: no early stopping).
        batch_size: Batch size, capped for small data so that every epoch has several batches.
        virtual_batch_size: Ghost batch-norm size, capped at the batch size.
        validation_size: Fraction of the training rows held out for early stopping.
        seed: Seed of the validation split, the initialisation and the batch order.
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        n_jobs: CPU threads torch may use during ``fit`` and prediction.
    """

    def __init__(
        self,
        *,
        task: Literal["binary", "multiclass", "regression"] = "binary",
        cat_idxs: tuple[int, ...] = (),
        cat_dims: tuple[int, ...] = (),
        cat_emb_dim: int = 3,
        n_d: int = 8,
        n_a: int = 8,
        n_steps: int = 3,
        gamma: float = 1.3,
        lambda_sparse: float = 1e-3,
        learning_rate: float = 0.02,
        max_epochs: int = 200,
        patience: int = 20,
        batch_size: int = 128,
        virtual_batch_size: int = 64,
        validation_size: float = 0.2,
        seed: int = 0,
        device: str = "cpu",
        n_jobs: int = 1,
    ) -> None:
        self.task = task
        self.cat_idxs = cat_idxs
        self.cat_dims = cat_dims
        self.cat_emb_dim = cat_emb_dim
        self.n_d = n_d
        self.n_a = n_a
        self.n_steps = n_steps
        self.gamma = gamma
        self.lambda_sparse = lambda_sparse
        self.learning_rate = learning_rate
        self.max_epochs = max_epochs
        self.patience = patience
        self.batch_size = batch_size
        self.virtual_batch_size = virtual_batch_size
        self.validation_size = validation_size
        self.seed = seed
        self.device = device
        self.n_jobs = n_jobs

    def fit(self, X: np.ndarray, y: np.ndarray) -> TabNetBaseline:
        """Train on ``X`` ``(N, D)`` and ``y`` ``(N,)``, early-stopping on a held-out part of these rows."""
        try:
            with warnings.catch_warnings():  # it imports a deprecated scipy namespace
                warnings.simplefilter("ignore", DeprecationWarning)
                from pytorch_tabnet.tab_model import TabNetClassifier, TabNetRegressor
        except ImportError as exc:
            raise MissingDependencyError("pytorch-tabnet", "the TabNet baseline") from exc

        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y)
        regression = self.task == "regression"
        fit_idx, valid_idx = _holdout(y, self.validation_size, self.seed, stratify=not regression)
        if regression:
            self.y_mean_, self.y_scale_ = float(y[fit_idx].mean()), float(y[fit_idx].std()) or 1.0
            target = ((y - self.y_mean_) / self.y_scale_).astype(np.float32).reshape(-1, 1)
        else:
            target = y.astype(np.int64)
        self.batch_size_, self.virtual_batch_size_ = _tabnet_batch_sizes(
            len(fit_idx), self.batch_size, self.virtual_batch_size
        )

        order = np.argsort(self.cat_idxs)  # TabNet reorders cat_dims by position but not cat_idxs
        model_class = TabNetRegressor if regression else TabNetClassifier
        with self._quiet_and_seeded():
            self.model_ = model_class(
                n_d=self.n_d,
                n_a=self.n_a,
                n_steps=self.n_steps,
                gamma=self.gamma,
                lambda_sparse=self.lambda_sparse,
                cat_idxs=[int(self.cat_idxs[i]) for i in order],
                cat_dims=[int(self.cat_dims[i]) for i in order],
                cat_emb_dim=self.cat_emb_dim,
                optimizer_params={"lr": self.learning_rate},
                seed=self.seed,
                device_name=str(resolve_device(self.device).type),
                verbose=0,
            )
            self.model_.fit(
                X[fit_idx],
                target[fit_idx],
                eval_set=[(X[valid_idx], target[valid_idx])],
                eval_name=["valid"],
                eval_metric=[_tabnet_metric(self.task)],
                weights=0 if regression else 1,  # 1: class-balanced sampling, TabNet's "balanced"
                max_epochs=self.max_epochs,
                patience=self.patience,
                batch_size=self.batch_size_,
                virtual_batch_size=self.virtual_batch_size_,
                drop_last=True,  # a last batch of one row would break batch norm
            )
        # Without early stopping (patience 0) TabNet keeps the last epoch's weights.
        best_epoch = getattr(self.model_, "best_epoch", None)
        self.best_epoch_ = self.max_epochs - 1 if best_epoch is None else int(best_epoch)
        self.feature_importances_ = np.asarray(self.model_.feature_importances_, dtype=np.float64)
        if not regression:
            self.classes_ = np.asarray(self.model_.classes_)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, C)``."""
        with self._quiet_and_seeded():
            return self.model_.predict_proba(np.asarray(X, dtype=np.float32))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class labels ``(N,)``, or regression predictions ``(N,)`` on the original target scale."""
        if self.task != "regression":
            return self.classes_[self.predict_proba(X).argmax(axis=1)]
        with self._quiet_and_seeded():
            scaled = self.model_.predict(np.asarray(X, dtype=np.float32)).reshape(-1)
        return scaled.astype(np.float64) * self.y_scale_ + self.y_mean_

    @contextlib.contextmanager
    def _quiet_and_seeded(self) -> Iterator[None]:
        device = resolve_device(self.device)
        cuda_devices = [device.index or 0] if device.type == "cuda" else []
        threads = torch.get_num_threads()
        with (
            torch.random.fork_rng(devices=cuda_devices),
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            # TabNet warns about the device and prints an early-stopping line on every fit: noise here.
            warnings.simplefilter("ignore", UserWarning)
            torch.manual_seed(self.seed)  # the batch sampler draws from the global generator
            torch.set_num_threads(self.n_jobs)
            try:
                yield
            finally:
                torch.set_num_threads(threads)


def _holdout(y: np.ndarray, size: float, seed: int, *, stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation row positions; stratified when every class has at least two rows."""
    index = np.arange(len(y))
    if stratify:
        _, counts = np.unique(y, return_counts=True)
        stratify = bool(counts.min() >= 2)
    fit_idx, valid_idx = train_test_split(index, test_size=size, random_state=seed, stratify=y if stratify else None)
    return np.sort(fit_idx), np.sort(valid_idx)


def _tabnet_batch_sizes(n_rows: int, batch_size: int, virtual_batch_size: int) -> tuple[int, int]:
    # With drop_last, a batch larger than the data gives empty epochs; at least four batches per epoch.
    batch = max(min(batch_size, n_rows // 4), 2)
    return batch, max(min(virtual_batch_size, batch), 2)


def _tabnet_metric(task: str) -> str:
    # The log-loss, not AUROC: on a validation part of ~100-200 rows AUROC is a step function that stops
    # training on noise (measured on credit-g: mean test AUROC over seeds 0-2 was ~0.02 lower with "auc").
    return "mse" if task == "regression" else "logloss"


def _tabnet(split: PreparedSplit, *, seed: int, device: torch.device, n_jobs: int, params: dict) -> Any:
    try:
        import pytorch_tabnet  # noqa: F401 - fail at build time, before any data is processed
    except ImportError as exc:
        raise MissingDependencyError("pytorch-tabnet", "the TabNet baseline") from exc
    return TabNetBaseline(
        task=split.task,
        cat_idxs=tuple(int(i) for i in split.categorical_input_indices or ()),
        cat_dims=tuple(int(c) for c in split.categorical_cardinalities or ()),
        seed=seed,
        device=str(device),
        n_jobs=n_jobs,
        **params,
    )


def _tabnet_importances(model: TabNetBaseline, split: PreparedSplit) -> np.ndarray:
    return aggregate_inputs(model.feature_importances_, split.input_to_feature, len(split.feature_names))


# ------------------------------------------------------------------------------------------------------------

_TABNET_DEFAULTS = {
    "max_epochs": 200,
    "patience": 20,
    # TabNet's 1024/128 suit large data; on ~1000 rows they give one or two steps per epoch.
    "batch_size": 128,
    "virtual_batch_size": 64,
    "validation_size": 0.2,
    "learning_rate": 0.02,
    "n_d": 8,
    "n_a": 8,
    "n_steps": 3,
    "gamma": 1.3,
    "lambda_sparse": 1e-3,
    # An embedding of size 1 squeezes every category onto a line; 3 learned better on credit-g.
    "cat_emb_dim": 3,
}

#: Method id -> spec. The defaults are the libraries' defaults except where the docstrings say why.
BASELINES: dict[str, BaselineSpec] = {
    "catboost": BaselineSpec(
        method="catboost",
        encoding="ordinal",  # only its split's frame is used; any encoding gives the same rows
        input_kind="frame",
        defaults={"classification": {"iterations": 1000}, "regression": {"iterations": 1000}},
        factory=_catboost,
        importance_fn=_catboost_importances,
        importance_method="CatBoost PredictionValuesChange, one per feature",
        uses_device=True,
    ),
    "random_forest": BaselineSpec(
        method="random_forest",
        encoding="paper",
        input_kind="matrix",
        defaults={"classification": {"n_estimators": 100}, "regression": {"n_estimators": 100}},
        factory=_random_forest,
        importance_fn=_tree_importances,
        importance_method="mean decrease in impurity, summed over each feature's input columns",
    ),
    "logistic_regression": BaselineSpec(
        method="logistic_regression",
        encoding="paper",
        input_kind="matrix",
        # lbfgs's default 100 iterations often stops short of convergence on one-hot data.
        defaults={"classification": {"C": 1.0, "max_iter": 1000}, "regression": {"alpha": 1.0}},
        factory=_logistic_regression,
        importance_fn=_linear_importances,
        importance_method="|coefficient| on standardised inputs, summed over classes and each feature's input columns",
    ),
    "decision_tree": BaselineSpec(
        method="decision_tree",
        encoding="paper",
        input_kind="matrix",
        defaults={"classification": {"max_depth": None}, "regression": {"max_depth": None}},
        factory=_decision_tree,
        importance_fn=_tree_importances,
        importance_method="decrease in impurity, summed over each feature's input columns",
    ),
    "tabnet": BaselineSpec(
        method="tabnet",
        encoding="ordinal",
        input_kind="matrix",
        defaults={"classification": dict(_TABNET_DEFAULTS), "regression": dict(_TABNET_DEFAULTS)},
        factory=_tabnet,
        importance_fn=_tabnet_importances,
        importance_method="TabNet feature_importances_ (attention masks on the training rows), summed over inputs",
        uses_device=True,
    ),
}


def get_baseline(name: str) -> BaselineSpec:
    """The spec of baseline ``name``.

    Raises:
        ValueError: ``name`` is not a registered baseline.
    """
    try:
        return BASELINES[name]
    except KeyError:
        raise ValueError(f"unknown baseline {name!r}; choose one of {sorted(BASELINES)}") from None
