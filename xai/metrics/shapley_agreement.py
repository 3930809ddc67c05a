"""Agreement with ground-truth Shapley values (``xai.shapley.ground_truth_shapley``): :func:`shapley_mse` and
:func:`shapley_corr` (XAI-Bench's ``shapley`` and ``shapley_corr``)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from xai.metrics.common import MetricResult, _result, row_correlation


def _check_pair(attributions: ArrayLike, ground_truth: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    attributions = np.asarray(attributions, dtype=np.float64)
    ground_truth = np.asarray(ground_truth, dtype=np.float64)
    if attributions.ndim != 2 or attributions.shape != ground_truth.shape:
        raise ValueError(
            f"attributions {attributions.shape} and ground truth {ground_truth.shape} must be equal (N, d)"
        )
    return attributions, ground_truth


def shapley_mse(attributions: ArrayLike, ground_truth: ArrayLike) -> MetricResult:
    """Mean squared difference from ground-truth Shapley values (XAI-Bench's ``shapley``, mode ``mse``).

    Args:
        attributions: the explainer's attributions.
        ground_truth: Shapley values of the same model at the same rows (``xai.shapley.ground_truth_shapley``).

    Shape:
        attributions ``(N, d)``, ground_truth ``(N, d)`` -> per_row ``(N,)`` (mean over features)
    """
    attributions, ground_truth = _check_pair(attributions, ground_truth)
    return _result("shapley_mse", ((attributions - ground_truth) ** 2).mean(axis=1))


def shapley_corr(attributions: ArrayLike, ground_truth: ArrayLike) -> MetricResult:
    """Pearson correlation with ground-truth Shapley values per row, 0 for constant rows (XAI-Bench's
    ``shapley_corr``).

    Shape:
        attributions ``(N, d)``, ground_truth ``(N, d)`` -> per_row ``(N,)``
    """
    attributions, ground_truth = _check_pair(attributions, ground_truth)
    return _result("shapley_corr", row_correlation(attributions, ground_truth))
