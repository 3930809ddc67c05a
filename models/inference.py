"""Batched inference: run a network over many rows without gradients, gathering chosen outputs on the CPU."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from models._runtime import flush_denormals


@torch.inference_mode()
def predict_in_batches(
    model: nn.Module, x: torch.Tensor, *, batch_size: int = 8192, fields: Sequence[str] = ("logits",)
) -> dict[str, torch.Tensor | None]:
    """Run ``model`` in evaluation batches without gradients; the ``fields`` of its output, on the CPU.

    The outputs are allocated once, after the first batch shows their shapes, and every batch is copied
    into its rows: peak memory is the output arrays plus one batch of activations, whatever the number of
    rows (gathering parts and concatenating them would hold the outputs twice).

    Args:
        model: a network (or snapshot ensemble) returning a :class:`~models.networks.NetworkOutput`.
        x: inputs ``(N, D)``.
        batch_size: rows per forward pass.
        fields: which ``NetworkOutput`` fields to gather (``logits``, ``weights``, ``concepts``, ...), or names
            of its ``extras`` (e.g. INN-Shapley's ``contributions``); a field the network does not produce comes
            back as ``None``. Each comes back in the network's dtype (the inputs are cast to it).

    Shape:
        x ``(N, D)`` -> ``{"logits": (N, C), "weights": (N, D + 1, C), ...}``
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size=}")
    model.eval()
    parameter = next(model.parameters())
    device, dtype = parameter.device, parameter.dtype
    n_rows = x.shape[0]
    gathered: dict[str, torch.Tensor | None] | None = None
    # Trained networks produce denormal activations too (see flush_denormals): up to 2x slower inference.
    with flush_denormals(device.type == "cpu"):
        for start in range(0, max(n_rows, 1), batch_size):
            end = min(start + batch_size, n_rows)
            output = model(x[start:end].to(device, dtype, non_blocking=True))
            if gathered is None:
                gathered = {}
                for name in fields:
                    value = _field(output, name)
                    gathered[name] = (
                        None if value is None else torch.empty((n_rows, *value.shape[1:]), dtype=value.dtype)
                    )
            for name, out in gathered.items():
                if out is not None and end > start:
                    out[start:end].copy_(_field(output, name))
    return gathered


def _field(output, name: str) -> torch.Tensor | None:
    """A ``NetworkOutput`` field, or the entry ``name`` of its ``extras`` (None when it has neither)."""
    if name in type(output).__slots__ and name != "extras":
        return getattr(output, name)
    return (output.extras or {}).get(name)
