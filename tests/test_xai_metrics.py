"""Tests of ``xai/``: exact Shapley values, the value functions and every benchmark metric.

Each check has an independent answer: closed forms (Shapley values of unanimity and linear games, Gaussian
conditional expectations, the local fidelity of a quadratic model, Lipschitz constants of linear maps),
hand-computed metric values, or behaviour that a defect of the public XAI-Bench code breaks (one test per
corrected defect, each also checking that ``compat=True`` reproduces the public behaviour).
"""

from __future__ import annotations

import numpy as np
import pytest

import xai
from data.synthetic import GaussianDistribution
from xai import (
    METRICS,
    coalition_masks,
    coalition_value,
    faithfulness,
    ground_truth_shapley,
    infidelity,
    kernel_shap_without_intercept,
    lipschitz_continuous,
    lipschitz_discrete,
    local_fidelity_error,
    monotonicity,
    roar_faithfulness,
    roar_monotonicity,
    row_correlation,
    shapley_corr,
    shapley_from_values,
    shapley_mse,
)

W = np.array([4.0, 3.0, 2.0, 1.0, 0.0])  # the benchmark's linear weights


def _linear(weights: np.ndarray, intercept: float = 0.0):
    return lambda X: X @ weights + intercept


def _fit_least_squares(X: np.ndarray, y: np.ndarray):
    """The ``fit`` of the ROAR metrics: ordinary least squares with an intercept."""
    coef = np.linalg.lstsq(np.column_stack([X, np.ones(len(X))]), y, rcond=None)[0]
    return _linear(coef[:-1], coef[-1])


def _reverse_ranks(phi: np.ndarray) -> np.ndarray:
    """Per row, the same magnitudes with the ranking reversed (the most important feature gets the smallest)."""
    magnitude = np.abs(phi)
    out = np.empty_like(magnitude)
    np.put_along_axis(out, np.argsort(magnitude, axis=1), np.sort(magnitude, axis=1)[:, ::-1], axis=1)
    return out


@pytest.fixture(scope="module")
def linear_problem():
    """ρ = 0 Gaussian data, a least-squares model of y = Xw + noise, and its exact, reversed and random explanations."""
    dist = GaussianDistribution.equicorrelated(5, 0.0)
    rng = np.random.default_rng(0)
    X_train, X = dist.sample(600, rng), dist.sample(100, rng)
    y_train = X_train @ W + 0.01 * rng.standard_normal(600)
    predict = _fit_least_squares(X_train, y_train)
    weights = predict(np.eye(5)) - predict(np.zeros((1, 5)))
    exact, exact_train = weights * X, weights * X_train  # exact Shapley values (independent features, mean 0)
    return {
        "dist": dist,
        "X": X,
        "X_train": X_train,
        "y_train": y_train,
        "predict": predict,
        "weights": weights,
        "exact": (exact, exact_train),
        "reversed": (_reverse_ranks(exact), _reverse_ranks(exact_train)),
        "random": (rng.standard_normal(X.shape), rng.standard_normal(X_train.shape)),
    }


def test_metrics_table_lists_every_metric_with_its_direction():
    helpers = {"row_correlation"}
    metric_functions = {
        name
        for name in xai.metrics.__all__
        if name[0].islower() and callable(getattr(xai.metrics, name)) and name not in helpers
    }
    assert set(METRICS) == metric_functions
    assert all(info.direction in ("higher", "lower") and info.description for info in METRICS.values())
    assert METRICS["infidelity"].direction == "lower" and METRICS["faithfulness"].direction == "higher"
    result = shapley_mse(np.zeros((3, 2)), np.ones((3, 2)))
    assert result.name == "shapley_mse" and result.direction == "lower"


def test_shapley_values_of_unanimity_and_additive_games():
    d = 4
    masks = coalition_masks(d)
    assert masks.shape == (16, 4) and not masks[0].any() and masks[-1].all() and masks[5].tolist() == [1, 0, 1, 0]
    # Unanimity game of T = {0, 2}: v(S) = 1 if T ⊆ S; its Shapley value splits 1 equally over T.
    unanimity = (masks[:, 0] & masks[:, 2]).astype(float)[None, :]
    assert np.allclose(shapley_from_values(unanimity), [[0.5, 0.0, 0.5, 0.0]])
    # Additive game plus a constant: v(S) = c + Σ_{j∈S} a_j gives φ = a.
    a = np.array([1.0, -2.0, 0.5, 3.0])
    additive = (7.0 + masks @ a)[None, :]
    phi = shapley_from_values(additive)
    assert np.allclose(phi, a[None, :])
    assert np.isclose(phi.sum(), additive[0, -1] - additive[0, 0])  # efficiency with the intercept
    # The public estimator agrees when v(∅) = 0 and is shifted by v(∅)/d otherwise.
    assert np.allclose(kernel_shap_without_intercept(unanimity), shapley_from_values(unanimity), atol=1e-4)
    assert np.allclose(kernel_shap_without_intercept(additive), a + 7.0 / d, atol=1e-4)


def test_interventional_ground_truth_of_a_linear_model_is_w_times_the_centred_row():
    rng = np.random.default_rng(1)
    background, X = rng.standard_normal((200, 5)), rng.standard_normal((6, 5))
    truth = ground_truth_shapley(_linear(W, 2.0), X, value_function="interventional", background=background)
    assert np.allclose(truth.values, W * (X - background.mean(axis=0)), atol=1e-10)
    assert truth.efficiency_gap() < 1e-10
    assert np.allclose(truth.base_value, background.mean(axis=0) @ W + 2.0)


def test_observational_ground_truth_matches_the_gaussian_closed_form():
    dist = GaussianDistribution.equicorrelated(5, 0.5)
    X = dist.sample(6, np.random.default_rng(2))
    truth = ground_truth_shapley(_linear(W), X, distribution=dist, n_samples=20_000, rng=3)
    # For a linear model v(S) = w·E[X | X_S = x_S] exactly: Shapley values of the exact coalition values.
    exact_values = np.stack([dist.conditional_mean(X, mask) @ W for mask in coalition_masks(5)], axis=1)
    exact = shapley_from_values(exact_values)
    assert np.abs(truth.values - exact).mean() < 0.02 and np.abs(truth.values - exact).max() < 0.08
    assert np.abs(exact[:, 4]).max() > 0.2  # the irrelevant feature gets credit through its correlations
    assert truth.efficiency_gap() < 1e-10


def test_ground_truth_keeps_efficiency_when_the_model_mean_is_not_zero():
    # Public defect: the no-intercept regression forces Σφ = f(x) and shifts every value by E[f]/d.
    rng = np.random.default_rng(4)
    background, X = rng.standard_normal((300, 5)), rng.standard_normal((8, 5))
    model = _linear(W, 3.0)
    truth = ground_truth_shapley(model, X, value_function="interventional", background=background)
    mean_prediction = model(background).mean()
    assert np.allclose(truth.values.sum(axis=1), model(X) - mean_prediction, atol=1e-10)
    public = ground_truth_shapley(model, X, value_function="interventional", background=background, compat=True)
    assert np.allclose(public.values.sum(axis=1), model(X), atol=1e-3)
    assert np.allclose(public.values - truth.values, mean_prediction / 5, atol=1e-3)


def test_model_calls_are_batched_and_chunking_does_not_change_values():
    dist = GaussianDistribution.equicorrelated(5, 0.3)
    X = dist.sample(30, np.random.default_rng(5))
    sizes = []

    def model(points):
        sizes.append(len(points))
        return np.sin(points) @ W

    ground_truth_shapley(model, X, distribution=dist, n_samples=1000, rng=0, chunk_size=20_000)
    assert max(sizes) <= 20_000
    # 30 rows × 30 coalitions × 1000 samples in blocks of 20 rows, plus f(x) and v(∅): no per-row calls.
    assert len(sizes) <= 30 * 30 * 1000 // 20_000 + 2
    masks = np.random.default_rng(6).random((30, 5)) < 0.5
    big = coalition_value(model, X, masks, distribution=dist, n_samples=300, rng=7, chunk_size=1 << 20)
    small = coalition_value(model, X, masks, distribution=dist, n_samples=300, rng=7, chunk_size=700)
    assert np.allclose(big, small, rtol=0, atol=1e-12)


def test_faithfulness_rewards_exact_and_penalises_reversed_explanations(linear_problem):
    p = linear_problem
    scores = {
        kind: faithfulness(p["predict"], p["X"], p[kind][0], distribution=p["dist"], rng=0).value
        for kind in ("exact", "reversed", "random")
    }
    assert scores["exact"] > 0.95 and scores["reversed"] < -0.5 and abs(scores["random"]) < 0.2


def test_monotonicity_counts_steps_in_the_order_features_are_added(linear_problem):
    # Hand-computed case (interventional, baseline 0, one row x = 1): adding features from the least important,
    # the changes are 0, 1, 2, 3, 4 -> every step non-decreasing. The public bookkeeping stores the values by
    # feature index ([10, 10, 6, 3, 1, 0]), whose changes 0, 4, 3, 2, 1 give 1 of 4.
    model, x = _linear(W), np.ones((1, 5))
    kwargs = {"conditional": "interventional", "background": np.zeros(5)}
    assert monotonicity(model, x, W[None, :], **kwargs).value == 1.0
    assert monotonicity(model, x, W[None, :], compat=True, **kwargs).value == 0.25
    # On data: the exact explanation beats random clearly once corrected, not with the public bookkeeping.
    p = linear_problem
    score = {
        (kind, compat): monotonicity(
            p["predict"], p["X"], p[kind][0], distribution=p["dist"], rng=0, compat=compat
        ).value
        for kind in ("exact", "random")
        for compat in (False, True)
    }
    assert score["exact", False] > score["random", False] + 0.2
    assert abs(score["exact", True] - score["random", True]) < 0.1


def test_roar_faithfulness_scores_a_reversed_explanation_negative(linear_problem):
    p = linear_problem

    def score(kind: str, compat: bool) -> float:
        phi, phi_train = p[kind]
        return roar_faithfulness(
            _fit_least_squares,
            p["predict"],
            p["X_train"],
            p["y_train"],
            phi_train,
            p["X"],
            phi,
            distribution=p["dist"],
            compat=compat,
        ).value

    assert score("exact", False) > 0.9
    assert score("reversed", False) < -0.5
    assert abs(score("random", False)) < 0.2
    assert score("reversed", True) > 0.3  # the public rank-order correlation rewards the reversed ranking


def test_interventional_removal_does_not_alias_the_background():
    # Linear model, background point b: removing feature j changes the output by exactly |w_j (x_j − b_j)|,
    # so the exact explanation w ⊙ (x − b) has faithfulness 1 in every row.
    rng = np.random.default_rng(8)
    X, b = rng.standard_normal((20, 5)), rng.standard_normal(5)
    model, phi = _linear(W), W * (X - b)
    kwargs = {"conditional": "interventional", "background": b}
    result = faithfulness(model, X, phi, **kwargs)
    assert np.allclose(result.extras["deltas"], np.abs(phi)) and np.allclose(result.per_row, 1.0)
    # Public path: the shared vector holds the previous row, so only feature 0 moves (to the previous row's x1).
    public = faithfulness(model, X, phi, compat=True, **kwargs)
    previous = np.concatenate([b[None, :], X[:-1]])
    assert np.allclose(public.extras["deltas"][:, 0], np.abs(W[0] * (X[:, 0] - previous[:, 0])))
    assert np.all(public.extras["deltas"][:, 1:] == 0)
    assert public.value < 0.9


def test_infidelity_of_a_linear_model_and_of_an_all_zero_explanation():
    rng = np.random.default_rng(9)
    X = rng.standard_normal((30, 5))
    model = _linear(W, 1.0)
    gradient = np.tile(W, (30, 1))  # Iᵀw = f(x) − f(x − I) exactly for every perturbation
    for perturbation in ("noisy_baseline", "gaussian"):
        assert infidelity(model, X, gradient, perturbation=perturbation, n_perturbations=200, rng=0).value < 1e-20
        assert infidelity(model, X, rng.standard_normal((30, 5)), perturbation=perturbation, rng=0).value > 0.1
    # Public defect: β = 0/0 for an all-zero explanation; corrected, β = 0 and the score is E[Δf²].
    zero = infidelity(model, X, np.zeros((30, 5)), perturbation="gaussian", sigma=0.2, n_perturbations=4000, rng=0)
    assert np.allclose(zero.per_row, 0.04 * (W @ W), rtol=0.1)  # E[(wᵀI)²] = σ²‖w‖² for I ~ N(0, σ²I)
    assert np.isnan(infidelity(model, X, np.zeros((30, 5)), rng=0, compat=True).value)


def test_roar_monotonicity_orders_exact_above_random_above_reversed(linear_problem):
    p = linear_problem
    scores = {}
    for kind in ("exact", "random", "reversed"):
        phi, phi_train = p[kind]
        scores[kind] = roar_monotonicity(
            _fit_least_squares, p["X_train"], p["y_train"], phi_train, p["X"], phi, distribution=p["dist"]
        )
        assert scores[kind].extras["deltas"].shape == (100, 5)
    assert scores["exact"].value > 0.8 > scores["random"].value > 0.3 > scores["reversed"].value


def test_shapley_mse_and_correlation_values():
    truth = np.array([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0], [2.0, 2.0, 2.0]])
    attributions = np.array([[1.0, 2.0, 4.0], [0.0, -1.0, 0.0], [1.0, 2.0, 3.0]])
    mse = shapley_mse(attributions, truth)
    assert np.allclose(mse.per_row, [1 / 3, 4 / 3, 2 / 3]) and np.isclose(mse.value, 7 / 9)
    corr = shapley_corr(attributions, truth)
    assert np.isclose(corr.per_row[0], np.corrcoef(attributions[0], truth[0])[0, 1])
    assert corr.per_row[1] == pytest.approx(-1.0) and corr.per_row[2] == 0.0  # a constant row counts as 0
    assert shapley_corr(truth[:2], truth[:2]).value == pytest.approx(1.0)
    # Per-row scale: a tiny row still correlates, a spread that is only rounding noise does not.
    tiny = np.array([[1e-13, 2e-13, 0.0]])
    assert row_correlation(tiny, tiny)[0] == pytest.approx(1.0)
    assert row_correlation(np.array([[1.0, 1.0 + 1e-15, 1.0]]), np.array([[1.0, 2.0, 3.0]]))[0] == 0.0
    with pytest.raises(ValueError, match="must be equal"):
        shapley_mse(attributions, truth[:2])


def test_local_fidelity_error_closed_forms():
    rng = np.random.default_rng(10)
    X = rng.standard_normal((50, 4))
    # A linear model explained by its own weights is perfectly faithful everywhere.
    exact = local_fidelity_error(_linear(W[:4], 0.5), X, np.tile(W[:4], (50, 1)), np.full(50, 0.5), rng=0)
    assert exact.value < 1e-20
    # f(x) = ‖x‖² with its tangent at x (w = 2x, b = −‖x‖²): the error is (Σ ε_j²)², mean σ⁴(d² + 2d).
    tangent = local_fidelity_error(
        lambda Z: (Z**2).sum(axis=1), X, 2 * X, -(X**2).sum(axis=1), sigma=0.1, n_samples=400, rng=0
    )
    assert tangent.value == pytest.approx(0.1**4 * (16 + 8), rel=0.05)
    assert METRICS[tangent.name].direction == "lower"


def test_lipschitz_discrete_uses_neighbours_within_the_radius():
    X = np.array([[0.0, 0.0], [0.5, 0.0], [0.0, 0.8], [10.0, 10.0]])

    def explain(Z):  # anisotropic linear map: ratio 3 along x1, 1 along x2
        return Z * np.array([3.0, 1.0])

    result = lipschitz_discrete(explain, X, radius=1.0)
    # Row 0 sees rows 1 (ratio 3) and 2 (ratio 1); row 1 sees 0 (3) and 2 (distance 0.94 < 1); row 3 is alone.
    ratio_12 = np.linalg.norm(explain(X[1:2]) - explain(X[2:3])) / np.linalg.norm(X[1] - X[2])
    assert np.allclose(result.per_row[:3], [3.0, 3.0, max(1.0, ratio_12)])
    assert np.isnan(result.per_row[3]) and result.extras["coverage"] == 0.75
    assert np.isclose(result.value, np.mean([3.0, 3.0, max(1.0, ratio_12)]))
    far = lipschitz_discrete(explain, X[:1], neighbours=X[3:], radius=1.0)
    assert np.isnan(far.value)


@pytest.mark.parametrize("ball", ["box", "euclidean"])
def test_lipschitz_continuous_approaches_the_constant_of_a_linear_map(ball):
    X = np.random.default_rng(11).standard_normal((20, 3))
    scale = np.array([3.0, 1.0, 1.0])
    result = lipschitz_continuous(lambda Z: Z * scale, X, radius=0.5, ball=ball, rng=0)
    assert np.all(result.per_row <= 3.0 + 1e-9) and result.per_row.min() > 2.9
    offset = result.extras["argmax"] - X
    bound = np.abs(offset).max(axis=1) if ball == "box" else np.linalg.norm(offset, axis=1)
    assert np.all(bound <= 0.5 + 1e-12)
    low, high = result.confidence_interval()
    assert low <= result.value <= high
