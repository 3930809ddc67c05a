"""SENN and DiSENN (models/senn.py): shapes, the robustness loss on logits, exact explanations, snapshots, KL.

The robustness loss is checked against explicit Jacobians in float64, and its design (logits, not
log-probabilities) by the model it must not penalise: one whose relevances are constant, i.e. a linear model.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from models.networks import NetworkOutput, SnapshotEnsemble
from models.senn import (
    ConceptSENNNetwork,
    DiSENNClassifier,
    DiSENNRegressor,
    MLPParameterizer,
    SENNClassifier,
    SENNNetwork,
    SENNRegressor,
    concept_loss,
    concept_prototypes,
    gaussian_kl,
    kl_schedule,
    latent_statistics,
    latent_traversal,
    robustness_loss,
)

SMALL = {"nr_epochs": 4, "hidden_size": 16, "nr_blocks": 1, "batch_size": 32, "device": "cpu"}
NETWORKS = [
    ("identity", "resnet"),
    ("identity", "mlp"),
    ("autoencoder", "resnet"),
    ("autoencoder", "mlp"),
    ("vae", "resnet"),
    ("vae", "mlp"),
]


def _network(conceptizer: str, parameterizer: str = "resnet", *, n_inputs=6, n_outputs=3, n_concepts=4, **kw):
    sizes = {"n_inputs": n_inputs, "n_outputs": n_outputs, "parameterizer": parameterizer, "hidden_size": 8}
    if conceptizer == "identity":
        return SENNNetwork(nr_blocks=1, **sizes, **kw)
    return ConceptSENNNetwork(conceptizer=conceptizer, n_concepts=n_concepts, nr_blocks=1, **sizes, **kw)


# ---------------------------------------------------------------------------------------------------------------
# Networks


@pytest.mark.parametrize(("conceptizer", "parameterizer"), NETWORKS)
def test_every_conceptizer_has_the_documented_shapes_and_aggregates_by_sum(conceptizer, parameterizer):
    network = _network(conceptizer, parameterizer).eval()
    x = torch.randn(5, 6)
    output = network(x)
    assert output.logits.shape == (5, 3)
    if conceptizer == "identity":
        assert output.weights.shape == (5, 7, 3) and output.concepts.shape == (5, 6)
        assert output.reconstruction is None
        expected = (output.weights[:, :6] * x[:, :, None]).sum(1) + output.weights[:, 6]  # θᵀ[x, 1]
    else:
        assert output.weights.shape == (5, 4, 3) and output.concepts.shape == (5, 4)
        assert output.reconstruction.shape == (5, 6)
        assert (set(output.extras) >= {"mu", "logvar"}) == (conceptizer == "vae")
        expected = torch.einsum("bkc,bk->bc", output.weights, output.concepts)
    torch.testing.assert_close(output.logits, expected)


def test_vae_concepts_are_posterior_means_and_sampling_only_reaches_the_decoder():
    network = _network("vae")
    x = torch.randn(64, 6)
    network.train()
    first, second = network(x), network(x)
    torch.testing.assert_close(first.concepts, first.extras["mu"])
    assert not torch.allclose(first.reconstruction, second.reconstruction)  # a fresh sample each call
    network.eval()
    torch.testing.assert_close(network(x).reconstruction, network.decode(network(x).concepts))


def test_input_gradients_keep_a_callers_leaf_and_start_a_graph_otherwise():
    network = _network("identity", input_gradients=True).train()
    x = torch.randn(4, 6)
    assert network(x).extras["input"].requires_grad and not x.requires_grad
    leaf = x.clone().requires_grad_(True)
    assert network(leaf).extras["input"] is leaf  # FGSM's input keeps its gradient path
    assert not network.eval()(x).extras["input"].requires_grad


# ---------------------------------------------------------------------------------------------------------------
# The robustness loss


def _constant_theta(network):
    """Make the parameterizer's output constant: zero the head's weights (θ(x) = its bias)."""
    with torch.no_grad():
        network.parameterizer.head.weight.zero_()
        network.parameterizer.head.bias.normal_()
    return network


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_constant_relevances_have_zero_penalty_on_logits_but_not_on_log_probabilities(n_outputs):
    network = _constant_theta(_network("identity", n_outputs=n_outputs, input_gradients=True).double()).train()
    x = torch.randn(16, 6, dtype=torch.float64)
    output = network(x)
    inputs = output.extras["input"]
    assert robustness_loss(output, inputs, identity=True).item() < 1e-10
    # The reason for the design: both public codebases differentiate log-softmax (log-sigmoid for one output).
    # ∇ log p_c = ∇z_c − Σ_k p_k ∇z_k ≠ θ_c, so the very model the loss should leave alone is penalised.
    log_probabilities = (
        F.logsigmoid(output.logits) if n_outputs == 1 else torch.log_softmax(output.logits, dim=1)
    )  # fmt: skip
    on_link = robustness_loss(NetworkOutput(log_probabilities, output.weights, output.concepts), inputs, identity=True)
    assert on_link.item() > 1e-3


def _explicit_loss(network, x):
    """``mean_b ‖J_f − θᵀ J_h‖²_F`` from full Jacobians, one example at a time (float64)."""
    total = 0.0
    for row in x:
        point = row[None].detach()
        jf = torch.autograd.functional.jacobian(lambda z: network(z).logits[0], point)[:, 0]  # (C, D)
        output = network(point)
        if isinstance(network, SENNNetwork):
            total += (jf - output.weights[0, :-1].T).square().sum()
        else:
            jh = torch.autograd.functional.jacobian(lambda z: network(z).concepts[0], point)[:, 0]  # (K, D)
            total += (jf - output.weights[0].T @ jh).square().sum()
    return total / x.shape[0]


@pytest.mark.parametrize("conceptizer", ["identity", "autoencoder", "vae"])
def test_robustness_loss_is_the_squared_jacobian_residual_and_hutchinson_is_unbiased(conceptizer):
    network = _network(conceptizer).double().eval()  # evaluation: the explicit Jacobians see the same function
    network.input_gradients = True
    x = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    output = network(x)
    identity = conceptizer == "identity"
    exact = robustness_loss(output, x, identity=identity)
    torch.testing.assert_close(exact, _explicit_loss(network, x))
    # Rademacher probes: the mean over all 2^C sign vectors is exactly the squared Frobenius norm.
    estimates = [
        robustness_loss(output, x, identity=identity, estimator="hutchinson", probes=torch.tensor(signs).expand(5, 3))
        for signs in itertools.product([-1.0, 1.0], repeat=3)
    ]
    torch.testing.assert_close(torch.stack(estimates).mean(), exact)


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_the_senn_code_form_is_its_padded_residual_on_the_link_output_normed_over_the_batch(n_outputs):
    """``form="senn"`` is dmelis/SENN's grad3 for identity concepts: ``‖[θ_{:D} − ∇ₓp; θ₀]‖_F`` over the batch, ``p``
    the sigmoid (one output) or log-softmax; the other forms drop one of its three choices."""
    network = _network("identity", n_outputs=n_outputs).double().eval()
    network.input_gradients = True
    x = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    output = network(x)
    link = (lambda z: torch.sigmoid(z)) if n_outputs == 1 else (lambda z: torch.log_softmax(z, dim=1))

    def explicit(use_link: bool, intercept: bool) -> torch.Tensor:
        def outputs(z: torch.Tensor) -> torch.Tensor:
            logits = network(z).logits
            return (link(logits) if use_link else logits)[0]

        total = 0.0
        for row in x:
            point = row[None].detach()
            jf = torch.autograd.functional.jacobian(outputs, point)[:, 0]  # (C, D)
            theta = network(point).weights[0]  # (D + 1, C)
            total += (theta[:-1].T - jf).square().sum() + (theta[-1].square().sum() if intercept else 0.0)
        return total

    for form, (use_link, intercept, norm) in {"senn": (True, True, "batch"), "senn_logits": (False, True, "batch"),
                                              "senn_no_intercept": (True, False, "batch"),
                                              "batch": (False, False, "batch"),
                                              "logits": (False, False, "mean")}.items():  # fmt: skip
        expected = explicit(use_link, intercept)
        expected = expected.sqrt() if norm == "batch" else expected / x.shape[0]
        torch.testing.assert_close(robustness_loss(output, x, identity=True, form=form), expected)
    # The SENN code penalises a model with constant relevances: through the link and through θ₀.
    constant = _constant_theta(_network("identity", n_outputs=n_outputs, input_gradients=True).double()).train()
    out = constant(torch.randn(8, 6, dtype=torch.float64))
    assert robustness_loss(out, out.extras["input"], identity=True).item() < 1e-10
    assert robustness_loss(out, out.extras["input"], identity=True, form="senn").item() > 1e-3
    if n_outputs > 1:
        with pytest.raises(ValueError, match="Hutchinson"):
            robustness_loss(output, x, identity=True, estimator="hutchinson", form="senn")
    with pytest.raises(ValueError, match="form"):
        robustness_loss(output, x, identity=True, form="squared")


def test_the_mlp_parameterizer_takes_the_senn_codes_widths():
    network = SENNNetwork(n_inputs=11, n_outputs=1, parameterizer="mlp", parameterizer_sizes=(10, 10, 5))
    linear = [layer for layer in network.parameterizer.layers if isinstance(layer, torch.nn.Linear)]
    assert [(layer.in_features, layer.out_features) for layer in linear] == [(11, 10), (10, 10), (10, 5), (5, 12)]
    assert all(isinstance(layer, torch.nn.Tanh) for layer in network.parameterizer.layers[1:-1:2])
    default = MLPParameterizer(n_inputs=4, n_outputs=2, n_relevances=5, hidden_size=8, nr_blocks=1, dropout=0.0)
    assert [layer.out_features for layer in default.layers if isinstance(layer, torch.nn.Linear)] == [8, 8, 10]
    with pytest.raises(ValueError, match="resnet has none"):
        SENNNetwork(n_inputs=4, n_outputs=1, parameterizer="resnet", parameterizer_sizes=(4,))


def test_robustness_loss_trains_the_parameterizer_and_the_conceptizer():
    network = _network("autoencoder").double().eval()
    x = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    loss = robustness_loss(network(x), x, identity=False)
    loss.backward()
    for part in (network.parameterizer, network.conceptizer.encoder):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())


def test_robustness_loss_needs_the_input_the_network_read():
    network = _network("identity").eval()
    x = torch.randn(3, 6)
    with pytest.raises(ValueError, match="requires_grad"):
        robustness_loss(network(x), x, identity=True)


def test_gaussian_kl_is_the_closed_form_kl_to_the_standard_normal():
    generator = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(7, 4, generator=generator), torch.randn(7, 4, generator=generator)
    posterior = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    prior = torch.distributions.Normal(torch.zeros(4), torch.ones(4))
    expected = torch.distributions.kl_divergence(posterior, prior).sum(1).mean()
    torch.testing.assert_close(gaussian_kl(mu, logvar), expected)
    assert gaussian_kl(torch.zeros(3, 2), torch.zeros(3, 2)).item() == 0.0


# ---------------------------------------------------------------------------------------------------------------
# Estimators: exact explanations, snapshots, pre-training


@pytest.fixture(scope="module")
def fitted(binary_problem, multiclass_problem, regression_problem):
    """One fit per (estimator, task): identity and learned concepts, binary, multiclass and regression."""
    models = {
        "identity-binary": SENNClassifier(**SMALL).fit(binary_problem.X_train, binary_problem.y_train),
        "identity-multiclass": SENNClassifier(**SMALL, robust_estimator="hutchinson").fit(
            multiclass_problem.X_train, multiclass_problem.y_train
        ),
        "autoencoder-binary": SENNClassifier(**SMALL, conceptizer="autoencoder", pretrain_epochs=1).fit(
            binary_problem.X_train, binary_problem.y_train
        ),
        "vae-multiclass": DiSENNClassifier(**SMALL).fit(multiclass_problem.X_train, multiclass_problem.y_train),
        "identity-regression": SENNRegressor(**SMALL).fit(regression_problem.X_train, regression_problem.y_train),
        "vae-regression": DiSENNRegressor(**SMALL).fit(regression_problem.X_train, regression_problem.y_train),
    }
    problems = {"binary": binary_problem, "multiclass": multiclass_problem, "regression": regression_problem}
    return models, problems


@pytest.mark.parametrize(
    "key",
    ["identity-binary", "identity-multiclass", "autoencoder-binary", "vae-multiclass", "identity-regression",
     "vae-regression"],
)  # fmt: skip
def test_explanations_add_up_to_the_output_and_vanish_at_the_reference(fitted, key):
    models, problems = fitted
    model, problem = models[key], problems[key.split("-")[1]]
    attribution = model.explain(problem.X_test)
    regression = key.endswith("regression")
    output = model.predict(problem.X_test)[:, None] if regression else model.decision_function(problem.X_test)
    output = output.reshape(len(problem.X_test), -1)
    np.testing.assert_allclose(attribution.output, output, rtol=1e-5, atol=1e-4)
    scale = max(1.0, float(np.abs(attribution.output).max()))
    assert attribution.exact and attribution.additivity_error() < 1e-5 * scale
    at_reference = model.explain(model.reference_[None, :].astype(np.float32))
    assert np.abs(at_reference.values).max() < 1e-5 * scale
    if key.startswith("identity"):
        assert attribution.explainer == "senn" and attribution.feature_names == tuple(model.input_names())
        assert model.explanation_space() == "features"
        # INN's form: contributions are the relevances times the centred inputs.
        weights = attribution.extras["weights"][:, :-1]
        centred = problem.X_test - model.reference_
        np.testing.assert_allclose(attribution.values, weights * centred[:, :, None], rtol=1e-5, atol=1e-5)
    else:
        assert attribution.explainer == "senn_concepts" and model.explanation_space() == "concepts"
        k = model.num_concepts
        assert attribution.feature_names == tuple(f"c{i}" for i in range(k))
        extras = attribution.extras
        assert extras["relevances"].shape == (len(problem.X_test), k, attribution.n_outputs)
        np.testing.assert_allclose(extras["activations"], model.concepts(problem.X_test), rtol=1e-6, atol=1e-6)
        product = extras["relevances"] * (extras["activations"] - extras["reference_activations"])[:, :, None]
        np.testing.assert_allclose(attribution.values, product, rtol=1e-6, atol=1e-6)


def test_learned_concepts_keep_one_snapshot_identity_concepts_average_theirs(fitted, multiclass_problem):
    models, _ = fitted
    assert len(models["identity-multiclass"].model_.members) == 3  # nr_restarts = 3 cosine cycles
    assert len(models["vae-multiclass"].model_.members) == 1
    assert len(models["autoencoder-binary"].model_.members) == 1
    # Identity concepts: the ensemble's logits are the mean of the members' (θ averages exactly).
    ensemble = models["identity-multiclass"].model_
    x = torch.from_numpy(multiclass_problem.X_test)
    with torch.no_grad():
        mean_logits = torch.stack([member(x).logits for member in ensemble.members]).mean(0)
        torch.testing.assert_close(ensemble(x).logits, mean_logits, rtol=1e-5, atol=1e-5)
        learned = models["vae-multiclass"].model_.members[0]
        with pytest.raises(ValueError, match="do not combine"):
            SnapshotEnsemble([learned, learned])(x)


def test_kl_schedule_ramps_beta_or_the_capacity():
    assert kl_schedule(0.0, beta=4.0, capacity=0.0, warmup_epochs=0) == (4.0, None)
    assert kl_schedule(5.0, beta=4.0, capacity=0.0, warmup_epochs=10) == (2.0, None)
    assert kl_schedule(20.0, beta=4.0, capacity=0.0, warmup_epochs=10) == (4.0, None)
    assert kl_schedule(5.0, beta=4.0, capacity=20.0, warmup_epochs=10) == (4.0, 10.0)
    assert kl_schedule(50.0, beta=4.0, capacity=20.0, warmup_epochs=10) == (4.0, 20.0)


def test_concept_loss_sums_the_reconstruction_and_holds_the_kl_at_the_capacity():
    generator = torch.Generator().manual_seed(0)
    x, decoded = torch.randn(6, 5, generator=generator), torch.randn(6, 5, generator=generator)
    mu, logvar = torch.randn(6, 3, generator=generator), torch.randn(6, 3, generator=generator)
    output = NetworkOutput(x, None, mu, decoded, {"mu": mu, "logvar": logvar})
    mse, kl = F.mse_loss(decoded, x), gaussian_kl(mu, logvar)
    torch.testing.assert_close(concept_loss(x, output, beta=2.0, sparsity_reg=0.0), mse + 2.0 * kl)
    torch.testing.assert_close(
        concept_loss(x, output, beta=2.0, sparsity_reg=0.0, reconstruction="sum"), 5 * mse + 2.0 * kl
    )
    torch.testing.assert_close(
        concept_loss(x, output, beta=2.0, sparsity_reg=0.0, capacity=float(kl) + 1.0), mse + 2.0 * torch.tensor(1.0)
    )
    with pytest.raises(ValueError, match="reconstruction"):
        concept_loss(x, output, beta=2.0, sparsity_reg=0.0, reconstruction="max")


def test_a_kl_schedule_counts_the_joint_trainings_steps_after_pretraining(multiclass_problem, monkeypatch):
    import models.senn.estimators as estimators

    seen = []
    original = estimators.kl_schedule

    def spy(epoch, **kwargs):
        seen.append(epoch)
        return original(epoch, **kwargs)

    monkeypatch.setattr(estimators, "kl_schedule", spy)
    model = DiSENNClassifier(**{**SMALL, "nr_epochs": 2}, pretrain_epochs=1, capacity=5.0, kl_warmup_epochs=2,
                             reconstruction="sum", robust_reg=0.0)  # fmt: skip
    model.fit(multiclass_problem.X_train, multiclass_problem.y_train)
    steps = -(-len(multiclass_problem.X_train) // SMALL["batch_size"])
    assert len(seen) == 2 * steps and seen[0] == 1.0 and seen[-1] == pytest.approx(1.0 + (2 * steps - 1) / steps)
    assert not hasattr(model, "_schedule")
    stats = latent_statistics(model, multiclass_problem.X_test)
    mu, logvar = model.posterior(multiclass_problem.X_test)
    np.testing.assert_allclose(stats["posterior_variance"], np.exp(logvar).mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats["mean_variance"], mu.var(0), rtol=1e-5)
    assert stats["kl"].shape == (model.num_concepts,) and (stats["kl"] >= 0).all()


def test_pretraining_runs_before_joint_training_and_lowers_the_concept_loss(multiclass_problem):
    model = DiSENNClassifier(**{**SMALL, "nr_epochs": 1}, pretrain_epochs=4, robust_reg=0.0)
    model.fit(multiclass_problem.X_train, multiclass_problem.y_train)
    assert len(model.pretrain_losses_) == 4 and model.pretrain_losses_[-1] < model.pretrain_losses_[0]
    assert not hasattr(model, "_pretraining_inputs")
    assert "pretrain_losses_" not in vars(DiSENNClassifier(**SMALL, pretrain_epochs=0).fit(
        multiclass_problem.X_train, multiclass_problem.y_train
    ))  # fmt: skip


def test_senn_learns_above_a_floor(binary_problem):
    model = SENNClassifier(**{**SMALL, "nr_epochs": 20}).fit(binary_problem.X_train, binary_problem.y_train)
    assert (model.predict(binary_problem.X_test) == binary_problem.y_test).mean() > 0.85


def test_the_seed_alone_decides_the_fit(multiclass_problem):
    def fit(seed):
        model = DiSENNClassifier(**SMALL, seed=seed).fit(multiclass_problem.X_train, multiclass_problem.y_train)
        return model.decision_function(multiclass_problem.X_test)

    torch.manual_seed(123)
    first = fit(0)
    torch.manual_seed(456)
    np.testing.assert_array_equal(first, fit(0))
    assert not np.array_equal(first, fit(1))


@pytest.mark.parametrize(
    ("cls", "params", "message"),
    [
        (SENNClassifier, {"conceptizer": "vae"}, "conceptizer"),
        (SENNClassifier, {"parameterizer": "cnn"}, "parameterizer"),
        (SENNClassifier, {"num_concepts": 0}, "num_concepts"),
        (SENNClassifier, {"robust_reg": -1.0}, "robust_reg"),
        (SENNClassifier, {"robust_estimator": "sampled"}, "robust_estimator"),
        (SENNClassifier, {"robust_form": "squared"}, "robust_form"),
        (SENNClassifier, {"parameterizer_sizes": (10, 5)}, "parameterizer_sizes"),  # resnet has no widths
        (SENNClassifier, {"parameterizer": "mlp", "parameterizer_sizes": (10, 0)}, "parameterizer_sizes"),
        (DiSENNClassifier, {"capacity": -1.0}, "capacity"),
        (DiSENNClassifier, {"reconstruction": "max"}, "reconstruction"),
        (DiSENNClassifier, {"kl_warmup_epochs": 2, "augmentation_probability": 0.5}, "kl_warmup_epochs"),
        (DiSENNClassifier, {"beta": float("nan")}, "beta"),
        (DiSENNClassifier, {"compile": True}, "compile"),
    ],
)
def test_bad_parameters_are_rejected_at_fit(binary_problem, cls, params, message):
    with pytest.raises(ValueError, match=message):
        cls(**SMALL, **params).fit(binary_problem.X_train, binary_problem.y_train)


def test_concept_helpers(fitted, multiclass_problem):
    models, _ = fitted
    model = models["vae-multiclass"]
    X = multiclass_problem.X_train
    activations = model.concepts(X)
    mu, logvar = model.posterior(X)
    np.testing.assert_allclose(activations, mu, rtol=1e-5, atol=1e-6)
    assert logvar.shape == mu.shape and model.reconstruct(X).shape == X.shape
    # Prototypes: per concept the most activating rows, most active first.
    top = concept_prototypes(activations, 3)
    assert top.shape == (model.num_concepts, 3)
    for k in range(model.num_concepts):
        np.testing.assert_array_equal(activations[top[k], k], np.sort(activations[:, k])[::-1][:3])
    # Traversals: latent k moves over the prior's central quantiles, the others stay at the posterior mean.
    values, decoded = latent_traversal(model, X[0], n_steps=5)
    assert decoded.shape == (model.num_concepts, 5, X.shape[1]) and values[2] == pytest.approx(0.0)
    z = np.repeat(mu[:1], 5, axis=0)
    z[:, 1] = values
    np.testing.assert_allclose(decoded[1], model.decode(z), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="learned concepts"):
        models["identity-binary"].decode(np.zeros((1, 5)))
