"""The networks: a residual MLP backbone shared by INN (hypernetwork head) and TabResNet (black-box head).

INN's head outputs, for every example, the weights of a linear model over the same example; the prediction
is that linear model applied to the example, so the generated weights are an exact explanation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(slots=True)
class NetworkOutput:
    """What a network returns: its logits and, by network, what it generated on the way.

    Attributes:
        logits: ``(B, C)`` the outputs the task loss reads.
        weights: ``(B, F + 1, C)`` a generated per-example linear model over the inputs, the last row its bias
            (INN, SENN with identity concepts); for learned concepts ``(B, K, C)`` relevances over concepts.
        concepts: ``(B, K)`` concept activations (SENN).
        reconstruction: ``(B, F)`` the input reconstructed from the concepts (SENN with an autoencoder).
        extras: anything else a network's loss needs (e.g. a β-VAE's ``mu`` and ``logvar``).
    """

    logits: torch.Tensor
    weights: torch.Tensor | None = None
    concepts: torch.Tensor | None = None
    reconstruction: torch.Tensor | None = None
    extras: dict[str, torch.Tensor] | None = None


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

    def forward(self, x: torch.Tensor) -> NetworkOutput:
        flat = self.head(self.backbone(x))  # (B, (F + 1) · C)
        weights = flat.view(-1, self.n_inputs + 1, self.n_outputs)
        if self.n_outputs == 1:
            # Binary tasks and regression: a row-wise dot product with the flat head output keeps views off
            # the gradient path (what ``linear_logits`` computes, a few microseconds cheaper per step).
            return NetworkOutput((flat * F.pad(x, (0, 1), value=1.0)).sum(1, keepdim=True), weights)
        return NetworkOutput(linear_logits(x, weights), weights)

    @staticmethod
    def combine(outputs: Sequence[NetworkOutput], x: torch.Tensor) -> NetworkOutput:
        """The snapshot ensemble's output: the mean generated linear model, applied to ``x``.

        ``logits`` is linear in ``W`` for a fixed ``x``, so this equals the mean of the snapshots' logits and
        the ensemble is itself one per-example linear model: its explanation is exact.
        """
        weights = torch.stack([output.weights for output in outputs]).mean(0)
        return NetworkOutput(linear_logits(x, weights), weights)


class TabResNetNetwork(_BackboneWithHead):
    """The black-box twin of INN: the same backbone with a plain linear output layer.

    Shape:
        x ``(B, F)`` -> logits ``(B, C)``
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

    def forward(self, x: torch.Tensor) -> NetworkOutput:
        return NetworkOutput(self.head(self.backbone(x)))

    @staticmethod
    def combine(outputs: Sequence[NetworkOutput], x: torch.Tensor) -> NetworkOutput:
        """The snapshot ensemble's output: the mean of the snapshots' logits."""
        return NetworkOutput(torch.stack([output.logits for output in outputs]).mean(0))


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
    """The snapshots of one training run, predicting together.

    How snapshots combine is the network's business: each network class defines
    ``combine(outputs, x) -> NetworkOutput`` (TabResNet: mean logits; INN: mean generated weights, so the
    ensemble is one per-example linear model and its explanation stays exact).

    Shape:
        x ``(B, F)`` -> :class:`NetworkOutput`
    """

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("a snapshot ensemble needs at least one member")
        kinds = {type(member) for member in members}
        if len(kinds) > 1:
            raise ValueError(f"snapshots must be of one network class, got {sorted(k.__name__ for k in kinds)}")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> NetworkOutput:
        if len(self.members) == 1:
            return self.members[0](x)
        return type(self.members[0]).combine([member(x) for member in self.members], x)
