"""The interpretability benchmark's metrics on plain arrays, corrected, with a ``compat`` mode for the public code.

A model is ``predict(X (M, d)) -> (M,)`` (regression outputs); attributions are ``(N, d)`` arrays aligned with the
rows ``X (N, d)``; a retraining metric takes ``fit(X_train, y_train) -> predict``. Every metric returns a
:class:`MetricResult` (the per-row scores, their mean, the direction) and is listed in :data:`METRICS` with its
direction (``higher`` or ``lower`` is better). Model calls are batched: all rows × samples (× removal steps) are
flattened and sent in chunks of ``chunk_size`` rows; nothing loops over rows in Python.

Metrics of XAI-Bench (Liu et al. 2021; definitions from its public code, abacusai/xai-bench f0431a7):
:func:`faithfulness`, :func:`monotonicity`, :func:`infidelity`, :func:`roar_faithfulness`,
:func:`roar_monotonicity`, :func:`shapley_mse` and :func:`shapley_corr` (against ``xai.shapley`` ground truth).
Removing a feature means, as there, replacing it by its conditional law given the kept features
(``conditional="observational"``, exact with ``data.synthetic.GaussianDistribution``) or by background values
(``"interventional"``; the public default background is the mean of the evaluated rows, one point).
Other methods' metrics: :func:`local_fidelity_error` (LFR-IMN, Hammer et al.), :func:`lipschitz_discrete` and
:func:`lipschitz_continuous` (SENN's stability, Alvarez-Melis & Jaakkola 2018).

Defects of the public code, corrected here; ``compat=True`` reproduces each one that changes numbers:

1. Monotonicity stores the value after adding feature ``j`` at position ``j + 1`` (the feature's index) instead
   of at the step at which it was added, so the successive differences compare states in feature-index order and
   the metric barely separates exact from random explanations. Corrected: step order. ``compat``: feature order.
   (Also, the public starting value is the mean prediction over the evaluated rows; here it is ``v(∅)`` of the
   chosen value function, so that a row's score does not depend on the other rows. ``compat`` restores it.)
2. ROAR faithfulness correlates ``|φ_i|`` in feature order with the prediction changes in rank order (the change
   after removing each row's r-th most important feature sits at position r). An explanation ranked in index
   order is rewarded and a reversed one scores positive. Corrected: each change is put back at the position of
   the feature it removed. ``compat``: rank order.
3. The interventional path of faithfulness and monotonicity writes the row's values into the shared background
   vector (aliasing), so after the first feature the "ablated" input equals the row and the changes collapse to
   0; the background also carries over from row to row. ``compat`` reproduces that state (one background point).
4. Infidelity divides by ``E[(Iᵀφ)²]``, which is 0 for an all-zero explanation: the public value is NaN. Here the
   optimal scale is 0 then (infidelity = ``E[Δf²]``); ``compat`` returns NaN.
5. The ground truth's missing intercept: see ``xai.shapley`` (``ground_truth_shapley(..., compat=True)``).
6. The data's piecewise-constant level and per-split standardisation: see ``data.synthetic``
   (``make_synthetic(..., compat=True)``).

ROAR monotonicity has no defect (``compat`` changes nothing there). Public-code conventions kept as they are:
faithfulness uses ``|f(x) − v(¬j)|`` and Pearson correlation with ``|φ|`` (NaN → 0); monotonicity adds features
from least to most important and counts non-decreasing successive changes; infidelity perturbs with the
"noisy baseline" ``x̃ = clip(−σz, 0, 1)`` (a baseline near 0, clipped to the image range ``[0, 1]`` of the code it
was ported from) and rescales the explanation optimally. Note that infidelity compares ``Iᵀφ`` with
``f(x) − f(x − I)``: it scores gradient-like explanations (a linear model's weights have infidelity 0), not
additive attributions such as ``w ⊙ x``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial.distance import cdist

from xai.shapley import (
    DEFAULT_CHUNK_SIZE,
    VALUE_FUNCTIONS,
    ConditionalDistribution,
    Predict,
    ValueFunction,
    as_generator,
    coalition_value,
    predict_batched,
)

__all__ = [
    "METRICS",
    "Direction",
    "Explain",
    "Fit",
    "MetricInfo",
    "MetricResult",
    "faithfulness",
    "infidelity",
    "lipschitz_continuous",
    "lipschitz_discrete",
    "local_fidelity_error",
    "monotonicity",
    "roar_faithfulness",
    "roar_monotonicity",
    "row_correlation",
    "shapley_corr",
    "shapley_mse",
]

Direction = Literal["higher", "lower"]
#: Trains a fresh model: ``fit(X_train (M, d), y_train (M,)) -> predict``.
Fit = Callable[[np.ndarray, np.ndarray], Predict]
#: Explains rows: ``explain(X (M, d)) -> (M, k)`` (attributions, or any explanation vector per row).
Explain = Callable[[np.ndarray], np.ndarray]
Perturbation = Literal["noisy_baseline", "gaussian"]
Ball = Literal["box", "euclidean"]


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


def _compat_aliased_references(X: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The interventional reference the public code really uses for every row (defect 3): the previous row."""
    if background.shape[0] != 1:
        raise ValueError("compat reproduces the public interventional path, which uses one background point")
    return np.concatenate([background, X[:-1]], axis=0)


def faithfulness(
    predict: Predict,
    X: ArrayLike,
    attributions: ArrayLike,
    *,
    distribution: ConditionalDistribution | None = None,
    conditional: ValueFunction = "observational",
    background: ArrayLike | None = None,
    n_samples: int = 100,
    rng: np.random.Generator | int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    compat: bool = False,
) -> MetricResult:
    """Faithfulness (Alvarez-Melis & Jaakkola 2018, XAI-Bench's "dec" version): do large attributions mark large
    effects?

    For every row and feature ``j``: ``Δ_j = |f(x) − v_x(all features but j)|``; the row's score is the Pearson
    correlation of ``|φ|`` with ``Δ`` (0 when either is constant). Cost: ``N·d·n_samples`` model evaluations
    (observational) or ``N·d·B`` (interventional, ``B`` background rows).

    Args:
        predict: the model.
        X: rows to evaluate.
        attributions: their attributions.
        distribution: the feature distribution (observational removal).
        conditional: ``observational`` (feature ``j`` drawn from its law given the others, ``n_samples`` draws)
            or ``interventional`` (feature ``j`` replaced by the background values).
        background: interventional background rows (default: the mean of ``X``, as in the public code).
        n_samples: conditional draws per (row, feature).
        rng: random generator or seed.
        chunk_size: most rows per model call.
        compat: reproduce the public interventional aliasing (defect 3); no effect on observational removal.

    Shape:
        X ``(N, d)``, attributions ``(N, d)`` -> per_row ``(N,)``; extras ``deltas`` ``(N, d)``
    """
    X, attributions = _check_rows(X, attributions)
    _check_conditional(conditional, distribution)
    n, d = X.shape
    output = predict_batched(predict, X, chunk_size)
    drop_one = ~np.eye(d, dtype=bool)  # row j: every feature but j
    if conditional == "interventional" and compat:
        # Public state: the shared vector holds the previous row, so only feature 0 is really replaced (by the
        # previous row's value); for j > 0 the input equals x and the change is 0.
        bg = _background(X, background)
        reference = _compat_aliased_references(X, bg)
        points = np.repeat(X[:, None, :], d, axis=1)
        # With one feature the row is never written into the shared vector, which keeps the background.
        points[:, 0, 0] = reference[:, 0] if d > 1 else bg[0, 0]
        values = predict_batched(predict, points, chunk_size)
    else:
        values = coalition_value(
            predict,
            np.repeat(X, d, axis=0),
            np.tile(drop_one, (n, 1)),
            value_function=conditional,
            distribution=distribution,
            background=_background(X, background) if conditional == "interventional" else None,
            n_samples=n_samples,
            rng=rng,
            chunk_size=chunk_size,
        ).reshape(n, d)
    deltas = np.abs(output[:, None] - values)
    return _result("faithfulness", row_correlation(np.abs(attributions), deltas), deltas=deltas)


def _non_decreasing_fraction(deltas: np.ndarray) -> np.ndarray:
    """Fraction of successive pairs with ``δ_{k+1} ≥ δ_k`` per row (``(N, d)`` -> ``(N,)``)."""
    return (np.diff(deltas, axis=1) >= 0).mean(axis=1)


def monotonicity(
    predict: Predict,
    X: ArrayLike,
    attributions: ArrayLike,
    *,
    distribution: ConditionalDistribution | None = None,
    conditional: ValueFunction = "observational",
    background: ArrayLike | None = None,
    n_samples: int = 100,
    rng: np.random.Generator | int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    compat: bool = False,
) -> MetricResult:
    """Monotonicity (Luss et al. 2019, XAI-Bench's "inc" version with ``avg=True``): adding features from the least
    to the most important should change the prediction by ever larger steps.

    With ``S_k`` the ``k`` features of smallest ``|φ|`` and ``v_k = v_x(S_k)`` (``v_0 = v(∅)``, ``v_d = f(x)``),
    ``δ_k = |v_k − v_{k−1}|`` for ``k = 1..d``; the row's score is the fraction of ``k`` with ``δ_{k+1} ≥ δ_k``.
    Cost: about ``N·(d − 1)·n_samples`` model evaluations (observational).

    Args:
        predict: the model.
        X: rows to evaluate (``d >= 2``).
        attributions: their attributions.
        distribution: the feature distribution (observational removal).
        conditional: ``observational`` or ``interventional`` (see :func:`faithfulness`).
        background: interventional background rows (default: the mean of ``X``).
        n_samples: conditional draws per (row, step), also for ``v(∅)``.
        rng: random generator or seed.
        chunk_size: most rows per model call.
        compat: reproduce the public feature-index bookkeeping (defect 1), its starting value (the mean of
            ``f`` over ``X``) and its interventional aliasing (defect 3).

    Shape:
        X ``(N, d)``, attributions ``(N, d)`` -> per_row ``(N,)``; extras ``deltas`` ``(N, d)``
    """
    X, attributions = _check_rows(X, attributions)
    _check_conditional(conditional, distribution)
    n, d = X.shape
    if d < 2:
        raise ValueError(f"monotonicity needs at least 2 features, got {d=}")
    rng = as_generator(rng)
    order = np.argsort(np.abs(attributions), axis=1, kind="stable")  # least important first
    rank = np.argsort(order, axis=1, kind="stable")  # rank[i, j]: the step (0-based) at which j is added
    steps = rank[:, None, :] < np.arange(1, d + 1)[None, :, None]  # (N, d, d): S_1..S_d
    bg = _background(X, background) if conditional == "interventional" else None
    if conditional == "interventional" and compat:
        reference = _compat_aliased_references(X, bg)
        points = np.where(steps, X[:, None, :], reference[:, None, :])
        path = predict_batched(predict, points, chunk_size)
    else:
        path = coalition_value(
            predict,
            np.repeat(X, d, axis=0),
            steps.reshape(n * d, d),
            value_function=conditional,
            distribution=distribution,
            background=bg,
            n_samples=n_samples,
            rng=rng,
            chunk_size=chunk_size,
        ).reshape(n, d)
    if compat:
        start = predict_batched(predict, X, chunk_size).mean()
    elif conditional == "observational":
        start = predict_batched(predict, distribution.sample(n_samples, rng), chunk_size).mean()
    else:
        start = predict_batched(predict, bg, chunk_size).mean()
    values = np.concatenate([np.full((n, 1), start), path], axis=1)  # (N, d + 1): v_0..v_d in step order
    if compat:
        # Public bookkeeping: the value after adding feature j is stored at j + 1, whatever the step.
        stored = np.empty_like(values)
        stored[:, 0] = values[:, 0]
        np.put_along_axis(stored, order + 1, path, axis=1)
        values = stored
    deltas = np.abs(np.diff(values, axis=1))
    return _result("monotonicity", _non_decreasing_fraction(deltas), deltas=deltas)


def infidelity(
    predict: Predict,
    X: ArrayLike,
    attributions: ArrayLike,
    *,
    perturbation: Perturbation = "noisy_baseline",
    sigma: float = 0.2,
    n_perturbations: int = 1000,
    rng: np.random.Generator | int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    compat: bool = False,
) -> MetricResult:
    """Infidelity (Yeh et al. 2019) with the optimal rescaling of the explanation, as in XAI-Bench.

    For perturbations ``I`` (all features), ``Δf = f(x) − f(x − I)``, ``s = Iᵀφ``, ``β = E[Δf s]/E[s²]``; the row's
    score is ``E[(Δf − β s)²]``. Perturbations: ``noisy_baseline`` (XAI-Bench: ``x − I = clip(−σz, 0, 1)``, a
    baseline near 0) or ``gaussian`` (``I = σz``). ``z ~ N(0, I_d)``. Cost: ``N·n_perturbations`` evaluations.

    Args:
        predict: the model.
        X: rows to evaluate.
        attributions: their explanations (gradient-like ones score best, see the module notes).
        perturbation: ``noisy_baseline`` or ``gaussian``.
        sigma: the noise scale (0.2 in XAI-Bench).
        n_perturbations: perturbations per row (1000 in XAI-Bench).
        rng: random generator or seed.
        chunk_size: most rows per model call.
        compat: an all-zero explanation scores NaN, as in the public code (defect 4).

    Shape:
        X ``(N, d)``, attributions ``(N, d)`` -> per_row ``(N,)``
    """
    X, attributions = _check_rows(X, attributions)
    if perturbation not in ("noisy_baseline", "gaussian"):
        raise ValueError(f"perturbation must be 'noisy_baseline' or 'gaussian', got {perturbation!r}")
    if n_perturbations < 1 or sigma <= 0:
        raise ValueError(f"need n_perturbations >= 1 and sigma > 0, got {n_perturbations=}, {sigma=}")
    rng = as_generator(rng)
    n, d = X.shape
    output = predict_batched(predict, X, chunk_size)
    scores = np.empty(n)
    rows_per_block = max(1, chunk_size // n_perturbations)
    for start in range(0, n, rows_per_block):
        x = X[start : start + rows_per_block, None, :]
        z = rng.standard_normal((x.shape[0], n_perturbations, d))
        if perturbation == "noisy_baseline":
            perturbed = np.clip(-sigma * z, 0.0, 1.0)
            shift = x - perturbed
        else:
            shift = sigma * z
            perturbed = x - shift
        delta_f = output[start : start + x.shape[0], None] - predict_batched(predict, perturbed, chunk_size)
        s = np.einsum("npd,nd->np", shift, attributions[start : start + x.shape[0]])
        s2 = (s * s).mean(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            beta = (delta_f * s).mean(axis=1) / s2
        if not compat:
            beta = np.where(s2 > 0, beta, 0.0)
        scores[start : start + x.shape[0]] = ((delta_f - beta[:, None] * s) ** 2).mean(axis=1)
    if compat and np.isnan(scores).any():
        return MetricResult("infidelity", float("nan"), scores)
    return _result("infidelity", scores)


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


def local_fidelity_error(
    predict: Predict,
    X: ArrayLike,
    weights: ArrayLike,
    bias: ArrayLike,
    *,
    sigma: float = 0.1,
    n_samples: int = 10,
    rng: np.random.Generator | int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> MetricResult:
    """LFR-IMN's local fidelity error: how well each row's own linear model predicts the model near the row.

    ``E_ε[(f(x + ε) − (w(x)ᵀ(x + ε) + b(x)))²]`` with ``ε ~ N(0, σ² I)``. For an IMN/INN, ``w(x), b(x)`` are the
    generated weights and bias of the row (they reproduce ``f(x)`` exactly at ``ε = 0``). LFR-IMN draws one
    ``ε`` per row; the expectation is the same with ``n_samples`` draws, and the variance lower.

    Args:
        predict: the model.
        X: rows to evaluate.
        weights: each row's linear weights.
        bias: each row's intercept.
        sigma: the neighbourhood's standard deviation (0.1 in LFR-IMN).
        n_samples: draws of ``ε`` per row.
        rng: random generator or seed.
        chunk_size: most rows per model call.

    Shape:
        X ``(N, d)``, weights ``(N, d)``, bias ``(N,)`` -> per_row ``(N,)``
    """
    X, weights = _check_rows(X, weights)
    bias = np.asarray(bias, dtype=np.float64).reshape(-1)
    if bias.shape != (X.shape[0],):
        raise ValueError(f"bias has shape {bias.shape}, expected ({X.shape[0]},)")
    if sigma <= 0 or n_samples < 1:
        raise ValueError(f"need sigma > 0 and n_samples >= 1, got {sigma=}, {n_samples=}")
    rng = as_generator(rng)
    n, d = X.shape
    scores = np.empty(n)
    rows_per_block = max(1, chunk_size // n_samples)
    for start in range(0, n, rows_per_block):
        stop = min(start + rows_per_block, n)
        neighbours = X[start:stop, None, :] + sigma * rng.standard_normal((stop - start, n_samples, d))
        linear = np.einsum("nsd,nd->ns", neighbours, weights[start:stop]) + bias[start:stop, None]
        scores[start:stop] = ((predict_batched(predict, neighbours, chunk_size) - linear) ** 2).mean(axis=1)
    return _result("local_fidelity_error", scores)


def _explain(explain: Explain, X: np.ndarray, chunk_size: int) -> np.ndarray:
    """``explain`` over many rows in chunks, as ``(M, k)``."""
    parts = []
    for start in range(0, X.shape[0], chunk_size):
        block = X[start : start + chunk_size]
        values = np.asarray(explain(block), dtype=np.float64).reshape(block.shape[0], -1)
        parts.append(values)
    return np.concatenate(parts) if parts else np.empty((0, 0))


def lipschitz_discrete(
    explain: Explain,
    X: ArrayLike,
    *,
    neighbours: ArrayLike | None = None,
    radius: float = 1.0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> MetricResult:
    """SENN's discrete local Lipschitz estimate of an explanation, over dataset points near each row.

    ``L(x) = max_{z} ‖e(x) − e(z)‖₂ / ‖x − z‖₂`` over the points ``z`` of ``neighbours`` with
    ``0 < ‖x − z‖₂ ≤ radius``; NaN for a row without such a point (``extras["coverage"]`` is the fraction of rows
    with one; the reported value is the mean over those rows).

    Args:
        explain: the explainer (called once on ``X`` and once on ``neighbours``).
        X: rows to evaluate.
        neighbours: candidate points (default ``X`` itself).
        radius: the neighbourhood radius (Euclidean; SENN's code uses 1 by default).
        chunk_size: most rows per ``explain`` call and most distance entries per block.

    Shape:
        X ``(N, d)``, neighbours ``(M, d)`` -> per_row ``(N,)``
    """
    X, _ = _check_rows(X)
    if radius <= 0:
        raise ValueError(f"radius must be positive, got {radius=}")
    own = _explain(explain, X, chunk_size)
    if neighbours is None:
        Z, other = X, own
    else:
        Z, _ = _check_rows(neighbours)
        if Z.shape[1] != X.shape[1]:
            raise ValueError(f"neighbours have {Z.shape[1]} features, X has {X.shape[1]}")
        other = _explain(explain, Z, chunk_size)
    scores = np.full(X.shape[0], np.nan)
    rows_per_block = max(1, chunk_size // Z.shape[0])
    for start in range(0, X.shape[0], rows_per_block):
        stop = min(start + rows_per_block, X.shape[0])
        distance = cdist(X[start:stop], Z)
        change = cdist(own[start:stop], other)
        valid = (distance > 0) & (distance <= radius)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(valid, change / np.where(valid, distance, 1.0), -np.inf)
        best = ratio.max(axis=1)
        scores[start:stop] = np.where(np.isfinite(best), best, np.nan)
    return _result("lipschitz_discrete", scores, coverage=np.asarray(np.isfinite(scores).mean()))


def _project(candidates: np.ndarray, centre: np.ndarray, radius: float, ball: Ball) -> np.ndarray:
    """Candidates moved into the ball of the given radius around each centre (``(N, K, d)``, ``(N, d)``)."""
    offset = candidates - centre[:, None, :]
    if ball == "box":
        offset = np.clip(offset, -radius, radius)
    else:
        norm = np.linalg.norm(offset, axis=2, keepdims=True)
        offset = offset * np.minimum(1.0, radius / np.maximum(norm, 1e-300))
    return centre[:, None, :] + offset


def lipschitz_continuous(
    explain: Explain,
    X: ArrayLike,
    *,
    radius: float = 1.0,
    ball: Ball = "box",
    n_candidates: int = 50,
    n_rounds: int = 4,
    data_range: tuple[ArrayLike, ArrayLike] | None = None,
    rng: np.random.Generator | int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> MetricResult:
    """SENN's continuous local Lipschitz estimate of an explanation: ``max_{z ∈ B_ε(x)} ‖e(x) − e(z)‖₂ / ‖x − z‖₂``.

    SENN maximises it with Bayesian optimisation per row; here a batched random search does it for all rows at
    once: ``n_candidates`` uniform points in the ball, then ``n_rounds − 1`` rounds of Gaussian steps around each
    row's best point with a scale halved every round, projected back into the ball. Every round is one batched
    ``explain`` call of ``N·n_candidates`` rows. Any search gives a lower bound of the true maximum.

    Args:
        explain: the explainer.
        X: rows to evaluate.
        radius: ``ε``: the half-width of the box, or the radius of the Euclidean ball.
        ball: ``box`` (SENN's default bound type) or ``euclidean``.
        n_candidates: points per row and round.
        n_rounds: search rounds.
        data_range: ``(lower, upper)`` bounds ``(d,)`` to clip candidates to (SENN clips to the data's range).
        rng: random generator or seed.
        chunk_size: most rows per ``explain`` call.

    Shape:
        X ``(N, d)`` -> per_row ``(N,)``; extras ``argmax`` ``(N, d)`` (the best point found)
    """
    X, _ = _check_rows(X)
    if radius <= 0 or n_candidates < 1 or n_rounds < 1:
        raise ValueError(
            f"need radius > 0, n_candidates >= 1, n_rounds >= 1; got {radius=}, {n_candidates=}, {n_rounds=}"
        )
    if ball not in ("box", "euclidean"):
        raise ValueError(f"ball must be 'box' or 'euclidean', got {ball!r}")
    rng = as_generator(rng)
    n, d = X.shape
    own = _explain(explain, X, chunk_size)
    best = np.zeros(n)
    argmax = X.copy()
    for round_ in range(n_rounds):
        if round_ == 0:
            if ball == "box":
                step = rng.uniform(-radius, radius, size=(n, n_candidates, d))
            else:
                direction = rng.standard_normal((n, n_candidates, d))
                direction /= np.linalg.norm(direction, axis=2, keepdims=True)
                step = direction * radius * rng.uniform(size=(n, n_candidates, 1)) ** (1.0 / d)
            candidates = X[:, None, :] + step
        else:
            scale = radius * 0.5**round_
            candidates = argmax[:, None, :] + scale * rng.standard_normal((n, n_candidates, d))
            candidates = _project(candidates, X, radius, ball)
        if data_range is not None:
            lower, upper = (np.asarray(bound, dtype=np.float64) for bound in data_range)
            candidates = np.clip(candidates, lower, upper)
        explained = _explain(explain, candidates.reshape(-1, d), chunk_size).reshape(n, n_candidates, -1)
        distance = np.linalg.norm(candidates - X[:, None, :], axis=2)
        change = np.linalg.norm(explained - own[:, None, :], axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(distance > 0, change / np.where(distance > 0, distance, 1.0), 0.0)
        pick = ratio.argmax(axis=1)
        found = ratio[np.arange(n), pick]
        better = found > best
        best = np.where(better, found, best)
        argmax[better] = candidates[np.arange(n), pick][better]
    return _result("lipschitz_continuous", best, argmax=argmax)
