"""SENN's losses: the robustness loss on the logits, the concept loss (with the β-VAE's KL) and pre-training.

The robustness loss (:func:`robustness_loss`) is SENN's ``‖∇ₓ f(x) − J_h(x)ᵀ θ(x)‖`` computed on the
**logits**. Both public codebases differentiate log-softmax or sigmoid outputs instead; since
``∇ log p_c = ∇z_c − Σ_k p_k ∇z_k``, that penalises even a model whose θ is exactly constant (an exactly linear
model), which is not what the loss is for. For a multiclass task it is the squared Frobenius norm of the whole
``D × C`` residual: exactly (one double-backward pass per class) or by Hutchinson's unbiased estimator (one pass
with a Rademacher probe ``v``: ``E‖r v‖² = ‖r‖²_F``). The value is the mean over examples of the squared norm
(the codebases take the unsquared norm of the whole batch, which scales with the batch size and cannot be
estimated without bias), so a λ of this module and a λ of the papers are not the same number.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from models._runtime import FlatAdam, FlatParameters, released
from models.networks import NetworkOutput
from models.training import batch_bounds

RobustEstimator = Literal["exact", "hutchinson"]
ROBUST_ESTIMATORS: tuple[RobustEstimator, ...] = ("exact", "hutchinson")


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
