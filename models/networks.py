"""The networks: a residual MLP backbone shared by INN (hypernetwork head) and TabResNet (black-box head).

INN's head outputs, for every example, the weights of a linear model over the same example; the prediction
is that linear model applied to the example, so the generated weights are an exact explanation.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _check_sizes(*, n_inputs: int, n_outputs: int, hidden_size: int, nr_blocks: int, dropout: float) -> None:
    if n_inputs < 1:
        raise ValueError(f"n_inputs must be >= 1, got {n_inputs=}")
    if n_outputs < 1:
        raise ValueError(f"n_outputs must be >= 1, got {n_outputs=}")
    if hidden_size < 1:
        raise ValueError(f"hidden_size must be >= 1, got {hidden_size=}")
    if nr_blocks < 0:
        raise ValueError(f"nr_blocks must be >= 0, got {nr_blocks=}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout=}")


class ResidualBlock(nn.Module):
    """``GELU(x + BN(Linear(Dropout(GELU(BN(Linear(x)))))))``; the last BN starts at weight 0.

    Starting the last batch norm at zero makes every block the identity at initialisation, which keeps
    deep stacks trainable.

    Shape:
        x ``(B, H)`` -> ``(B, H)``
    """

    def __init__(self, *, hidden_size: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.linear_first = nn.Linear(hidden_size, hidden_size)
        self.norm_first = nn.BatchNorm1d(hidden_size)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.linear_second = nn.Linear(hidden_size, hidden_size)
        self.norm_second = nn.BatchNorm1d(hidden_size)
        nn.init.zeros_(self.norm_second.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.gelu(self.norm_first(self.linear_first(x)))
        out = self.norm_second(self.linear_second(self.dropout(out)))
        return F.gelu(out + x)


class ResidualBackbone(nn.Module):
    """``Linear(F -> H) -> BN -> GELU`` followed by ``nr_blocks`` residual blocks.

    Shape:
        x ``(B, F)`` -> ``(B, H)``
    """

    def __init__(self, *, n_inputs: int, hidden_size: int = 128, nr_blocks: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        _check_sizes(n_inputs=n_inputs, n_outputs=1, hidden_size=hidden_size, nr_blocks=nr_blocks, dropout=dropout)
        self.input_layer = nn.Linear(n_inputs, hidden_size)
        self.input_norm = nn.BatchNorm1d(hidden_size)
        self.blocks = nn.Sequential(
            *(ResidualBlock(hidden_size=hidden_size, dropout=dropout) for _ in range(nr_blocks))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(F.gelu(self.input_norm(self.input_layer(x))))


class _BackboneWithHead(nn.Module):
    """The shared backbone followed by a linear head of ``head_size`` outputs (validated sizes)."""

    def __init__(
        self, *, n_inputs: int, n_outputs: int, head_size: int, hidden_size: int, nr_blocks: int, dropout: float
    ) -> None:
        super().__init__()
        _check_sizes(
            n_inputs=n_inputs, n_outputs=n_outputs, hidden_size=hidden_size, nr_blocks=nr_blocks, dropout=dropout
        )
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs
        self.backbone = ResidualBackbone(
            n_inputs=n_inputs, hidden_size=hidden_size, nr_blocks=nr_blocks, dropout=dropout
        )
        self.head = nn.Linear(hidden_size, head_size)


class INNNetwork(_BackboneWithHead):
    """The interpretable network: a hypernetwork that emits a per-example linear model.

    ``logits = [x, 1] · W(x)`` with ``W(x)`` of shape ``(F + 1, C)``, the last row being the bias.
    ``C`` is 1 for binary classification and regression, the number of classes otherwise.

    Shape:
        x ``(B, F)`` -> logits ``(B, C)``, weights ``(B, F + 1, C)``
    """

    def __init__(
        self, *, n_inputs: int, n_outputs: int, hidden_size: int = 128, nr_blocks: int = 2, dropout: float = 0.0
    ) -> None:
        super().__init__(
            n_inputs=n_inputs,
            n_outputs=n_outputs,
            head_size=(n_inputs + 1) * n_outputs,
            hidden_size=hidden_size,
            nr_blocks=nr_blocks,
            dropout=dropout,
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = self.head(self.backbone(x))  # (B, (F + 1) · C)
        weights = flat.view(-1, self.n_inputs + 1, self.n_outputs)
        if self.n_outputs == 1:
            # Binary tasks and regression: a row-wise dot product with the flat head output keeps views off
            # the gradient path (what ``linear_logits`` computes, a few microseconds cheaper per step).
            return (flat * F.pad(x, (0, 1), value=1.0)).sum(1, keepdim=True), weights
        return linear_logits(x, weights), weights


class TabResNetNetwork(_BackboneWithHead):
    """The black-box twin of INN: the same backbone with a plain linear output layer.

    Shape:
        x ``(B, F)`` -> logits ``(B, C)``, ``None``
    """

    def __init__(
        self, *, n_inputs: int, n_outputs: int, hidden_size: int = 128, nr_blocks: int = 2, dropout: float = 0.0
    ) -> None:
        super().__init__(
            n_inputs=n_inputs,
            n_outputs=n_outputs,
            head_size=n_outputs,
            hidden_size=hidden_size,
            nr_blocks=nr_blocks,
            dropout=dropout,
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.head(self.backbone(x)), None


def linear_logits(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Apply per-example linear models: ``x · W[:, :F] + W[:, F]``.

    Shape:
        x ``(B, F)``, weights ``(B, F + 1, C)`` -> ``(B, C)``
    """
    # A column of ones appended to x and one product-and-sum: slicing the bias row off ``weights`` would add
    # slice nodes to every training step, and at the paper's sizes (B x 1 x (F + 1) products) ``bmm`` is
    # slower than an elementwise product and a sum.
    return (weights * F.pad(x, (0, 1), value=1.0).unsqueeze(2)).sum(1)


class SnapshotEnsemble(nn.Module):
    """Averages the logits of snapshots; for INN also their weights, so the ensemble is one linear model.

    Because ``logits`` is linear in ``W`` for a fixed ``x``, the mean of the snapshots' logits equals
    ``[x, 1] · mean(W)``: the ensemble's explanation is exact.

    Shape:
        x ``(B, F)`` -> logits ``(B, C)``, weights ``(B, F + 1, C)`` or ``None``
    """

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("a snapshot ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        outputs = [member(x) for member in self.members]
        if outputs[0][1] is None:
            return torch.stack([logits for logits, _ in outputs]).mean(0), None
        weights = torch.stack([weights for _, weights in outputs]).mean(0)
        return linear_logits(x, weights), weights
