"""Remove-and-retrain (ROAR) metrics: :func:`roar_faithfulness` and :func:`roar_monotonicity`.

Each step removes every training and evaluated row's own most (or least) important features, replaces them by
their conditional mean given the kept ones (or the background mean) and fits a fresh model with ``fit``; the
model's changes are then scored like faithfulness and monotonicity. ``compat`` reproduces the public code's
defect 2 (rank-ordered ROAR faithfulness; see ``xai.metrics``); ROAR monotonicity has no defect.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from xai.metrics.common import (
    Fit,
    MetricResult,
    _background,
    _check_conditional,
    _check_rows,
    _non_decreasing_fraction,
    _result,
    row_correlation,
)
from xai.shapley import DEFAULT_CHUNK_SIZE, ConditionalDistribution, Predict, ValueFunction, predict_batched


def _remove(
    X: np.ndarray,
    keep: np.ndarray,
    conditional: ValueFunction,
    distribution: ConditionalDistribution | None,
    baseline: np.ndarray | None,
) -> np.ndarray:
    """Removed features replaced by their conditional mean given the kept ones, or by the baseline point."""
    if conditional == "observational":
        return distribution.conditional_mean(X, keep)
    return np.where(keep, X, baseline[None, :])


def _roar_inputs(
    X_train: ArrayLike, y_train: ArrayLike, train_attributions: ArrayLike, X: ArrayLike, attributions: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, attributions = _check_rows(X, attributions)
    X_train, train_attributions = _check_rows(X_train, train_attributions)
    y_train = np.asarray(y_train, dtype=np.float64).reshape(-1)
    if X_train.shape[1] != X.shape[1] or y_train.shape[0] != X_train.shape[0]:
        raise ValueError(f"X_train {X_train.shape}, y_train {y_train.shape} and X {X.shape} do not match")
    return X_train, y_train, train_attributions, X, attributions


def _roar_baseline(X: np.ndarray, conditional: ValueFunction, background: ArrayLike | None) -> np.ndarray | None:
    """ROAR replaces removed values by one point: the mean of the interventional background."""
    return _background(X, background).mean(axis=0) if conditional == "interventional" else None


def roar_faithfulness(
    fit: Fit,
    predict: Predict,
    X_train: ArrayLike,
    y_train: ArrayLike,
    train_attributions: ArrayLike,
    X: ArrayLike,
    attributions: ArrayLike,
    *,
    distribution: ConditionalDistribution | None = None,
    conditional: ValueFunction = "observational",
    background: ArrayLike | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    compat: bool = False,
) -> MetricResult:
    """ROAR faithfulness (XAI-Bench's "dec" version): faithfulness with retraining instead of sampling.

    For each rank ``r = 1..d``, every training and evaluated row loses its own ``r``-th most important feature
    (by its ``|φ|``), replaced by its conditional mean given the others (or the background mean); a fresh model is
    fitted on the modified training rows; ``Δ_i(feature removed at rank r) = |f(x_i) − f_r(x̃_i)|``. The row's
    score is the Pearson correlation of ``|φ_i|`` with ``Δ_i``. Cost: ``d`` calls of ``fit``; the modified data
    of each step is one batched conditional-mean call.

    Args:
        fit: trains the same kind of model as ``predict``'s on given data.
        predict: the evaluated model (trained on the unmodified data).
        X_train: its training rows.
        y_train: its training targets.
        train_attributions: the explainer's attributions of the training rows.
        X: rows to evaluate.
        attributions: their attributions.
        distribution: the feature distribution (observational removal).
        conditional: ``observational`` (conditional mean) or ``interventional`` (the background mean).
        background: interventional background rows (default: the mean of ``X``, as in the public code).
        chunk_size: most rows per model call.
        compat: correlate with the changes in rank order, as the public code does (defect 2).

    Shape:
        X_train ``(M, d)``, y_train ``(M,)``, train_attributions ``(M, d)``, X ``(N, d)``, attributions
        ``(N, d)`` -> per_row ``(N,)``; extras ``deltas`` ``(N, d)`` (feature order; rank order with compat)
    """
    X_train, y_train, train_attributions, X, attributions = _roar_inputs(
        X_train, y_train, train_attributions, X, attributions
    )
    _check_conditional(conditional, distribution)
    n_train, d = X_train.shape
    baseline = _roar_baseline(X, conditional, background)
    X_all = np.concatenate([X_train, X])
    order = np.argsort(-np.abs(np.concatenate([train_attributions, attributions])), axis=1, kind="stable")
    output = predict_batched(predict, X, chunk_size)
    deltas_by_rank = np.empty((X.shape[0], d))
    rows = np.arange(X_all.shape[0])
    for r in range(d):
        keep = np.ones_like(X_all, dtype=bool)
        keep[rows, order[:, r]] = False
        modified = _remove(X_all, keep, conditional, distribution, baseline)
        retrained = fit(modified[:n_train], y_train)
        deltas_by_rank[:, r] = np.abs(output - predict_batched(retrained, modified[n_train:], chunk_size))
    if compat:
        deltas = deltas_by_rank
    else:
        deltas = np.empty_like(deltas_by_rank)
        np.put_along_axis(deltas, order[n_train:], deltas_by_rank, axis=1)
    return _result("roar_faithfulness", row_correlation(np.abs(attributions), deltas), deltas=deltas)


def roar_monotonicity(
    fit: Fit,
    X_train: ArrayLike,
    y_train: ArrayLike,
    train_attributions: ArrayLike,
    X: ArrayLike,
    attributions: ArrayLike,
    *,
    distribution: ConditionalDistribution | None = None,
    conditional: ValueFunction = "observational",
    background: ArrayLike | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    compat: bool = False,
) -> MetricResult:
    """ROAR monotonicity (XAI-Bench's "inc" version): monotonicity with retraining instead of sampling.

    For ``k = 0..d``, every training and evaluated row keeps its ``k`` least important features (by its own
    ``|φ|``) and has the others replaced by their conditional mean given the kept ones (or the background mean);
    a fresh model is fitted; ``p_k`` are its predictions on the modified evaluated rows,
    ``δ_k = |p_k − p_{k−1}|`` and the row's score is the fraction of ``k`` with ``δ_{k+1} ≥ δ_k``.
    Cost: ``d + 1`` calls of ``fit``.

    Args:
        fit: trains a fresh model on given data.
        X_train: training rows.
        y_train: training targets.
        train_attributions: the explainer's attributions of the training rows.
        X: rows to evaluate (``d >= 2``).
        attributions: their attributions.
        distribution: the feature distribution (observational removal).
        conditional: ``observational`` (conditional mean) or ``interventional`` (the background mean).
        background: interventional background rows (default: the mean of ``X``).
        chunk_size: most rows per model call.
        compat: accepted for a uniform call; the public code has no defect here, so nothing changes.

    Shape:
        X_train ``(M, d)``, y_train ``(M,)``, train_attributions ``(M, d)``, X ``(N, d)``, attributions
        ``(N, d)`` -> per_row ``(N,)``; extras ``deltas`` ``(N, d)``
    """
    del compat  # no public defect to reproduce
    X_train, y_train, train_attributions, X, attributions = _roar_inputs(
        X_train, y_train, train_attributions, X, attributions
    )
    _check_conditional(conditional, distribution)
    n_train, d = X_train.shape
    if d < 2:
        raise ValueError(f"roar_monotonicity needs at least 2 features, got {d=}")
    baseline = _roar_baseline(X, conditional, background)
    X_all = np.concatenate([X_train, X])
    order = np.argsort(np.abs(np.concatenate([train_attributions, attributions])), axis=1, kind="stable")
    rank = np.argsort(order, axis=1, kind="stable")
    predictions = np.empty((X.shape[0], d + 1))
    for k in range(d + 1):
        modified = _remove(X_all, rank < k, conditional, distribution, baseline)
        retrained = fit(modified[:n_train], y_train)
        predictions[:, k] = predict_batched(retrained, modified[n_train:], chunk_size)
    deltas = np.abs(np.diff(predictions, axis=1))
    return _result("roar_monotonicity", _non_decreasing_fraction(deltas), deltas=deltas)
