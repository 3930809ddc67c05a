"""Device selection shared by every model: CUDA when asked for or available, else the CPU."""

from __future__ import annotations

from typing import Literal

import torch

from errors import UserError

DeviceName = Literal["auto", "cpu", "cuda"]


def resolve_device(device: DeviceName | str | torch.device = "auto") -> torch.device:
    """Turn ``auto``/``cpu``/``cuda`` (or ``cuda:N``) into a torch device.

    Raises:
        UserError: CUDA was asked for but is not available.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda was requested but no CUDA device is available (use --device cpu or auto)")
    return torch.device(device)
