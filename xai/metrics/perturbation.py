"""Metrics that remove or perturb features of the explained rows, without retraining: :func:`faithfulness`,
:func:`monotonicity` and :func:`infidelity` (XAI-Bench's definitions, corrected; ``compat`` reproduces the
public code's defects 1, 3 and 4 listed in ``xai.metrics``).

Removing a feature means, as in XAI-Bench, replacing it by its conditional law given the kept features
(``conditional="observational"``, exact with ``data.synthetic.GaussianDistribution``) or by background values
(``"interventional"``; the public default background is the mean of the evaluated rows, one point). Model calls
are batched: all rows × samples are flattened and sent in chunks of ``chunk_size`` rows.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from xai.metrics.common import (
    MetricResult,
    _background,
    _check_conditional,
    _check_rows,
    _non_decreasing_fraction,
    _result,
    row_correlation,
)
from xai.shapley import (
    DEFAULT_CHUNK_SIZE,
    ConditionalDistribution,
    Predict,
    ValueFunction,
    as_generator,
    coalition_value,
    predict_batched,
)

Perturbation = Literal["noisy_baseline", "gaussian"]


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
