"""Evaluation metrics of the protocol: ROC-AUC (one-vs-one for multiclass) and accuracy, or MSE."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, mean_squared_error, roc_auc_score


def auroc(y_true: np.ndarray, proba: np.ndarray, n_classes: int) -> float:
    """ROC-AUC from class probabilities ``(N, C)``: binary on the positive class, multiclass one-vs-one.

    Returns NaN when the sample lacks a class (the metric is undefined there).
    """
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    if np.unique(y_true).size < 2:
        return float("nan")
    if n_classes == 2:
        return float(roc_auc_score(y_true, proba[:, 1]))
    if np.unique(y_true).size < n_classes:
        return float("nan")
    proba = proba / proba.sum(axis=1, keepdims=True)
    return float(roc_auc_score(y_true, proba, multi_class="ovo", labels=np.arange(n_classes)))


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, n_classes: int, prefix: str) -> dict[str, float]:
    """``{prefix}_auroc`` and ``{prefix}_accuracy`` for integer labels and probabilities ``(N, C)``."""
    predicted = np.asarray(proba).argmax(axis=1)
    return {
        f"{prefix}_auroc": auroc(y_true, proba, n_classes),
        f"{prefix}_accuracy": float(accuracy_score(y_true, predicted)),
    }


def regression_metrics(y_true: np.ndarray, predicted: np.ndarray, prefix: str) -> dict[str, float]:
    """``{prefix}_mse`` for real targets."""
    return {f"{prefix}_mse": float(mean_squared_error(y_true, predicted))}
