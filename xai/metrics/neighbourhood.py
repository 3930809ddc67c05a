"""Metrics over a neighbourhood of each row, from other methods' papers: :func:`local_fidelity_error` (LFR-IMN,
Hammer et al.), :func:`lipschitz_discrete` and :func:`lipschitz_continuous` (SENN's stability, Alvarez-Melis &
Jaakkola 2018). Every round of a search is one batched model or ``explain`` call."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial.distance import cdist

from xai.metrics.common import Explain, MetricResult, _check_rows, _result
from xai.shapley import DEFAULT_CHUNK_SIZE, Predict, as_generator, predict_batched

Ball = Literal["box", "euclidean"]


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
