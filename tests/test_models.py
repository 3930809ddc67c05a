"""Tests of ``models/``: network shapes, the schedule, augmentations, training, the estimators and explainers.

The central test is additivity: an INN's (snapshot-ensemble) explanation adds up exactly to its logits, for
binary, multiclass and regression, relative to the reference point (a row equal to it gets zero contributions).
The estimator API suite is parametrized over the method registry's neural estimators and a test fails when an
estimator of ``models.estimators`` is not registered (imodels style). Everything is tiny and
runs on one CPU thread; the GPU test runs only where CUDA is available.
"""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from explainers import Attribution, aggregate_columns
from explainers.gradient import GradientTimesInput, NetworkGradientExplainer
from explainers.inn import INNExplainer
from methods import neural_estimators
from models import estimators as estimators_module
from models.augmentation import AUGMENTATIONS, BatchAugmenter, cutmix, mixup
from models.estimators import (
    INN_PARAMETERS,
    NEURAL_PARAMETERS,
    INNClassifier,
    INNRegressor,
    TabResNetClassifier,
    _class_weights,
    neural_init,
    oversample_indices,
)
from models.networks import INNNetwork, ResidualBackbone, SnapshotEnsemble, TabResNetNetwork, linear_logits
from models.schedule import build_schedule, cycle_lengths
from models.training import TaskLoss, TrainingConfig, batch_bounds, train_snapshot_ensemble

ESTIMATORS = neural_estimators()

#: Tiny but trainable, and long enough after the 5 warm-up epochs for 3 cosine cycles (3 snapshots).
FAST = {"nr_epochs": 8, "hidden_size": 16, "nr_blocks": 1, "batch_size": 32, "device": "cpu"}
ATOL = 1e-5


def _with_bias(x: np.ndarray) -> np.ndarray:
    return np.concatenate([x, np.ones((x.shape[0], 1), dtype=x.dtype)], axis=1)


# ---------------------------------------------------------------------------------------------------------------
# Networks


@pytest.mark.parametrize("n_outputs", [1, 3])
@pytest.mark.parametrize("nr_blocks", [0, 2])
def test_network_shapes(n_outputs, nr_blocks):
    x = torch.randn(7, 5)
    backbone = ResidualBackbone(n_inputs=5, hidden_size=12, nr_blocks=nr_blocks)
    assert backbone(x).shape == (7, 12)
    inn = INNNetwork(n_inputs=5, n_outputs=n_outputs, hidden_size=12, nr_blocks=nr_blocks, dropout=0.25)
    output = inn(x)
    assert output.logits.shape == (7, n_outputs) and output.weights.shape == (7, 6, n_outputs)
    black_box = TabResNetNetwork(n_inputs=5, n_outputs=n_outputs, hidden_size=12)(x)
    assert black_box.logits.shape == (7, n_outputs) and black_box.weights is None


def test_residual_blocks_start_with_zero_last_norm():
    network = INNNetwork(n_inputs=3, n_outputs=1, hidden_size=8, nr_blocks=2)
    for block in network.backbone.blocks:
        assert torch.count_nonzero(block.norm_second.weight) == 0


@pytest.mark.parametrize(
    "kwargs",
    [{"n_inputs": 0}, {"n_outputs": 0}, {"hidden_size": 0}, {"nr_blocks": -1}, {"dropout": 1.0}, {"dropout": -0.1}],
)
def test_network_rejects_bad_sizes(kwargs):
    params = {"n_inputs": 3, "n_outputs": 1} | kwargs
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        INNNetwork(**params)


@pytest.mark.parametrize("n_outputs", [1, 3])  # 1: the row-wise dot product of binary tasks and regression
def test_inn_network_is_a_per_example_linear_model(n_outputs):
    network = INNNetwork(n_inputs=4, n_outputs=n_outputs, hidden_size=8).eval()
    x = torch.randn(6, 4)
    output = network(x)
    logits, weights = output.logits, output.weights
    manual = torch.einsum("bf,bfc->bc", torch.cat([x, torch.ones(6, 1)], dim=1), weights)
    torch.testing.assert_close(logits, manual)
    torch.testing.assert_close(linear_logits(x, weights), manual)


@pytest.mark.parametrize("network_type", [INNNetwork, TabResNetNetwork])
def test_ensemble_averages_the_snapshot_logits(network_type):
    members = [network_type(n_inputs=4, n_outputs=2, hidden_size=8).eval() for _ in range(3)]
    for member in members:  # the zero-initialised norms would make members too alike; perturb them
        for parameter in member.parameters():
            parameter.data.add_(0.1 * torch.randn_like(parameter))
    x = torch.randn(5, 4)
    ensemble = SnapshotEnsemble(members).eval()
    combined = ensemble(x)
    logits, weights = combined.logits, combined.weights
    outputs = [member(x) for member in members]
    torch.testing.assert_close(logits, torch.stack([out.logits for out in outputs]).mean(0))
    assert not torch.allclose(outputs[0].logits, outputs[1].logits)  # the average is not trivially one member
    if network_type is INNNetwork:
        # The ensemble is itself one linear model per example: [x, 1] · mean(W).
        mean_weights = torch.stack([out.weights for out in outputs]).mean(0)
        torch.testing.assert_close(weights, mean_weights)
        torch.testing.assert_close(logits, torch.einsum("bf,bfc->bc", torch.cat([x, torch.ones(5, 1)], 1), weights))
    else:
        assert weights is None
    with pytest.raises(ValueError, match="at least one member"):
        SnapshotEnsemble([])
    with pytest.raises(ValueError, match="one network class"):
        SnapshotEnsemble([INNNetwork(n_inputs=4, n_outputs=2), TabResNetNetwork(n_inputs=4, n_outputs=2)])


# ---------------------------------------------------------------------------------------------------------------
# Schedule


def test_schedule_warmup_starts_above_zero_and_reaches_the_peak():
    schedule = build_schedule(total_steps=750, warmup_steps=50, base_lr=0.01, nr_cycles=3, t_mult=2.0)
    rates = schedule.learning_rates
    assert rates.shape == (750,)
    assert rates[0] > 0 and rates[0] == pytest.approx(0.01 / 50)
    assert np.all(np.diff(rates[:50]) > 0) and rates[49] == pytest.approx(0.01)
    assert np.all(rates > 0) and rates.max() == pytest.approx(0.01)


def test_cycles_double_and_fill_the_steps_after_warmup():
    schedule = build_schedule(total_steps=750, warmup_steps=50, base_lr=0.01, nr_cycles=3, t_mult=2.0)
    assert schedule.warmup_steps == 50
    assert schedule.cycle_lengths == (100, 200, 400)  # T0, 2·T0, 4·T0 = the 700 steps after warm-up
    # When the steps do not divide evenly the last cycle takes the remainder.
    lengths = cycle_lengths(955, 3, 2.0)
    assert sum(lengths) == 955 and lengths[1] == 2 * lengths[0] and 4 * lengths[0] <= lengths[2] < 4 * lengths[0] + 7


@pytest.mark.parametrize("nr_cycles", [1, 2, 3, 5])
def test_snapshots_fall_at_the_cycle_ends(nr_cycles):
    schedule = build_schedule(total_steps=1000, warmup_steps=40, base_lr=0.01, nr_cycles=nr_cycles, t_mult=2.0)
    rates = schedule.learning_rates
    assert len(schedule.snapshot_steps) == nr_cycles
    assert list(schedule.snapshot_steps) == list(40 + np.cumsum(schedule.cycle_lengths) - 1)
    assert schedule.snapshot_steps[-1] == 999  # the final model is the last snapshot
    start = schedule.warmup_steps
    for end in schedule.snapshot_steps:
        cycle = rates[start : end + 1]
        assert cycle[0] == pytest.approx(0.01)  # a restart at the peak
        assert np.all(np.diff(cycle) < 0)  # annealed down ...
        assert rates[end] == cycle.min() and rates[end] < 0.01 * 0.01  # ... to its minimum at the snapshot
        start = end + 1


def test_short_runs_keep_every_cycle_and_end_at_a_minimum():
    # 2 epochs of 13 steps: a 5-epoch warm-up would eat the run; it is capped at half of it instead.
    schedule = build_schedule(total_steps=26, warmup_steps=65, base_lr=0.01, nr_cycles=3, t_mult=2.0)
    assert schedule.warmup_steps == 13
    assert len(schedule.snapshot_steps) == 3 and schedule.snapshot_steps[-1] == 25
    assert schedule.learning_rates[-1] < 0.01 * 0.1


def test_schedule_rejects_bad_arguments():
    with pytest.raises(ValueError):
        build_schedule(total_steps=0, warmup_steps=0, base_lr=0.01, nr_cycles=3, t_mult=2.0)
    with pytest.raises(ValueError):
        cycle_lengths(10, 3, 0.5)


def test_batch_bounds_merge_a_trailing_single_row():
    assert batch_bounds(129, 64) == [(0, 64), (64, 129)]
    assert batch_bounds(130, 64) == [(0, 64), (64, 128), (128, 130)]
    with pytest.raises(ValueError):
        batch_bounds(1, 64)


# ---------------------------------------------------------------------------------------------------------------
# Augmentation


def _augmenter(probability: float, numerical=None, seed: int = 0) -> BatchAugmenter:
    numerical = torch.ones(6, dtype=torch.bool) if numerical is None else numerical
    return BatchAugmenter(probability=probability, numerical=numerical, seed=seed, device=torch.device("cpu"))


def test_augmentation_is_the_identity_at_probability_zero():
    augmenter = _augmenter(0.0)
    assert not augmenter.active

    def loss_never_called(inputs):
        raise AssertionError("probability 0 must not compute an FGSM loss")

    x = torch.randn(16, 6)
    for _ in range(50):
        out, mixing = augmenter(x, loss_never_called)
        assert out is x and mixing is None


def test_augmentation_at_probability_one_changes_every_batch():
    augmenter = _augmenter(1.0)
    x = torch.randn(16, 6)
    w = torch.randn(6)
    for _ in range(20):
        out, _ = augmenter(x, lambda inputs: (inputs @ w).square().mean())
        assert out.shape == x.shape and not torch.equal(out, x)


def test_mixup_leaves_categorical_inputs_alone_and_mixes_labels():
    x = torch.randn(8, 4)
    numerical = torch.tensor([1.0, 1.0, 0.0, 0.0])
    perm = torch.roll(torch.arange(8), 1)
    mixed, mixing = mixup(x, numerical, 0.3, perm)
    torch.testing.assert_close(mixed[:, 2:], x[:, 2:])
    torch.testing.assert_close(mixed[:, :2], 0.3 * x[:, :2] + 0.7 * x[perm, :2])
    assert torch.equal(mixing.perm, perm) and torch.allclose(mixing.lam, torch.full((8,), 0.3))


def test_cutmix_label_weight_is_the_share_of_own_features():
    generator = torch.Generator().manual_seed(0)
    x = torch.arange(40, dtype=torch.float32).reshape(4, 10)  # every value distinct
    perm = torch.tensor([1, 2, 3, 0])
    mixed, mixing = cutmix(x, 0.6, perm, generator)
    own = (mixed == x).float().mean(dim=1)
    torch.testing.assert_close(mixing.lam, own)
    assert torch.all((mixed == x) | (mixed == x[perm]))


@pytest.mark.parametrize("name", AUGMENTATIONS)
def test_each_augmentation_keeps_the_shape(name):
    augmenter = _augmenter(1.0)
    x = torch.randn(10, 6)
    out, mixing = augmenter.apply(name, x, lambda inputs: inputs.sum())
    assert out.shape == x.shape
    assert (mixing is not None) == (name in ("mixup", "cutmix"))  # cutout keeps the labels (no label noise)


def test_augmented_training_runs_and_is_seeded(binary_problem):
    fits = [
        INNClassifier(**FAST, augmentation_probability=1.0).fit(binary_problem.X_train, binary_problem.y_train)
        for _ in range(2)
    ]
    np.testing.assert_array_equal(*(fit.decision_function(binary_problem.X_test) for fit in fits))


# ---------------------------------------------------------------------------------------------------------------
# Training


def test_training_takes_one_snapshot_per_cycle_and_the_last_is_the_final_model():
    x = torch.randn(64, 4)
    y = (x[:, 0] > 0).float()
    network = INNNetwork(n_inputs=4, n_outputs=1, hidden_size=8)
    config = TrainingConfig(nr_epochs=12, batch_size=16, nr_restarts=3, warmup_epochs=2)
    task_loss = TaskLoss("binary")
    result = train_snapshot_ensemble(
        network, x, y, loss=lambda net, xb, yb, out, mix: task_loss(out.logits, yb, mix), config=config, seed=0
    )
    members = result.ensemble.members
    assert len(members) == 3 and len(result.epoch_losses) == 12
    assert result.schedule.warmup_steps == 8 and sum(result.schedule.cycle_lengths) == 40
    assert result.schedule.cycle_lengths == (5, 10, 25)
    assert result.schedule.snapshot_steps == (8 + 5 - 1, 8 + 15 - 1, 8 + 40 - 1)  # cycle ends counted after warm-up
    final = network.state_dict()
    for key, value in members[-1].state_dict().items():
        torch.testing.assert_close(value, final[key])
    assert not torch.equal(members[0].head.weight, members[-1].head.weight)
    assert all(not member.training for member in members)


@pytest.mark.parametrize("dropout", [0.0, 0.25])
def test_same_seed_same_results_on_cpu(dropout, multiclass_problem):
    p = multiclass_problem
    params = FAST | {"dropout": dropout, "augmentation_probability": 0.5}
    first = INNClassifier(**params, seed=3).fit(p.X_train, p.y_train)
    torch.manual_seed(123)  # the global RNG state must not matter (dropout masks included)
    second = INNClassifier(**params, seed=3).fit(p.X_train, p.y_train)
    other = INNClassifier(**params, seed=4).fit(p.X_train, p.y_train)
    np.testing.assert_array_equal(first.decision_function(p.X_test), second.decision_function(p.X_test))
    assert first.epoch_losses_ == second.epoch_losses_
    assert not np.array_equal(first.decision_function(p.X_test), other.decision_function(p.X_test))


def test_fit_leaves_the_global_random_state_alone(binary_problem):
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()  # noqa: NPY002 - the global state
    INNClassifier(**(FAST | {"dropout": 0.25})).fit(binary_problem.X_train, binary_problem.y_train)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.random.get_state()[1].tolist() == numpy_state[1].tolist()  # noqa: NPY002


# ---------------------------------------------------------------------------------------------------------------
# The estimator registry and one API suite over it

#: How each registered estimator is tested: the data sets it must fit.
TESTED_ON = {
    ("inn", "classification"): ("binary", "multiclass"),
    ("inn", "regression"): ("regression",),
    ("inn_shapley", "classification"): ("binary", "multiclass"),
    ("inn_shapley", "regression"): ("regression",),
    ("tabresnet", "classification"): ("binary", "multiclass"),
    ("tabresnet", "regression"): ("regression",),
    ("senn", "classification"): ("binary", "multiclass"),
    ("senn", "regression"): ("regression",),
    ("disenn", "classification"): ("binary", "multiclass"),
    ("disenn", "regression"): ("regression",),
    ("cnn", "classification"): ("binary", "multiclass"),  # rows of a non-square width: one-row images
    ("cnn", "regression"): ("regression",),
}
#: Methods whose learned concepts keep one snapshot (the ensemble of different concepts would not be exact).
ONE_SNAPSHOT = {"disenn"}
CASES = [(key, problem) for key, problems in TESTED_ON.items() for problem in problems]


def test_every_estimator_is_registered_and_tested():
    public = {
        obj
        for name, obj in vars(estimators_module).items()
        if inspect.isclass(obj) and issubclass(obj, BaseEstimator) and not name.startswith("_")
        and obj.__module__ == estimators_module.__name__
    }  # fmt: skip
    registered = {cls for cls in ESTIMATORS.values() if cls.__module__ == estimators_module.__name__}
    assert public == registered, "an estimator of models.estimators is missing from ESTIMATORS"
    assert set(TESTED_ON) == set(ESTIMATORS), "a registered estimator has no test in TESTED_ON"


@pytest.mark.parametrize("key", list(ESTIMATORS), ids=[f"{method}-{mode}" for method, mode in ESTIMATORS])
def test_every_constructor_is_its_familys_parameters_then_the_shared_ones(key):
    parameters = inspect.signature(ESTIMATORS[key].__init__).parameters
    names = [name for name in parameters if name != "self"]
    assert names[-len(NEURAL_PARAMETERS) :] == list(NEURAL_PARAMETERS)  # written once, in one order
    assert all(parameters[name].kind is inspect.Parameter.KEYWORD_ONLY for name in names)
    assert {name: parameters[name].default for name in NEURAL_PARAMETERS} == NEURAL_PARAMETERS


def test_a_family_adds_its_parameters_in_one_line():
    class FamilyClassifier(INNClassifier):
        __init__ = neural_init(INN_PARAMETERS, nr_coalitions=64)

    estimator = FamilyClassifier(nr_coalitions=8, nr_epochs=2)
    assert list(inspect.signature(FamilyClassifier.__init__).parameters)[1:5] == [*INN_PARAMETERS, "nr_coalitions"]
    assert estimator.get_params() == {**INN_PARAMETERS, **NEURAL_PARAMETERS, "nr_coalitions": 8, "nr_epochs": 2}
    assert vars(estimator) == estimator.get_params()  # stored as given, nothing else
    assert clone(estimator).get_params() == estimator.get_params()
    with pytest.raises(TypeError, match="nr_coalition"):
        FamilyClassifier(nr_coalition=8)
    with pytest.raises(TypeError, match="positional"):
        FamilyClassifier(8)
    with pytest.raises(ValueError, match="shared"):
        neural_init(nr_epochs=5)


@pytest.fixture
def problems(binary_problem, multiclass_problem, regression_problem):
    return {"binary": binary_problem, "multiclass": multiclass_problem, "regression": regression_problem}


@pytest.mark.filterwarnings("ignore:X has feature names:UserWarning")  # fitted on an array, asked with a frame
@pytest.mark.parametrize(("key", "problem_name"), CASES, ids=[f"{k[0]}-{p}" for k, p in CASES])
def test_estimator_api(key, problem_name, problems, tmp_path, monkeypatch):
    problem = problems[problem_name]
    estimator = ESTIMATORS[key](**FAST)
    params = estimator.get_params()
    with pytest.raises(NotFittedError):
        estimator.predict(problem.X_test)
    monkeypatch.chdir(tmp_path)
    assert estimator.fit(problem.X_train, problem.y_train) is estimator
    assert list(tmp_path.iterdir()) == []  # fit writes nothing
    assert estimator.get_params() == params  # fit changes no parameter
    assert estimator.n_features_in_ == problem.X_train.shape[1]
    prediction = estimator.predict(problem.X_test)
    assert prediction.shape == (len(problem.X_test),)
    # DataFrames and lists give the same predictions as arrays.
    frame = pd.DataFrame(problem.X_test, columns=[f"c{i}" for i in range(problem.X_test.shape[1])])
    np.testing.assert_array_equal(estimator.predict(frame), prediction)
    np.testing.assert_array_equal(estimator.predict(problem.X_test.tolist()), prediction)
    with pytest.raises(ValueError, match="features"):
        estimator.predict(problem.X_test[:, :-1])
    # A pickled (e.g. joblib-cached) estimator predicts the same.
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(estimator)).predict(problem.X_test), prediction)
    snapshots = 1 if key[0] in ONE_SNAPSHOT else estimator.nr_restarts
    assert len(estimator.model_.members) == snapshots == len(estimator.snapshot_steps_)
    assert not hasattr(clone(estimator), "model_")
    if problem_name == "regression":
        assert np.issubdtype(prediction.dtype, np.floating)
        assert abs(prediction.mean() - problem.y_train.mean()) < 3 * problem.y_train.std()  # target units
        return
    assert set(prediction) <= set(problem.y_train)
    proba = estimator.predict_proba(problem.X_test)
    assert proba.shape == (len(problem.X_test), len(estimator.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(estimator.classes_[proba.argmax(axis=1)], prediction)
    scores = estimator.decision_function(problem.X_test)
    assert scores.shape == ((len(problem.X_test),) if len(estimator.classes_) == 2 else proba.shape)


def test_classifier_rejects_a_single_class_and_continuous_targets():
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="one class"):
        INNClassifier(**FAST).fit(X, np.zeros(20))
    with pytest.raises(ValueError, match="Unknown label type"):
        INNClassifier(**FAST).fit(X, np.linspace(0, 1, 20))


@pytest.mark.parametrize(
    "params",
    [{"nr_epochs": 0}, {"hidden_size": 0}, {"learning_rate": 0.0}, {"dropout": 1.0}, {"class_balance": "nope"}]
    + [{"augmentation_probability": 1.5}, {"scheduler_t_mult": 0.5}, {"nr_restarts": 0}, {"weight_norm": -1.0}]
    + [{"batch_size": 1}],
)
def test_invalid_hyperparameters_are_rejected_at_fit(params, binary_problem):
    estimator = INNClassifier(**(FAST | params))  # no validation in __init__ (scikit-learn's contract)
    with pytest.raises(ValueError, match=next(iter(params))):
        estimator.fit(binary_problem.X_train, binary_problem.y_train)


# ---------------------------------------------------------------------------------------------------------------
# Class balance


def test_balanced_class_weights_and_oversampling():
    codes = np.array([0] * 30 + [1] * 10 + [2] * 5)
    np.testing.assert_allclose(_class_weights(codes, 3), [45 / 90, 45 / 30, 45 / 15])
    rows = oversample_indices(codes, seed=0)
    assert np.bincount(codes[rows]).tolist() == [30, 30, 30]
    assert set(rows) == set(range(45))  # every original row is kept
    np.testing.assert_array_equal(rows, oversample_indices(codes, seed=0))


def test_class_balance_options_fit_and_differ():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(160, 3)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=160) > 1.0).astype(int)  # about 1 in 6 positive
    outputs = {}
    for balance in ("oversample", "weight", "none"):
        estimator = INNClassifier(**FAST, class_balance=balance).fit(X, y)
        outputs[balance] = estimator.predict_proba(X)[:, 1]
    # Balancing pushes the minority class up compared with the unbalanced loss.
    assert outputs["weight"].mean() > outputs["none"].mean()
    assert outputs["oversample"].mean() > outputs["none"].mean()


# ---------------------------------------------------------------------------------------------------------------
# Explanations: exact additivity


@pytest.mark.parametrize("problem_name", ["binary", "multiclass", "regression"])
def test_inn_explanation_adds_up_to_the_output(problem_name, problems):
    problem = problems[problem_name]
    estimator_type = INNRegressor if problem_name == "regression" else INNClassifier
    estimator = estimator_type(**FAST).fit(problem.X_train, problem.y_train)
    attribution = estimator.explain(problem.X_test, reference="zero")
    n, d = problem.X_test.shape
    c = 3 if problem_name == "multiclass" else 1
    weights = attribution.extras["weights"]
    assert attribution.exact and attribution.explainer == "inn" and attribution.reference_name == "zero"
    assert weights.shape == (n, d + 1, c)
    assert attribution.values.shape == (n, d, c) and attribution.rest.shape == (n, c)
    tolerance = ATOL * max(1.0, np.abs(attribution.output).max())  # relative for a regressor's target units
    np.testing.assert_allclose(
        attribution.values.sum(axis=1) + attribution.rest, attribution.output, rtol=0, atol=tolerance
    )
    # With the zero reference the values are W_j(x)·x_j and the rest is the generated bias.
    np.testing.assert_allclose(attribution.values, weights[:, :-1, :] * problem.X_test[:, :, None], atol=1e-6)
    np.testing.assert_allclose(attribution.rest, weights[:, -1, :], atol=1e-6)
    # The output explained is the model's own (of the snapshot ensemble, not of one snapshot) ...
    if problem_name == "regression":
        np.testing.assert_allclose(attribution.output, estimator.predict(problem.X_test)[:, None], atol=tolerance)
    else:
        output = estimator.decision_function(problem.X_test).reshape(n, c)
        np.testing.assert_allclose(attribution.output, output, atol=ATOL)
        # ... and the ensemble is one linear model per example: logits == [x, 1] · mean W.
        manual = np.einsum("nd,ndc->nc", _with_bias(problem.X_test), weights)
        np.testing.assert_allclose(manual, output, atol=ATOL)
        assert len(estimator.model_.members) == 3


@pytest.mark.parametrize("problem_name", ["binary", "multiclass", "regression"])
def test_inn_explanation_is_relative_to_the_training_mean_by_default(problem_name, problems):
    problem = problems[problem_name]
    estimator_type = INNRegressor if problem_name == "regression" else INNClassifier
    estimator = estimator_type(**FAST).fit(problem.X_train, problem.y_train)
    np.testing.assert_allclose(estimator.reference_, problem.X_train.astype(np.float32).mean(0), atol=1e-6)
    rows = np.vstack([estimator.reference_[None, :], problem.X_test]).astype(np.float32)
    attribution = estimator.explain(rows)
    assert attribution.reference_name == "training mean"
    np.testing.assert_allclose(attribution.reference, estimator.reference_)
    # A row equal to the reference gets zero contributions, and additivity still holds.
    assert np.abs(attribution.values[0]).max() < 1e-6
    tolerance = ATOL * max(1.0, np.abs(attribution.output).max())
    assert attribution.additivity_error() < tolerance
    # Re-referencing moves value between the contributions and the rest only: W_j(x)·(x_j - m_j).
    zero = estimator.explain(rows, reference="zero")
    np.testing.assert_allclose(zero.output, attribution.output, atol=tolerance)
    shift = zero.extras["weights"][:, :-1, :] * estimator.reference_[None, :, None]
    np.testing.assert_allclose(zero.values - attribution.values, shift, atol=tolerance)
    point = estimator.explain(rows, reference=rows[3])  # any explicit point
    assert np.abs(point.values[3]).max() < 1e-6 and point.additivity_error() < tolerance
    with pytest.raises(ValueError, match="reference"):
        estimator.explain(rows, reference="median")


def test_inn_explainer_aggregates_one_hot_inputs_and_stays_exact(multiclass_problem):
    p = multiclass_problem
    estimator = INNClassifier(**FAST).fit(p.X_train, p.y_train)
    # Inputs 1 and 2 are (say) the one-hot columns of one original feature.
    raw = INNExplainer().explain(estimator, p.X_test)
    attribution = raw.aggregate([0, 1, 1, 2], ["a", "colour", "b"])
    assert attribution.values.shape == (len(p.X_test), 3, 3) and attribution.feature_names == ("a", "colour", "b")
    np.testing.assert_allclose(attribution.values[:, 1], raw.values[:, 1] + raw.values[:, 2], atol=1e-6)
    assert attribution.additivity_error() < ATOL


def test_inn_explainer_refuses_a_model_that_is_not_an_inn(binary_problem):
    p = binary_problem
    black_box = TabResNetClassifier(**FAST).fit(p.X_train, p.y_train)
    with pytest.raises(TypeError, match="INN estimators only"):
        INNExplainer().explain(black_box, p.X_test)


def test_aggregate_columns_sums_one_hot_columns():
    values = np.arange(2 * 4 * 1, dtype=np.float64).reshape(2, 4, 1)
    out = aggregate_columns(values, [0, 1, 1, 2], 3)
    np.testing.assert_array_equal(out[:, :, 0], [[0, 1 + 2, 3], [4, 5 + 6, 7]])
    with pytest.raises(ValueError, match="input_to_feature"):
        aggregate_columns(values, [0, 1], 3)
    with pytest.raises(ValueError, match="index 3 features"):
        aggregate_columns(values, [0, 1, 1, 3], 3)


def _attribution(values: np.ndarray) -> Attribution:
    rest = np.zeros((values.shape[0], values.shape[2]))
    names = tuple(f"f{j}" for j in range(values.shape[1]))
    return Attribution(
        values=values, rest=rest, output=values.sum(1), feature_names=names, explainer="test", exact=True
    )


def test_global_importance_is_the_normalised_mean_absolute_contribution():
    values = np.array([[[1.0], [-3.0]], [[-1.0], [1.0]]])  # signed: a signed mean cancels feature 0
    attribution = _attribution(values)
    np.testing.assert_allclose(attribution.global_importance(), [1 / 3, 2 / 3])
    # The signed mean, on the same scale: feature 0's effects cancel, feature 1 is net negative.
    np.testing.assert_allclose(attribution.global_importance("signed_mean"), [0.0, -1 / 3])
    np.testing.assert_allclose(_attribution(np.zeros((2, 2, 1))).global_importance(), [0.5, 0.5])
    with pytest.raises(ValueError, match="kind"):
        attribution.global_importance("median")
    with pytest.raises(ValueError, match="feature names"):
        Attribution(values=values, rest=np.zeros((2, 1)), output=np.zeros((2, 1)), feature_names=("a",),
                    explainer="x", exact=False)  # fmt: skip


def test_gradient_times_input_of_a_linear_function_is_exact_and_referenced():
    # captum's tiny analytic model: for f(x) = x·W + b, gradient × (x − m) = W_j (x_j − m_j), rest = f(m).
    rng = np.random.default_rng(0)
    w = torch.tensor(rng.normal(size=(4, 2)), dtype=torch.float32)
    b = torch.tensor([0.5, -1.0])
    x = rng.normal(size=(6, 4)).astype(np.float32)
    reference = rng.normal(size=4)
    attribution = GradientTimesInput(lambda inputs: inputs @ w + b, batch_size=4).explain(
        x, reference=reference, reference_name="given point"
    )
    expected = w.numpy()[None, :, :] * (x - reference.astype(np.float32))[:, :, None]
    np.testing.assert_allclose(attribution.values, expected, atol=1e-6)
    f_reference = reference.astype(np.float32) @ w.numpy() + b.numpy()
    np.testing.assert_allclose(attribution.rest, np.broadcast_to(f_reference, (6, 2)), atol=1e-5)
    assert not attribution.exact and attribution.reference_name == "given point"


@pytest.mark.parametrize("problem_name", ["binary", "multiclass", "regression"])
def test_gradient_times_input_for_the_black_box(problem_name, problems):
    p = problems[problem_name]
    estimator_type = TabResNetClassifier if problem_name != "regression" else ESTIMATORS["tabresnet", "regression"]
    estimator = estimator_type(**FAST).fit(p.X_train, p.y_train)
    attribution = NetworkGradientExplainer(batch_size=16).explain(estimator, p.X_test)
    c = 3 if problem_name == "multiclass" else 1
    n, d = p.X_test.shape
    assert attribution.values.shape == (n, d, c) and attribution.output.shape == (n, c)
    assert attribution.feature_names == tuple(f"x{i}" for i in range(d))
    expected = estimator.predict(p.X_test) if problem_name == "regression" else estimator.decision_function(p.X_test)
    tolerance = ATOL * max(1.0, np.abs(expected).max())
    np.testing.assert_allclose(attribution.output.reshape(-1), expected.reshape(-1), atol=tolerance)
    # Against autograd on the ensemble directly, per row (the explainer batches and maps units).
    scale, _ = estimator.output_transform()
    row = torch.tensor(p.X_test[:1], requires_grad=True)
    estimator.model_(row).logits[0, 0].backward()
    manual = scale * row.grad[0].numpy() * (p.X_test[0] - estimator.reference_.astype(np.float32))
    np.testing.assert_allclose(attribution.values[0, :, 0], manual, rtol=1e-4, atol=1e-5 * scale)


def test_gradient_times_input_of_an_inn_is_not_its_exact_explanation(binary_problem):
    # A check that the two explainers differ: the hypernetwork's W(x) depends on x, so W(x)·x is not ∇·x.
    p = binary_problem
    estimator = INNClassifier(**FAST).fit(p.X_train, p.y_train)
    exact = INNExplainer().explain(estimator, p.X_test).values
    gradient = NetworkGradientExplainer().explain(estimator, p.X_test).values
    assert exact.shape == gradient.shape and not np.allclose(exact, gradient, atol=1e-3)


# ---------------------------------------------------------------------------------------------------------------
# Learning


@pytest.mark.parametrize("estimator_type", [INNClassifier, TabResNetClassifier])
def test_learns_above_a_floor(estimator_type, binary_problem):
    p = binary_problem
    estimator = estimator_type(nr_epochs=15, hidden_size=32, nr_blocks=1, batch_size=32, device="cpu")
    estimator.fit(p.X_train, p.y_train)
    assert roc_auc_score(p.y_test == "yes", estimator.predict_proba(p.X_test)[:, 1]) > 0.9
    assert estimator.epoch_losses_[-1] < estimator.epoch_losses_[0]


def test_regressor_learns_above_a_floor(regression_problem):
    p = regression_problem
    estimator = INNRegressor(nr_epochs=15, hidden_size=32, nr_blocks=1, batch_size=32, device="cpu")
    assert estimator.fit(p.X_train, p.y_train).score(p.X_test, p.y_test) > 0.8


# ---------------------------------------------------------------------------------------------------------------
# GPU (only where CUDA is available)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fits_on_cuda_and_keeps_model_there(binary_problem):
    p = binary_problem
    estimator = INNClassifier(**(FAST | {"device": "cuda"})).fit(p.X_train, p.y_train)
    assert estimator.device_.type == "cuda"
    assert all(param.device.type == "cuda" for param in estimator.model_.parameters())
    attribution = estimator.explain(p.X_test)  # outputs come back to the CPU as NumPy arrays
    assert attribution.additivity_error() < ATOL
    gradient = NetworkGradientExplainer().explain(estimator, p.X_test)  # inputs on the CPU, network on CUDA
    assert np.isfinite(gradient.values).all()
    cpu = INNClassifier(**FAST).fit(p.X_train, p.y_train)
    assert np.mean(cpu.predict(p.X_test) == estimator.predict(p.X_test)) > 0.8


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error when CUDA is missing")
def test_asking_for_cuda_without_it_is_a_user_error(binary_problem):
    from errors import UserError

    with pytest.raises(UserError, match="cuda"):
        INNClassifier(**(FAST | {"device": "cuda"})).fit(binary_problem.X_train, binary_problem.y_train)


def test_no_thread_leak_from_tests():
    # conftest pins one thread for speed; fitting must not change the process-wide setting.
    before = torch.get_num_threads()
    INNClassifier(**FAST).fit(np.random.default_rng(0).normal(size=(40, 2)), np.arange(40) % 2)
    assert torch.get_num_threads() == before
