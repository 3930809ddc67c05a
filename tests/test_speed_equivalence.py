"""The optimised pieces against plain reference implementations on tiny problems.

Every speed-motivated piece (batching of the training loop, flat parameters with the fused Adam kernel, the
vectorised augmentations and mixed loss, the precomputed schedule, preallocated batched prediction and
gradient × input, thread and denormal settings, the optional ``torch.compile`` path) is pinned here to a
straightforward implementation: per-example Python loops, ``torch.optim.Adam`` on separate parameters,
torch's own learning-rate schedulers, unbatched forward passes. No test measures time.
"""

from __future__ import annotations

import copy
import math
import os

import numpy as np
import pytest
import torch
from torch import nn

from explainers.gradient import GradientTimesInput
from models._runtime import FlatAdam, FlatParameters, flush_denormals, limit_threads, resolve_threads
from models.augmentation import (
    FGSM_EPSILON,
    NOISE_STD,
    BatchAugmenter,
    Mixing,
    cutmix,
    cutout,
    fgsm,
    gaussian_noise,
    mixup,
)
from models.estimators import INNClassifier, TabResNetClassifier
from models.inference import predict_in_batches
from models.networks import INNNetwork, NetworkOutput, SnapshotEnsemble, TabResNetNetwork, linear_logits
from models.schedule import build_schedule
from models.training import TaskLoss, TrainingConfig, add_l1, batch_bounds, train_snapshot_ensemble

WEIGHT_NORM = 0.1


def inn_like_loss(weight_norm: float = WEIGHT_NORM, class_weights: torch.Tensor | None = None):
    """The hook INN's estimator builds: the task loss plus ``weight_norm · mean|W|`` when weights exist."""
    task_loss = TaskLoss("binary", class_weights)

    def loss(network, x, y, output, mixing):
        value = task_loss(output.logits, y, mixing)
        if output.weights is not None and weight_norm > 0:
            value = add_l1(value, output.weights, weight_norm)
        return value

    return loss


def plain_loss(output, target: torch.Tensor, weight_norm: float = WEIGHT_NORM) -> torch.Tensor:
    """The same objective written plainly: BCE plus the mean absolute generated weight."""
    value = torch.nn.functional.binary_cross_entropy_with_logits(output.logits[:, 0], target)
    if output.weights is not None:
        value = value + weight_norm * output.weights.abs().mean()
    return value


# ------------------------------------------------------------------------------------------ references


def reference_batches(n_rows: int, batch_size: int) -> list[tuple[int, int]]:
    """Plain DataLoader-like batching (drop_last=False); a trailing single row joins the previous batch."""
    batches = []
    start = 0
    while start < n_rows:
        end = min(start + batch_size, n_rows)
        if n_rows - end == 1 and end - start == batch_size:  # the next batch would hold one row
            end = n_rows
        batches.append((start, end))
        start = end
    return batches


def reference_lr(step: int, *, total: int, warmup: int, base: float, lengths: tuple[int, ...]) -> float:
    """The learning rate of one step from the formula: linear warm-up, then cosine cycles down to 0."""
    if step < warmup:
        return base * (step + 1) / warmup
    position = step - warmup
    for length in lengths:
        if position < length:
            return base * 0.5 * (1.0 + math.cos(math.pi * position / length))
        position -= length
    raise AssertionError(f"step {step} lies beyond {total} steps")


def reference_training(
    network: nn.Module, x: torch.Tensor, y: torch.Tensor, config: TrainingConfig, seed: int
) -> tuple[list[nn.Module], list[float]]:
    """The training loop written plainly: separate parameters, torch.optim.Adam, deep-copied snapshots."""
    bounds = reference_batches(x.shape[0], config.batch_size)
    schedule = build_schedule(
        total_steps=config.nr_epochs * len(bounds),
        warmup_steps=config.warmup_epochs * len(bounds),
        base_lr=config.learning_rate,
        nr_cycles=config.nr_restarts,
        t_mult=config.scheduler_t_mult,
    )
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    snapshots, losses, step = [], [], 0
    network.train()
    for _ in range(config.nr_epochs):
        order = torch.randperm(x.shape[0], generator=generator)
        total = 0.0
        for start, end in bounds:
            rows = order[start:end]
            loss = plain_loss(network(x[rows]), y[rows])
            for group in optimizer.param_groups:
                group["lr"] = float(schedule.learning_rates[step])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
            if step in schedule.snapshot_steps:
                snapshots.append(copy.deepcopy(network).eval())
            step += 1
        losses.append(total / len(bounds))
    return snapshots, losses


def tiny_data(n_rows: int = 45, n_inputs: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n_rows, n_inputs, generator=generator)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).float()
    return x, y


# ------------------------------------------------------------------------------------------- batching


@pytest.mark.parametrize("n_rows", [2, 3, 16, 17, 31, 32, 33, 64, 65, 100])
@pytest.mark.parametrize("batch_size", [1, 2, 16, 64])
def test_batch_bounds_match_a_plain_loop(n_rows, batch_size):
    assert batch_bounds(n_rows, batch_size) == reference_batches(n_rows, batch_size)


class RecordingNetwork(nn.Module):
    """A linear model that records the batches it is trained on."""

    def __init__(self, n_inputs: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_inputs, 1)
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> NetworkOutput:
        if self.training:
            self.seen.append(x.detach().clone())
        return NetworkOutput(self.linear(x))


def test_training_batches_are_seeded_permutations_sliced_like_a_dataloader():
    x, y = tiny_data(n_rows=33)
    config = TrainingConfig(nr_epochs=3, batch_size=8, warmup_epochs=1, nr_restarts=1)
    network = RecordingNetwork(x.shape[1])
    train_snapshot_ensemble(network, x, y, loss=inn_like_loss(), config=config, seed=7)
    generator = torch.Generator().manual_seed(7)
    expected = []
    for _ in range(config.nr_epochs):
        order = torch.randperm(x.shape[0], generator=generator)
        expected += [x[order[start:end]] for start, end in reference_batches(x.shape[0], config.batch_size)]
    assert len(network.seen) == len(expected) == 3 * 4  # 8, 8, 8, 9 rows: the single last row is merged
    for seen, reference in zip(network.seen, expected, strict=True):
        torch.testing.assert_close(seen, reference, rtol=0, atol=0)


# ------------------------------------------------------------------------- flat parameters and Adam


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_flat_adam_matches_torch_adam(weight_decay):
    generator = torch.Generator().manual_seed(0)
    flat = nn.Parameter(torch.randn(50, generator=generator))
    references = {
        "fused": nn.Parameter(flat.detach().clone()),
        "plain": nn.Parameter(flat.detach().clone()),
    }
    optimizers = {
        "fused": torch.optim.Adam([references["fused"]], lr=1.0, weight_decay=weight_decay, fused=True),
        "plain": torch.optim.Adam([references["plain"]], lr=1.0, weight_decay=weight_decay, foreach=False),
    }
    optimizer = FlatAdam(flat, weight_decay=weight_decay)
    for step in range(30):
        gradient = torch.randn(50, generator=generator)
        lr = 0.01 * (step + 1) / 30
        flat.grad = gradient.clone()
        optimizer.step(lr)
        for name, parameter in references.items():
            parameter.grad = gradient.clone()
            optimizers[name].param_groups[0]["lr"] = lr
            optimizers[name].step()
    torch.testing.assert_close(flat.detach(), references["fused"].detach(), rtol=0, atol=0)
    torch.testing.assert_close(flat.detach(), references["plain"].detach(), rtol=1e-6, atol=1e-7)


def test_flat_parameters_share_storage_and_release_it():
    network = TabResNetNetwork(n_inputs=3, n_outputs=1, hidden_size=4, nr_blocks=1)
    before = {name: value.clone() for name, value in network.state_dict().items()}
    flat = FlatParameters(network)
    assert flat.parameter.numel() == sum(p.numel() for p in network.parameters())
    with torch.no_grad():
        flat.parameter.add_(1.0)  # one update of the flat buffer moves every module parameter
    for name, param in network.named_parameters():
        torch.testing.assert_close(param.detach(), before[name] + 1.0)
    loss = network(torch.randn(6, 3)).logits.sum()
    flat.zero_grad()
    loss.backward()  # gradients accumulate into the views of the flat gradient
    assert flat.parameter.grad.abs().sum() > 0
    assert all(param.grad.data_ptr() != 0 for param in network.parameters())
    flat.release()
    assert all(param.grad is None for param in network.parameters())
    with torch.no_grad():
        flat.parameter.add_(1.0)  # released: the module no longer follows the flat buffer
    for name, param in network.named_parameters():
        torch.testing.assert_close(param.detach(), before[name] + 1.0)


@pytest.mark.parametrize("network_type", [INNNetwork, TabResNetNetwork])
def test_training_loop_matches_a_plain_reference_loop(network_type):
    x, y = tiny_data(n_rows=45)
    config = TrainingConfig(nr_epochs=6, batch_size=16, warmup_epochs=1, nr_restarts=2)
    torch.manual_seed(3)
    network = network_type(n_inputs=x.shape[1], n_outputs=1, hidden_size=8, nr_blocks=1)
    reference_network = copy.deepcopy(network)
    result = train_snapshot_ensemble(network, x, y, loss=inn_like_loss(), config=config, seed=5)
    snapshots, losses = reference_training(reference_network, x, y, config, seed=5)
    assert len(result.ensemble.members) == len(snapshots) == 2
    np.testing.assert_allclose(result.epoch_losses, losses, rtol=1e-5, atol=1e-6)
    for member, reference in zip(result.ensemble.members, snapshots, strict=True):
        state, expected = member.state_dict(), reference.state_dict()
        assert state.keys() == expected.keys()
        for key in state:
            torch.testing.assert_close(state[key], expected[key], rtol=1e-5, atol=1e-5, msg=key)
    # the trained network keeps its final state and gets its own parameter storage back
    assert not network.training
    torch.testing.assert_close(network(x).logits, reference_network.eval()(x).logits, rtol=1e-5, atol=1e-5)
    assert all(param.grad is None for param in network.parameters())


def test_linear_logits_match_a_per_example_loop():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(7, 4, generator=generator)
    weights = torch.randn(7, 5, 3, generator=generator)
    expected = torch.stack([x[i] @ weights[i, :4] + weights[i, 4] for i in range(7)])
    torch.testing.assert_close(linear_logits(x, weights), expected)


def test_l1_term_is_weight_norm_times_mean_absolute_weight():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 1, generator=generator)
    weights = torch.randn(6, 4, 1, generator=generator, requires_grad=True)
    target = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    value = add_l1(TaskLoss("binary")(logits, target), weights, 0.3)
    plain = (
        torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], target)
        + 0.3 * sum(abs(w) for w in weights.detach().reshape(-1).tolist()) / weights.numel()
    )
    assert value.item() == pytest.approx(float(plain), rel=1e-6)


# ------------------------------------------------------------------------------------------ augmentation


def test_mixup_matches_a_per_example_loop():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, generator=generator)
    numerical = torch.tensor([1.0, 0.0, 1.0, 1.0])
    perm = torch.randperm(6, generator=generator)
    mixed, mixing = mixup(x, numerical, 0.3, perm)
    expected = x.clone()
    for i in range(6):
        for j in range(4):
            if numerical[j]:
                expected[i, j] = 0.3 * x[i, j] + 0.7 * x[perm[i], j]
    torch.testing.assert_close(mixed, expected)
    torch.testing.assert_close(mixing.lam, torch.full((6,), 0.3))
    assert torch.equal(mixing.perm, perm)


def test_cutmix_matches_a_per_example_loop():
    x = torch.arange(24.0).view(6, 4)
    perm = torch.tensor([3, 0, 5, 1, 2, 4])
    mixed, mixing = cutmix(x, 0.6, perm, torch.Generator().manual_seed(1))
    draws = torch.rand(x.shape, generator=torch.Generator().manual_seed(1))
    for i in range(6):
        taken = 0
        for j in range(4):
            if draws[i, j] < 0.4:
                assert mixed[i, j] == x[perm[i], j]
                taken += 1
            else:
                assert mixed[i, j] == x[i, j]
        assert mixing.lam[i].item() == pytest.approx(1.0 - taken / 4)


def test_cutout_matches_a_per_example_loop():
    x = torch.arange(1.0, 41.0).view(8, 5)
    out = cutout(x, torch.Generator().manual_seed(2), rate=0.3)
    draws = torch.rand(x.shape, generator=torch.Generator().manual_seed(2))
    for i in range(8):
        for j in range(5):
            assert out[i, j] == (0.0 if draws[i, j] < 0.3 else x[i, j])


def test_gaussian_noise_matches_a_per_example_loop():
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    out = gaussian_noise(x, torch.Generator().manual_seed(3))
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    for i in range(5):
        torch.testing.assert_close(out[i], x[i] + NOISE_STD * noise[i])


def test_fgsm_matches_per_example_gradient_signs():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, generator=generator)
    w = torch.randn(3, generator=generator)
    t = torch.randn(6, generator=generator)

    def loss_of(inputs):
        return ((inputs @ w) - t).square().mean()

    out = fgsm(x, loss_of)
    assert not out.requires_grad
    for i in range(6):
        row = x[i].clone().requires_grad_(True)
        ((row @ w) - t[i]).square().backward()  # rows are independent: the batch mean only rescales
        torch.testing.assert_close(out[i], x[i] + FGSM_EPSILON * row.grad.sign())


def test_mixed_loss_matches_a_per_example_loop():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 1, generator=generator)
    target = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0])
    mixing = Mixing(perm=torch.tensor([2, 0, 1, 4, 3]), lam=torch.tensor([0.1, 0.5, 0.9, 1.0, 0.0]))
    class_weights = torch.tensor([0.7, 1.5])
    value = TaskLoss("binary", class_weights)(logits, target, mixing)

    def bce(z, label):
        return -(label * math.log(1 / (1 + math.exp(-z))) + (1 - label) * math.log(1 - 1 / (1 + math.exp(-z))))

    total = 0.0
    for i in range(5):
        own = class_weights[int(target[i])].item() * bce(logits[i, 0].item(), target[i].item())
        partner_label = target[mixing.perm[i]].item()
        partner = class_weights[int(partner_label)].item() * bce(logits[i, 0].item(), partner_label)
        total += mixing.lam[i].item() * own + (1 - mixing.lam[i].item()) * partner
    assert value.item() == pytest.approx(total / 5, rel=1e-5)


def test_inactive_augmenter_returns_the_batch_untouched():
    augmenter = BatchAugmenter(probability=0.0, numerical=torch.ones(3), seed=0, device=torch.device("cpu"))
    x = torch.randn(4, 3)
    assert not augmenter.active
    out, mixing = augmenter(x, lambda inputs: inputs.sum())
    assert out is x and mixing is None


def test_augmented_training_is_deterministic():
    x, y = tiny_data(n_rows=40)
    fits = [
        INNClassifier(
            nr_epochs=3, hidden_size=8, nr_blocks=1, batch_size=8, augmentation_probability=0.7, class_balance="none"
        ).fit(x.numpy(), y.numpy())
        for _ in range(2)
    ]
    np.testing.assert_array_equal(fits[0].decision_function(x.numpy()), fits[1].decision_function(x.numpy()))


# -------------------------------------------------------------------------------------------- schedule


@pytest.mark.parametrize(
    ("total", "warmup", "cycles", "t_mult"), [(1300, 65, 3, 2.0), (75, 5, 3, 2.0), (40, 0, 2, 1.0), (17, 4, 3, 1.5)]
)
def test_schedule_matches_the_per_step_formula(total, warmup, cycles, t_mult):
    schedule = build_schedule(total_steps=total, warmup_steps=warmup, base_lr=0.01, nr_cycles=cycles, t_mult=t_mult)
    assert len(schedule.learning_rates) == total
    assert sum(schedule.cycle_lengths) == total - warmup
    expected = [
        reference_lr(step, total=total, warmup=warmup, base=0.01, lengths=schedule.cycle_lengths)
        for step in range(total)
    ]
    np.testing.assert_allclose(schedule.learning_rates, expected, rtol=1e-12, atol=1e-15)
    ends = np.cumsum(schedule.cycle_lengths) + warmup - 1
    assert schedule.snapshot_steps == tuple(int(end) for end in ends)


def test_schedule_matches_torch_lambda_lr_and_cosine_warm_restarts():
    warmup, first_cycle = 6, 10
    total = warmup + first_cycle * (1 + 2 + 4)  # cycles T0, 2·T0, 4·T0 fill the cosine phase exactly
    schedule = build_schedule(total_steps=total, warmup_steps=warmup, base_lr=0.01, nr_cycles=3, t_mult=2)
    assert schedule.cycle_lengths == (10, 20, 40)
    parameter = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.01)
    warm = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: (step + 1) / warmup)
    rates = []
    for _ in range(warmup):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        warm.step()
    optimizer = torch.optim.SGD([parameter], lr=0.01)
    cosine = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=first_cycle, T_mult=2, eta_min=0.0)
    for _ in range(total - warmup):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        cosine.step()
    np.testing.assert_allclose(schedule.learning_rates, rates, rtol=1e-9, atol=1e-14)


# ---------------------------------------------------------------------------------------- inference


@pytest.mark.parametrize("n_rows", [0, 1, 7, 30])
@pytest.mark.parametrize("n_outputs", [1, 3])
def test_preallocated_batched_prediction_matches_one_unbatched_pass(n_rows, n_outputs):
    members = [INNNetwork(n_inputs=4, n_outputs=n_outputs, hidden_size=8, nr_blocks=1) for _ in range(2)]
    model = SnapshotEnsemble(members).eval()
    x = torch.randn(n_rows, 4)
    gathered = predict_in_batches(model, x, batch_size=7, fields=("logits", "weights", "concepts"))
    logits, weights = gathered["logits"], gathered["weights"]
    with torch.no_grad():
        expected = model(x)
    assert logits.shape == (n_rows, n_outputs) and weights.shape == (n_rows, 5, n_outputs)
    torch.testing.assert_close(logits, expected.logits)
    torch.testing.assert_close(weights, expected.weights)
    assert gathered["concepts"] is None  # a field the network does not produce
    logits_only = predict_in_batches(model, x, batch_size=4)
    assert set(logits_only) == {"logits"}
    torch.testing.assert_close(logits_only["logits"], expected.logits)


def test_batched_gradient_times_input_matches_a_per_example_loop():
    x, y = tiny_data(n_rows=30)
    labels = (y + (x[:, 2] > 1).float()).long().numpy()  # three classes
    estimator = TabResNetClassifier(nr_epochs=2, hidden_size=8, nr_blocks=1, batch_size=8).fit(x.numpy(), labels)
    attribution = GradientTimesInput(estimator.logits_function(), batch_size=7).explain(x.numpy())
    network = estimator.model_
    for i in range(x.shape[0]):
        row = x[i : i + 1].clone().requires_grad_(True)
        logits = network(row).logits
        for c in range(logits.shape[1]):
            (gradient,) = torch.autograd.grad(logits[0, c], row, retain_graph=True)
            np.testing.assert_allclose(attribution.values[i, :, c], (gradient[0] * x[i]).numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(attribution.output[i], logits[0].detach().numpy(), rtol=1e-5, atol=1e-6)
    assert attribution.reference_name == "zero" and not attribution.exact


# ------------------------------------------------------------------------------- threads, denormals, compile


def test_thread_rule_and_restoration():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_threads(None, batch_size=64, hidden_size=128, device=cpu) == 1
    assert resolve_threads(None, batch_size=4096, hidden_size=512, device=cpu) is None  # torch's own setting
    assert resolve_threads(None, batch_size=64, hidden_size=128, device=cuda) is None
    assert resolve_threads(3, batch_size=64, hidden_size=128, device=cpu) == 3
    with pytest.raises(ValueError, match="threads"):
        resolve_threads(0, batch_size=64, hidden_size=128, device=cpu)
    previous = torch.get_num_threads()
    with limit_threads(previous + 1):
        assert torch.get_num_threads() == previous + 1
    assert torch.get_num_threads() == previous
    with pytest.raises(ValueError, match="threads"):
        INNClassifier(threads=0).fit(np.zeros((4, 2), dtype=np.float32), [0, 1, 0, 1])


def test_flush_denormals_is_scoped():
    tiny = torch.full((1,), 1e-39)  # a denormal float32
    assert (tiny * 1.0).item() != 0.0
    with flush_denormals():
        assert (tiny * 1.0).item() == 0.0
    assert (tiny * 1.0).item() != 0.0


def test_compiled_training_matches_eager():
    """Dynamo capture and AOT autograd of the real training step, without the C++ compiler (seconds)."""
    x, y = tiny_data(n_rows=40)
    params = dict(nr_epochs=2, hidden_size=8, nr_blocks=1, batch_size=16, class_balance="none")
    eager = INNClassifier(**params).fit(x.numpy(), y.numpy())
    compiled = INNClassifier(**params, compile="aot_eager").fit(x.numpy(), y.numpy())
    np.testing.assert_allclose(
        compiled.decision_function(x.numpy()), eager.decision_function(x.numpy()), rtol=1e-4, atol=1e-5
    )


@pytest.mark.skipif(
    os.environ.get("INN_TEST_INDUCTOR") != "1",
    reason="inductor compiles C++ for about 30 s on two cores; set INN_TEST_INDUCTOR=1 to run",
)
def test_inductor_training_matches_eager():
    x, y = tiny_data(n_rows=40)
    params = dict(nr_epochs=2, hidden_size=8, nr_blocks=1, batch_size=16, class_balance="none")
    eager = INNClassifier(**params).fit(x.numpy(), y.numpy())
    compiled = INNClassifier(**params, compile=True).fit(x.numpy(), y.numpy())
    np.testing.assert_allclose(
        compiled.decision_function(x.numpy()), eager.decision_function(x.numpy()), rtol=1e-4, atol=1e-5
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("probability", [0.0, 0.5])
def test_cuda_training_synchronises_once_per_epoch(probability):
    """The loop reads the loss once per epoch and nothing else forces the host to wait for the device."""
    import warnings

    device = torch.device("cuda")
    x, y = tiny_data(n_rows=128)
    x, y = x.to(device), y.to(device)
    network = INNNetwork(n_inputs=x.shape[1], n_outputs=1, hidden_size=8, nr_blocks=1).to(device)
    config = TrainingConfig(nr_epochs=3, batch_size=16, warmup_epochs=1, augmentation_probability=probability)
    previous = torch.cuda.get_sync_debug_mode()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            train_snapshot_ensemble(network, x, y, loss=inn_like_loss(), config=config, seed=0)
        finally:
            torch.cuda.set_sync_debug_mode(previous)
    synchronising = [w for w in caught if "synchroniz" in str(w.message).lower()]
    assert len(synchronising) <= config.nr_epochs + 2  # one loss read per epoch (+ set-up), not one per step
