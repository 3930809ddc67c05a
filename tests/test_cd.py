"""Contextual decomposition (CD) and ACD: completeness, the layer rules against hand computations, the explainers,
the hierarchy and its drawing, and agreement with the ``acd`` package where it applies (skipped without it)."""

from __future__ import annotations

import copy
import importlib.util
import json
import math
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from scipy.special import erf
from torch import nn
from torch.nn import functional as F

from explainers.acd import ACDExplainer, ACDTree, acd_hierarchies
from explainers.cd import CDExplainer, cd_group_scores, cd_interaction, group_masks
from models.decomposition import (
    RULES,
    cd_elementwise,
    cd_inn_product,
    cd_module,
    contextual_decomposition,
    share_bias,
    split_input,
)
from models.estimators import INNClassifier, INNRegressor, TabResNetClassifier, TabResNetRegressor
from models.networks import INNNetwork, SnapshotEnsemble, TabResNetNetwork
from models.senn import SENNClassifier, SENNNetwork

matplotlib.use("Agg")

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
# Input columns of the synthetic data: feature 1 is "one-hot" over columns 1-3, feature 3 over columns 5-6.
INPUT_TO_FEATURE = np.array([0, 1, 1, 1, 2, 3, 3])
FEATURE_NAMES = ["a", "b", "c", "d"]
N_INPUTS = INPUT_TO_FEATURE.size
TOLERANCE = 1e-10  # completeness in float64


def rows(n: int = 9, seed: int = 0) -> np.ndarray:
    """Numerical columns 0 and 4 and two one-hot blocks, as ``prepare_split`` would encode them."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, N_INPUTS))
    x[:, 0], x[:, 4] = rng.normal(size=n), rng.normal(size=n)
    x[np.arange(n), 1 + rng.integers(0, 3, size=n)] = 1.0
    x[np.arange(n), 5 + rng.integers(0, 2, size=n)] = 1.0
    return x


def logits64(network: nn.Module, x: np.ndarray) -> np.ndarray:
    """The network's own forward pass in float64 and evaluation mode (independent of the CD code)."""
    twin = copy.deepcopy(network).double().eval()
    with torch.no_grad():
        output = twin(torch.as_tensor(x, dtype=torch.float64))
    return (output.logits if hasattr(output, "logits") else output[0] if isinstance(output, tuple) else output).numpy()


def randomize(network: nn.Module, seed: int = 0) -> nn.Module:
    """Random batch-norm statistics and affine parameters (the last norm of a block starts at weight 0)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, nn.BatchNorm1d):
                module.running_mean.copy_(torch.randn(module.num_features, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(module.num_features, generator=generator))
                module.weight.copy_(torch.randn(module.num_features, generator=generator))
                module.bias.copy_(torch.randn(module.num_features, generator=generator))
    return network.eval()


def relu_mlp(n_inputs: int = N_INPUTS, n_outputs: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_inputs, 12), nn.ReLU(), nn.Linear(12, 12), nn.ReLU(inplace=True), nn.Linear(12, n_outputs)
    )


SIZES = {"hidden_size": 16, "nr_blocks": 2, "dropout": 0.1}
NETWORKS = {
    "tabresnet_binary": lambda: randomize(TabResNetNetwork(n_inputs=N_INPUTS, n_outputs=1, **SIZES)),
    "tabresnet_multiclass": lambda: randomize(TabResNetNetwork(n_inputs=N_INPUTS, n_outputs=3, **SIZES)),
    "inn_binary": lambda: randomize(INNNetwork(n_inputs=N_INPUTS, n_outputs=1, **SIZES)),
    "inn_multiclass": lambda: randomize(INNNetwork(n_inputs=N_INPUTS, n_outputs=3, **SIZES)),
    "inn_ensemble": lambda: SnapshotEnsemble(
        [randomize(INNNetwork(n_inputs=N_INPUTS, n_outputs=2, **SIZES), seed) for seed in range(3)]
    ),
    "tabresnet_ensemble": lambda: SnapshotEnsemble(
        [randomize(TabResNetNetwork(n_inputs=N_INPUTS, n_outputs=1, **SIZES), seed) for seed in range(2)]
    ),
    "senn_resnet": lambda: randomize(SENNNetwork(n_inputs=N_INPUTS, n_outputs=2, parameterizer="resnet", **SIZES)),
    "senn_mlp": lambda: SENNNetwork(n_inputs=N_INPUTS, n_outputs=1, parameterizer="mlp", **SIZES).eval(),
    "relu_mlp": relu_mlp,
}


def all_groups() -> list[list[int]]:
    """Every single feature, pairs, a triple, all features and the empty group."""
    return [[0], [1], [2], [3], [0, 1], [1, 3], [0, 2, 3], [0, 1, 2, 3], []]


# ------------------------------------------------------------------------------------------------ completeness
@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize("rule", RULES)
def test_relevant_plus_irrelevant_is_the_logit_for_random_networks(name, rule):
    network = NETWORKS[name]()
    x = rows()
    masks = group_masks(all_groups(), INPUT_TO_FEATURE)
    logits = logits64(network, x)
    for reference in (None, np.random.default_rng(1).normal(size=N_INPUTS)):
        rel, irrel = contextual_decomposition(network, x, masks, reference=reference, rule=rule)
        assert rel.shape == irrel.shape == (x.shape[0], len(masks), logits.shape[1])
        assert np.abs(rel + irrel - logits[:, None, :]).max() < TOLERANCE
        assert np.all(rel[:, -1] == 0)  # the empty group gets nothing, not even a bias share
        assert not np.allclose(rel[:, 0], rel[:, 1])  # the scores say something
    # Classic CD (reference 0): the group of all features is the whole logit.
    rel, irrel = contextual_decomposition(network, x, masks[-2:-1], rule=rule)
    assert np.abs(rel[:, 0] - logits).max() < 1e-12 and np.abs(irrel).max() < 1e-12


@pytest.fixture(scope="module")
def trained():
    """Tiny estimators trained for a few epochs on the synthetic one-hot data (binary, multiclass, regression)."""
    rng = np.random.default_rng(0)
    x = rows(160, seed=1).astype(np.float32)
    signal = x[:, 0] + 1.5 * x[:, 2] - x[:, 4] * x[:, 5] + 0.2 * rng.normal(size=len(x))
    kwargs = {"nr_epochs": 4, "hidden_size": 16, "nr_blocks": 2, "batch_size": 32, "seed": 0}
    y_binary = (signal > np.median(signal)).astype(int)
    y_multi = np.digitize(signal, np.quantile(signal, [1 / 3, 2 / 3]))
    return {
        "inn": INNClassifier(**kwargs).fit(x, y_binary),
        "tabresnet": TabResNetClassifier(**kwargs).fit(x, y_binary),
        "inn_multiclass": INNClassifier(**kwargs).fit(x, y_multi),
        "tabresnet_multiclass": TabResNetClassifier(**kwargs).fit(x, y_multi),
        "inn_regressor": INNRegressor(**kwargs).fit(x, signal),
        "tabresnet_regressor": TabResNetRegressor(**kwargs).fit(x, signal),
        "senn": SENNClassifier(**kwargs).fit(x, y_binary),
    }


@pytest.mark.parametrize(
    "name",
    ["inn", "tabresnet", "inn_multiclass", "tabresnet_multiclass", "inn_regressor", "tabresnet_regressor", "senn"],
)
def test_relevant_plus_irrelevant_is_the_output_for_trained_estimators(trained, name):
    model = trained[name]
    assert len(model.model_.members) > 1  # a real snapshot ensemble
    x = rows(12, seed=2)
    scale, shift = model.output_transform()
    expected = logits64(model.model_, x) * scale + shift
    for rule in RULES:
        for reference in ("zero", "mean"):
            rel, irrel = cd_group_scores(
                model, x, all_groups(), input_to_feature=INPUT_TO_FEATURE, reference=reference, rule=rule
            )
            assert np.abs(rel + irrel - expected[:, None, :]).max() < TOLERANCE * max(1.0, abs(scale))
    # the decomposed network is the one that predicts
    predicted = model.predict(x) if name.endswith("regressor") else model.decision_function(x)
    assert np.abs(expected.reshape(predicted.shape) - predicted).max() < 1e-3 * max(1.0, abs(scale))


# ------------------------------------------------------------------------------------ rules against hand results
def test_linear_layer_gives_the_group_its_weights_times_centred_inputs_and_its_bias_share():
    torch.manual_seed(3)
    layer = nn.Linear(N_INPUTS, 2)
    x = rows()
    reference = np.random.default_rng(4).normal(size=N_INPUTS)
    groups = [[0], [1], [1, 3], [0, 2]]
    rel, irrel = contextual_decomposition(
        nn.Sequential(layer), x, group_masks(groups, INPUT_TO_FEATURE), reference=reference
    )
    weight, bias = layer.weight.detach().double().numpy(), layer.bias.detach().double().numpy()
    for index, group in enumerate(groups):
        columns = np.isin(INPUT_TO_FEATURE, group)
        own = ((x - reference) * columns) @ weight.T  # Σ_{j∈S} w_j (x_j − m_j)
        rest = np.where(columns, reference, x) @ weight.T  # the irrelevant input: m on S, x elsewhere
        share = np.abs(own) / (np.abs(own) + np.abs(rest))
        np.testing.assert_allclose(rel[:, index], own + share * bias, rtol=0, atol=1e-12)
        np.testing.assert_allclose(irrel[:, index], rest + (1 - share) * bias, rtol=0, atol=1e-12)


def test_bias_goes_to_the_irrelevant_stream_where_both_streams_are_zero():
    rel = torch.tensor([[[0.0, 1.0, 0.0]]], dtype=torch.float64)
    total = torch.tensor([[[0.0, 4.0, 2.0]]], dtype=torch.float64)
    bias = torch.tensor([3.0, 5.0, 7.0], dtype=torch.float64)
    new_rel, new_total = share_bias(rel, total, bias)
    np.testing.assert_allclose(new_rel.numpy().ravel(), [0.0, 1.0 + 5.0 * 1 / (1 + 3), 0.0])
    np.testing.assert_allclose(new_total.numpy().ravel(), [3.0, 9.0, 9.0])


def gelu(values: np.ndarray) -> np.ndarray:
    return 0.5 * values * (1.0 + erf(values / math.sqrt(2.0)))


def test_gelu_rules_against_hand_computed_orderings():
    rng = np.random.default_rng(5)
    rel, irrel = rng.normal(size=(2, 3, 50)) * 2
    streams = torch.from_numpy(rel), torch.from_numpy(rel + irrel)
    # relevant first: the group alone
    first, total = cd_elementwise(F.gelu, *streams, rule="relevant_first")
    np.testing.assert_allclose(first.numpy(), gelu(rel), atol=1e-14)
    np.testing.assert_allclose(total.numpy(), gelu(rel + irrel), atol=1e-14)
    # Shapley: the average of the two orderings (relevant first, irrelevant first); σ(0) = 0 for GELU
    shapley, _ = cd_elementwise(F.gelu, *streams, rule="shapley")
    by_hand = 0.5 * ((gelu(rel) - gelu(0.0)) + (gelu(rel + irrel) - gelu(irrel)))
    np.testing.assert_allclose(shapley.numpy(), by_hand, atol=1e-14)
    assert np.abs(shapley.numpy() - first.numpy()).max() > 1e-3  # the two rules differ


def test_an_activation_with_a_nonzero_value_at_zero_gives_that_value_to_the_irrelevant_stream():
    rel = torch.tensor([[0.0, 1.0, -2.0]], dtype=torch.float64)
    total = torch.tensor([[3.0, 1.0, 0.5]], dtype=torch.float64)
    for rule in RULES:
        new_rel, new_total = cd_elementwise(torch.sigmoid, rel, total, rule=rule)
        assert new_rel[0, 0] == 0  # an empty stream stays empty
        np.testing.assert_allclose(new_total.numpy(), torch.sigmoid(total).numpy())
    relevant_first, _ = cd_elementwise(torch.sigmoid, rel, total, rule="relevant_first")
    np.testing.assert_allclose(relevant_first.numpy(), torch.sigmoid(rel).numpy() - 0.5)


def test_inn_product_assigns_the_four_terms_as_documented():
    rng = np.random.default_rng(6)
    x_rel, x_irrel = rng.normal(size=(2, 4, 5))
    w_rel, w_irrel = rng.normal(size=(2, 4, 6, 3))  # (G, D + 1, C), last row the bias
    total_x, total_w = x_rel + x_irrel, w_rel + w_irrel

    def dot(x, w):  # Σ_d x_d w_dc over the D input rows
        return np.einsum("gd,gdc->gc", x, w[:, :-1])

    both, cross, bias_rel = dot(x_rel, w_rel), dot(x_rel, w_irrel) + dot(x_irrel, w_rel), w_rel[:, -1]
    expected = {"relevant_first": both + bias_rel, "shapley": both + 0.5 * cross + bias_rel}
    for rule in RULES:
        rel, total = cd_inn_product(
            *(torch.from_numpy(a) for a in (x_rel, total_x, w_rel, total_w)),
            rule=rule,
        )
        np.testing.assert_allclose(rel.numpy(), expected[rule], atol=1e-12)
        np.testing.assert_allclose(total.numpy(), dot(total_x, total_w) + total_w[:, -1], atol=1e-12)


def zero_biases(network: nn.Module) -> nn.Module:
    """No additive constant anywhere (linear biases, batch-norm means and shifts): then CD's relevant stream under
    the relevant-first rule is the network applied to the relevant input alone."""
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, nn.Linear):
                module.bias.zero_()
            if isinstance(module, nn.BatchNorm1d):
                module.running_mean.zero_()
                module.bias.zero_()
    return network


@pytest.mark.parametrize("name", ["tabresnet_multiclass", "inn_binary", "inn_ensemble", "relu_mlp"])
def test_without_biases_the_relevant_stream_is_the_network_on_the_relevant_input(name):
    network = zero_biases(NETWORKS[name]())
    x = rows()
    reference = np.random.default_rng(7).normal(size=N_INPUTS)
    groups = [[1], [0, 3], [0, 1, 2, 3]]
    rel, _ = contextual_decomposition(
        network, x, group_masks(groups, INPUT_TO_FEATURE), reference=reference, rule="relevant_first"
    )
    for index, group in enumerate(groups):
        alone = np.where(np.isin(INPUT_TO_FEATURE, group), x - reference, 0.0)
        np.testing.assert_allclose(rel[:, index], logits64(network, alone), atol=1e-12)


def test_senn_with_identity_concepts_decomposes_as_inn_with_the_same_weights():
    inn = NETWORKS["inn_multiclass"]()
    senn = SENNNetwork(n_inputs=N_INPUTS, n_outputs=3, parameterizer="resnet", **SIZES)
    senn.parameterizer.load_state_dict(inn.state_dict())  # the same backbone and head
    x, masks = rows(), group_masks(all_groups(), INPUT_TO_FEATURE)
    for rule in RULES:
        np.testing.assert_array_equal(
            contextual_decomposition(senn.eval(), x, masks, rule=rule)[0],
            contextual_decomposition(inn, x, masks, rule=rule)[0],
        )


def test_the_ensemble_decomposes_as_the_mean_of_its_members():
    ensemble = NETWORKS["inn_ensemble"]()
    x, masks = rows(), group_masks(all_groups(), INPUT_TO_FEATURE)
    for rule in RULES:
        parts = [contextual_decomposition(member, x, masks, rule=rule) for member in ensemble.members]
        rel, irrel = contextual_decomposition(ensemble, x, masks, rule=rule)
        np.testing.assert_allclose(rel, np.mean([part[0] for part in parts], axis=0), atol=1e-13)
        np.testing.assert_allclose(irrel, np.mean([part[1] for part in parts], axis=0), atol=1e-13)


# --------------------------------------------------------------------------- groups, references, batching
def test_group_masks_move_a_features_columns_together():
    masks = group_masks([[1], ["d", "a"], []], INPUT_TO_FEATURE, FEATURE_NAMES)
    assert masks.tolist() == [
        [False, True, True, True, False, False, False],
        [True, False, False, False, False, True, True],
        [False] * N_INPUTS,
    ]
    with pytest.raises(ValueError, match="unknown feature"):
        group_masks([["z"]], INPUT_TO_FEATURE, FEATURE_NAMES)
    with pytest.raises(ValueError, match="outside"):
        group_masks([[4]], INPUT_TO_FEATURE, FEATURE_NAMES)


def test_a_group_at_the_reference_scores_zero():
    network = NETWORKS["inn_multiclass"]()
    x = rows()
    reference = x[0].copy()
    x[:, INPUT_TO_FEATURE == 1] = reference[INPUT_TO_FEATURE == 1]  # feature 1 at the reference in every row
    rel, _ = contextual_decomposition(network, x, group_masks([[1], [0]], INPUT_TO_FEATURE), reference=reference)
    assert np.all(rel[:, 0] == 0)
    assert np.all(np.abs(rel[1:, 1]) > 0)


def test_batching_over_rows_and_groups_does_not_change_the_result():
    network = NETWORKS["inn_multiclass"]()
    x, masks = rows(5), group_masks(all_groups(), INPUT_TO_FEATURE)
    full = contextual_decomposition(network, x, masks, batch_size=10_000)
    # Matrix products of other shapes round differently: agreement to rounding (the irrelevant part of the group of
    # all features included, which a bias share would amplify without its rounding guard).
    for batch_size in (1, 4, 12):  # one pair per pass, several passes per row, rows split across passes
        chunked = contextual_decomposition(network, x, masks, batch_size=batch_size)
        np.testing.assert_allclose(chunked[0], full[0], atol=1e-13)
        np.testing.assert_allclose(chunked[1], full[1], atol=1e-13)
    per_row = contextual_decomposition(network, x, np.broadcast_to(masks, (len(x), *masks.shape)))
    np.testing.assert_allclose(per_row[0], full[0], atol=1e-13)


def test_no_rows_or_no_groups_give_empty_results():
    network = NETWORKS["inn_multiclass"]()
    rel, irrel = contextual_decomposition(network, rows()[:0], np.eye(N_INPUTS, dtype=bool))
    assert rel.shape == irrel.shape == (0, N_INPUTS, 3)
    rel, _ = contextual_decomposition(network, rows(), np.zeros((0, N_INPUTS), dtype=bool))
    assert rel.shape == (9, 0, 3)


def test_cd_keeps_gradients_for_penalties():
    network = NETWORKS["inn_binary"]()
    x = torch.as_tensor(rows(), dtype=torch.float32)
    masks = torch.as_tensor(group_masks([[0], [1, 2]], INPUT_TO_FEATURE))
    rel, total = cd_module(network, *split_input(x, masks))
    rel.square().sum().backward()
    gradient = network.backbone.input_layer.weight.grad
    assert gradient is not None and torch.isfinite(gradient).all() and gradient.abs().sum() > 0


def test_an_unknown_module_is_refused():
    with pytest.raises(TypeError, match="no CD rule for Conv1d"):
        contextual_decomposition(nn.Sequential(nn.Conv1d(1, 1, 1)), rows(), np.eye(N_INPUTS, dtype=bool))


def test_interaction_is_the_union_minus_the_parts_and_zero_for_an_additive_model(trained):
    model = trained["tabresnet"]
    x = rows(6, seed=3)
    kwargs = {"input_to_feature": INPUT_TO_FEATURE, "reference": "zero"}
    interaction = cd_interaction(model, x, [0], [1, 2], **kwargs)
    scores, _ = cd_group_scores(model, x, [[0], [1, 2], [0, 1, 2]], **kwargs)
    np.testing.assert_allclose(interaction, scores[:, 2] - scores[:, 0] - scores[:, 1], atol=1e-12)
    assert np.abs(interaction).max() > 1e-6
    additive = nn.Sequential(nn.Linear(N_INPUTS, 2, bias=False))
    assert np.abs(cd_interaction(additive, x, [0], [1, 3], **kwargs)).max() < 1e-12
    with pytest.raises(ValueError, match="disjoint"):
        cd_interaction(model, x, [0, 1], [1], **kwargs)


# -------------------------------------------------------------------------------------------------- explainers
def test_cd_explainer_returns_single_feature_scores_and_what_they_leave_unexplained(trained):
    model = trained["inn_multiclass"]
    x = rows(10, seed=4)
    attribution = CDExplainer(FEATURE_NAMES, INPUT_TO_FEATURE).explain(model, x)
    assert attribution.values.shape == (10, 4, 3) and attribution.explainer == "cd" and not attribution.exact
    assert attribution.feature_names == tuple(FEATURE_NAMES) and attribution.reference_name == "training mean"
    np.testing.assert_allclose(attribution.reference, model.reference_)
    np.testing.assert_allclose(attribution.output, model.decision_function(x), atol=1e-4)
    np.testing.assert_allclose(attribution.values.sum(1) + attribution.rest, attribution.output, atol=1e-12)
    complete = attribution.values + attribution.extras["irrelevant"]
    assert np.abs(complete - attribution.output[:, None, :]).max() < TOLERANCE
    singles, _ = cd_group_scores(model, x, [[0], [1], [2], [3]], input_to_feature=INPUT_TO_FEATURE)
    np.testing.assert_allclose(attribution.values, singles, atol=1e-13)
    assert np.abs(attribution.rest).max() > 0  # single features do not add up
    # a regressor is explained in target units; with reference zero (classic CD)
    regressor = trained["tabresnet_regressor"]
    attribution = CDExplainer(reference="zero", rule="shapley").explain(regressor, x)
    assert attribution.values.shape == (10, N_INPUTS, 1) and attribution.output_name == "prediction"
    np.testing.assert_allclose(attribution.output[:, 0], regressor.predict(x), rtol=1e-5, atol=1e-4)


def test_mean_reference_needs_a_fitted_estimator():
    with pytest.raises(ValueError, match="reference='mean'"):
        CDExplainer().explain(NETWORKS["relu_mlp"](), rows())


# ------------------------------------------------------------------------------------------------------- ACD
@pytest.fixture(scope="module")
def hierarchy(trained):
    model = trained["inn_multiclass"]
    x = rows(5, seed=5)
    explainer = ACDExplainer(FEATURE_NAMES, INPUT_TO_FEATURE, reference="zero")
    return model, x, explainer, explainer.hierarchies(model, x)


def test_acd_levels_join_two_groups_at_a_time_down_to_one(hierarchy):
    model, x, explainer, trees = hierarchy
    singles = explainer.explain(model, x)
    assert explainer.name == "acd" and singles.explainer == "acd"
    for row, tree in enumerate(trees):
        assert len(tree.levels) == 4 and tree.levels[0].joined is None
        assert tree.output == int(np.argmax(singles.output[row]))
        np.testing.assert_allclose(tree.output_value, singles.output[row, tree.output])
        np.testing.assert_allclose(tree.levels[0].scores, singles.values[row, :, tree.output], atol=1e-13)
        for previous, level in zip(tree.levels, tree.levels[1:], strict=False):
            assert sorted(f for group in level.groups for f in group) == [0, 1, 2, 3]  # a partition
            assert len(level.groups) == len(previous.groups) - 1
            parts = [group for group in previous.groups if group not in level.groups]
            assert len(parts) == 2 and tuple(sorted(parts[0] + parts[1])) == level.groups[level.joined]
            scores = dict(zip(previous.groups, previous.scores, strict=True))
            joined = level.scores[level.joined]
            assert level.interaction == pytest.approx(joined - scores[parts[0]] - scores[parts[1]], abs=1e-12)
        whole, _ = cd_group_scores(
            model, x[row : row + 1], [[0, 1, 2, 3]], input_to_feature=INPUT_TO_FEATURE, reference="zero"
        )
        assert tree.levels[-1].scores[0] == pytest.approx(whole[0, 0, tree.output], abs=1e-12)


PAIRS = [(a, b) for a in range(4) for b in range(a + 1, 4)]


def pair_interactions(model, x: np.ndarray) -> np.ndarray:
    """``s({a, b}) − s(a) − s(b)`` of every pair of the four features, scored independently of ACD ``(N, P, C)``."""
    groups = [[0], [1], [2], [3]] + [list(pair) for pair in PAIRS]
    scores, _ = cd_group_scores(model, x, groups, input_to_feature=INPUT_TO_FEATURE, reference="zero")
    return np.stack([scores[:, 4 + index] - scores[:, a] - scores[:, b] for index, (a, b) in enumerate(PAIRS)], 1)


def test_acd_joins_the_pair_with_the_largest_interaction_first(hierarchy):
    model, x, _, trees = hierarchy
    interactions = pair_interactions(model, x)
    np.testing.assert_allclose(  # the pairwise score agrees with cd_interaction
        interactions[:, 2], cd_interaction(model, x, [0], [3], input_to_feature=INPUT_TO_FEATURE, reference="zero")
    )
    for row, tree in enumerate(trees):
        first = tree.levels[1]
        assert first.groups[first.joined] == PAIRS[int(np.argmax(np.abs(interactions[row, :, tree.output])))]


def test_acd_trees_of_a_batch_equal_those_of_single_rows_and_survive_json(hierarchy):
    model, x, explainer, trees = hierarchy
    alone = explainer.hierarchy(model, x[3])
    assert [(level.groups, level.joined) for level in alone.levels] == [
        (level.groups, level.joined) for level in trees[3].levels
    ]
    for ours, theirs in zip(alone.levels, trees[3].levels, strict=True):  # matrix products of other shapes
        np.testing.assert_allclose(ours.scores, theirs.scores, rtol=0, atol=1e-12)
    restored = ACDTree.from_dict(json.loads(json.dumps(trees[2].to_dict())))
    assert restored == trees[2]
    order = trees[2].leaf_order()
    assert sorted(order) == [0, 1, 2, 3]
    for level in trees[2].levels:  # every group is contiguous in the leaf order
        for group in level.groups:
            positions = sorted(order.index(feature) for feature in group)
            assert positions == list(range(positions[0], positions[0] + len(group)))


def test_acd_signed_criterion_and_a_chosen_output(trained):
    model = trained["inn_multiclass"]
    x = rows(3, seed=6)
    trees = acd_hierarchies(
        model, x, input_to_feature=INPUT_TO_FEATURE, reference="zero", output=2, criterion="interaction"
    )
    interactions = pair_interactions(model, x)
    for row, tree in enumerate(trees):
        assert tree.output == 2 and tree.criterion == "interaction" and tree.output_name == "logit of output 2"
        first = tree.levels[1]
        assert first.groups[first.joined] == PAIRS[int(np.argmax(interactions[row, :, 2]))]
    with pytest.raises(ValueError, match="criterion"):
        acd_hierarchies(model, x, criterion="largest")


def test_acd_drawing_has_one_block_per_group_coloured_around_zero(hierarchy):
    import matplotlib.pyplot as plt

    from plots.acd import plot_acd_hierarchy

    tree = hierarchy[3][0]
    figure, ax = plt.subplots()
    try:
        mappable = plot_acd_hierarchy(tree.to_dict(), ax)
        assert len(ax.patches) == sum(len(level.groups) for level in tree.levels)
        limit = max(abs(score) for level in tree.levels for score in level.scores)
        assert mappable.norm.vmin == pytest.approx(-limit) and mappable.norm.vmax == pytest.approx(limit)
        assert ax.get_ylim()[0] > ax.get_ylim()[1]  # level 0 on top
        figure.colorbar(mappable, ax=ax)
        figure.canvas.draw()
    finally:
        plt.close(figure)


# ------------------------------------------------------------------------------------ the acd package reference
def test_cd_equals_the_acd_package_on_a_relu_mlp():
    acd = pytest.importorskip("acd")
    torch.manual_seed(8)
    model = relu_mlp(6, 3).double()
    x = torch.randn(7, 6, dtype=torch.float64)
    masks = np.array([[1, 0, 0, 0, 0, 0], [0, 1, 1, 0, 0, 0], [1, 0, 1, 1, 0, 1]], dtype=bool)
    ours_rel, ours_irrel = contextual_decomposition(model, x, masks)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # acd builds its zero inputs in the default type
    try:
        for index, mask in enumerate(masks):
            rel, irrel = acd.cd(x, model, mask=mask.astype(np.float64), device="cpu")
            np.testing.assert_allclose(ours_rel[:, index], rel.detach().numpy(), atol=1e-6)
            np.testing.assert_allclose(ours_irrel[:, index], irrel.detach().numpy(), atol=1e-6)
    finally:
        torch.set_default_dtype(default)


# ------------------------------------------------------------------------------------------- benchmark smoke
def load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cd_speed_benchmark_runs(capsys):
    argv = ["--rows", "50", "--nr_epochs", "1", "--hidden_size", "16", "--methods", "inn"]
    assert load_benchmark("cd_speed").main(argv) == 0
    assert "| inn |" in capsys.readouterr().out


def test_cd_vs_acd_benchmark_runs(capsys):
    pytest.importorskip("acd")
    assert load_benchmark("cd_vs_acd").main(["--networks", "2"]) == 0
    assert "max |ours − acd|" in capsys.readouterr().out
