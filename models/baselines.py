"""The paper's five baselines: how to build each one for a split (the registry in ``methods`` holds the rest).

Every baseline is a default configuration of its library (plus balanced class weights where the library has
them), as in the paper. ``build_<name>(split, *, seed, device, n_jobs, params)`` returns the unfitted
classifier or regressor (by ``split.task``); the parameters come from the method registry (``methods``),
which also says which encoding and which inputs (matrix or unencoded frame) each baseline takes and how it is
explained.

``catboost`` and ``pytorch_tabnet`` are optional: they are imported inside the factories, and a missing package
raises :class:`~errors.MissingDependencyError` naming what to install.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split

from errors import MissingDependencyError
from models.device import resolve_device

if TYPE_CHECKING:  # only for annotations: the data package is not needed to import this module
    from data import PreparedSplit


def predict_output(model: Any, X: Any, task: str) -> np.ndarray:
    """Class probabilities ``(N, C)`` for classification, predictions ``(N,)`` for regression."""
    if task == "regression":
        return np.asarray(model.predict(X), dtype=np.float64).reshape(-1)
    return np.asarray(model.predict_proba(X), dtype=np.float64)


# ------------------------------------------------------------------------------------------------------------
# scikit-learn baselines (on the encoded matrix)


def build_random_forest(split: PreparedSplit, *, seed: int, device: torch.device, n_jobs: int, params: dict) -> Any:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    if split.task == "regression":
        return RandomForestRegressor(random_state=seed, n_jobs=n_jobs, **params)
    return RandomForestClassifier(class_weight="balanced", random_state=seed, n_jobs=n_jobs, **params)


def build_decision_tree(split: PreparedSplit, *, seed: int, device: torch.device, n_jobs: int, params: dict) -> Any:
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    if split.task == "regression":
        return DecisionTreeRegressor(random_state=seed, **params)
    return DecisionTreeClassifier(class_weight="balanced", random_state=seed, **params)


def build_logistic_regression(
    split: PreparedSplit, *, seed: int, device: torch.device, n_jobs: int, params: dict
) -> Any:
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # Standardising every input column (target-encoded and one-hot ones included) makes the L2 penalty act
    # evenly and makes |coefficient| comparable across columns, which is what the importance reads.
    if split.task == "regression":
        return make_pipeline(StandardScaler(), Ridge(**params))
    return make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", random_state=seed, **params))


# ------------------------------------------------------------------------------------------------------------
# CatBoost (native categoricals on the unencoded frame)


def build_catboost(split: PreparedSplit, *, seed: int, device: torch.device, n_jobs: int, params: dict) -> Any:
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

    def explain(self, X: np.ndarray) -> np.ndarray:
        """TabNet's per-example attention masks ``(N, D)`` over the input columns (unsigned, not additive)."""
        with self._quiet_and_seeded():
            masks, _ = self.model_.explain(np.asarray(X, dtype=np.float32))
        return np.asarray(masks, dtype=np.float64)

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


def build_tabnet(split: PreparedSplit, *, seed: int, device: torch.device, n_jobs: int, params: dict) -> Any:
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
