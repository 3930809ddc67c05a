"""SENN's networks: conceptizers ``h``, parameterizers ``θ`` and the two networks that combine them.

:class:`SENNNetwork` has identity concepts and a constant concept (INN's form, ``logits = [x, 1] · θ(x)``);
:class:`ConceptSENNNetwork` learns its concepts with an autoencoder (SENN) or a β-VAE (DiSENN). Both return a
``NetworkOutput`` whose ``extras["input"]`` is the tensor the graph starts from, for the robustness loss
(``models.senn.losses``). Contextual decomposition of these networks: ``models.decomposition``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from models.networks import NetworkOutput, _BackboneWithHead, _check_sizes, linear_logits

Conceptizer = Literal["identity", "autoencoder", "vae"]
CONCEPTIZERS: tuple[Conceptizer, ...] = ("identity", "autoencoder", "vae")
#: The conceptizers of ``--method senn`` (DiSENN is the β-VAE).
SENN_CONCEPTIZERS: tuple[Conceptizer, ...] = ("identity", "autoencoder")
Parameterizer = Literal["resnet", "mlp"]
PARAMETERIZERS: tuple[Parameterizer, ...] = ("resnet", "mlp")


# ----------------------------------------------------------------------------------------------------------
# Conceptizers: x (B, D) -> (concepts (B, K), reconstruction (B, D) | None, extras)


class IdentityConceptizer(nn.Module):
    """``h(x) = x`` (the constant concept is the parameterizer's last relevance row, as INN's bias).

    Shape:
        x ``(B, D)`` -> concepts ``(B, D)``
    """

    learned = False

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None, dict[str, torch.Tensor]]:
        return x, None, {}


def _mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear layers of ``sizes`` with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if index < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class AutoencoderConceptizer(nn.Module):
    """SENN's learned concepts: an MLP autoencoder whose code is the concepts.

    Encoder ``D -> H -> H -> K`` and decoder ``K -> H -> H -> D`` with ReLU (linear outputs: the inputs are
    standardised, not pixel intensities in ``[0, 1]``).

    Shape:
        x ``(B, D)`` -> concepts ``(B, K)``, reconstruction ``(B, D)``
    """

    learned = True

    def __init__(self, *, n_inputs: int, n_concepts: int, hidden_size: int) -> None:
        super().__init__()
        self.encoder = _mlp((n_inputs, hidden_size, hidden_size, n_concepts))
        self.decoder = _mlp((n_concepts, hidden_size, hidden_size, n_inputs))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        concepts = self.encoder(x)
        return concepts, self.decoder(concepts), {}

    def decode(self, concepts: torch.Tensor) -> torch.Tensor:
        """Inputs ``(M, D)`` from concept values ``(M, K)``."""
        return self.decoder(concepts)


class VAEConceptizer(nn.Module):
    """DiSENN's β-VAE: concepts are the posterior means ``μ(x)``.

    Encoder ``D -> H -> H`` then linear heads for ``μ`` and ``log σ²`` (``K`` each); decoder ``K -> H -> H -> D``.
    In training the decoder reads a reparameterised sample ``μ + σ·ε``; in evaluation it reads ``μ``.

    Shape:
        x ``(B, D)`` -> concepts ``(B, K)``, reconstruction ``(B, D)``, extras ``mu``, ``logvar`` ``(B, K)``
    """

    learned = True

    def __init__(self, *, n_inputs: int, n_concepts: int, hidden_size: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(_mlp((n_inputs, hidden_size, hidden_size)), nn.ReLU())
        self.mu = nn.Linear(hidden_size, n_concepts)
        self.logvar = nn.Linear(hidden_size, n_concepts)
        self.decoder = _mlp((n_concepts, hidden_size, hidden_size, n_inputs))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        hidden = self.encoder(x)
        mu, logvar = self.mu(hidden), self.logvar(hidden)
        z = mu
        if self.training:
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return mu, self.decoder(z), {"mu": mu, "logvar": logvar}

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Inputs ``(M, D)`` from latent values ``(M, K)``."""
        return self.decoder(z)


def _conceptizer(kind: Conceptizer, *, n_inputs: int, n_concepts: int, hidden_size: int) -> nn.Module:
    if kind == "identity":
        return IdentityConceptizer()
    if kind == "autoencoder":
        return AutoencoderConceptizer(n_inputs=n_inputs, n_concepts=n_concepts, hidden_size=hidden_size)
    if kind == "vae":
        return VAEConceptizer(n_inputs=n_inputs, n_concepts=n_concepts, hidden_size=hidden_size)
    raise ValueError(f"conceptizer must be one of {CONCEPTIZERS}, got {kind!r}")


# ----------------------------------------------------------------------------------------------------------
# Parameterizers: x (B, D) -> flat relevances (B, R · C)


class ResNetParameterizer(_BackboneWithHead):
    """The project's residual backbone with a linear head of ``R · C`` relevances (INN's hypernetwork).

    Shape:
        x ``(B, D)`` -> ``(B, R · C)``
    """

    def __init__(
        self, *, n_inputs: int, n_outputs: int, n_relevances: int, hidden_size: int, nr_blocks: int, dropout: float
    ) -> None:
        super().__init__(
            n_inputs=n_inputs,
            n_outputs=n_outputs,
            head_size=n_relevances * n_outputs,
            hidden_size=hidden_size,
            nr_blocks=nr_blocks,
            dropout=dropout,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


class MLPParameterizer(nn.Module):
    """The SENN paper's tabular parameterizer: tanh hidden layers and a linear output.

    The hidden widths are ``sizes`` when given (the original's COMPAS network, ``dfc_parametrizer``, is
    ``11 -> 10 -> 10 -> 5 -> 12·C``: ``sizes=(10, 10, 5)``), else ``nr_blocks + 1`` layers of ``hidden_size``.

    Shape:
        x ``(B, D)`` -> ``(B, R · C)``
    """

    def __init__(
        self,
        *,
        n_inputs: int,
        n_outputs: int,
        n_relevances: int,
        hidden_size: int,
        nr_blocks: int,
        dropout: float,
        sizes: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        _check_sizes(
            n_inputs=n_inputs, n_outputs=n_outputs, hidden_size=hidden_size, nr_blocks=nr_blocks, dropout=dropout
        )
        widths = [hidden_size] * (nr_blocks + 1) if sizes is None else [int(size) for size in sizes]
        if not widths or min(widths) < 1:
            raise ValueError(f"sizes must be hidden widths >= 1, got {sizes=}")
        layers: list[nn.Module] = []
        width = n_inputs
        for size in widths:
            layers += [nn.Linear(width, size), nn.Tanh()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, n_relevances * n_outputs))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _parameterizer(kind: Parameterizer, *, mlp_sizes: Sequence[int] | None = None, **sizes: int | float) -> nn.Module:
    if kind == "resnet":
        if mlp_sizes is not None:
            raise ValueError("parameterizer_sizes are the mlp parameterizer's hidden widths; resnet has none")
        return ResNetParameterizer(**sizes)
    if kind == "mlp":
        return MLPParameterizer(**sizes, sizes=mlp_sizes)
    raise ValueError(f"parameterizer must be one of {PARAMETERIZERS}, got {kind!r}")


# ----------------------------------------------------------------------------------------------------------
# Networks


class _SENNBase(nn.Module):
    """Conceptizer, parameterizer and what the robustness loss needs (the input the graph starts from)."""

    def __init__(
        self,
        *,
        n_inputs: int,
        n_outputs: int,
        conceptizer: Conceptizer,
        n_concepts: int,
        n_relevances: int,
        parameterizer: Parameterizer,
        hidden_size: int,
        nr_blocks: int,
        dropout: float,
        input_gradients: bool,
        parameterizer_sizes: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        _check_sizes(
            n_inputs=n_inputs, n_outputs=n_outputs, hidden_size=hidden_size, nr_blocks=nr_blocks, dropout=dropout
        )
        if n_concepts < 1:
            raise ValueError(f"n_concepts must be >= 1, got {n_concepts=}")
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs
        self.n_concepts = n_concepts
        self.n_relevances = n_relevances
        self.input_gradients = input_gradients
        self.conceptizer = _conceptizer(conceptizer, n_inputs=n_inputs, n_concepts=n_concepts, hidden_size=hidden_size)
        self.parameterizer = _parameterizer(
            parameterizer,
            n_inputs=n_inputs,
            n_outputs=n_outputs,
            n_relevances=n_relevances,
            hidden_size=hidden_size,
            nr_blocks=nr_blocks,
            dropout=dropout,
            mlp_sizes=parameterizer_sizes,
        )

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        # The robustness loss differentiates the logits with respect to the input: in training, the graph must
        # start at a tensor that requires grad. A caller's tensor that already does (FGSM) is kept, so that its
        # gradient still flows.
        if self.input_gradients and self.training and torch.is_grad_enabled() and not x.requires_grad:
            return x.detach().requires_grad_(True)
        return x


class SENNNetwork(_SENNBase):
    """SENN with identity concepts and a constant concept: ``logits = [x, 1] · θ(x)``, INN's form.

    Args:
        n_inputs, n_outputs: ``D`` and ``C`` (1 for binary tasks and regression).
        parameterizer: ``resnet`` (the residual backbone with a head) or ``mlp`` (the SENN paper's tanh MLP).
        hidden_size, nr_blocks, dropout: sizes of the parameterizer.
        parameterizer_sizes: the ``mlp`` parameterizer's hidden widths (default ``nr_blocks + 1`` of
            ``hidden_size``).
        input_gradients: in training, make the input require grad (for the robustness loss).

    Shape:
        x ``(B, D)`` -> logits ``(B, C)``, weights θ ``(B, D + 1, C)`` (last row: the constant concept's relevance,
        the intercept), concepts ``(B, D)`` (the input), extras ``input``
    """

    def __init__(
        self,
        *,
        n_inputs: int,
        n_outputs: int,
        parameterizer: Parameterizer = "resnet",
        hidden_size: int = 128,
        nr_blocks: int = 2,
        dropout: float = 0.0,
        input_gradients: bool = False,
        parameterizer_sizes: Sequence[int] | None = None,
    ) -> None:
        super().__init__(
            n_inputs=n_inputs,
            n_outputs=n_outputs,
            conceptizer="identity",
            n_concepts=n_inputs,
            n_relevances=n_inputs + 1,
            parameterizer=parameterizer,
            hidden_size=hidden_size,
            nr_blocks=nr_blocks,
            dropout=dropout,
            input_gradients=input_gradients,
            parameterizer_sizes=parameterizer_sizes,
        )

    def forward(self, x: torch.Tensor) -> NetworkOutput:
        x = self._input(x)
        weights = self.parameterizer(x).view(-1, self.n_relevances, self.n_outputs)
        return NetworkOutput(linear_logits(x, weights), weights, concepts=x, extras={"input": x})

    @staticmethod
    def combine(outputs: Sequence[NetworkOutput], x: torch.Tensor) -> NetworkOutput:
        """The snapshot ensemble: the mean relevances applied to ``[x, 1]`` (exact: logits are linear in θ)."""
        weights = torch.stack([output.weights for output in outputs]).mean(0)
        return NetworkOutput(linear_logits(x, weights), weights, concepts=x)


class ConceptSENNNetwork(_SENNBase):
    """SENN with learned concepts (``autoencoder``) or DiSENN (``vae``): ``logit_c = Σ_k θ_kc(x) · h_k(x)``.

    There is no constant concept: the prediction goes through the concepts only (as in both codebases).

    Args:
        n_inputs, n_outputs: ``D`` and ``C``.
        conceptizer: ``autoencoder`` or ``vae``.
        n_concepts: ``K``.
        parameterizer, hidden_size, nr_blocks, dropout, parameterizer_sizes: as :class:`SENNNetwork`
            (``hidden_size`` also sizes the conceptizer's hidden layers).
        input_gradients: in training, make the input require grad (for the robustness loss).

    Shape:
        x ``(B, D)`` -> logits ``(B, C)``, weights θ ``(B, K, C)``, concepts ``(B, K)``, reconstruction ``(B, D)``,
        extras ``input`` (and ``mu``, ``logvar`` ``(B, K)`` for the β-VAE)
    """

    def __init__(
        self,
        *,
        n_inputs: int,
        n_outputs: int,
        conceptizer: Conceptizer = "autoencoder",
        n_concepts: int = 5,
        parameterizer: Parameterizer = "resnet",
        hidden_size: int = 128,
        nr_blocks: int = 2,
        dropout: float = 0.0,
        input_gradients: bool = False,
        parameterizer_sizes: Sequence[int] | None = None,
    ) -> None:
        if conceptizer == "identity":
            raise ValueError("identity concepts are SENNNetwork's; ConceptSENNNetwork learns its concepts")
        super().__init__(
            n_inputs=n_inputs,
            n_outputs=n_outputs,
            conceptizer=conceptizer,
            n_concepts=n_concepts,
            n_relevances=n_concepts,
            parameterizer=parameterizer,
            hidden_size=hidden_size,
            nr_blocks=nr_blocks,
            dropout=dropout,
            input_gradients=input_gradients,
            parameterizer_sizes=parameterizer_sizes,
        )

    def forward(self, x: torch.Tensor) -> NetworkOutput:
        x = self._input(x)
        concepts, reconstruction, extras = self.conceptizer(x)
        weights = self.parameterizer(x).view(-1, self.n_relevances, self.n_outputs)
        logits = (weights * concepts.unsqueeze(2)).sum(1)
        return NetworkOutput(logits, weights, concepts, reconstruction, {**extras, "input": x})

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Inputs ``(M, D)`` decoded from concept (or latent) values ``(M, K)``."""
        return self.conceptizer.decode(z)

    @staticmethod
    def combine(outputs: Sequence[NetworkOutput], x: torch.Tensor) -> NetworkOutput:
        """Not defined: snapshots with different concepts have no common relevance per concept (see
        ``models.senn.estimators``)."""
        raise ValueError(
            "snapshots of a learned-concept SENN do not combine (each has its own concepts); it keeps one snapshot"
        )
