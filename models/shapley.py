"""The combinatorics of Shapley values over feature coalitions, on plain arrays (no model, no data).

Coalition order: coalition ``k`` (``0 ≤ k < 2^d``) holds feature ``j`` when bit ``j`` of ``k`` is set
(:func:`coalition_masks`), so ``k = 0`` is ``∅`` and ``k = 2^d − 1`` all features. :func:`shapley_matrix` maps the
values of all coalitions to exact Shapley values; :func:`kernel_shap_without_intercept` is the public XAI-Bench
ground-truth estimator (kept for ``compat``). They sit beside the models because explainers (brute-force SHAP), the
interpretability metrics (``xai.shapley``) and training objectives all use them.
"""

from __future__ import annotations

from math import factorial

import numpy as np
from numpy.typing import ArrayLike

#: Exact enumeration costs ``2^d`` coalitions per row; refuse more features than this.
MAX_SHAPLEY_FEATURES = 16


def coalition_masks(d: int) -> np.ndarray:
    """All ``2^d`` coalitions: row ``k`` holds feature ``j`` when bit ``j`` of ``k`` is set.

    Shape:
        -> ``(2^d, d)`` boolean
    """
    if not 1 <= d <= MAX_SHAPLEY_FEATURES:
        raise ValueError(f"exact enumeration supports 1 to {MAX_SHAPLEY_FEATURES} features, got {d=}")
    return (np.arange(1 << d)[:, None] >> np.arange(d)[None, :]) & 1 == 1


def shapley_matrix(d: int) -> np.ndarray:
    """The linear map from coalition values to Shapley values: ``φ = v @ shapley_matrix(d)``.

    ``φ_j = Σ_{S ∌ j} |S|!(d − |S| − 1)!/d! · (v(S ∪ {j}) − v(S))``: coalition ``k`` contributes
    ``+w(|S_k| − 1)`` to every feature it holds and ``−w(|S_k|)`` to every feature it lacks.

    Shape:
        -> ``(2^d, d)``
    """
    masks = coalition_masks(d)
    sizes = masks.sum(axis=1)
    weight = np.array([factorial(s) * factorial(d - s - 1) / factorial(d) for s in range(d)] + [0.0])
    return np.where(masks, weight[np.maximum(sizes - 1, 0)][:, None], -weight[sizes][:, None])


def shapley_from_values(values: ArrayLike) -> np.ndarray:
    """Exact Shapley values from the values of all coalitions (order of :func:`coalition_masks`).

    Efficiency holds exactly: ``φ.sum(1) == values[:, -1] − values[:, 0]``.

    Shape:
        values ``(N, 2^d)`` -> ``(N, d)``
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"values must be (N, 2^d), got shape {values.shape}")
    d = int(values.shape[1]).bit_length() - 1
    if values.shape[1] != 1 << d:
        raise ValueError(f"values has {values.shape[1]} columns, not a power of two")
    return values @ shapley_matrix(d)


def kernel_shap_without_intercept(values: ArrayLike) -> np.ndarray:
    """The public XAI-Bench ground-truth estimator (kept for ``compat``): KernelSHAP least squares, no intercept.

    Weighted least squares of ``v(S)`` on the coalition indicators (no constant column), Shapley-kernel weights
    ``(d − 1)/(C(d, |S|)·|S|·(d − |S|))`` and ``10⁶`` for the empty and full coalitions. Equals the Shapley values
    only when ``v(∅) = 0``; otherwise each value is off by about ``v(∅)/d``.

    Shape:
        values ``(N, 2^d)`` -> ``(N, d)``
    """
    values = np.asarray(values, dtype=np.float64)
    d = int(values.shape[1]).bit_length() - 1
    if values.ndim != 2 or values.shape[1] != 1 << d:
        raise ValueError(f"values must be (N, 2^d), got shape {values.shape}")
    Z = coalition_masks(d).astype(np.float64)
    sizes = Z.sum(axis=1)
    binom = np.array([factorial(d) / (factorial(s) * factorial(d - s)) for s in range(d + 1)])
    inner = (sizes > 0) & (sizes < d)
    weights = np.full(Z.shape[0], 1e6)
    s = sizes[inner]
    weights[inner] = (d - 1) / (binom[s.astype(int)] * s * (d - s))
    ZtW = Z.T * weights[None, :]
    solve = np.linalg.inv(ZtW @ Z) @ ZtW  # (d, 2^d), the same for every row
    return values @ solve.T
