"""The training loop of every network: one explicit loop, a snapshot at every cycle end.

The data lives on the training device as two tensors; each epoch draws one seeded permutation and slices
batches from it. Nothing inside the loop synchronises with the host: the epoch loss is accumulated on the
device and read once per epoch. The learning rates are precomputed (see ``models.schedule``).

The objective is a hook, as skorch's ``get_loss``: ``loss(network, x, y, output, mixing)`` receives the network,
the (augmented) inputs, the targets, the network's :class:`~models.networks.NetworkOutput` and the mixing of a
mixup/cutmix batch, so a regulariser that needs the inputs or gradients through the network (SENN's robustness
loss, explanation penalties) is an override of the estimator's ``_loss``, not an edit of this loop. FGSM
differentiates the same hook. :class:`TaskLoss` is the task part every hook starts from.

Speed internals (flat parameters, fused Adam, threads, denormals) live in ``models._runtime``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import torch
from torch import nn
from torch.nn import functional as F

from models._runtime import FlatAdam, FlatParameters, flush_denormals, released
from models.augmentation import BatchAugmenter, Mixing
from models.networks import NetworkOutput, SnapshotEnsemble
from models.schedule import Schedule, build_schedule

Objective = Literal["binary", "multiclass", "regression"]
WARMUP_EPOCHS = 5


class LossHook(Protocol):
    """``loss(network, x, y, output, mixing) -> scalar``: the training objective of one batch."""

    def __call__(
        self, network: nn.Module, x: torch.Tensor, y: torch.Tensor, output: NetworkOutput, mixing: Mixing | None
    ) -> torch.Tensor: ...


@dataclass(frozen=True)
class TrainingConfig:
    """Optimisation hyperparameters (the names are the command-line flags)."""

    nr_epochs: int = 100
    batch_size: int = 64
    learning_rate: float = 0.01
    weight_decay: float = 0.01
    augmentation_probability: float = 0.0
    scheduler_t_mult: float = 2.0
    nr_restarts: int = 3
    warmup_epochs: int = WARMUP_EPOCHS


@dataclass
class TrainingResult:
    """What training produced: the snapshot ensemble, the schedule and per-epoch mean losses."""

    ensemble: SnapshotEnsemble
    schedule: Schedule
    epoch_losses: list[float] = field(default_factory=list)


def batch_bounds(n_rows: int, batch_size: int) -> list[tuple[int, int]]:
    """Start and end of every batch of an epoch; a trailing batch of one row joins the previous one.

    Batch norm cannot train on a single row, and dropping it would waste data, so it is merged.
    """
    if n_rows < 2:
        raise ValueError(f"training needs at least 2 rows, got {n_rows}")
    starts = list(range(0, n_rows, batch_size))
    bounds = [(start, min(start + batch_size, n_rows)) for start in starts]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2] = (bounds[-2][0], n_rows)
        bounds.pop()
    return bounds


def example_losses(logits: torch.Tensor, target: torch.Tensor, objective: Objective) -> torch.Tensor:
    """Unreduced task loss per example.

    Shape:
        logits ``(B, C)``, target ``(B,)`` -> ``(B,)``
    """
    if objective == "binary":
        return F.binary_cross_entropy_with_logits(logits[:, 0], target, reduction="none")
    if objective == "multiclass":
        return F.cross_entropy(logits, target, reduction="none")
    return (logits[:, 0] - target).square()


class TaskLoss:
    """The task loss of a batch: per-example losses, class-weighted, mixed for mixup/cutmix, averaged.

    Args:
        objective: ``binary`` (BCE with logits), ``multiclass`` (cross-entropy) or ``regression`` (squared error).
        class_weights: ``(K,)`` per-class weights (classification only), or None.
    """

    def __init__(self, objective: Objective, class_weights: torch.Tensor | None = None) -> None:
        self.objective = objective
        self.class_weights = class_weights

    def per_example(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The (class-weighted) loss of every example ``(B,)``."""
        losses = example_losses(logits, target, self.objective)
        if self.class_weights is not None:
            losses = losses * self.class_weights[target.long()]
        return losses

    def __call__(self, logits: torch.Tensor, target: torch.Tensor, mixing: Mixing | None = None) -> torch.Tensor:
        if mixing is None:
            return self.per_example(logits, target).mean()
        own = self.per_example(logits, target)
        partner = self.per_example(logits, target[mixing.perm])
        return (mixing.lam * own + (1.0 - mixing.lam) * partner).mean()


def add_l1(value: torch.Tensor, weights: torch.Tensor, strength: float) -> torch.Tensor:
    """``value + strength · mean|W|`` as one L1-norm kernel and one scaled add (INN's sparsity term)."""
    return torch.add(value, torch.linalg.vector_norm(weights, 1), alpha=strength / weights.numel())


def train_snapshot_ensemble(
    network: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    loss: LossHook,
    config: TrainingConfig,
    seed: int,
    numerical: torch.Tensor | None = None,
    progress: bool = False,
    on_epoch_end: Callable[[int, float], None] | None = None,
    compile: bool | str = False,
) -> TrainingResult:
    """Train ``network`` with Adam, warm-up + cosine restarts, and return the snapshot ensemble.

    Args:
        network: a network of ``models.networks`` (returning a ``NetworkOutput``) on the training device.
        x: training inputs ``(N, D)`` on the same device, float32.
        y: targets ``(N,)``: float 0/1 (binary), int64 codes (multiclass) or standardised floats (regression).
        loss: the objective hook ``loss(network, x, y, output, mixing)`` (see :class:`LossHook`).
        config: optimisation hyperparameters.
        seed: seeds batch order and augmentation.
        numerical: ``(D,)`` bool mask of numerical inputs (mixup mixes only those); all when ``None``.
        progress: show a progress bar over epochs.
        on_epoch_end: called with ``(epoch, mean loss)`` once per epoch (e.g. for experiment tracking).
        compile: run the network's training forward (and its backward) through ``torch.compile``
            (``True``: the default inductor backend; a string: that backend, e.g. ``"aot_eager"``); worth it
            only for long runs, since compiling takes seconds to minutes. Fixed shapes (``dynamic=False``):
            a smaller last batch compiles a second graph once.
    """
    device = x.device
    bounds = batch_bounds(x.shape[0], config.batch_size)
    batch_sizes = [end - start for start, end in bounds]
    steps_per_epoch = len(bounds)
    schedule = build_schedule(
        total_steps=config.nr_epochs * steps_per_epoch,
        warmup_steps=config.warmup_epochs * steps_per_epoch,
        base_lr=config.learning_rate,
        nr_cycles=config.nr_restarts,
        t_mult=config.scheduler_t_mult,
    )
    learning_rates = schedule.learning_rates.tolist()
    snapshot_steps = set(schedule.snapshot_steps)
    # Snapshots are copies of an untouched twin loaded with the current state: cheaper than deep-copying
    # the training network, and they do not share its flat parameter buffer.
    template = copy.deepcopy(network)
    flat = FlatParameters(network)
    optimizer = FlatAdam(flat.parameter, weight_decay=config.weight_decay)
    forward = network
    if compile:
        backend = compile if isinstance(compile, str) else "inductor"
        forward = torch.compile(network, dynamic=False, backend=backend)
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    if numerical is None:
        numerical = torch.ones(x.shape[1], dtype=torch.bool)
    augmenter = BatchAugmenter(
        probability=config.augmentation_probability, numerical=numerical, seed=seed + 1, device=device
    )
    augment = augmenter.active
    snapshots: list[nn.Module] = []
    epoch_losses: list[float] = []
    epochs = range(config.nr_epochs)
    if progress:
        from tqdm.auto import tqdm

        epochs = tqdm(epochs, desc="epochs", unit="epoch", leave=False)
    network.train()
    step = 0
    with flush_denormals(device.type == "cpu"), released(flat):
        for epoch in epochs:
            order = torch.randperm(x.shape[0], generator=generator, device=device)
            total = torch.zeros((), device=device)
            for x_batch, y_batch in zip(x[order].split(batch_sizes), y[order].split(batch_sizes), strict=True):
                mixing = None
                if augment:
                    # FGSM differentiates the same objective with respect to the inputs (the eager network
                    # avoids recompiling).
                    x_batch, mixing = augmenter(
                        x_batch, lambda inputs, t=y_batch: loss(network, inputs, t, network(inputs), None)
                    )
                value = loss(network, x_batch, y_batch, forward(x_batch), mixing)
                flat.zero_grad()
                value.backward()
                optimizer.step(learning_rates[step])
                total += value.detach()
                if step in snapshot_steps:
                    snapshots.append(_snapshot(template, network))
                step += 1
            mean_loss = total.item() / steps_per_epoch  # the one host synchronisation per epoch
            if not math.isfinite(mean_loss):
                raise FloatingPointError(
                    f"training diverged at epoch {epoch + 1} (loss {mean_loss}); lower learning_rate"
                )
            epoch_losses.append(mean_loss)
            if progress:
                epochs.set_postfix(loss=f"{mean_loss:.4f}")
            if on_epoch_end is not None:
                on_epoch_end(epoch, mean_loss)
    network.eval()
    return TrainingResult(ensemble=SnapshotEnsemble(snapshots).eval(), schedule=schedule, epoch_losses=epoch_losses)


def _snapshot(template: nn.Module, network: nn.Module) -> nn.Module:
    """An evaluation-mode copy of ``network``'s current state, built from an untouched ``template``."""
    member = copy.deepcopy(template)
    member.load_state_dict(network.state_dict())
    return member.eval()
