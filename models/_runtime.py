"""Speed internals of training and inference: flat parameters, a fused Adam, threads and denormals.

None of this changes the arithmetic of a step; each piece is pinned to a plain reference by
``tests/test_speed_equivalence.py`` and measured by the scripts in ``benchmarks/``.

- :class:`FlatParameters` views every parameter (and gradient) into one buffer, so one fused Adam kernel
  updates them all and one ``zero_`` clears the gradients.
- :class:`FlatAdam` calls that kernel directly (no optimiser bookkeeping, no ``torch._dynamo`` import).
- :func:`resolve_threads` / :func:`limit_threads`: small batches run on one CPU thread (faster, and robust to
  a loaded machine); :data:`SINGLE_THREAD_MAX_ACTIVATIONS` is the threshold.
- :func:`flush_denormals`: late-training gradients and trained activations fall below 1.2e-38, where x86
  arithmetic is many times slower; they are flushed to zero on the CPU.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

#: Up to this many ``batch_size · hidden_size`` activations per layer, one CPU thread is fastest: the
#: matrices are too small to pay for thread synchronisation, and with several threads a loaded machine
#: (parallel sweeps, other jobs) oversubscribes its cores, which made steps many times slower.
SINGLE_THREAD_MAX_ACTIVATIONS = 512 * 128


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
def released(flat: FlatParameters) -> Iterator[None]:
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
