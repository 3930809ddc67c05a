"""Tests of the post-hoc explainers (``explainers.POSTHOC_EXPLAINERS``): one per module, each against an answer
computed independently.

Oracles: on a linear model ``f(x) = w·x + b`` the interventional Shapley value of feature ``j`` over background
rows is ``w_j (x_j − mean_b b_j)`` (brute-force SHAP, shap's exact explainer, KernelSHAP even with sampled
coalitions, BreakDown in any order, MAPLE's local ridge); integrated gradients of a linear model are
``w (x − baseline)`` and complete (``Σ IG = f(x) − f(baseline)``) on any network; a one-hot block must move as
one when features are removed; LIME ranks a linear model's features by ``|w|``; random attributions are seeded
and uncorrelated with the truth. The last test fails when an explainer of the table has no test here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explainers import POSTHOC_COLORS, POSTHOC_EXPLAINERS, POSTHOC_LABELS
from explainers.breakdown import BreakDown
from explainers.bruteforce_shap import BruteForceShap
from explainers.gradient import GradientXInput
from explainers.integrated_gradients import IntegratedGradients
from explainers.kernel_shap import KernelShap
from explainers.lime_tabular import Lime
from explainers.maple import Maple
from explainers.posthoc import ExplanationTarget, FeatureGrouping, TokenModel, interventional_values
from explainers.random_attribution import RandomExplainer

W = np.array([4.0, 3.0, 2.0, 1.0, 0.0])
B = 0.5
#: The explainers with a test in this file (the last test checks the table against it).
TESTED = {
    "random",
    "exact_shap",
    "kernel_shap",
    "bruteforce_shap",
    "lime",
    "maple",
    "breakdown",
    "integrated_gradients",
    "gradient_x_input",
    "cd",
}


def linear(X: np.ndarray) -> np.ndarray:
    return X @ W + B


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(0)
    return rng.standard_normal((150, 5)), rng.standard_normal((12, 5))


def closed_form(X: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Interventional Shapley values of the linear model."""
    return W * (X - background.mean(axis=0))


def test_random_attributions_are_seeded_and_uninformative(rows) -> None:
    background, _ = rows
    X = np.random.default_rng(1).standard_normal((400, 5))
    first = RandomExplainer(linear, background, seed=3).explain(X)
    again = RandomExplainer(linear, background, seed=3).explain(X)
    other = RandomExplainer(linear, background, seed=4).explain(X)
    assert first.values.shape == (400, 5, 1) and first.explainer == "random" and not first.exact
    assert np.array_equal(first.values, again.values) and not np.allclose(first.values, other.values)
    assert np.allclose(first.output[:, 0], linear(X))
    truth = closed_form(X, background)
    correlations = [np.corrcoef(first.values[i, :, 0], truth[i])[0, 1] for i in range(400)]
    assert abs(np.mean(correlations)) < 0.06  # no relation to the model (sd of the mean ≈ 0.025)


def test_bruteforce_shap_is_the_closed_form_on_a_linear_model_and_compat_adds_the_public_shift(rows) -> None:
    background, X = rows
    attribution = BruteForceShap(linear, background, background_size=None).explain(X)
    assert attribution.values.shape == (12, 5, 1) and attribution.exact
    assert np.allclose(attribution.values[:, :, 0], closed_form(X, background), atol=1e-10)
    assert np.allclose(attribution.rest[:, 0], linear(background).mean(), atol=1e-10)
    assert attribution.additivity_error() < 1e-10
    # XAI-Bench's no-intercept regression: every value moves by about v(∅)/F.
    compat = BruteForceShap(linear, background, background_size=None, compat=True).explain(X)
    base = linear(background).mean()
    assert np.allclose(compat.values[:, :, 0], closed_form(X, background) + base / 5, atol=1e-4)
    assert not compat.exact


@pytest.mark.slow  # shap's numba kernels compile on first use (15-60 s on two shared cores), once per process
def test_exact_shap_matches_bruteforce_on_a_nonlinear_model_and_the_closed_form_on_a_linear_one(rows) -> None:
    from explainers.exact_shap import ExactShap

    background, X = rows

    def nonlinear(Z: np.ndarray) -> np.ndarray:
        return np.sin(Z[:, 0]) * Z[:, 1] + Z[:, 2] ** 2 - np.abs(Z[:, 3])

    shap_values = ExactShap(nonlinear, background, background_size=30, seed=2).explain(X[:5])
    brute = BruteForceShap(nonlinear, background, background_size=30, seed=2).explain(X[:5])
    assert shap_values.values.shape == (5, 5, 1) and shap_values.exact
    assert np.allclose(shap_values.values, brute.values, atol=1e-8)
    assert np.allclose(shap_values.rest, brute.rest, atol=1e-8)
    on_linear = ExactShap(linear, background, background_size=None).explain(X[:4])
    assert np.allclose(on_linear.values[:, :, 0], closed_form(X[:4], background), atol=1e-8)
    model, background, X, groups, expected = _one_hot_problem()  # shap sees feature tokens: blocks move as one
    grouped = ExactShap(model, background, background_size=None, input_to_feature=groups).explain(X)
    assert np.allclose(grouped.values[:, :, 0], expected, atol=1e-6)


def test_kernel_shap_is_exact_on_an_additive_model_even_with_sampled_coalitions() -> None:
    rng = np.random.default_rng(5)
    weights = rng.standard_normal(9)
    background, X = rng.standard_normal((40, 9)), rng.standard_normal((6, 9))

    def model(Z: np.ndarray) -> np.ndarray:
        return Z @ weights - 1.0

    # 2^9 − 2 = 510 coalitions exist; 120 are sampled. The game is additive, so the regression is still exact.
    attribution = KernelShap(model, background, background_size=None, n_samples=120, seed=1).explain(X)
    assert attribution.values.shape == (6, 9, 1)
    assert np.allclose(attribution.values[:, :, 0], weights * (X - background.mean(axis=0)), atol=1e-6)
    state = np.random.get_state()  # noqa: NPY002 - the explainer must leave the global generator alone
    KernelShap(model, background, background_size=None, n_samples=120, seed=1).explain(X[:1])
    assert np.array_equal(np.random.get_state()[1], state[1])  # noqa: NPY002


def test_lime_recovers_the_ranking_of_a_linear_model(rows) -> None:
    background, _ = rows
    X = np.random.default_rng(2).standard_normal((15, 5)) * 2.0  # rows away from the centre
    attribution = Lime(linear, background, n_samples=1000, kernel_width=0.5 * np.sqrt(5), seed=0).explain(X)
    assert attribution.values.shape == (15, 5, 1) and attribution.explainer == "lime"
    importance = np.abs(attribution.values[:, :, 0]).mean(axis=0)
    assert list(np.argsort(-importance)) == [0, 1, 2, 3, 4]
    assert importance[4] < 0.25 * importance[3]  # the irrelevant feature gets little (sampling noise)
    # The sign follows w·(x − mean): LIME's regression labels are read the right way round.
    signs = np.sign(attribution.values[:, 0, 0]) == np.sign(X[:, 0] - background[:, 0].mean())
    assert signs.mean() > 0.9


def test_maple_recovers_a_linear_model_locally(rows) -> None:
    background, X = rows
    attribution = Maple(linear, background, n_estimators=50, seed=0).explain(X)
    assert attribution.values.shape == (12, 5, 1)
    assert np.allclose(attribution.extras["coef"][:, :4, 0], W[:4], atol=1e-3)
    expected = W * (X - background.mean(axis=0))
    kept = attribution.extras["coef"][0, :, 0] != 0
    assert np.allclose(attribution.values[:, kept, 0], expected[:, kept], atol=5e-3)


def test_breakdown_paths_add_up_and_are_exact_on_an_additive_model(rows) -> None:
    background, X = rows
    for direction in ("down", "up"):
        attribution = BreakDown(linear, background, direction=direction, background_size=None).explain(X)
        assert attribution.values.shape == (12, 5, 1)
        assert np.allclose(attribution.values[:, :, 0], closed_form(X, background), atol=1e-10)

    def interaction(Z: np.ndarray) -> np.ndarray:
        return Z[:, 0] * Z[:, 1] + Z[:, 2]

    attribution = BreakDown(interaction, background, background_size=None).explain(X)
    assert np.allclose(attribution.values.sum(axis=1)[:, 0], interaction(X) - interaction(background).mean())
    # XAI-Bench's port returns each row's contributions in visit order (the reverse of the removal order).
    compat = BreakDown(interaction, background, background_size=None, compat=True).explain(X)
    visited = attribution.extras["visit_order"][:, ::-1, 0]
    assert np.allclose(compat.values[:, :, 0], np.take_along_axis(attribution.values[:, :, 0], visited, axis=1))
    assert not np.allclose(compat.values, attribution.values)


def _torch_linear(n_inputs: int, weights: np.ndarray) -> torch.nn.Module:
    layer = torch.nn.Linear(n_inputs, 1)
    with torch.no_grad():
        layer.weight[:] = torch.as_tensor(weights, dtype=torch.float32)[None, :]
        layer.bias[:] = B
    return layer


def test_integrated_gradients_of_a_linear_model_and_completeness_on_a_network(rows) -> None:
    background, X = rows
    reference = background.mean(axis=0)
    attribution = IntegratedGradients(_torch_linear(5, W), reference, n_steps=8).explain(X)
    assert attribution.values.shape == (12, 5, 1)
    assert np.allclose(attribution.values[:, :, 0], W * (X - reference), atol=1e-4)
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    ig = IntegratedGradients(network, reference, n_steps=64, output_scale=2.0, output_shift=1.0).explain(X)
    with torch.no_grad():
        gap = network(torch.as_tensor(X, dtype=torch.float32)) - network(
            torch.as_tensor(reference[None], dtype=torch.float32)
        )
    assert ig.values.shape == (12, 5, 2)
    assert np.allclose(ig.values.sum(axis=1), 2.0 * gap.numpy(), atol=1e-3)  # completeness, in output units


def test_gradient_x_input_sums_the_columns_of_each_feature() -> None:
    weights = np.array([1.0, -2.0, 0.5, 3.0])
    X = np.random.default_rng(3).standard_normal((7, 4))
    reference = np.array([0.1, 0.2, 0.3, 0.4])
    explainer = GradientXInput(_torch_linear(4, weights), reference, input_to_feature=[0, 1, 1, 2])
    attribution = explainer.explain(X)
    columns = weights * (X - reference)
    assert attribution.values.shape == (7, 3, 1)
    expected = np.stack([columns[:, 0], columns[:, 1] + columns[:, 2], columns[:, 3]], axis=1)
    assert np.allclose(attribution.values[:, :, 0], expected, atol=1e-5)


def _one_hot_problem():
    """Three features over five columns: a number, a one-hot category of three levels, a number."""
    rng = np.random.default_rng(7)

    def draw(n: int) -> np.ndarray:
        category = np.eye(3)[rng.integers(0, 3, size=n)]
        return np.column_stack([rng.standard_normal(n), category, rng.standard_normal(n)])

    level = np.array([1.0, -2.0, 4.0])

    def model(Z: np.ndarray) -> np.ndarray:
        # A broken block (zero or two active columns) would show as a large offset.
        broken = np.abs(Z[:, 1:4].sum(axis=1) - 1.0) > 1e-9
        return 2.0 * Z[:, 0] + Z[:, 1:4] @ level - Z[:, 4] + 100.0 * broken

    background, X = draw(60), draw(8)
    expected = np.column_stack(
        [
            2.0 * (X[:, 0] - background[:, 0].mean()),
            X[:, 1:4] @ level - (background[:, 1:4] @ level).mean(),
            -(X[:, 4] - background[:, 4].mean()),
        ]
    )
    return model, background, X, [0, 1, 1, 1, 2], expected


def test_grouped_explainers_move_a_one_hot_block_as_one_feature() -> None:
    model, background, X, groups, expected = _one_hot_problem()
    grouping = FeatureGrouping.create(groups, 5)
    assert grouping.n_features == 3 and not grouping.identity
    masks = np.array([[True, False, True], [False, True, False]])
    values = interventional_values(model, X, masks, background, grouping)
    assert values.shape == (8, 2, 1) and np.abs(values).max() < 50  # no broken block was ever evaluated
    tokens = TokenModel(model, X, background, grouping)
    assert np.allclose(tokens(tokens.row_tokens)[:, 0], model(X))
    for cls in (BruteForceShap, KernelShap, BreakDown):
        attribution = cls(model, background, background_size=None, input_to_feature=groups).explain(X)
        assert attribution.values.shape == (8, 3, 1), cls.__name__
        assert np.allclose(attribution.values[:, :, 0], expected, atol=1e-6), cls.__name__
    lime = Lime(model, background, n_samples=2000, input_to_feature=groups, seed=0).explain(X)
    assert lime.values.shape == (8, 3, 1)
    assert np.mean([np.corrcoef(lime.values[i, :, 0], expected[i])[0, 1] for i in range(8)]) > 0.9
    maple = Maple(model, background, n_estimators=20, input_to_feature=groups, seed=0).explain(X)
    assert maple.values.shape == (8, 3, 1)


def test_grouped_kernel_shap_on_one_hot_credit_g_is_the_feature_level_closed_form(no_network) -> None:
    from data import load_dataset, prepare_split
    from explainers.posthoc import sample_background, target_from_estimator
    from methods import REGISTRY
    from models.attribution import aggregate_columns

    split = prepare_split(load_dataset(dataset_id=31), mode="classification", seed=0, encoding_type="onehot")
    assert split.n_inputs > split.n_features  # one-hot blocks
    model = REGISTRY["logistic_regression"].build(split, seed=0)
    model.fit(split.X_train, split.y_train)
    target = target_from_estimator(
        model, split.X_train, feature_names=split.feature_names, input_to_feature=split.input_to_feature
    )
    X = split.X_test[:4].astype(np.float64)
    attribution = KernelShap.from_target(target, background_size=40, n_samples=300, seed=0).explain(X)
    assert attribution.values.shape == (4, split.n_features, 1) and attribution.output_name == "logit"
    # The logit is linear in the columns, so a feature's interventional Shapley value is the sum over its columns
    # of coefficient × (x − background mean), whichever coalitions KernelSHAP sampled.
    slope = model[-1].coef_[0] / model[0].scale_
    background = sample_background(target.background, 40, 0)
    columns = (slope * (X - background.mean(axis=0)))[:, :, None]
    expected = aggregate_columns(columns, split.input_to_feature, split.n_features)
    assert np.allclose(attribution.values, expected, atol=1e-6)
    assert np.allclose(attribution.output[:, 0], model.decision_function(X.astype(np.float32)), atol=1e-5)


def test_explainers_build_from_a_target_and_cd_explains_a_network() -> None:
    from data.synthetic import make_synthetic
    from explainers.cd import ContextualDecomposition
    from explainers.posthoc import target_from_estimator
    from models.estimators import TabResNetRegressor

    data = make_synthetic("gaussianLinear", n_train=120, n_test=6, seed=0)
    model = TabResNetRegressor(nr_epochs=2, hidden_size=8, nr_blocks=1, batch_size=32, seed=0, device="cpu")
    model.fit(data.X_train.astype(np.float32), data.y_train)
    target = target_from_estimator(model, data.X_train, feature_names=data.feature_names)
    assert isinstance(target, ExplanationTarget) and target.forward is not None
    assert np.allclose(target.reference, model.reference_)
    cd = ContextualDecomposition.from_target(target).explain(data.X_test)
    assert cd.values.shape == (6, 5, 1) and cd.explainer == "cd"
    assert np.allclose(cd.output[:, 0], model.predict(data.X_test.astype(np.float32)), atol=1e-4)
    # Merging two columns into one feature gives that feature the CD score of the pair, not the sum of singles.
    merged = target_from_estimator(
        model, data.X_train, feature_names=["a", "b", "c", "d"], input_to_feature=[0, 0, 1, 2, 3]
    )
    pair = ContextualDecomposition.from_target(merged).explain(data.X_test)
    assert pair.values.shape == (6, 4, 1)
    assert np.allclose(pair.values[:, 1:, 0], cd.values[:, 2:, 0], atol=1e-8)
    gradient = POSTHOC_EXPLAINERS["gradient_x_input"].from_target(target).explain(data.X_test)
    assert gradient.values.shape == (6, 5, 1)


def test_every_posthoc_explainer_has_a_label_a_colour_and_a_test() -> None:
    assert set(POSTHOC_EXPLAINERS) == TESTED
    assert set(POSTHOC_LABELS) == set(POSTHOC_EXPLAINERS) == set(POSTHOC_COLORS)
    assert len(set(POSTHOC_COLORS.values())) == len(POSTHOC_COLORS)
    for name in POSTHOC_EXPLAINERS:
        cls = POSTHOC_EXPLAINERS[name]
        assert cls.id == name
        assert getattr(cls, "requires", "predict") in ("predict", "forward", "model")
        assert callable(getattr(cls, "from_target", None))
