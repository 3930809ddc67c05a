"""Tests of ``data/synthetic.py``: XAI-Bench's Gaussian data, its targets and the exact Gaussian conditionals.

The conditionals are checked against an independent closed form (for equicorrelated ``Σ``,
``E[X_j | X_S = a] = μ_j + ρ/(1 + (s − 1)ρ) · Σ_{k∈S}(a_k − μ_k)``) and against Monte Carlo; the targets against
their formulas; the two corrected defects (piecewise-constant level, per-split standardisation) against the
public behaviour that ``compat=True`` reproduces.
"""

from __future__ import annotations

import numpy as np
import pytest

from data.synthetic import (
    TARGETS,
    GaussianDistribution,
    default_linear_weights,
    equicorrelated_covariance,
    make_synthetic,
    target_function,
)


def _closed_form_conditional(mean: np.ndarray, rho: float, x: np.ndarray, mask: np.ndarray):
    """Conditional mean vector, variance and covariance of the free features under equicorrelated ``Σ``."""
    s = int(mask.sum())
    shrink = rho / (1 + (s - 1) * rho) if s else 0.0
    cond_mean = np.where(mask, x, mean + shrink * (x - mean)[mask].sum())
    variance = 1 - s * rho**2 / (1 + (s - 1) * rho) if s else 1.0
    covariance = rho - s * rho**2 / (1 + (s - 1) * rho) if s else rho
    return cond_mean, variance, covariance


def test_equicorrelated_covariance_values_and_valid_range():
    cov = equicorrelated_covariance(4, 0.3)
    assert np.allclose(np.diag(cov), 1.0)
    assert np.allclose(cov[~np.eye(4, dtype=bool)], 0.3)
    assert np.array_equal(equicorrelated_covariance(3, 0.0), np.eye(3))
    assert np.linalg.eigvalsh(equicorrelated_covariance(5, 0.99)).min() > 0
    for rho in (1.0, 1.5, -0.25, -0.5):  # -1/(d-1) = -0.25 is the lower limit for d = 5
        with pytest.raises(ValueError, match="rho"):
            equicorrelated_covariance(5, rho)
    with pytest.raises(ValueError, match="d must be"):
        equicorrelated_covariance(0, 0.5)


def test_default_linear_weights_extend_the_benchmark_ramp():
    assert default_linear_weights(5).tolist() == [4, 3, 2, 1, 0]
    assert default_linear_weights(3).tolist() == [2, 1, 0]
    assert default_linear_weights(1).tolist() == [0]
    data = make_synthetic("gaussianLinear", d=7, n_train=50, n_test=5)
    assert data.weights.tolist() == [6, 5, 4, 3, 2, 1, 0]


def test_targets_follow_their_formulas_for_any_d():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 6))
    x1, x2, x3, x4 = X[:, :4].T
    expected = np.sin(x1) + np.abs(x2) + x3**2 + np.exp(-x4)
    assert np.allclose(target_function("gaussianNonLinearAdditive", X), expected)  # x5, x6 irrelevant
    assert np.allclose(target_function("gaussianNonLinearAdditive", X[:, :2]), np.sin(x1) + np.abs(x2))
    assert np.allclose(target_function("gaussianLinear", X), X @ [5, 4, 3, 2, 1, 0])
    assert np.allclose(target_function("gaussianLinear", X[:, :2], weights=[1.0, -2.0]), x1 - 2 * x2)
    with pytest.raises(ValueError, match="weights"):
        target_function("gaussianLinear", X, weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="only apply"):
        target_function("gaussianNonLinearAdditive", X, weights=np.ones(6))
    with pytest.raises(ValueError, match="target must be"):
        target_function("gaussianQuadratic", X)  # type: ignore[arg-type]


def test_piecewise_constant_has_its_four_levels_and_compat_reproduces_the_bug():
    # g2 on x2 alone (x1 = 0.5 -> g1 = +1, x3 = 0 -> g3 = 2): the four intervals of the intended definition.
    x2 = np.array([-1.0, -0.25, 0.25, 1.0])
    X = np.column_stack([np.full(4, 0.5), x2, np.zeros(4)])
    assert target_function("gaussianPiecewiseConstant", X).tolist() == [1.0, 2.0, 4.0, 5.0]  # g2 = -2, -1, 1, 2
    # The public code's always-false second condition leaves [-0.5, 0) at 0.
    assert target_function("gaussianPiecewiseConstant", X, compat=True).tolist() == [1.0, 3.0, 4.0, 5.0]
    # g1 is the sign split at 0, g3 = trunc(2 cos(pi x)) with 0 -> 1: -1 where cos(pi x) <= -1/2.
    X = np.array([[-0.1, 0.7, 0.9], [0.0, 0.7, 0.4], [0.3, 0.7, 0.0]])
    assert target_function("gaussianPiecewiseConstant", X).tolist() == [-1 + 2 - 1, 1 + 2 + 1, 1 + 2 + 2]
    # Only the first three features matter.
    Y = np.column_stack([X, np.full((3, 2), 9.0)])
    assert np.array_equal(
        target_function("gaussianPiecewiseConstant", Y), target_function("gaussianPiecewiseConstant", X)
    )


def test_make_synthetic_defaults_are_the_benchmark_and_seeded():
    data = make_synthetic()
    assert data.name == "gaussianLinear" and data.d == 5 and data.rho == 0.0 and data.noise == 0.01
    assert data.X_train.shape == (1000, 5) and data.y_train.shape == (1000,)
    assert data.X_test.shape == (100, 5) and data.y_test.shape == (100,)
    assert data.feature_names == ("x1", "x2", "x3", "x4", "x5")
    again, other = make_synthetic(seed=0), make_synthetic(seed=1)
    assert np.array_equal(again.X_train, data.X_train) and np.array_equal(again.y_test, data.y_test)
    assert not np.allclose(other.X_train, data.X_train)
    assert abs(data.y_train.mean()) < 1e-12 and abs(data.y_train.std() - 1) < 1e-12
    # The features follow Σ(ρ).
    corr = make_synthetic(rho=0.75, n_train=20_000, n_test=1).X_train
    assert np.allclose(np.cov(corr.T), equicorrelated_covariance(5, 0.75), atol=0.04)


@pytest.mark.parametrize("target", TARGETS)
def test_one_standardisation_for_all_splits_and_compat_standardises_each_split(target):
    data = make_synthetic(target, rho=0.5, n_train=500, n_test=40, seed=3)
    noise_scale = 5 * data.noise / data.y_scale  # five standard deviations of the standardised noise
    # One function maps X to y on both splits: the noise-free oracle matches both up to the noise.
    assert np.abs(data.target(data.X_train) - data.y_train).max() < noise_scale
    assert np.abs(data.target(data.X_test) - data.y_test).max() < noise_scale
    # The public behaviour: the test split is standardised by its own mean and std.
    compat = make_synthetic(target, rho=0.5, n_train=500, n_test=40, seed=3, compat=True)
    assert abs(compat.y_test.mean()) < 1e-12 and abs(compat.y_test.std() - 1) < 1e-12
    if target != "gaussianPiecewiseConstant":  # same definitions: only the test standardisation differs
        assert np.allclose(compat.y_train, data.y_train)
        assert not np.allclose(compat.y_test, data.y_test, atol=1e-3)


def test_make_synthetic_rejects_bad_arguments():
    with pytest.raises(ValueError, match="target must be"):
        make_synthetic("mixtureLinear")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rho"):
        make_synthetic(rho=1.0)
    with pytest.raises(ValueError, match="n_train"):
        make_synthetic(n_train=1)
    with pytest.raises(ValueError, match="only apply"):
        make_synthetic("gaussianPiecewiseConstant", weights=np.ones(5))


def test_conditional_mean_matches_the_equicorrelated_closed_form_row_by_row():
    rho, mean = 0.6, np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    dist = GaussianDistribution.equicorrelated(5, rho, mean=mean)
    rng = np.random.default_rng(0)
    X = dist.sample(64, rng)
    masks = rng.random((64, 5)) < 0.5  # every row its own coalition, all processed in one call
    masks[0], masks[1] = False, True
    got = dist.conditional_mean(X, masks)
    expected = np.array([_closed_form_conditional(mean, rho, x, m)[0] for x, m in zip(X, masks, strict=True)])
    assert np.allclose(got, expected, atol=1e-10)
    assert np.array_equal(got[masks], X[masks])  # known features are kept exactly
    # A (d,) 0/1 mask broadcasts to every row.
    one = np.array([1, 0, 1, 0, 0])
    assert np.allclose(dist.conditional_mean(X, one), dist.conditional_mean(X, np.tile(one.astype(bool), (64, 1))))
    with pytest.raises(ValueError, match="mask"):
        dist.conditional_mean(X, np.ones((3, 5), dtype=bool))
    with pytest.raises(ValueError, match="0/1"):
        dist.conditional_mean(X, np.full(5, 2))


def test_conditional_samples_have_the_closed_form_moments():
    rho = 0.5
    dist = GaussianDistribution.equicorrelated(5, rho)
    x = np.array([[1.5, -0.5, 2.0, 0.3, -1.0], [0.2, 0.1, -0.4, 1.0, 0.0]])
    masks = np.array([[True, True, False, False, False], [False, False, False, False, True]])
    draws = dist.conditional_sample(x, masks, 40_000, np.random.default_rng(1))
    assert draws.shape == (2, 40_000, 5)
    for row in range(2):
        cond_mean, variance, covariance = _closed_form_conditional(np.zeros(5), rho, x[row], masks[row])
        free = ~masks[row]
        assert np.all(draws[row][:, masks[row]] == x[row, masks[row]])  # known features copied exactly
        assert np.allclose(draws[row].mean(axis=0), cond_mean, atol=0.02)
        cov = np.cov(draws[row][:, free].T)
        expected = np.full(cov.shape, covariance)
        np.fill_diagonal(expected, variance)
        assert np.allclose(cov, expected, atol=0.02)


def test_conditional_mean_of_a_general_gaussian_agrees_with_monte_carlo_regression():
    # A random covariance: the conditional mean is the least-squares regression of X_F on X_S in the population.
    rng = np.random.default_rng(2)
    factor = rng.standard_normal((4, 4))
    mean = np.array([0.5, -1.0, 2.0, 0.0])
    dist = GaussianDistribution(mean, factor @ factor.T + 0.5 * np.eye(4))
    sample = dist.sample(200_000, rng)
    fixed, free = [0, 2], [1, 3]
    design = np.column_stack([np.ones(len(sample)), sample[:, fixed]])
    coef = np.linalg.lstsq(design, sample[:, free], rcond=None)[0]
    points = rng.standard_normal((5, 4)) + mean
    mask = np.array([True, False, True, False])
    expected = np.column_stack([np.ones(5), points[:, fixed]]) @ coef
    scale = np.sqrt(np.diag(dist.cov))[free]
    assert np.allclose(dist.conditional_mean(points, mask)[:, free] / scale, expected / scale, atol=0.03)


def test_edge_coalitions_give_the_marginal_law_and_copies():
    dist = GaussianDistribution.equicorrelated(3, 0.3)
    x = np.array([[0.4, -1.0, 2.0]])
    rng = np.random.default_rng(3)
    empty = dist.conditional_sample(x, np.zeros(3, dtype=bool), 30_000, rng)[0]
    assert np.allclose(empty.mean(axis=0), 0.0, atol=0.03)
    assert np.allclose(np.cov(empty.T), dist.cov, atol=0.03)
    full = dist.conditional_sample(x, np.ones(3, dtype=bool), 5, rng)
    assert np.array_equal(full, np.repeat(x[:, None, :], 5, axis=1))
    assert np.array_equal(dist.conditional_mean(x, np.ones(3, dtype=bool)), x)
    assert np.allclose(dist.conditional_mean(x, np.zeros(3, dtype=bool)), 0.0)
    with pytest.raises(ValueError, match="positive semi-definite"):
        GaussianDistribution(np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]]))
