"""The training loop shared by INN and TabResNet: one explicit loop, a snapshot at every cycle end.

The data lives on the training device as two tensors; each epoch draws one seeded permutation and slices
batches from it. Nothing inside the loop synchronises with the host: the epoch loss is accumulated on the
device and read once per epoch. The learning rates are precomputed (see ``models.schedule``).

Speed (see ``benchmarks/`` and the speed section of the README): at the paper's sizes (batch 64, hidden 128) a step
is a few dozen small kernels, so per-call overheads and threads matter more than arithmetic. The loop keeps
all parameters in one flat buffer (one fused Adam kernel over one tensor, gradients accumulated in place, one
``zero_`` per step), runs small batches on one CPU thread (:func:`resolve_threads`), and can optionally run
the network through ``torch.compile``. None of this changes the arithmetic of a step.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
#: Up to this many ``batch_size · hidden_size`` activations per layer, one CPU thread is fastest: the
#: matrices are too small to pay for thread synchronisation, and with several threads a loaded machine
#: (parallel sweeps, other jobs) oversubscribes its cores, which made steps many times slower.
SINGLE_THREAD_MAX_ACTIVATIONS = 512 * 128


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
            # weight_norm · mean|W| as one L1-norm kernel and one scaled add (two autograd nodes, not four).
            value = torch.add(value, torch.linalg.vector_norm(weights, 1), alpha=weight_norm / weights.numel())
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
    compile: bool | str = False,
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
    loss_fn = make_loss(objective, config.weight_norm, class_weights)
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
    with flush_denormals(device.type == "cpu"), _released(flat):
        for epoch in epochs:
            order = torch.randperm(x.shape[0], generator=generator, device=device)
            total = torch.zeros((), device=device)
            for x_batch, y_batch in zip(x[order].split(batch_sizes), y[order].split(batch_sizes), strict=True):
                mixing = None
                if augment:
                    # FGSM differentiates with respect to the inputs: the eager network avoids recompiling.
                    x_batch, mixing = augmenter(x_batch, lambda inputs, t=y_batch: loss_fn(network(inputs), t, None))
                loss = loss_fn(forward(x_batch), y_batch, mixing)
                flat.zero_grad()
                loss.backward()
                optimizer.step(learning_rates[step])
                total += loss.detach()
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


class FlatParameters:
    """Views every parameter of a module (and its gradient) into one contiguous buffer while training.

    Adam is elementwise, so one fused Adam over the flat buffer computes exactly what it computes over
    the separate parameters, but with one tensor instead of dozens of Python-side bookkeeping entries.
    The gradients are views of one buffer too: backward accumulates into them in place and one
    ``zero_`` clears them all.

    Attributes:
        parameter: the flat parameter ``(P,)`` to hand to the optimiser; its ``grad`` is the flat gradient.
    """

    def __init__(self, module: nn.Module) -> None:
        self._params = [param for param in module.parameters() if param.requires_grad]
        if not self._params:
            raise ValueError("the module has no trainable parameters")
        first = self._params[0]
        if any(param.dtype != first.dtype or param.device != first.device for param in self._params):
            raise ValueError("flat parameters need one dtype and one device")
        with torch.no_grad():
            values = torch.cat([param.detach().reshape(-1) for param in self._params])
        self.parameter = nn.Parameter(values)
        self.parameter.grad = torch.zeros_like(values)
        offset = 0
        for param in self._params:
            size = param.numel()
            param.data = values[offset : offset + size].view_as(param)
            param.grad = self.parameter.grad[offset : offset + size].view_as(param)
            offset += size

    def zero_grad(self) -> None:
        """Clear all gradients with one kernel (the per-parameter views stay in place)."""
        self.parameter.grad.zero_()

    def release(self) -> None:
        """Give every parameter its own storage again and drop the gradients."""
        for param in self._params:
            param.data = param.data.clone()
            param.grad = None


class FlatAdam:
    """Adam with coupled L2 weight decay (``torch.optim.Adam``'s algorithm) for one flat parameter.

    It calls the fused Adam kernel that ``torch.optim.Adam(fused=True)`` calls, once per step, directly:
    this skips the optimiser's per-step Python bookkeeping and, on first use in a process, the import of
    ``torch._dynamo`` that every ``torch.optim`` optimiser triggers (seconds, paid by every run of a
    sweep). Where the fused kernel does not run on the device, it delegates to ``torch.optim.Adam``.
    ``tests/test_speed_equivalence.py`` pins it to ``torch.optim.Adam``.
    """

    def __init__(
        self,
        parameter: nn.Parameter,
        *,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.parameter = parameter
        self.weight_decay = weight_decay
        self.betas = betas
        self.eps = eps
        self._fallback: torch.optim.Optimizer | None = None
        if _fused_adam_available(parameter.device):
            self.exp_avg = torch.zeros_like(parameter, memory_format=torch.preserve_format)
            self.exp_avg_sq = torch.zeros_like(parameter, memory_format=torch.preserve_format)
            # The step count lives on the device, as in torch.optim.Adam, so stepping never synchronises.
            self.step_count = torch.zeros((), dtype=torch.float32, device=parameter.device)
        else:
            self._fallback = torch.optim.Adam(
                [parameter],
                lr=1.0,
                betas=betas,
                eps=eps,
                weight_decay=weight_decay,
                **_adam_implementation(parameter.device),
            )

    @torch.no_grad()
    def step(self, lr: float) -> None:
        """One Adam update with learning rate ``lr`` from ``parameter.grad``."""
        if self._fallback is not None:
            self._fallback.param_groups[0]["lr"] = lr
            self._fallback.step()
            return
        self.step_count += 1
        torch._fused_adam_(
            [self.parameter],
            [self.parameter.grad],
            [self.exp_avg],
            [self.exp_avg_sq],
            [],
            [self.step_count],
            amsgrad=False,
            lr=lr,
            beta1=self.betas[0],
            beta2=self.betas[1],
            weight_decay=self.weight_decay,
            eps=self.eps,
            maximize=False,
            grad_scale=None,
            found_inf=None,
        )


def _fused_adam_available(device: torch.device) -> bool:
    """Whether ``torch._fused_adam_`` exists in this build and runs on ``device`` (tried on a dummy)."""
    if not hasattr(torch, "_fused_adam_"):
        return False
    dummy = torch.zeros(1, device=device)
    try:
        torch._fused_adam_(
            [dummy], [dummy.clone()], [dummy.clone()], [dummy.clone()], [], [dummy.clone().squeeze(0)],
            amsgrad=False, lr=0.0, beta1=0.9, beta2=0.999, weight_decay=0.0, eps=1e-8, maximize=False,
            grad_scale=None, found_inf=None,
        )  # fmt: skip
    except (RuntimeError, TypeError, NotImplementedError):
        return False
    return True


@contextmanager
def _released(flat: FlatParameters) -> Iterator[None]:
    try:
        yield
    finally:
        flat.release()


@contextmanager
def flush_denormals(enabled: bool = True) -> Iterator[None]:
    """Flush denormal floats to zero on the CPU inside the block (``torch.set_flush_denormal``).

    Late in training the task loss of well-fitted rows approaches 0 and many gradients fall below
    ``1.2e-38``; on x86 CPUs arithmetic on such denormal numbers is many times slower, and the backward
    matrix products of the last epochs slowed down by more than half. Flushing them to zero changes no
    result that matters: Adam divides by ``sqrt(v) + 1e-8``, so such gradients move no parameter anyway.
    It applies to the calling thread (all of the work when training on one thread); the previous mode
    is restored.
    """
    if not enabled or _flushing_denormals():
        yield
        return
    if not torch.set_flush_denormal(True):  # this CPU has no flush-to-zero mode
        yield
        return
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def _flushing_denormals() -> bool:
    """Whether the calling thread flushes denormals now (torch has no getter: a denormal is multiplied)."""
    return (torch.full((1,), 1e-39) * 1.0).item() == 0.0


def _snapshot(template: nn.Module, network: nn.Module) -> nn.Module:
    """An evaluation-mode copy of ``network``'s current state, built from an untouched ``template``."""
    member = copy.deepcopy(template)
    member.load_state_dict(network.state_dict())
    return member.eval()


def resolve_threads(threads: int | None, *, batch_size: int, hidden_size: int, device: torch.device) -> int | None:
    """The number of CPU threads to train with, or ``None`` to leave torch's setting alone.

    ``threads`` given: that number. ``None`` (automatic): one thread on the CPU when a layer's activations
    are small (``batch_size · hidden_size <= SINGLE_THREAD_MAX_ACTIVATIONS``), otherwise torch's current
    setting, which already honours ``OMP_NUM_THREADS`` (sweeps that pin threads per job keep their choice,
    the automatic rule only ever lowers it). On CUDA the host threads barely matter and are left alone.
    """
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads=}")
        return int(threads)
    if device.type != "cpu":
        return None
    if batch_size * hidden_size <= SINGLE_THREAD_MAX_ACTIVATIONS:
        return 1
    return None


@contextmanager
def limit_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)`` and restore the previous count afterwards."""
    previous = torch.get_num_threads()
    if threads is None or threads == previous:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


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

    The outputs are allocated once, after the first batch shows their shapes, and every batch is copied
    into its rows: peak memory is the output arrays plus one batch of activations, whatever the number of
    rows (gathering parts and concatenating them would hold the outputs twice).

    Shape:
        x ``(N, D)`` -> logits ``(N, C)``, weights ``(N, D + 1, C)`` (when ``with_weights``) or ``None``
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size=}")
    model.eval()
    device = next(model.parameters()).device
    n_rows = x.shape[0]
    logits_out: torch.Tensor | None = None
    weights_out: torch.Tensor | None = None
    # Trained networks produce denormal activations too (see flush_denormals): up to 2x slower inference.
    with flush_denormals(device.type == "cpu"):
        for start in range(0, n_rows, batch_size):
            end = min(start + batch_size, n_rows)
            logits, weights = model(x[start:end].to(device, non_blocking=True))
            if logits_out is None:
                logits_out = torch.empty((n_rows, *logits.shape[1:]), dtype=torch.float32)
                if with_weights and weights is not None:
                    weights_out = torch.empty((n_rows, *weights.shape[1:]), dtype=torch.float32)
            logits_out[start:end].copy_(logits)
            if weights_out is not None:
                weights_out[start:end].copy_(weights)
    if logits_out is None:  # no rows: one empty batch gives the output shapes
        logits, weights = model(x[:0].to(device))
        logits_out = logits.float().cpu()
        weights_out = weights.float().cpu() if with_weights and weights is not None else None
    return logits_out, weights_out
