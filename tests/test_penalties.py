"""Explanation penalties (``models.penalties``): gradients, invariances, training mode, behaviour, the CLI.

The gradient of every penalty is compared with a central finite difference along a random direction in float64
(so it is the gradient of the documented quantity, and a small step along it lowers the penalty); ``cd_logit`` is
checked against a constant added to every logit (and ``cdep`` is shown not to be invariant, so the check can
fail); training with a penalty is checked to keep every module in training mode and to leave batch norm's
running statistics to the real forward passes; on a toy problem with a shortcut, the strong penalties lower the
counterfactual flip rate below the vanilla model's.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import main_experiment
from models.estimators import INNClassifier, TabResNetClassifier
from models.networks import INNNetwork, TabResNetNetwork
from models.penalties import (
    PENALTIES,
    PenaltyError,
    build_penalty,
    check_penalty,
    decompose_logits,
    logit_differences,
)
from models.senn import SENNClassifier, SENNNetwork

N_INPUTS, PENALISED = 5, (1, 3)


def _network(kind: str, n_outputs: int, *, dropout: float = 0.0) -> torch.nn.Module:
    sizes = {"n_inputs": N_INPUTS, "n_outputs": n_outputs, "hidden_size": 12, "nr_blocks": 1, "dropout": dropout}
    if kind == "senn_mlp":
        return SENNNetwork(parameterizer="mlp", **sizes)
    return {"inn": INNNetwork, "tabresnet": TabResNetNetwork, "senn": SENNNetwork}[kind](**sizes)


def _trained_like(network: torch.nn.Module, x: torch.Tensor) -> torch.nn.Module:
    """Random non-trivial parameters and batch-norm statistics (the last BN of a block starts at weight 0).

    The running statistics are frozen (momentum 0): a training-mode forward pass would otherwise move them
    between the evaluations of a finite difference, and the CD penalties read them.
    """
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.copy_(0.5 * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.copy_(0.1 * torch.randn(module.num_features, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(module.num_features, generator=generator))
                module.momentum = 0.0
    return network.train()


def _penalty(name: str, network: torch.nn.Module, x: torch.Tensor, objective: str, seed: int = 0):
    return build_penalty(
        name,
        network,
        columns=list(PENALISED),
        pool=x.flip(0),
        reference=x.mean(0),
        objective=objective,
        seed=seed,
    )


def _cases():
    for name in PENALTIES:
        for kind in ("inn", "tabresnet", "senn", "senn_mlp"):
            if name == "weights" and kind == "tabresnet":
                continue
            for n_outputs in (1, 3):
                yield name, kind, n_outputs


@pytest.mark.parametrize(("name", "kind", "n_outputs"), list(_cases()))
def test_the_gradient_is_finite_and_is_the_penalty_s_gradient(name, kind, n_outputs):
    x = torch.randn(24, N_INPUTS, dtype=torch.float64)
    network = _trained_like(_network(kind, n_outputs).double(), x)
    objective = "binary" if n_outputs == 1 else "multiclass"

    def value() -> torch.Tensor:
        # A fresh binding per evaluation: the counterfactual draws are the same every time.
        return _penalty(name, network, x, objective)(network, x, network(x))

    parameters = [parameter for parameter in network.parameters() if parameter.requires_grad]
    penalty = value()
    gradients = torch.autograd.grad(penalty, parameters, allow_unused=True)
    gradients = [torch.zeros_like(p) if g is None else g for p, g in zip(parameters, gradients, strict=True)]
    assert all(torch.isfinite(g).all() for g in gradients)
    norm = torch.sqrt(sum(g.square().sum() for g in gradients))
    assert norm > 0, f"{name} gives no gradient"

    generator = torch.Generator().manual_seed(2)
    direction = [torch.randn(p.shape, generator=generator, dtype=p.dtype) for p in parameters]
    step = 1e-6

    def shifted(sign: float) -> float:
        with torch.no_grad():
            for parameter, d in zip(parameters, direction, strict=True):
                parameter.add_(sign * step * d)
        result = float(value().detach())  # with gradients on: rrr differentiates with respect to the input
        with torch.no_grad():
            for parameter, d in zip(parameters, direction, strict=True):
                parameter.sub_(sign * step * d)
        return result

    numerical = (shifted(1.0) - shifted(-1.0)) / (2 * step)
    analytical = float(sum((g * d).sum() for g, d in zip(gradients, direction, strict=True)))
    assert numerical == pytest.approx(analytical, rel=1e-4, abs=1e-7)

    # Downhill: a small step against the gradient lowers the penalty.
    with torch.no_grad():
        for parameter, g in zip(parameters, gradients, strict=True):
            parameter.sub_(1e-3 / norm * g)
    assert float(value().detach()) < float(penalty.detach())


@pytest.mark.parametrize("kind", ["inn", "tabresnet", "senn"])
def test_cd_logit_is_unchanged_when_a_constant_is_added_to_every_logit(kind):
    x = torch.randn(16, N_INPUTS, dtype=torch.float64)
    network = _trained_like(_network(kind, 3).double(), x)
    head = network.parameterizer.head if kind == "senn" else network.head
    names = [name for name in PENALTIES if not (name == "weights" and kind == "tabresnet")]
    before = {name: float(_penalty(name, network, x, "multiclass")(network, x, network(x)).detach()) for name in names}
    logits = network.eval()(x).logits
    with torch.no_grad():
        bias = head.bias.view(-1, 3)
        bias[-1] += 7.0  # TabResNet: the logits' bias; INN/SENN: the generated bias row
    assert torch.allclose(network(x).logits, logits + 7.0)
    network.train()
    after = {name: float(_penalty(name, network, x, "multiclass")(network, x, network(x)).detach()) for name in names}
    for name in ("cd_logit", "cd_strict", "counterfactual", "rrr"):
        assert after[name] == pytest.approx(before[name], rel=1e-9, abs=1e-12), name
    assert abs(after["cdep"] - before["cdep"]) > 1e-3  # the paper's softmax share is not shift-invariant


def test_logit_differences_centre_multiclass_logits_and_keep_a_single_logit():
    logits = torch.tensor([[1.0, 2.0, 6.0]])
    assert torch.allclose(logit_differences(logits), torch.tensor([[-2.0, -1.0, 3.0]]))
    assert torch.equal(logit_differences(logits[:, :1]), logits[:, :1])


@pytest.mark.parametrize("kind", ["inn", "tabresnet", "senn", "senn_mlp"])
def test_the_decomposition_adds_up_to_the_logits_or_their_differences_in_evaluation_semantics(kind):
    x = torch.randn(10, N_INPUTS, dtype=torch.float64)
    network = _trained_like(_network(kind, 3, dropout=0.3).double(), x)
    rel = torch.zeros(10, 1, N_INPUTS, dtype=torch.float64)
    rel[:, 0, 1] = x[:, 1]
    _, total = decompose_logits(network, rel, x.unsqueeze(1), centred=False)
    _, centred = decompose_logits(network, rel, x.unsqueeze(1), centred=True)
    assert network.training  # decomposing changed no mode
    expected = network.eval()(x).logits
    assert torch.allclose(total[:, 0], expected, atol=1e-10)
    assert torch.allclose(centred[:, 0], logit_differences(expected), atol=1e-10)


def test_a_network_that_ignores_s_gets_zero_from_every_cd_penalty_and_the_counterfactual():
    x = torch.randn(20, N_INPUTS, dtype=torch.float64)
    network = _trained_like(_network("inn", 3).double(), x)
    with torch.no_grad():  # S reaches neither the hypernetwork nor the product
        network.backbone.input_layer.weight[:, list(PENALISED)] = 0.0
        network.head.weight.view(N_INPUTS + 1, 3, -1)[list(PENALISED)] = 0.0
        network.head.bias.view(N_INPUTS + 1, 3)[list(PENALISED)] = 0.0
    for name in ("cd_logit", "cd_strict", "counterfactual", "weights", "rrr"):
        value = float(_penalty(name, network, x, "multiclass")(network, x, network(x)).detach())
        assert value == pytest.approx(0.0, abs=1e-12), name


def test_the_measures_of_a_fitted_model_are_the_penalties_own_terms_and_vanish_for_a_blind_network():
    from models.networks import SnapshotEnsemble
    from models.penalties import penalty_measures

    x = torch.randn(20, N_INPUTS, dtype=torch.float64)
    network = _trained_like(_network("inn", 3).double(), x).eval()
    reference = x.mean(0)
    measures = penalty_measures(SnapshotEnsemble([network]).eval(), x, PENALISED, reference, objective="multiclass")
    # A one-member ensemble: each measure is its penalty's term on the same rows, in evaluation mode.
    for name in ("cd_logit", "cd_strict", "weights", "rrr"):
        term = float(_penalty(name, network, x, "multiclass")(network, x, network(x)).detach())
        assert measures[name] == pytest.approx(term, rel=1e-9, abs=1e-12), name
        assert measures[name] > 1e-6, name
    assert not network.training
    with torch.no_grad():  # now S reaches neither the hypernetwork nor the product
        network.backbone.input_layer.weight[:, list(PENALISED)] = 0.0
        network.head.weight.view(N_INPUTS + 1, 3, -1)[list(PENALISED)] = 0.0
        network.head.bias.view(N_INPUTS + 1, 3)[list(PENALISED)] = 0.0
    blind = penalty_measures(network, x, PENALISED, reference, objective="multiclass")
    for name in ("cd_logit", "cd_strict", "weights", "rrr"):
        assert blind[name] == pytest.approx(0.0, abs=1e-12), name
    tabresnet = _trained_like(_network("tabresnet", 1).double(), x).eval()
    assert penalty_measures(tabresnet, x, PENALISED, reference)["weights"] is None  # it generates no weights


def test_a_penalty_the_network_cannot_have_is_refused_before_training():
    with pytest.raises(PenaltyError, match="weights penalty"):
        check_penalty("weights", _network("tabresnet", 1))
    with pytest.raises(PenaltyError, match="one of"):
        check_penalty("lasso", _network("inn", 1))
    model = TabResNetClassifier(nr_epochs=1, hidden_size=8, penalize_features=[0], penalty="weights", device="cpu")
    with pytest.raises(PenaltyError):
        model.fit(np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32), np.arange(20) % 2)
    with pytest.raises(ValueError, match="needs penalize_features"):
        INNClassifier(penalty="cd_logit").fit(np.zeros((4, 2), np.float32), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="choose a penalty"):
        INNClassifier(penalize_features=[0]).fit(np.zeros((4, 2), np.float32), [0, 1, 0, 1])


# ---------------------------------------------------------------------------------------------------------------
# Training: the network stays in training mode; behaviour moves the right way


def _toy(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A binary shortcut ``s`` (column 1) that decides most labels, a weak real signal ``a`` (column 0)."""
    rng = np.random.default_rng(seed)
    a, s, noise = rng.normal(size=n), rng.integers(0, 2, n).astype(float), rng.normal(size=n)
    y = ((0.7 * a + 3.0 * (s - 0.5) + 0.3 * rng.normal(size=n)) > 0).astype(int)
    return np.c_[a, s, noise].astype(np.float32), y


def _flip_rate(model, X: np.ndarray) -> float:
    swapped = X.copy()
    swapped[:, 1] = 1.0 - swapped[:, 1]
    return float(np.mean(model.predict(X) != model.predict(swapped)))


class _ModeSpy:
    """An estimator mix-in that records, at every loss evaluation, the modes of all modules and BN statistics."""

    def _loss(self, network, x, y, output, mixing):
        running = [m.running_mean.clone() for m in network.modules() if isinstance(m, torch.nn.BatchNorm1d)]
        value = super()._loss(network, x, y, output, mixing)
        after = [m.running_mean for m in network.modules() if isinstance(m, torch.nn.BatchNorm1d)]
        self.modes_.append(all(module.training for module in network.modules()))
        self.statistics_kept_.append(all(torch.equal(a, b) for a, b in zip(running, after, strict=True)))
        return value


class _SpyINN(_ModeSpy, INNClassifier):
    pass


class _SpySENN(_ModeSpy, SENNClassifier):
    pass


@pytest.mark.parametrize("penalty", ["cd_strict", "counterfactual", "rrr", "cdep"])
@pytest.mark.parametrize("cls", [_SpyINN, _SpySENN])
def test_training_with_a_penalty_keeps_dropout_and_batch_norm_in_training_mode(cls, penalty):
    X, y = _toy(96)
    model = cls(
        nr_epochs=2, hidden_size=8, nr_blocks=1, dropout=0.2, batch_size=32, penalize_features=[1], penalty=penalty,
        device="cpu",
    )  # fmt: skip
    model.modes_, model.statistics_kept_ = [], []
    model.fit(X, y)
    assert model.modes_ and all(model.modes_)
    # The penalty's extra passes (counterfactual, rrr) leave batch norm's running statistics to the real forward.
    assert all(model.statistics_kept_)
    assert not hasattr(model, "_penalty_term")  # the fitted estimator keeps no binding to its training data


def test_a_penalty_changes_training_and_a_zero_strength_does_not():
    X, y = _toy(120)
    kwargs = {"nr_epochs": 2, "hidden_size": 8, "nr_blocks": 1, "batch_size": 32, "device": "cpu"}
    plain = INNClassifier(**kwargs).fit(X, y).decision_function(X)
    zero = INNClassifier(**kwargs, penalize_features=[1], penalty="cd_logit", penalty_strength=0.0).fit(X, y)
    penalised = INNClassifier(**kwargs, penalize_features=[1], penalty="cd_logit", penalty_strength=5.0).fit(X, y)
    np.testing.assert_array_equal(zero.decision_function(X), plain)
    assert not np.allclose(penalised.decision_function(X), plain)


@pytest.mark.slow
@pytest.mark.parametrize(("cls", "penalty"), [(INNClassifier, "counterfactual"), (TabResNetClassifier, "cd_strict")])
def test_a_strong_penalty_lowers_the_flip_rate_of_a_shortcut(cls, penalty):
    X, y = _toy()
    kwargs = {"nr_epochs": 12, "hidden_size": 16, "nr_blocks": 1, "batch_size": 64, "device": "cpu"}
    vanilla = _flip_rate(cls(**kwargs).fit(X, y), X)
    penalised = _flip_rate(cls(**kwargs, penalize_features=[1], penalty=penalty, penalty_strength=30.0).fit(X, y), X)
    assert vanilla > 0.6
    assert penalised < 0.5 * vanilla


# ---------------------------------------------------------------------------------------------------------------
# End to end through the CLI

FAST = ["--nr_epochs", "2", "--hidden_size", "16", "--nr_blocks", "1", "--device", "cpu"]
OFF = ["--explanation_metrics", "off"]


@pytest.mark.slow
def test_cli_runs_with_a_penalty_and_blind_and_records_reliance(tmp_path, capsys):
    out = str(tmp_path)
    penalised = ["--penalize_features", "checking_status", "duration", "--penalty", "cd_logit"]
    assert (
        main_experiment.main(["--method", "inn", *FAST, *OFF, *penalised, "--variant", "cdl", "--output_dir", out]) == 0
    )
    blind = ["--penalize_features", "checking_status", "--blind", "--variant", "blind"]
    assert main_experiment.main(["--method", "tabresnet", *FAST, *OFF, *blind, "--output_dir", out]) == 0
    report = json.loads((tmp_path / "inn-cdl" / "31" / "0" / "output_info.json").read_text())
    assert report["config"]["model_params"]["penalize_features"] == [0, 1]  # target-encoded: one column each
    assert report["config"]["model_params"]["penalty"] == "cd_logit"
    reliance = report["reliance"]
    assert reliance["features"] == ["checking_status", "duration"]
    assert 0.0 <= report["test_flip_rate"] <= 1.0 and report["test_mean_abs_delta_logit"] > 0
    assert 0.0 < reliance["explanation_share"] < 1.0
    blind_report = json.loads((tmp_path / "tabresnet-blind" / "31" / "0" / "output_info.json").read_text())
    assert "checking_status" not in blind_report["feature_names"]
    assert (blind_report["test_flip_rate"], blind_report["test_auroc_drop"]) == (0.0, 0.0)
    assert blind_report["test_mean_abs_delta_logit"] == 0.0 and blind_report["reliance"]["explanation_share"] == 0.0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--penalize_features", "no_such_feature", "--penalty", "cdep"], "unknown feature(s) 'no_such_feature'"),
        (["--penalize_features", "duration"], "needs --penalty"),
        (["--penalty", "cdep"], "needs --penalize_features"),
        (["--blind"], "--blind needs --penalize_features"),
        (["--penalize_features", "duration", "--blind", "--penalty", "rrr"], "takes no --penalty"),
        (["--method", "tabresnet", "--penalize_features", "duration", "--penalty", "weights"], "weights penalty"),
    ],
)
def test_penalty_flag_errors_are_one_line_before_any_training(flags, message, tmp_path, monkeypatch, capsys):
    from models import training

    def refuse(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(training, "train_snapshot_ensemble", refuse)
    monkeypatch.setattr("models.estimators.train_snapshot_ensemble", refuse)
    method = [] if "--method" in flags else ["--method", "inn"]
    assert main_experiment.main([*method, *FAST, *OFF, *flags, "--output_dir", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not any(tmp_path.rglob("output_info.json"))
