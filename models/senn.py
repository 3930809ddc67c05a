"""Self-Explaining Neural Networks (SENN, Alvarez-Melis & Jaakkola 2018) and DiSENN (β-VAE concepts).

SENN predicts with ``logit_c(x) = Σ_k θ_kc(x) · h_k(x)``: a *conceptizer* ``h`` maps the input to ``K``
concepts, a *parameterizer* ``θ`` generates a relevance per concept and class, and the aggregator is a sum per
class. Three conceptizers:

* ``identity``: ``h(x) = [x, 1]``: the inputs plus a constant concept, whose relevance is an intercept. The
  model then has INN's form exactly (a per-example linear model, weights ``(B, D + 1, C)``); with the default
  parameterizer (the project's residual backbone and a linear head, :class:`ResNetParameterizer`) SENN and INN
  differ only in the regulariser.
* ``autoencoder`` (SENN's learned concepts): an MLP encoder ``h`` with a decoder; the concept loss is the
  reconstruction error plus an L1 sparsity term on ``h``.
* ``vae`` (DiSENN): a β-VAE; the concepts are the posterior means ``μ(x)``, the decoder reconstructs from a
  reparameterised sample in training (from ``μ`` in evaluation); the concept loss is reconstruction + β·KL.

The robustness loss (:func:`robustness_loss`) is SENN's ``‖∇ₓ f(x) − J_h(x)ᵀ θ(x)‖`` computed on the
**logits**. Both public codebases differentiate log-softmax or sigmoid outputs instead; since
``∇ log p_c = ∇z_c − Σ_k p_k ∇z_k``, that penalises even a model whose θ is exactly constant (an exactly linear
model), which is not what the loss is for. For a multiclass task it is the squared Frobenius norm of the whole
``D × C`` residual: exactly (one double-backward pass per class) or by Hutchinson's unbiased estimator (one pass
with a Rademacher probe ``v``: ``E‖r v‖² = ‖r‖²_F``). The value is the mean over examples of the squared norm
(the codebases take the unsquared norm of the whole batch, which scales with the batch size and cannot be
estimated without bias), so a λ of this module and a λ of the papers are not the same number.

Snapshots. With identity concepts the snapshot ensemble averages the generated linear models (as INN), which
is exact: the logits are linear in θ for a fixed input. With learned concepts each snapshot has its own
concepts, and a mean of ``Σ_k θ_k h_k`` over snapshots is no longer one relevance per concept, so learned
concepts train with one cosine cycle and keep one snapshot (``nr_restarts`` is not used): the explanation stays
exact for the model that predicts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn
from torch.nn import functional as F

from models._runtime import FlatAdam, FlatParameters, limit_threads, released, resolve_threads
from models.attribution import Attribution, ReferenceKind, reference_point
from models.device import resolve_device
from models.estimators import ClassBalance, _NeuralClassifier, _NeuralRegressor
from models.networks import NetworkOutput, _BackboneWithHead, _check_sizes, linear_logits
from models.training import TrainingConfig, batch_bounds

Conceptizer = Literal["identity", "autoencoder", "vae"]
CONCEPTIZERS: tuple[Conceptizer, ...] = ("identity", "autoencoder", "vae")
#: The conceptizers of ``--method senn`` (DiSENN is the β-VAE).
SENN_CONCEPTIZERS: tuple[Conceptizer, ...] = ("identity", "autoencoder")
Parameterizer = Literal["resnet", "mlp"]
PARAMETERIZERS: tuple[Parameterizer, ...] = ("resnet", "mlp")
RobustEstimator = Literal["exact", "hutchinson"]
ROBUST_ESTIMATORS: tuple[RobustEstimator, ...] = ("exact", "hutchinson")


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
    """The SENN paper's tabular parameterizer: ``nr_blocks + 1`` tanh hidden layers and a linear output.

    (The original's COMPAS network is 11 -> 10 -> 10 -> 5 -> 11·C; here every hidden layer has ``hidden_size``
    units.)

    Shape:
        x ``(B, D)`` -> ``(B, R · C)``
    """

    def __init__(
        self, *, n_inputs: int, n_outputs: int, n_relevances: int, hidden_size: int, nr_blocks: int, dropout: float
    ) -> None:
        super().__init__()
        _check_sizes(
            n_inputs=n_inputs, n_outputs=n_outputs, hidden_size=hidden_size, nr_blocks=nr_blocks, dropout=dropout
        )
        layers: list[nn.Module] = []
        width = n_inputs
        for _ in range(nr_blocks + 1):
            layers += [nn.Linear(width, hidden_size), nn.Tanh()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden_size
        layers.append(nn.Linear(width, n_relevances * n_outputs))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _parameterizer(kind: Parameterizer, **sizes: int | float) -> nn.Module:
    if kind == "resnet":
        return ResNetParameterizer(**sizes)
    if kind == "mlp":
        return MLPParameterizer(**sizes)
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
        parameterizer, hidden_size, nr_blocks, dropout: as :class:`SENNNetwork` (``hidden_size`` also sizes the
            conceptizer's hidden layers).
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
        """Not defined: snapshots with different concepts have no common relevance per concept (see the module)."""
        raise ValueError(
            "snapshots of a learned-concept SENN do not combine (each has its own concepts); it keeps one snapshot"
        )


# ----------------------------------------------------------------------------------------------------------
# Losses


def robustness_loss(
    output: NetworkOutput,
    x: torch.Tensor,
    *,
    identity: bool,
    estimator: RobustEstimator = "exact",
    probes: torch.Tensor | None = None,
) -> torch.Tensor:
    """SENN's robustness loss on the logits: ``mean_b ‖∇ₓ f(x_b) − J_h(x_b)ᵀ θ(x_b)‖²_F``.

    The residual ``r = J_fᵀ − J_hᵀ θ`` ``(D, C)`` per example vanishes when θ is locally constant (then
    ``∇f = θᵀ J_h`` by the chain rule). Identity concepts (``J_h = [I, 0]``) reduce it to ``∇ₓf_c − θ_{:D,c}`` =
    ``J_{θ_c}ᵀ [x, 1]``: the penalty is on how fast the generated weights move, weighted by the input. Learned
    concepts: ``J_h`` takes one backward pass per concept through the conceptizer alone and serves every class.
    The graph is kept (``create_graph``), so the loss trains θ and h.

    Args:
        output: the network's output on ``x`` (``logits``, ``weights`` θ, ``concepts`` h).
        x: the input the output was computed from; it must require grad.
        identity: identity concepts (``h = x`` and θ's last row is the constant concept's relevance).
        estimator: ``exact`` (one double-backward pass per class) or ``hutchinson`` (one pass: the unbiased
            estimate ``‖r v‖²`` with a Rademacher probe ``v`` per example, ``E[v vᵀ] = I``). With one output
            the two coincide and the exact pass is used.
        probes: ``(B, C)`` the probes to use instead of random ones (tests).

    Shape:
        x ``(B, D)``, logits ``(B, C)``, weights ``(B, K (+1), C)``, concepts ``(B, K)`` -> scalar
    """
    if not x.requires_grad:
        raise ValueError("the robustness loss needs the input the network read, with requires_grad=True")
    if estimator not in ROBUST_ESTIMATORS:
        raise ValueError(f"estimator must be one of {ROBUST_ESTIMATORS}, got {estimator!r}")
    logits, theta = output.logits, output.weights
    n_outputs = logits.shape[1]
    relevances = theta[:, :-1, :] if identity else theta  # (B, D or K, C): the constant concept has J_h = 0
    # Scalar outputs only: a tensor ``grad_outputs`` makes autograd import torch.fx's symbolic shapes (seconds).
    jacobian = None
    if not identity:
        # J_h (B, K, D), one pass per concept through the conceptizer's graph only, reused for every class.
        concepts = output.concepts
        jacobian = torch.stack(
            [torch.autograd.grad(concepts[:, k].sum(), x, create_graph=True)[0] for k in range(concepts.shape[1])],
            dim=1,
        )

    def residual(direction: torch.Tensor) -> torch.Tensor:
        """``r · v`` for per-example directions ``v`` ``(B, C)``: ``∇ₓ(f·v) − J_hᵀ(θ v)``."""
        (gradient,) = torch.autograd.grad((logits * direction).sum(), x, create_graph=True)
        relevance = (relevances * direction.unsqueeze(1)).sum(2)  # (B, D or K)
        if identity:
            return gradient - relevance
        return gradient - torch.einsum("bkd,bk->bd", jacobian, relevance)

    if estimator == "exact" or n_outputs == 1:
        total = logits.new_zeros(())
        for column in range(n_outputs):
            direction = torch.zeros_like(logits)
            direction[:, column] = 1.0
            total = total + residual(direction).square().sum()
        return total / logits.shape[0]
    if probes is None:
        probes = torch.randint(0, 2, logits.shape, device=logits.device).to(logits.dtype) * 2 - 1
    return residual(probes).square().sum() / logits.shape[0]


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(μ, σ²) ‖ N(0, I))`` in closed form, summed over latents and averaged over the batch.

    Shape:
        mu ``(B, K)``, logvar ``(B, K)`` -> scalar
    """
    return 0.5 * (mu.square() + logvar.exp() - logvar - 1.0).sum(1).mean()


def concept_loss(x: torch.Tensor, output: NetworkOutput, *, beta: float, sparsity_reg: float) -> torch.Tensor:
    """The concept loss of learned concepts: reconstruction MSE, plus β·KL (β-VAE) or ``sparsity_reg``·mean|h|.

    The L1 term is a mean over examples and concepts (the reproduction sums it over the batch, which makes its
    weight depend on the batch size).
    """
    value = F.mse_loss(output.reconstruction, x)
    extras = output.extras or {}
    if "mu" in extras:
        return value + beta * gaussian_kl(extras["mu"], extras["logvar"])
    if sparsity_reg > 0:
        value = value + sparsity_reg * output.concepts.abs().mean()
    return value


def pretrain_conceptizer(
    conceptizer: nn.Module,
    x: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    beta: float,
    sparsity_reg: float,
    seed: int,
) -> list[float]:
    """Train a learned conceptizer alone on its concept loss (DiSENN's pre-training phase); mean loss per epoch.

    Adam at a constant ``learning_rate``, seeded batch order; the conceptizer is left in training mode.
    """
    # The project's flat fused Adam: torch.optim would import torch._dynamo (seconds) on first use.
    flat = FlatParameters(conceptizer)
    optimizer = FlatAdam(flat.parameter)
    generator = torch.Generator(device=x.device)
    generator.manual_seed(seed)
    sizes = [end - start for start, end in batch_bounds(x.shape[0], batch_size)]
    losses = []
    conceptizer.train()
    with released(flat):
        for _ in range(epochs):
            total = x.new_zeros(())
            order = torch.randperm(x.shape[0], generator=generator, device=x.device)
            for batch in x[order].split(sizes):
                concepts, reconstruction, extras = conceptizer(batch)
                value = concept_loss(
                    batch,
                    NetworkOutput(batch, None, concepts, reconstruction, extras),
                    beta=beta,
                    sparsity_reg=sparsity_reg,
                )
                flat.zero_grad()
                value.backward()
                optimizer.step(learning_rate)
                total += value.detach()
            losses.append(total.item() / len(sizes))
    return losses


# ----------------------------------------------------------------------------------------------------------
# Estimators


class _SENN:
    """SENN's hooks, checks and explanations, shared by the SENN and DiSENN classifiers and regressors.

    The parameters are those of :class:`SENNClassifier` (see there); ``weight_norm`` (INN's L1 term on the
    generated weights) is not one of them: SENN's regulariser is the robustness loss.
    """

    #: INN's L1 strength, read by the shared parameter checks; SENN has no such term.
    weight_norm = 0.0

    # ------------------------------------------------------------------------------------------ checks
    def _conceptizer_kind(self) -> Conceptizer:
        return self.conceptizer

    def _learned(self) -> bool:
        return self._conceptizer_kind() != "identity"

    def _check_params(self) -> None:
        super()._check_params()
        kind = self._conceptizer_kind()
        if kind not in CONCEPTIZERS:
            raise ValueError(f"conceptizer must be one of {SENN_CONCEPTIZERS}, got {kind!r}")
        if self.parameterizer not in PARAMETERIZERS:
            raise ValueError(f"parameterizer must be one of {PARAMETERIZERS}, got {self.parameterizer!r}")
        if self.robust_estimator not in ROBUST_ESTIMATORS:
            raise ValueError(f"robust_estimator must be one of {ROBUST_ESTIMATORS}, got {self.robust_estimator!r}")
        if not isinstance(self.num_concepts, int | np.integer) or self.num_concepts < 1:
            raise ValueError(f"num_concepts must be an integer >= 1, got {self.num_concepts!r}")
        if not isinstance(self.pretrain_epochs, int | np.integer) or self.pretrain_epochs < 0:
            raise ValueError(f"pretrain_epochs must be an integer >= 0, got {self.pretrain_epochs!r}")
        for name in ("robust_reg", "concept_reg", "sparsity_reg", "beta", "pre_beta"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.compile and self.robust_reg > 0:
            raise ValueError("compile does not support the robustness loss's double backward; set robust_reg=0")

    # ------------------------------------------------------------------------------------------- hooks
    def _build_network(self, n_inputs: int, n_outputs: int) -> nn.Module:
        sizes = {
            "n_inputs": n_inputs,
            "n_outputs": n_outputs,
            "parameterizer": self.parameterizer,
            "hidden_size": self.hidden_size,
            "nr_blocks": self.nr_blocks,
            "dropout": self.dropout,
            "input_gradients": self.robust_reg > 0,
        }
        if not self._learned():
            return SENNNetwork(**sizes)
        network = ConceptSENNNetwork(conceptizer=self._conceptizer_kind(), n_concepts=self.num_concepts, **sizes)
        inputs = getattr(self, "_pretraining_inputs", None)
        if self.pretrain_epochs > 0 and inputs is not None:
            device = resolve_device(self.device)
            network.to(device)
            threads = resolve_threads(
                self.threads, batch_size=self.batch_size, hidden_size=self.hidden_size, device=device
            )
            with limit_threads(threads):
                self.pretrain_losses_ = pretrain_conceptizer(
                    network.conceptizer,
                    torch.as_tensor(inputs, dtype=torch.float32, device=device),
                    epochs=self.pretrain_epochs,
                    batch_size=self.batch_size,
                    # The reproduction's DiSENN pre-trains with Adam's default rate: a fixed 1e-3.
                    learning_rate=1e-3,
                    beta=self.pre_beta,
                    sparsity_reg=self.sparsity_reg,
                    seed=self.seed,
                )
        return network

    def _fit_network(self, x: np.ndarray, target: np.ndarray, **kwargs) -> None:
        # The pre-training phase needs the training inputs inside ``_build_network``; they are lent for the fit.
        self._pretraining_inputs = x
        try:
            super()._fit_network(x, target, **kwargs)
        finally:
            del self._pretraining_inputs

    def _training_config(self) -> TrainingConfig:
        config = super()._training_config()
        # Learned concepts keep one snapshot (snapshots do not share concepts): one cosine cycle.
        return replace(config, nr_restarts=1) if self._learned() else config

    def _loss(self, network, x, y, output, mixing):
        """Task loss (+ an explanation penalty, see the base class) + ``robust_reg``·robustness loss (on logits) +
        ``concept_reg``·concept loss (learned h)."""
        value = super()._loss(network, x, y, output, mixing)
        if self.robust_reg > 0:
            inputs = (output.extras or {}).get("input")
            if inputs is None or not inputs.requires_grad:
                raise RuntimeError("the network did not keep an input that requires grad (input_gradients off?)")
            value = value + self.robust_reg * robustness_loss(
                output, inputs, identity=not self._learned(), estimator=self.robust_estimator
            )
        if self._learned() and self.concept_reg > 0:
            value = value + self.concept_reg * concept_loss(x, output, beta=self.beta, sparsity_reg=self.sparsity_reg)
        return value

    # ---------------------------------------------------------------------------------------- concepts
    def explanation_space(self) -> Literal["features", "concepts"]:
        """``features`` (identity concepts: the explanation is over input columns) or ``concepts``."""
        return "concepts" if self._learned() else "features"

    def concept_names(self) -> list[str]:
        """``c0, c1, ...`` for learned concepts; the input names for identity concepts."""
        check_is_fitted(self, "model_")
        if not self._learned():
            return self.input_names()
        return [f"c{k}" for k in range(self.num_concepts)]

    def concepts(self, X) -> np.ndarray:
        """Concept activations ``h(x)`` ``(N, K)`` (the inputs themselves for identity concepts)."""
        return self._raw_outputs(X, fields=("concepts",))[0]["concepts"]

    def reconstruct(self, X) -> np.ndarray:
        """The inputs reconstructed from their concepts ``(N, D)`` (learned concepts only)."""
        self._require_learned("reconstruct")
        return self._raw_outputs(X, fields=("reconstruction",))[0]["reconstruction"]

    def decode(self, Z) -> np.ndarray:
        """Inputs ``(M, D)`` decoded from concept (autoencoder) or latent (β-VAE) values ``Z`` ``(M, K)``."""
        self._require_learned("decode")
        z = torch.as_tensor(np.asarray(Z, dtype=np.float32), device=self.device_)
        with torch.inference_mode(), limit_threads(getattr(self, "threads_", None)):
            return self.model_.members[0].decode(z).cpu().numpy()

    def posterior(self, X) -> tuple[np.ndarray, np.ndarray]:
        """The β-VAE's posterior ``(μ, log σ²)``, each ``(N, K)`` (DiSENN only)."""
        if self._conceptizer_kind() != "vae":
            raise ValueError("posterior is defined for β-VAE concepts (DiSENN) only")
        check_is_fitted(self, "model_")
        x = validate_data(self, X, reset=False, dtype=np.float32)
        conceptizer = self.model_.members[0].conceptizer
        with torch.inference_mode(), limit_threads(getattr(self, "threads_", None)):
            hidden = conceptizer.encoder(torch.from_numpy(x).to(self.device_))
            return conceptizer.mu(hidden).cpu().numpy(), conceptizer.logvar(hidden).cpu().numpy()

    def _require_learned(self, what: str) -> None:
        check_is_fitted(self, "model_")
        if not self._learned():
            raise ValueError(
                f"{what} needs learned concepts (conceptizer 'autoencoder' or DiSENN); these are the inputs"
            )

    # ------------------------------------------------------------------------------------- explanation
    def explain(self, X, *, reference: ReferenceKind | np.ndarray = "mean") -> Attribution:
        """The exact explanation of the model that predicts, relative to a reference input ``m``.

        Identity concepts (explainer ``senn``, over input columns, as INN): ``values[:, j] = θ_j(x)·(x_j − m_j)``
        and ``rest = θ_0(x) + Σ_j θ_j(x)·m_j``; ``extras["weights"]`` holds θ ``(N, D + 1, C)``.

        Learned concepts (explainer ``senn_concepts``, over concepts ``c0..``): ``values[:, k] =
        θ_k(x)·(h_k(x) − h_k(m))`` and ``rest = Σ_k θ_k(x)·h_k(m)``: relevance × activation relative to the
        reference's activation. ``extras`` holds ``relevances`` θ ``(N, K, C)``, ``activations`` h ``(N, K)`` and
        ``reference_activations`` ``h(m)`` ``(K,)``. Either way ``values.sum(1) + rest`` is the output
        (classifiers: logits; regressors: predictions in target units) and a row equal to ``m`` gets zero values.

        Args:
            reference: ``"mean"`` (the training mean, default), ``"zero"``, or a point ``(D,)`` in input columns.
        """
        if not self._learned():
            return self._linear_explanation(X, reference, "senn")
        outputs, _ = self._raw_outputs(X, fields=("logits", "weights", "concepts"))
        point, name = reference_point(reference, self.reference_)
        reference_activations = self._raw_outputs(point[None, :].astype(np.float32), fields=("concepts",))[0][
            "concepts"
        ][0].astype(np.float64)
        relevances = outputs["weights"].astype(np.float64)
        activations = outputs["concepts"].astype(np.float64)
        scale, shift = self.output_transform()
        values = scale * relevances * (activations - reference_activations)[:, :, None]
        rest = scale * np.einsum("nkc,k->nc", relevances, reference_activations) + shift
        return Attribution(
            values=values,
            rest=rest,
            output=scale * outputs["logits"].astype(np.float64) + shift,
            feature_names=tuple(self.concept_names()),
            explainer="senn_concepts",
            exact=True,
            reference=point,
            reference_name=f"concepts of the {name}",
            output_name=self.output_name(),
            extras={
                "relevances": scale * relevances,
                "activations": activations,
                "reference_activations": reference_activations,
            },
        )


class _SENNParameters(_SENN):
    """The constructor of SENN's classifier and regressor (explicit, as scikit-learn requires)."""

    def __init__(
        self,
        *,
        conceptizer: Conceptizer = "identity",
        parameterizer: Parameterizer = "resnet",
        num_concepts: int = 5,
        robust_reg: float = 0.1,
        robust_estimator: RobustEstimator = "exact",
        concept_reg: float = 1.0,
        sparsity_reg: float = 2e-5,
        pretrain_epochs: int = 0,
        nr_blocks: int = 2,
        hidden_size: int = 128,
        nr_epochs: int = 100,
        batch_size: int = 64,
        learning_rate: float = 0.01,
        weight_decay: float = 0.01,
        dropout: float = 0.0,
        augmentation_probability: float = 0.0,
        scheduler_t_mult: float = 2.0,
        nr_restarts: int = 3,
        class_balance: ClassBalance = "weight",
        categorical_inputs: Sequence[int] | None = None,
        penalize_features: Sequence[int] | None = None,
        penalty: str | None = None,
        penalty_strength: float = 1.0,
        device: str = "auto",
        seed: int = 0,
        progress: bool = False,
        threads: int | None = None,
        compile: bool | str = False,
    ) -> None:
        self.conceptizer = conceptizer
        self.parameterizer = parameterizer
        self.num_concepts = num_concepts
        self.robust_reg = robust_reg
        self.robust_estimator = robust_estimator
        self.concept_reg = concept_reg
        self.sparsity_reg = sparsity_reg
        self.pretrain_epochs = pretrain_epochs
        _set_shared(self, locals())

    #: Only the β-VAE has a KL term; SENN's autoencoder has none.
    beta = 0.0
    pre_beta = 0.0

    def _check_params(self) -> None:
        if self.conceptizer not in SENN_CONCEPTIZERS:
            raise ValueError(f"conceptizer must be one of {SENN_CONCEPTIZERS} (β-VAE concepts: DiSENN), got "
                             f"{self.conceptizer!r}")  # fmt: skip
        super()._check_params()


class _DiSENNParameters(_SENN):
    """The constructor of DiSENN's classifier and regressor (β-VAE concepts; the reproduction's defaults)."""

    def __init__(
        self,
        *,
        parameterizer: Parameterizer = "resnet",
        num_concepts: int = 5,
        robust_reg: float = 1e-3,
        robust_estimator: RobustEstimator = "exact",
        concept_reg: float = 1.0,
        beta: float = 4.0,
        pre_beta: float = 1.0,
        pretrain_epochs: int = 1,
        nr_blocks: int = 2,
        hidden_size: int = 128,
        nr_epochs: int = 100,
        batch_size: int = 64,
        learning_rate: float = 0.01,
        weight_decay: float = 0.01,
        dropout: float = 0.0,
        augmentation_probability: float = 0.0,
        scheduler_t_mult: float = 2.0,
        nr_restarts: int = 3,
        class_balance: ClassBalance = "weight",
        categorical_inputs: Sequence[int] | None = None,
        penalize_features: Sequence[int] | None = None,
        penalty: str | None = None,
        penalty_strength: float = 1.0,
        device: str = "auto",
        seed: int = 0,
        progress: bool = False,
        threads: int | None = None,
        compile: bool | str = False,
    ) -> None:
        self.parameterizer = parameterizer
        self.num_concepts = num_concepts
        self.robust_reg = robust_reg
        self.robust_estimator = robust_estimator
        self.concept_reg = concept_reg
        self.beta = beta
        self.pre_beta = pre_beta
        self.pretrain_epochs = pretrain_epochs
        _set_shared(self, locals())

    #: The β-VAE's KL term is its regulariser; there is no L1 term on its concepts.
    sparsity_reg = 0.0

    def _conceptizer_kind(self) -> Conceptizer:
        return "vae"


_SHARED = (
    "nr_blocks",
    "hidden_size",
    "nr_epochs",
    "batch_size",
    "learning_rate",
    "weight_decay",
    "dropout",
    "augmentation_probability",
    "scheduler_t_mult",
    "nr_restarts",
    "class_balance",
    "categorical_inputs",
    "penalize_features",
    "penalty",
    "penalty_strength",
    "device",
    "seed",
    "progress",
    "threads",
    "compile",
)


def _set_shared(estimator, values: dict) -> None:
    """Store the shared network parameters as given (scikit-learn: no logic in ``__init__``)."""
    for name in _SHARED:
        setattr(estimator, name, values[name])


class SENNClassifier(_SENNParameters, _NeuralClassifier):
    """Self-explaining neural network classifier: ``logit_c(x) = Σ_k θ_kc(x)·h_k(x)``.

    ``explain(X)`` is exact for the model that predicts (see ``_SENN.explain``). The shared parameters are INN's
    (``models.estimators._NeuralEstimator``) except ``weight_norm`` (SENN's regulariser is the robustness loss).

    Args:
        conceptizer: ``identity`` (the inputs plus a constant concept: INN's form) or ``autoencoder`` (learned
            concepts with a reconstruction and sparsity loss; one snapshot, see the module).
        parameterizer: ``resnet`` (the project's residual backbone with a head, as INN) or ``mlp`` (the SENN
            paper's tanh MLP, ``nr_blocks + 1`` hidden layers).
        num_concepts: ``K``, the number of learned concepts (identity concepts are the inputs: unused).
        robust_reg: λ, the weight of the robustness loss on the logits (0: off, and no double backward).
        robust_estimator: ``exact`` (one double-backward pass per class) or ``hutchinson`` (one pass, unbiased).
        concept_reg: ξ, the weight of the concept loss (learned concepts).
        sparsity_reg: the weight of the L1 term on the concepts inside the concept loss (autoencoder).
        pretrain_epochs: epochs of conceptizer-only pre-training before the joint training (learned concepts).
    """


class SENNRegressor(_SENNParameters, _NeuralRegressor):
    """Self-explaining neural network regressor; explanations are in target units. Parameters as the classifier."""


class DiSENNClassifier(_DiSENNParameters, _NeuralClassifier):
    """DiSENN classifier: SENN with β-VAE concepts (posterior means), pre-trained for ``pretrain_epochs``.

    Parameters as :class:`SENNClassifier` without ``conceptizer`` and ``sparsity_reg``, plus ``beta`` and
    ``pre_beta``; the defaults are the DiSENN reproduction's (5 concepts, β = 4, λ = 1e-3, one pre-training epoch
    at β = 1).
    """


class DiSENNRegressor(_DiSENNParameters, _NeuralRegressor):
    """DiSENN regressor (β-VAE concepts); explanations are in target units. Parameters as the classifier."""


# ----------------------------------------------------------------------------------------------------------
# Concept pictures: the data behind them (plots/senn.py draws them)


def concept_prototypes(activations: np.ndarray, n_prototypes: int = 8) -> np.ndarray:
    """The rows that activate each concept most (SENN's prototypes), most active first.

    Shape:
        activations ``(N, K)`` -> row indices ``(K, n_prototypes)``
    """
    activations = np.asarray(activations, dtype=np.float64)
    if activations.ndim != 2:
        raise ValueError(f"activations must be (N, K), got shape {activations.shape}")
    n = min(n_prototypes, activations.shape[0])
    # argpartition + a sort of the n best per concept: O(N·K), no full sort.
    top = np.argpartition(-activations, n - 1, axis=0)[:n].T  # (K, n)
    order = np.argsort(-np.take_along_axis(activations.T, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def latent_traversal(model: DiSENNClassifier | DiSENNRegressor, x, *, n_steps: int = 10, quantile: float = 0.45):
    """Decoded traversals of every latent dimension around one example (DiSENN's concept pictures).

    Latent ``k`` takes the standard-normal quantiles ``0.5 ± quantile`` (the prior's central range, as the
    reproduction's ``use_cdf``) in ``n_steps`` steps while the others stay at the example's posterior mean.

    Returns:
        ``(values (n_steps,), decoded (K, n_steps, D))``: the latent values and the decoded inputs.
    """
    from scipy.stats import norm

    if not 0 < quantile < 0.5:
        raise ValueError(f"quantile must be in (0, 0.5), got {quantile!r}")
    mu, _ = model.posterior(np.asarray(x, dtype=np.float32).reshape(1, -1))
    values = norm.ppf(np.linspace(0.5 - quantile, 0.5 + quantile, n_steps))
    k = mu.shape[1]
    z = np.repeat(np.repeat(mu, k, axis=0)[:, None, :], n_steps, axis=1)  # (K, n_steps, K)
    z[np.arange(k), :, np.arange(k)] = values
    decoded = model.decode(z.reshape(-1, k)).reshape(k, n_steps, -1)
    return values, decoded
