"""INN-Shapley (``models/inn_shapley.py``): its explanation is exact with a constant rest, it equals the closed-form
Shapley values of a network that is additive by construction, coalitions move one-hot columns together, a saved run
reloads to the same explanation, and bad flag values are one ``error:`` line with exit code 2.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import main_experiment
from data import load_dataset, prepare_split
from experiments import saved_run
from experiments.results import read_explanations
from explainers.bruteforce_shap import BruteForceShap
from explainers.inn_shapley import INNShapleyExplainer
from methods import get_method
from models.estimators import INNClassifier
from models.inn_shapley import (
    CoalitionSampler,
    INNShapleyClassifier,
    INNShapleyRegressor,
    ShapleyINNNetwork,
    consistency_residual,
    kernel_size_probabilities,
    sample_coalitions,
)
from models.networks import SnapshotEnsemble

#: Tiny, and long enough after the 5 warm-up epochs for 3 snapshots.
FAST = {"nr_epochs": 8, "hidden_size": 16, "nr_blocks": 1, "batch_size": 32, "device": "cpu"}
TOLERANCE = 1e-10  # exactness in float64


def _estimator(problem_name: str, **params):
    kind = INNShapleyRegressor if problem_name == "regression" else INNShapleyClassifier
    return kind(**{**FAST, **params})


@pytest.fixture(scope="module")
def fitted(problems):
    return {name: _estimator(name).fit(problems[name].X_train, problems[name].y_train) for name in problems}


@pytest.fixture(scope="module")
def problems(binary_problem, multiclass_problem, regression_problem):
    return {"binary": binary_problem, "multiclass": multiclass_problem, "regression": regression_problem}


# ---------------------------------------------------------------------------------------------------------------
# Exactness


@pytest.mark.parametrize("problem_name", ["binary", "multiclass", "regression"])
def test_explanation_is_exact_in_float64_with_the_mean_training_output_as_its_constant_rest(problem_name, problems):
    problem = problems[problem_name]
    estimator = _estimator(problem_name).fit(problem.X_train, problem.y_train)
    assert len(estimator.model_.members) == 3  # the snapshot ensemble is explained, not one snapshot
    # float32, as fitted: exact up to float32 rounding, and the explained output is what the model predicts.
    attribution = estimator.explain(problem.X_test)
    expected = (
        estimator.predict(problem.X_test)
        if problem_name == "regression"
        else estimator.decision_function(problem.X_test)
    )
    np.testing.assert_allclose(attribution.output, np.reshape(expected, (len(problem.X_test), -1)), rtol=1e-6)
    assert attribution.exact and attribution.reference is None
    # float64: the same network in double precision, its read-out means fixed on the training rows in float64.
    estimator.model_.double()
    for member in estimator.model_.members:
        member.set_contribution_mean(torch.as_tensor(problem.X_train, dtype=torch.float64))
    attribution = estimator.explain(problem.X_test)
    scale = max(1.0, np.abs(attribution.output).max())
    assert attribution.additivity_error() < TOLERANCE * scale
    # The rest is one constant: the ensemble's mean output over the training rows.
    assert np.ptp(attribution.rest, axis=0).max() == 0.0
    training_mean = estimator.explain(problem.X_train).output.mean(0)
    np.testing.assert_allclose(attribution.rest[0], training_mean, rtol=0, atol=TOLERANCE * scale)
    # ... so the values average to zero over the training rows (centred read-out).
    assert np.abs(estimator.explain(problem.X_train).values.mean(0)).max() < TOLERANCE * scale
    n_outputs = 3 if problem_name == "multiclass" else 1
    assert attribution.values.shape == (len(problem.X_test), problem.X_test.shape[1], n_outputs)


def test_explanation_is_in_target_units_for_regression(fitted, problems):
    estimator, problem = fitted["regression"], problems["regression"]
    attribution = estimator.explain(problem.X_test)
    np.testing.assert_allclose(attribution.output[:, 0], estimator.predict(problem.X_test), rtol=1e-6)
    assert attribution.rest[0, 0] == pytest.approx(estimator.predict(problem.X_train).mean(), rel=1e-5)
    assert attribution.output_name == "prediction"


# ---------------------------------------------------------------------------------------------------------------
# A network that is additive by construction: the explanation is the closed-form Shapley values


def _additive_network(groups: np.ndarray, n_outputs: int, *, readout: str, seed: int) -> ShapleyINNNetwork:
    """A ShapleyINNNetwork whose contributions of feature g read only feature g's columns: f = Σ_g f_g(x_g) + b.

    No residual blocks; the input layer and the head are masked so that each hidden unit belongs to one feature;
    batch norm (evaluation mode, random running statistics) and GELU act unit by unit.
    """
    generator = torch.Generator().manual_seed(seed)
    n_inputs, n_groups, per_group = len(groups), int(groups.max()) + 1, 4
    network = ShapleyINNNetwork(
        n_inputs=n_inputs, n_outputs=n_outputs, readout=readout, hidden_size=n_groups * per_group, nr_blocks=0
    )
    unit_group = np.repeat(np.arange(n_groups), per_group)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
        network.backbone.input_layer.weight.mul_(torch.as_tensor(unit_group[:, None] == groups[None, :]))  # (H, D)
        # The head emits K blocks (affine: W and a) of D · C rows: row k·D·C + d·C + c belongs to column d.
        n_blocks = network.head.weight.shape[0] // (n_inputs * n_outputs)
        head_mask = np.tile(np.repeat(groups, n_outputs), n_blocks)[:, None] == unit_group[None, :]  # (K·D·C, H)
        network.head.weight.mul_(torch.as_tensor(head_mask))
        network.backbone.input_norm.running_mean.copy_(torch.randn(n_groups * per_group, generator=generator))
        network.backbone.input_norm.running_var.copy_(torch.rand(n_groups * per_group, generator=generator) + 0.5)
    return network.double().eval()


@pytest.mark.parametrize("readout", ["product", "head", "affine"])
@pytest.mark.parametrize("n_outputs", [1, 3])
def test_on_an_additive_network_the_explanation_is_the_closed_form_shapley_values(readout, n_outputs, problems):
    problem = problems["multiclass" if n_outputs == 3 else "binary"]
    estimator = _estimator("classifier").fit(problem.X_train, problem.y_train)  # the fitted estimator's shell
    n_inputs = problem.X_train.shape[1]
    groups = np.arange(n_inputs)
    estimator.model_ = SnapshotEnsemble(
        [_additive_network(groups, n_outputs, readout=readout, seed=seed) for seed in (1, 2)]
    ).eval()
    x_train = torch.as_tensor(problem.X_train, dtype=torch.float64)
    for member in estimator.model_.members:
        member.set_contribution_mean(x_train)
    attribution = estimator.explain(problem.X_test)

    def contributions(rows: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return estimator.model_(torch.as_tensor(rows, dtype=torch.float64)).extras["contributions"].numpy()

    # Closed form: for f = Σ_j f_j(x_j) + b, the interventional Shapley value of j with the training rows as
    # background is f_j(x_j) − mean_train f_j(X_j).
    closed_form = contributions(problem.X_test) - contributions(problem.X_train).mean(0)[None]
    np.testing.assert_allclose(attribution.values, closed_form, rtol=0, atol=TOLERANCE)
    # ... and the brute-force Shapley values of the same game (every coalition, every training row) agree.
    logits = lambda rows: estimator.model_(torch.as_tensor(rows, dtype=torch.float64)).logits.detach().numpy()  # noqa: E731
    brute = BruteForceShap(logits, problem.X_train, background_size=None).explain(problem.X_test)
    np.testing.assert_allclose(attribution.values, brute.values, rtol=0, atol=1e-9)
    np.testing.assert_allclose(attribution.rest, brute.rest, rtol=0, atol=1e-9)


# ---------------------------------------------------------------------------------------------------------------
# Coalitions over original features: one-hot columns move together


def test_kernel_sizes_and_coalitions():
    probabilities = kernel_size_probabilities(5)
    weights = 4 / (np.arange(1, 5) * (5 - np.arange(1, 5)))
    np.testing.assert_allclose(probabilities, weights / weights.sum())
    assert kernel_size_probabilities(1).size == 0
    generator = torch.Generator().manual_seed(0)
    masks = sample_coalitions(20000, torch.as_tensor(probabilities, dtype=torch.float32), 5, generator)
    sizes = masks.sum(1).numpy()
    assert sizes.min() >= 1 and sizes.max() <= 4  # never ∅ or all: their residual is zero by construction
    np.testing.assert_allclose(np.bincount(sizes, minlength=5)[1:] / len(sizes), probabilities, atol=0.015)
    np.testing.assert_allclose(masks.float().mean(0).numpy(), 0.5, atol=0.02)  # every feature alike


def _sampler(column_groups: np.ndarray, *, n_coalitions: float = 3, n_background: int = 2, detach: bool = True):
    n_groups = int(column_groups.max()) + 1
    return CoalitionSampler(
        groups=torch.as_tensor(column_groups),
        size_probabilities=torch.as_tensor(kernel_size_probabilities(n_groups)),
        n_coalitions=n_coalitions,
        n_background=n_background,
        generator=torch.Generator().manual_seed(0),
        detach=detach,
    )


def _one_hot_rows() -> torch.Tensor:
    """64 rows of a numeric column, a one-hot block of three columns and another numeric column."""
    rng = np.random.default_rng(0)
    x = np.zeros((64, 5))
    x[:, [0, 4]] = rng.normal(size=(64, 2))
    x[np.arange(64), 1 + rng.integers(0, 3, size=64)] = 1.0
    return torch.as_tensor(x)


def test_consistency_residual_moves_one_hot_columns_together():
    # Columns 1-3 are the one-hot block of one feature: the network is additive over features, not columns.
    groups = np.array([0, 1, 1, 1, 2])
    network = _additive_network(groups, 2, readout="product", seed=0)
    x = _one_hot_rows()
    contributions = network(x).extras["contributions"]
    # Coalitions over the three features: the additive model's read-outs explain every hybrid exactly.
    assert consistency_residual(network, x, contributions, _sampler(groups)).abs().max() < 1e-12
    # Coalitions over the five columns would split the one-hot block (rows that are not one-hot at all).
    assert consistency_residual(network, x, contributions, _sampler(np.arange(5))).abs().max() > 1e-3


@pytest.mark.parametrize("readout", ["product", "affine"])
def test_the_joint_pass_trains_on_the_batch_and_its_hybrid_rows_in_one_forward(readout):
    groups = np.array([0, 1, 1, 1, 2])
    network = _additive_network(groups, 2, readout=readout, seed=0).train()  # batch statistics, unit by unit
    x = _one_hot_rows()
    plain = network(x)
    network.sampler = _sampler(groups, n_coalitions=0.5, n_background=1)
    joint = network(x)
    # The batch's own outputs keep their shape; the residuals of its 32 coalitions come along, and they vanish for
    # a network that is additive over the features (its batch norm acts unit by unit, so on any batch).
    assert joint.logits.shape == plain.logits.shape == (64, 2)
    residual = joint.extras["consistency_residual"]
    assert residual.shape == (32, 2) and residual.abs().max() < 1e-10
    network.eval()  # evaluation: no hybrid rows, the explained function
    assert "consistency_residual" not in network(x).extras


@pytest.mark.parametrize("detach", [True, False])
def test_the_hybrid_target_is_trained_only_when_not_detached(detach):
    network = ShapleyINNNetwork(n_inputs=4, n_outputs=1, hidden_size=8, nr_blocks=1).train()
    x = torch.randn(16, 4)
    output = network(x)
    running = network.backbone.input_norm.running_mean.clone()
    sampler = _sampler(np.arange(4), n_coalitions=0.5, n_background=1, detach=detach)
    sampler.size_probabilities = sampler.size_probabilities.float()
    # Only the hybrid term can carry a gradient here.
    residual = consistency_residual(network, x, output.extras["contributions"].detach(), sampler)
    assert residual.shape == (8, 1) and residual.requires_grad is not detach
    # The separate pass never moves batch norm's running statistics (hybrid rows are not data).
    assert torch.equal(network.backbone.input_norm.running_mean, running)


def test_the_registry_groups_the_columns_of_a_feature():
    raw = load_dataset(31)  # credit-g, one-hot encoded: several columns per categorical feature
    split = prepare_split(raw, seed=0, encoding_type="onehot")
    spec = get_method("inn_shapley")
    model = spec.build(split, seed=0, params=dict(spec.smoke_params))
    assert list(model.feature_groups) == [int(f) for f in split.input_to_feature]
    assert len(set(model.feature_groups)) == len(split.feature_names) < split.n_inputs
    X_train, X_test = spec.inputs(split)
    model.fit(X_train, split.y_train)
    attribution = spec.explain(model, split, X_test)  # over the original features, still exact
    assert attribution.values.shape == (split.n_test, len(split.feature_names), 1)
    assert attribution.additivity_error() < 1e-4 * max(1.0, np.abs(attribution.output).max())


# ---------------------------------------------------------------------------------------------------------------
# Training does what it is for


def test_the_consistency_term_makes_the_explanation_the_models_own_shapley_values():
    # An interaction-free curved target: the centred read-out alone is not the Shapley values, the term makes it so.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 3)).astype(np.float32)
    y = X[:, 0] ** 2 + np.sin(2 * X[:, 1]) + 0.5 * X[:, 2]
    correlations = {}
    for strength in (0.0, 1.0):
        model = INNShapleyRegressor(
            shapley_strength=strength, nr_epochs=30, hidden_size=32, nr_blocks=1, device="cpu", seed=0
        ).fit(X[:500], y[:500])
        mine = model.explain(X[500:]).values[:, :, 0]
        own = BruteForceShap(model.predict, X[:500], background_size=100).explain(X[500:]).values[:, :, 0]
        from xai.metrics import row_correlation

        correlations[strength] = float(np.mean(row_correlation(mine, own)))
    assert correlations[1.0] > 0.95 and correlations[1.0] > correlations[0.0], correlations


def test_parameters_are_checked_before_training(problems):
    problem = problems["binary"]
    for bad in (
        {"readout": "sideways"},
        {"shapley_strength": -1.0},
        {"shapley_strength": float("nan")},
        {"shapley_coalitions": 0},
        {"shapley_background": 1.5},
        {"shapley_pass": "twice"},
        {"readout_norm": -0.1},
        {"feature_groups": [0, 1]},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            _estimator("binary", **bad).fit(problem.X_train, problem.y_train)


def test_explainer_refuses_other_models(problems):
    problem = problems["binary"]
    inn = INNClassifier(**FAST).fit(problem.X_train, problem.y_train)
    with pytest.raises(TypeError, match="INN-Shapley"):
        INNShapleyExplainer().explain(inn, problem.X_test)


# ---------------------------------------------------------------------------------------------------------------
# The command line and saved runs


SMOKE = ["--nr_epochs", "2", "--hidden_size", "16", "--nr_blocks", "1", "--device", "cpu"]


def test_a_saved_run_reloads_to_the_same_model_and_explanation(tmp_path):
    argv = ["--method", "inn_shapley", *SMOKE, "--shapley_coalitions", "2", "--explanation_metrics", "off"]
    assert main_experiment.main([*argv, "--output_dir", str(tmp_path)]) == 0
    folder = tmp_path / "inn_shapley" / "31" / "0"
    run = saved_run.load_run(folder)
    assert run.model.shapley_coalitions == 2 and list(run.model.feature_groups) == list(run.input_to_feature)
    rows = saved_run.test_set_rows(run)
    frame, _ = saved_run.prepare_rows(run, rows)
    inputs = run.model_inputs(frame)
    attribution = run.spec.explain(run.model, run.split_view(inputs), inputs)
    stored = read_explanations(folder / "explanations.npz")
    np.testing.assert_allclose(attribution.values, stored["values"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(attribution.rest, stored["rest"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(attribution.output, stored["output"], rtol=1e-6, atol=1e-6)
    assert np.ptp(stored["rest"]) == 0.0 and stored["reference"].size == 0
    assert str(stored["explainer"]) == "inn_shapley"


@pytest.mark.parametrize(
    "flags",
    [
        ["--shapley_strength", "-1"],
        ["--shapley_strength", "inf"],
        ["--shapley_strength", "much"],
        ["--shapley_coalitions", "0"],
        ["--shapley_background", "2.5"],
        ["--readout", "sideways"],
        ["--readout_norm", "-0.5"],
        ["--shapley_detach", "maybe"],
        ["--shapley_pass", "twice"],
    ],
)
def test_bad_flag_values_are_one_error_line_and_exit_code_2(flags, tmp_path, capsys):
    output = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main_experiment.main(["--method", "inn_shapley", *flags, "--output_dir", str(output)])
    assert info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and flags[0] in errors[0], errors
    assert not output.exists()
