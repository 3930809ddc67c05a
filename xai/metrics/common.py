"""What every metric shares: :data:`METRICS` (the one table of names and directions), :class:`MetricResult`,
the row checks, :func:`row_correlation` and the removal helpers of the removal-based metrics.

A model is ``predict(X (M, d)) -> (M,)`` (regression outputs); attributions are ``(N, d)`` arrays aligned with the
rows ``X (N, d)``; a retraining metric takes ``fit(X_train, y_train) -> predict``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from xai.shapley import VALUE_FUNCTIONS, ConditionalDistribution, Predict

Direction = Literal["higher", "lower"]
#: Trains a fresh model: ``fit(X_train (M, d), y_train (M,)) -> predict``.
Fit = Callable[[np.ndarray, np.ndarray], Predict]
#: Explains rows: ``explain(X (M, d)) -> (M, k)`` (attributions, or any explanation vector per row).
Explain = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class MetricInfo:
    """What a metric measures and which way is better.

    Attributes:
        name: the metric's id (also the function's name).
        direction: ``higher`` or ``lower`` is better.
        value_range: the range of the reported value, in words.
        description: one sentence.
    """

    name: str
    direction: Direction
    value_range: str
    description: str


#: The one table of the benchmark's metrics: id -> :class:`MetricInfo`.
METRICS: Mapping[str, MetricInfo] = {
    info.name: info
    for info in (
        MetricInfo(
            "faithfulness",
            "higher",
            "[-1, 1]",
            "Pearson correlation, per row, of |φ_j| with |f(x) − v(all but j)|, the change when feature j is "
            "removed; mean over rows.",
        ),
        MetricInfo(
            "monotonicity",
            "higher",
            "[0, 1]",
            "Features added from least to most |φ|: fraction of steps whose change in v(S) is at least the "
            "previous step's; mean over rows.",
        ),
        MetricInfo(
            "infidelity",
            "lower",
            "[0, inf)",
            "E[(f(x) − f(x − I) − β Iᵀφ)²] over perturbations I with the optimal scale β (Yeh et al. 2019); "
            "mean over rows.",
        ),
        MetricInfo(
            "roar_faithfulness",
            "higher",
            "[-1, 1]",
            "As faithfulness, but the r-th most important feature of every row is removed from training and test "
            "data and the model retrained (d retrains).",
        ),
        MetricInfo(
            "roar_monotonicity",
            "higher",
            "[0, 1]",
            "As monotonicity, but with a model retrained on the data keeping the k least important features of "
            "every row, k = 0..d (d + 1 retrains).",
        ),
        MetricInfo(
            "shapley_mse",
            "lower",
            "[0, inf)",
            "Mean squared difference between the attributions and ground-truth Shapley values, over rows and features.",
        ),
        MetricInfo(
            "shapley_corr",
            "higher",
            "[-1, 1]",
            "Pearson correlation, per row, of the attributions with ground-truth Shapley values; mean over rows.",
        ),
        MetricInfo(
            "local_fidelity_error",
            "lower",
            "[0, inf)",
            "LFR-IMN: mean squared error between f(x + ε) and the row's own linear model at x + ε, ε ~ N(0, σ²I).",
        ),
        MetricInfo(
            "lipschitz_discrete",
            "lower",
            "[0, inf)",
            "SENN stability: max over dataset neighbours z within the radius of ‖e(x) − e(z)‖ / ‖x − z‖; mean over "
            "rows that have a neighbour.",
        ),
        MetricInfo(
            "lipschitz_continuous",
            "lower",
            "[0, inf)",
            "SENN stability: max of ‖e(x) − e(z)‖ / ‖x − z‖ over z in the ε-ball around x, found by batched "
            "random search (a lower bound of the local Lipschitz constant); mean over rows.",
        ),
    )
}


@dataclass(frozen=True)
class MetricResult:
    """A metric's value on a set of rows.

    Attributes:
        name: the metric's id (a key of :data:`METRICS`).
        value: the reported number: the mean of ``per_row`` over rows where it is defined (NaN if none).
        per_row: ``(N,)`` the score of every row (NaN where undefined, e.g. a row without neighbours).
        extras: metric-specific arrays (e.g. ``deltas`` ``(N, d)``, ``coverage``).
    """

    name: str
    value: float
    per_row: np.ndarray
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def direction(self) -> Direction:
        """``higher`` or ``lower`` is better (from :data:`METRICS`)."""
        return METRICS[self.name].direction

    def confidence_interval(self, level: float = 0.95, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
        """Percentile bootstrap interval of :attr:`value` over rows (rows where the score is NaN are left out)."""
        scores = self.per_row[np.isfinite(self.per_row)]
        if scores.size == 0:
            return (float("nan"), float("nan"))
        rng = np.random.default_rng(seed)
        means = scores[rng.integers(0, scores.size, size=(n_boot, scores.size))].mean(axis=1)
        alpha = (1.0 - level) / 2
        low, high = np.quantile(means, [alpha, 1.0 - alpha])
        return (float(low), float(high))


def _result(name: str, per_row: np.ndarray, **extras: np.ndarray) -> MetricResult:
    per_row = np.asarray(per_row, dtype=np.float64)
    finite = per_row[~np.isnan(per_row)]
    value = float(finite.mean()) if finite.size else float("nan")
    return MetricResult(name=name, value=value, per_row=per_row, extras=extras)


def _check_rows(X: ArrayLike, attributions: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"X must be (N, d) with N >= 1, got shape {X.shape}")
    if attributions is None:
        return X, None
    attributions = np.asarray(attributions, dtype=np.float64)
    if attributions.shape != X.shape:
        raise ValueError(f"attributions have shape {attributions.shape}, expected {X.shape} (one per row and feature)")
    return X, attributions


def row_correlation(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Pearson correlation of every row of ``a`` with the same row of ``b``; 0 where either row is constant.

    Shape:
        a ``(N, d)``, b ``(N, d)`` -> ``(N,)``
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"a {a.shape} and b {b.shape} must be equal (N, d)")
    centred_a = a - a.mean(axis=1, keepdims=True)
    centred_b = b - b.mean(axis=1, keepdims=True)
    norm_a = np.linalg.norm(centred_a, axis=1)
    norm_b = np.linalg.norm(centred_b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (centred_a * centred_b).sum(axis=1) / (norm_a * norm_b)
    # The public code maps NaN (a constant row) to 0. A row whose spread is rounding noise relative to its own
    # size counts as constant too, so that equal values computed in different orders do not correlate at random.
    constant = (norm_a <= 1e-12 * np.linalg.norm(a, axis=1)) | (norm_b <= 1e-12 * np.linalg.norm(b, axis=1))
    return np.where(constant | ~np.isfinite(corr), 0.0, corr)


def _background(X: np.ndarray, background: ArrayLike | None) -> np.ndarray:
    """The interventional background: given rows, or (the public default) the mean of the evaluated rows."""
    if background is None:
        return X.mean(axis=0, keepdims=True)
    background = np.asarray(background, dtype=np.float64)
    if background.ndim == 1:
        background = background[None, :]
    if background.ndim != 2 or background.shape[1] != X.shape[1] or background.shape[0] == 0:
        raise ValueError(f"background has shape {background.shape}, expected (B, {X.shape[1]}) or ({X.shape[1]},)")
    return background


def _check_conditional(conditional: str, distribution: ConditionalDistribution | None) -> None:
    if conditional not in VALUE_FUNCTIONS:
        raise ValueError(f"conditional must be one of {VALUE_FUNCTIONS}, got {conditional!r}")
    if conditional == "observational" and distribution is None:
        raise ValueError("observational removal needs a distribution with exact conditionals")


def _non_decreasing_fraction(deltas: np.ndarray) -> np.ndarray:
    """Fraction of successive pairs with ``δ_{k+1} ≥ δ_k`` per row (``(N, d)`` -> ``(N,)``)."""
    return (np.diff(deltas, axis=1) >= 0).mean(axis=1)
