"""The training loop shared by INN and TabResNet: one explicit loop, a snapshot at every cycle end.

The data lives on the training device as two tensors; each epoch draws one seeded permutation and slices
batches from it. Nothing inside the loop synchronises with the host: the epoch loss is accumulated on the
device and read once per epoch. The learning rates are precomputed (see ``models.schedule``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from models.augmentation import BatchAugmenter, Mixing
from models.networks import SnapshotEnsemble
from models.schedule import Schedule, build_schedule

Objective = Literal["binary", "multiclass", "regression"]
WARMUP_EPOCHS = 5


@dataclass(frozen=True)
class TrainingConfig:
    """Optimisation hyperparameters (the names are the command-line flags)."""

    nr_epochs: int = 100
    batch_size: int = 64
    learning_rate: float = 0.01
    weight_decay: float = 0.01
    weight_norm: float = 0.1
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


def make_loss(
    objective: Objective, weight_norm: float, class_weights: torch.Tensor | None
) -> Callable[[tuple[torch.Tensor, torch.Tensor | None], torch.Tensor, Mixing | None], torch.Tensor]:
    """Build ``loss(output, target, mixing)``: the (class-weighted, mixed) task loss plus the L1 term.

    The L1 term ``weight_norm · mean|W(x)|`` applies only to networks that generate weights (INN).
    """

    def weighted(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        losses = example_losses(logits, target, objective)
        if class_weights is not None:
            losses = losses * class_weights[target.long()]
        return losses

    def loss(output: tuple[torch.Tensor, torch.Tensor | None], target: torch.Tensor, mixing: Mixing | None):
        logits, weights = output
        if mixing is None:
            value = weighted(logits, target).mean()
        else:
            own = weighted(logits, target)
            partner = weighted(logits, target[mixing.perm])
            value = (mixing.lam * own + (1.0 - mixing.lam) * partner).mean()
        if weights is not None and weight_norm > 0:
            value = value + weight_norm * weights.abs().mean()
        return value

    return loss


def train_snapshot_ensemble(
    network: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    objective: Objective,
    config: TrainingConfig,
    seed: int,
    class_weights: torch.Tensor | None = None,
    numerical: torch.Tensor | None = None,
    progress: bool = False,
    on_epoch_end: Callable[[int, float], None] | None = None,
) -> TrainingResult:
    """Train ``network`` with Adam, warm-up + cosine restarts, and return the snapshot ensemble.

    Args:
        network: an ``INNNetwork`` or ``TabResNetNetwork`` on the training device.
        x: training inputs ``(N, D)`` on the same device, float32.
        y: targets ``(N,)``: float 0/1 (binary), int64 codes (multiclass) or standardised floats (regression).
        objective: the loss family.
        config: optimisation hyperparameters.
        seed: seeds batch order and augmentation.
        class_weights: ``(K,)`` per-class loss weights (classification only).
        numerical: ``(D,)`` bool mask of numerical inputs (mixup mixes only those); all when ``None``.
        progress: show a progress bar over epochs.
        on_epoch_end: called with ``(epoch, mean loss)`` once per epoch (e.g. for experiment tracking).
    """
    device = x.device
    bounds = batch_bounds(x.shape[0], config.batch_size)
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
    loss_fn = make_loss(objective, config.weight_norm, class_weights)
    optimizer = torch.optim.Adam(
        network.parameters(),
        lr=learning_rates[0],
        weight_decay=config.weight_decay,
        **_adam_implementation(device),
    )
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    if numerical is None:
        numerical = torch.ones(x.shape[1], dtype=torch.bool)
    augmenter = BatchAugmenter(
        probability=config.augmentation_probability, numerical=numerical, seed=seed + 1, device=device
    )
    param_group = optimizer.param_groups[0]
    snapshots: list[nn.Module] = []
    epoch_losses: list[float] = []
    epochs = range(config.nr_epochs)
    if progress:
        from tqdm.auto import tqdm

        epochs = tqdm(epochs, desc="epochs", unit="epoch", leave=False)
    network.train()
    step = 0
    for epoch in epochs:
        order = torch.randperm(x.shape[0], generator=generator, device=device)
        x_epoch, y_epoch = x[order], y[order]
        total = torch.zeros((), device=device)
        for start, end in bounds:
            x_batch, y_batch = x_epoch[start:end], y_epoch[start:end]
            mixing = None
            if augmenter.active:
                x_batch, mixing = augmenter(x_batch, lambda inputs, t=y_batch: loss_fn(network(inputs), t, None))
            loss = loss_fn(network(x_batch), y_batch, mixing)
            param_group["lr"] = learning_rates[step]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
            if step in snapshot_steps:
                snapshots.append(copy.deepcopy(network).eval())
            step += 1
        mean_loss = total.item() / steps_per_epoch
        if not math.isfinite(mean_loss):
            raise FloatingPointError(f"training diverged at epoch {epoch + 1} (loss {mean_loss}); lower learning_rate")
        epoch_losses.append(mean_loss)
        if progress:
            epochs.set_postfix(loss=f"{mean_loss:.4f}")
        if on_epoch_end is not None:
            on_epoch_end(epoch, mean_loss)
    network.eval()
    return TrainingResult(ensemble=SnapshotEnsemble(snapshots).eval(), schedule=schedule, epoch_losses=epoch_losses)


def _adam_implementation(device: torch.device) -> dict[str, bool]:
    """Fused Adam (one kernel for all parameters) where this PyTorch build supports it on ``device``."""
    try:
        torch.optim.Adam([nn.Parameter(torch.zeros(1, device=device))], fused=True)
    except (RuntimeError, ValueError, TypeError):
        return {"foreach": device.type != "cpu"}
    return {"fused": True}


@torch.inference_mode()
def predict_in_batches(
    model: nn.Module, x: torch.Tensor, *, batch_size: int = 8192, with_weights: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run ``model`` in evaluation batches without gradients; outputs are gathered on the CPU.

    Peak memory is one batch of activations plus the output arrays, whatever the number of rows.

    Shape:
        x ``(N, D)`` -> logits ``(N, C)``, weights ``(N, D + 1, C)`` (when ``with_weights``) or ``None``
    """
    model.eval()
    device = next(model.parameters()).device
    logits_parts, weight_parts = [], []
    for start in range(0, x.shape[0], batch_size):
        logits, weights = model(x[start : start + batch_size].to(device, non_blocking=True))
        logits_parts.append(logits.float().cpu())
        if with_weights and weights is not None:
            weight_parts.append(weights.float().cpu())
    logits = torch.cat(logits_parts) if logits_parts else torch.empty(0)
    weights = torch.cat(weight_parts) if weight_parts else None
    return logits, weights
