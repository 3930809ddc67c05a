"""XAI-Bench's synthetic regression data (Liu et al. 2021), with exact Gaussian conditionals.

Features are ``X ~ N(μ, Σ)`` with ``μ = 0`` and the equicorrelated ``Σ(ρ) = (1 − ρ)·I + ρ·11ᵀ`` (unit variances,
every pairwise correlation ρ). Because ``X_F | X_S = x_S`` is again Gaussian, conditional samples and conditional
means are exact (:class:`GaussianDistribution`), which is what the benchmark's observational metrics and its
ground-truth Shapley values need (``xai.metrics``, ``xai.shapley``). Three targets (:data:`TARGETS`), noise
``σ = 0.01``, standardised, 1000 training and 100 test rows by default (:func:`make_synthetic`):

- ``gaussianLinear``: ``y = Xw``. The benchmark fixes ``w = [4, 3, 2, 1, 0]`` for ``d = 5``; for any ``d`` we use
  the same ramp ``w_j = d − 1 − j`` (distinct importances, the last feature irrelevant), which is also the ramp the
  public code's own commented-out example builds (:func:`default_linear_weights`). Any ``w`` can be passed.
- ``gaussianNonLinearAdditive``: ``y = sin x1 + |x2| + x3² + exp(−x4)`` on the first ``min(d, 4)`` features (the
  rest are irrelevant).
- ``gaussianPiecewiseConstant``: ``y = g1(x1) + g2(x2) + g3(x3)`` on the first ``min(d, 3)`` features, with
  ``g1 = sign`` (−1 below 0, +1 from 0), ``g2`` the four levels −2, −1, +1, +2 on ``(−∞, −½)``, ``[−½, 0)``,
  ``[0, ½)``, ``[½, ∞)``, and ``g3`` the truncation of ``2 cos(πx)`` toward zero with 0 replaced by 1 (as in the
  public code; almost surely this is −1 where ``cos(πx) ≤ −½`` and +1 elsewhere: ±2 occur on a null set only).

Features are 1-indexed in the formulas (``x1`` is column 0), as in the paper.

Differences from the public code (abacusai/xai-bench f0431a7), each reproduced by ``compat=True``:

1. ``g2`` of the piecewise-constant target: the public code writes its second interval as ``x ≥ 0.5 and x < 0``
   (always false) and ``np.piecewise`` returns 0 where no condition holds, so ``[−½, 0)`` maps to 0 instead of −1.
2. Standardisation: the public code standardises every generated batch by its own mean and standard deviation,
   so the training and test targets are two different functions of ``X``. Here the training statistics are
   applied to every split (and to the noise-free oracle :meth:`SyntheticData.target`), so one function maps ``X``
   to ``y`` everywhere.

``compat`` reproduces definitions, not random streams (the public code draws from NumPy's global RNG).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "DEFAULT_NOISE",
    "TARGETS",
    "GaussianDistribution",
    "SyntheticData",
    "TargetName",
    "default_linear_weights",
    "equicorrelated_covariance",
    "make_synthetic",
    "target_function",
]

TargetName = Literal["gaussianLinear", "gaussianNonLinearAdditive", "gaussianPiecewiseConstant"]
#: The benchmark's regression targets, by their XAI-Bench names.
TARGETS: tuple[TargetName, ...] = ("gaussianLinear", "gaussianNonLinearAdditive", "gaussianPiecewiseConstant")
#: Standard deviation of the additive target noise in the benchmark's configuration.
DEFAULT_NOISE = 0.01


def equicorrelated_covariance(d: int, rho: float) -> np.ndarray:
    """The covariance with unit variances and every pairwise correlation equal to ``rho``.

    Args:
        d: number of features (at least 1).
        rho: the common correlation; positive definite for ``−1/(d − 1) < rho < 1`` (the benchmark uses
            ``[0, 1)``).

    Shape:
        -> ``(d, d)``
    """
    if d < 1:
        raise ValueError(f"d must be at least 1, got {d=}")
    lower = -1.0 / (d - 1) if d > 1 else -np.inf
    if not lower < rho < 1.0:
        raise ValueError(f"rho must lie in ({lower:g}, 1) for a positive definite covariance, got {rho=}")
    return (1.0 - rho) * np.eye(d) + rho * np.ones((d, d))


def default_linear_weights(d: int) -> np.ndarray:
    """The linear target's weights ``w_j = d − 1 − j``: ``[4, 3, 2, 1, 0]`` for ``d = 5``.

    Shape:
        -> ``(d,)``
    """
    if d < 1:
        raise ValueError(f"d must be at least 1, got {d=}")
    return np.arange(d - 1, -1, -1, dtype=np.float64)


def _as_mask(mask: ArrayLike, n: int, d: int) -> np.ndarray:
    """A boolean ``(n, d)`` mask from a ``(d,)`` or ``(n, d)`` array of booleans or 0/1."""
    mask = np.asarray(mask)
    if mask.dtype != bool:
        if not np.isin(mask, (0, 1)).all():
            raise ValueError("a mask must hold booleans or 0/1 values")
        mask = mask.astype(bool)
    if mask.shape == (d,):
        return np.broadcast_to(mask, (n, d))
    if mask.shape != (n, d):
        raise ValueError(f"mask has shape {mask.shape}, expected ({d},) or ({n}, {d})")
    return mask


def _mask_groups(mask: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The distinct rows of a boolean ``(n, d)`` mask, each with the (ascending) indices of the rows holding it.

    Groups come in the lexicographic order of the distinct masks, so callers that sort rows the same way draw
    random numbers in the same order whatever the chunking.
    """
    if mask.shape[0] == 0:
        return
    unique, inverse = np.unique(mask, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(unique.shape[0] + 1))
    for g in range(unique.shape[0]):
        yield unique[g], order[bounds[g] : bounds[g + 1]]


@dataclass(frozen=True)
class _Conditional:
    """``X_F | X_S = a ~ N(μ_F + A (a − μ_S), R Rᵀ)`` for one set ``S`` (``fixed``) and its complement (``free``)."""

    fixed: np.ndarray
    free: np.ndarray
    gain: np.ndarray  # A = Σ_FS Σ_SS⁺, (|F|, |S|)
    root: np.ndarray  # R with R Rᵀ = Σ_FF − A Σ_SF, (|F|, |F|)


@dataclass(eq=False)
class GaussianDistribution:
    """A multivariate Gaussian ``N(mean, cov)`` with exact, batched conditional sampling and conditional means.

    A *mask* marks the conditioning set ``S``: ``mask[j]`` is true when feature ``j`` is known (its value is kept)
    and false when it is to be drawn or averaged given the known ones. Masks are ``(d,)`` (one set for all rows)
    or ``(N, d)`` (one set per row); rows that share a set are processed together, and the conditional parameters
    of every set are computed once and cached (at most ``2^d`` of them). Conditioning uses the pseudo-inverse of
    ``Σ_SS`` (so a singular covariance works), and ``Σ_FF − Σ_FS Σ_SS⁺ Σ_SF`` is factorised by its eigenvalues.

    This class satisfies ``xai.shapley.ConditionalDistribution``, the protocol the metrics take.

    Treat an instance as immutable: the cache assumes ``mean`` and ``cov`` never change.

    Attributes:
        mean: ``(d,)`` the mean vector.
        cov: ``(d, d)`` the covariance matrix (symmetric positive semi-definite).
    """

    mean: np.ndarray
    cov: np.ndarray
    _cache: dict[bytes, _Conditional] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=np.float64).reshape(-1)
        self.cov = np.asarray(self.cov, dtype=np.float64)
        d = self.mean.shape[0]
        if self.cov.shape != (d, d):
            raise ValueError(f"cov has shape {self.cov.shape}, expected ({d}, {d})")
        if not np.allclose(self.cov, self.cov.T):
            raise ValueError("cov must be symmetric")
        if np.linalg.eigvalsh(self.cov).min() < -1e-10 * max(1.0, np.abs(self.cov).max()):
            raise ValueError("cov must be positive semi-definite")

    @classmethod
    def equicorrelated(cls, d: int, rho: float, mean: ArrayLike | None = None) -> GaussianDistribution:
        """``N(mean, Σ(ρ))`` with :func:`equicorrelated_covariance` (mean 0 unless given)."""
        mu = np.zeros(d) if mean is None else np.asarray(mean, dtype=np.float64)
        return cls(mu, equicorrelated_covariance(d, rho))

    @property
    def d(self) -> int:
        """The number of features."""
        return int(self.mean.shape[0])

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` independent draws.

        Shape:
            -> ``(n, d)``
        """
        return self.conditional_sample(self.mean[None, :], np.zeros(self.d, dtype=bool), n, rng)[0]

    def _conditional(self, mask_row: np.ndarray) -> _Conditional:
        key = np.packbits(mask_row).tobytes()
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        fixed, free = np.flatnonzero(mask_row), np.flatnonzero(~mask_row)
        cov = self.cov
        if fixed.size:
            gain = cov[np.ix_(free, fixed)] @ np.linalg.pinv(cov[np.ix_(fixed, fixed)], hermitian=True)
            cond_cov = cov[np.ix_(free, free)] - gain @ cov[np.ix_(fixed, free)]
        else:
            gain = np.zeros((free.size, 0))
            cond_cov = cov[np.ix_(free, free)]
        eigenvalues, eigenvectors = np.linalg.eigh((cond_cov + cond_cov.T) / 2)
        root = eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))[None, :]
        result = _Conditional(fixed=fixed, free=free, gain=gain, root=root)
        self._cache[key] = result
        return result

    def _check_rows(self, X: ArrayLike) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.d:
            raise ValueError(f"X has shape {X.shape}, expected (N, {self.d})")
        return X

    def conditional_mean(self, X: ArrayLike, mask: ArrayLike) -> np.ndarray:
        """``E[X | X_S = x_S]`` for every row: known features kept, the others replaced by their conditional mean.

        Args:
            X: the rows whose known features condition.
            mask: true where a feature is known (``(d,)`` or ``(N, d)``).

        Shape:
            X ``(N, d)``, mask ``(d,)`` or ``(N, d)`` -> ``(N, d)``
        """
        X = self._check_rows(X)
        mask = _as_mask(mask, X.shape[0], self.d)
        out = X.copy()
        for mask_row, rows in _mask_groups(mask):
            cond = self._conditional(mask_row)
            if cond.free.size == 0:
                continue
            known = X[np.ix_(rows, cond.fixed)] - self.mean[cond.fixed]
            out[np.ix_(rows, cond.free)] = self.mean[cond.free] + known @ cond.gain.T
        return out

    def conditional_sample(self, X: ArrayLike, mask: ArrayLike, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        """``n_samples`` draws of ``X`` given ``X_S = x_S`` for every row (known features copied exactly).

        An all-false mask row gives unconditional draws, an all-true one ``n_samples`` copies of the row.
        Random numbers are drawn group by group in the lexicographic order of the distinct masks.

        Args:
            X: the rows whose known features condition.
            mask: true where a feature is known (``(d,)`` or ``(N, d)``).
            n_samples: draws per row.
            rng: the random generator.

        Shape:
            X ``(N, d)``, mask ``(d,)`` or ``(N, d)`` -> ``(N, n_samples, d)``
        """
        if n_samples < 1:
            raise ValueError(f"n_samples must be at least 1, got {n_samples=}")
        means = self.conditional_mean(X, mask)
        mask = _as_mask(mask, means.shape[0], self.d)
        out = np.empty((means.shape[0], n_samples, self.d))
        for mask_row, rows in _mask_groups(mask):
            cond = self._conditional(mask_row)
            if cond.free.size == 0:
                out[rows] = means[rows][:, None, :]
                continue
            # The noise lives in the free coordinates only: an embedding with zero rows for the known features
            # keeps them exact (x + 0) and makes the whole draw one product and one broadcast sum.
            embed = np.zeros((self.d, cond.free.size))
            embed[cond.free] = cond.root
            # einsum, not matmul: OpenBLAS is several times slower on such tall, thin products.
            draws = np.einsum("mf,df->md", rng.standard_normal((rows.size * n_samples, cond.free.size)), embed)
            draws = draws.reshape(rows.size, n_samples, self.d)
            draws += means[rows][:, None, :]
            if rows.size == out.shape[0]:  # one coalition for all rows (the common case): no copy
                return draws
            out[rows] = draws
        return out


def target_function(
    target: TargetName, X: ArrayLike, *, weights: ArrayLike | None = None, compat: bool = False
) -> np.ndarray:
    """The noise-free, unstandardised target ``g(X)`` of the benchmark.

    Args:
        target: one of :data:`TARGETS`.
        X: the features.
        weights: ``(d,)`` weights of ``gaussianLinear`` (default :func:`default_linear_weights`); must be
            ``None`` for the other targets.
        compat: reproduce the public code's ``g2`` of ``gaussianPiecewiseConstant`` (0 on ``[−½, 0)``).

    Shape:
        X ``(M, d)`` -> ``(M,)``
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be (M, d), got shape {X.shape}")
    d = X.shape[1]
    if target != "gaussianLinear" and weights is not None:
        raise ValueError(f"weights only apply to gaussianLinear, not {target!r}")
    if target == "gaussianLinear":
        w = default_linear_weights(d) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape != (d,):
            raise ValueError(f"weights has shape {w.shape}, expected ({d},)")
        return X @ w
    y = np.zeros(X.shape[0])
    if target == "gaussianNonLinearAdditive":
        components = (np.sin, np.abs, np.square, lambda x: np.exp(-x))
        for j, component in enumerate(components[:d]):
            y += component(X[:, j])
        return y
    if target == "gaussianPiecewiseConstant":
        if d >= 1:
            y += np.where(X[:, 0] < 0, -1.0, 1.0)
        if d >= 2:
            x = X[:, 1]
            second_level = 0.0 if compat else -1.0
            y += np.select([x < -0.5, x < 0, x < 0.5], [-2.0, second_level, 1.0], default=2.0)
        if d >= 3:
            level = np.trunc(2.0 * np.cos(np.pi * X[:, 2]))
            y += np.where(level == 0, 1.0, level)
        return y
    raise ValueError(f"target must be one of {TARGETS}, got {target!r}")


@dataclass(frozen=True)
class SyntheticData:
    """One draw of a benchmark dataset, with its generating distribution and its noise-free target.

    ``y = (g(X) + ε − y_mean) / y_scale`` with ``ε ~ N(0, noise²)``, ``g`` = :func:`target_function`.

    Attributes:
        name: the target's name (one of :data:`TARGETS`).
        rho: the common feature correlation.
        noise: the noise standard deviation before standardisation.
        distribution: the feature distribution (exact conditionals for the metrics).
        weights: ``(d,)`` the linear target's weights, ``None`` for the other targets.
        X_train: ``(n_train, d)`` training features.
        y_train: ``(n_train,)`` standardised training targets.
        X_test: ``(n_test, d)`` test features.
        y_test: ``(n_test,)`` standardised test targets.
        y_mean: the mean subtracted before scaling (of the noisy training targets).
        y_scale: the standard deviation divided by (of the noisy training targets).
        compat: whether the public code's definitions were reproduced (then ``y_test`` is standardised by its own
            statistics, which ``y_mean``/``y_scale`` do not describe).
    """

    name: TargetName
    rho: float
    noise: float
    distribution: GaussianDistribution
    weights: np.ndarray | None
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    y_mean: float
    y_scale: float
    compat: bool = False

    @property
    def d(self) -> int:
        """The number of features."""
        return self.distribution.d

    @property
    def feature_names(self) -> tuple[str, ...]:
        """``("x1", ..., "xd")``, 1-indexed as in the paper's formulas."""
        return tuple(f"x{j + 1}" for j in range(self.d))

    def target(self, X: ArrayLike) -> np.ndarray:
        """The noise-free standardised target ``(g(X) − y_mean) / y_scale``: the best possible regression model.

        Shape:
            X ``(M, d)`` -> ``(M,)``
        """
        raw = target_function(self.name, X, weights=self.weights, compat=self.compat)
        return (raw - self.y_mean) / self.y_scale


def make_synthetic(
    target: TargetName = "gaussianLinear",
    *,
    d: int = 5,
    rho: float = 0.0,
    n_train: int = 1000,
    n_test: int = 100,
    noise: float = DEFAULT_NOISE,
    weights: ArrayLike | None = None,
    seed: int | np.random.Generator = 0,
    compat: bool = False,
) -> SyntheticData:
    """Draw a training and a test set of an XAI-Bench target on ``X ~ N(0, Σ(ρ))``.

    Args:
        target: one of :data:`TARGETS`.
        d: number of features.
        rho: the common correlation, in ``[0, 1)`` for the benchmark.
        n_train: training rows.
        n_test: test rows.
        noise: standard deviation of the Gaussian noise added before standardisation.
        weights: ``(d,)`` weights of ``gaussianLinear`` (default :func:`default_linear_weights`).
        seed: a seed or generator; the training features, training noise, test features and test noise are
            drawn from it in that order.
        compat: reproduce the public code's piecewise-constant bug and per-split standardisation.

    Returns:
        The dataset, its distribution and its noise-free standardised target function.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if n_train < 2 or n_test < 1:
        raise ValueError(f"need n_train >= 2 and n_test >= 1, got {n_train=}, {n_test=}")
    if noise < 0:
        raise ValueError(f"noise must be non-negative, got {noise=}")
    if target == "gaussianLinear":
        w = default_linear_weights(d) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    elif weights is not None:
        raise ValueError(f"weights only apply to gaussianLinear, not {target!r}")
    else:
        w = None
    distribution = GaussianDistribution.equicorrelated(d, rho)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        X = distribution.sample(n, rng)
        return X, target_function(target, X, weights=w, compat=compat) + noise * rng.standard_normal(n)

    X_train, raw_train = draw(n_train)
    X_test, raw_test = draw(n_test)
    y_mean, y_scale = float(raw_train.mean()), float(raw_train.std())
    if y_scale == 0:
        raise ValueError("the training targets are constant; cannot standardise them")
    # compat: every split standardised by its own statistics, as the public code does.
    test_mean, test_scale = (float(raw_test.mean()), float(raw_test.std())) if compat else (y_mean, y_scale)
    return SyntheticData(
        name=target,
        rho=float(rho),
        noise=float(noise),
        distribution=distribution,
        weights=w,
        X_train=X_train,
        y_train=(raw_train - y_mean) / y_scale,
        X_test=X_test,
        y_test=(raw_test - test_mean) / test_scale,
        y_mean=y_mean,
        y_scale=y_scale,
        compat=compat,
    )
