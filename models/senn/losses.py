"""SENN's losses: the robustness loss on the logits, the concept loss (with the β-VAE's KL) and pre-training.

The robustness loss (:func:`robustness_loss`) is SENN's ``‖∇ₓ f(x) − J_h(x)ᵀ θ(x)‖`` computed on the
**logits**. Both public codebases differentiate log-softmax or sigmoid outputs instead; since
``∇ log p_c = ∇z_c − Σ_k p_k ∇z_k``, that penalises even a model whose θ is exactly constant (an exactly linear
model), which is not what the loss is for. For a multiclass task it is the squared Frobenius norm of the whole
``D × C`` residual: exactly (one double-backward pass per class) or by Hutchinson's unbiased estimator (one pass
with a Rademacher probe ``v``: ``E‖r v‖² = ‖r‖²_F``). The value is the mean over examples of the squared norm
(the codebases take the unsquared norm of the whole batch, which scales with the batch size and cannot be
estimated without bias), so a λ of this module and a λ of the papers are not the same number.

The SENN code's own form is available for reproducing the paper (``form``, :data:`ROBUST_FORMS`): its loss
differentiates the post-link output (sigmoid for one output, log-softmax for several), pads the gradient with a zero
for the constant concept (so the intercept's relevance θ₀ itself is penalised) and takes the unsquared Frobenius
norm of the whole batch's residual. The intermediate forms switch one of these three choices off at a time.
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
Reconstruction = Literal["mean", "sum"]
RECONSTRUCTIONS: tuple[Reconstruction, ...] = ("mean", "sum")
RobustForm = Literal["logits", "batch", "senn_logits", "senn_no_intercept", "senn"]
#: The forms of the robustness loss, name -> (post-link output, the intercept's row, norm of the batch):
#: ``logits`` (this project's: logits, no intercept row, mean of squared norms), ``senn`` (the SENN code's:
#: sigmoid/log-softmax output, the intercept's relevance penalised, unsquared Frobenius norm of the batch) and three
#: forms between them that each differ from ``senn`` (or, for ``batch``, from ``logits``) in one choice.
ROBUST_FORMS: dict[str, tuple[bool, bool, Literal["mean_square", "batch"]]] = {
    "logits": (False, False, "mean_square"),
    "batch": (False, False, "batch"),
    "senn_logits": (False, True, "batch"),
    "senn_no_intercept": (True, False, "batch"),
    "senn": (True, True, "batch"),
}


def robustness_loss(
    output: NetworkOutput,
    x: torch.Tensor,
    *,
    identity: bool,
    estimator: RobustEstimator = "exact",
    probes: torch.Tensor | None = None,
    form: RobustForm = "logits",
) -> torch.Tensor:
    """SENN's robustness loss on the logits: ``mean_b ‖∇ₓ f(x_b) − J_h(x_b)ᵀ θ(x_b)‖²_F`` (``form="logits"``).

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
        form: one of :data:`ROBUST_FORMS`. ``senn`` is the SENN code's ``‖[∇ₓ p − J_hᵀθ; θ₀]‖_F`` over the whole
            batch, ``p`` the sigmoid (one output) or log-softmax (several) of the logits; the other forms switch
            its choices off (the intercept's row exists for identity concepts only). Hutchinson's estimator is
            for a mean of squared norms: with a batch norm and several outputs it is refused.

    Shape:
        x ``(B, D)``, logits ``(B, C)``, weights ``(B, K (+1), C)``, concepts ``(B, K)`` -> scalar
    """
    if not x.requires_grad:
        raise ValueError("the robustness loss needs the input the network read, with requires_grad=True")
    if estimator not in ROBUST_ESTIMATORS:
        raise ValueError(f"estimator must be one of {ROBUST_ESTIMATORS}, got {estimator!r}")
    if form not in ROBUST_FORMS:
        raise ValueError(f"form must be one of {tuple(ROBUST_FORMS)}, got {form!r}")
    link, intercept, norm = ROBUST_FORMS[form]
    logits, theta = output.logits, output.weights
    n_outputs = logits.shape[1]
    if estimator == "hutchinson" and norm == "batch" and n_outputs > 1:
        raise ValueError(f"Hutchinson's estimator is unbiased for a mean of squared norms, not for form {form!r}")
    differentiated = logits
    if link:  # the codebases' post-link output: what their aggregators return
        differentiated = torch.sigmoid(logits) if n_outputs == 1 else torch.log_softmax(logits, dim=1)
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
        (gradient,) = torch.autograd.grad((differentiated * direction).sum(), x, create_graph=True)
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
        if identity and intercept:  # the SENN code pads ∇f with a zero for the constant concept: θ₀ is the residual
            total = total + theta[:, -1, :].square().sum()
    else:
        if probes is None:
            probes = torch.randint(0, 2, logits.shape, device=logits.device).to(logits.dtype) * 2 - 1
        total = residual(probes).square().sum()
        if identity and intercept:
            total = total + (theta[:, -1, :] * probes).sum(1).square().sum()
    # A batch norm is differentiable away from a zero residual only; the floor keeps its gradient finite there.
    return total.clamp_min(1e-24).sqrt() if norm == "batch" else total / logits.shape[0]


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(μ, σ²) ‖ N(0, I))`` in closed form, summed over latents and averaged over the batch.

    Shape:
        mu ``(B, K)``, logvar ``(B, K)`` -> scalar
    """
    return 0.5 * (mu.square() + logvar.exp() - logvar - 1.0).sum(1).mean()


def kl_schedule(epoch: float, *, beta: float, capacity: float, warmup_epochs: int) -> tuple[float, float | None]:
    """The β-VAE's KL weight and capacity after ``epoch`` epochs of concept training (pre-training included).

    Without a capacity (``capacity == 0``) the weight β rises linearly from 0 over ``warmup_epochs`` (a KL
    warm-up; none when 0). With one, the weight is β and the KL's target ``C`` rises linearly from 0 to
    ``capacity`` nats over ``warmup_epochs`` (Burgess et al. 2018's controlled capacity increase).

    Returns:
        ``(weight, target)``; ``target`` is None without a capacity.
    """
    ramp = min(1.0, epoch / warmup_epochs) if warmup_epochs > 0 else 1.0
    if capacity > 0:
        return beta, capacity * ramp
    return beta * ramp, None


def concept_loss(
    x: torch.Tensor,
    output: NetworkOutput,
    *,
    beta: float,
    sparsity_reg: float,
    capacity: float | None = None,
    reconstruction: Reconstruction = "mean",
) -> torch.Tensor:
    """The concept loss of learned concepts: reconstruction error, plus β·KL (β-VAE) or ``sparsity_reg``·mean|h|.

    The reconstruction error is the squared error's ``mean`` over examples and input columns (the codebases'
    ``MSELoss``) or its ``sum`` over the input columns, averaged over examples: the scale of a VAE's evidence
    bound (a unit-variance Gaussian likelihood, up to a factor 2), against which the KL (summed over latents) is
    weighed. With the mean, the KL's price is ``D`` times higher, which is what collapses DiSENN's latents on
    digits (docs/senn.md). With a ``capacity`` ``C`` (nats) the β-VAE's term is ``β·|KL − C|`` (Burgess et al.
    2018): the KL is held near ``C`` instead of pushed to 0. The L1 term is a mean over examples and concepts (the
    reproduction sums it over the batch, which makes its weight depend on the batch size).
    """
    if reconstruction not in RECONSTRUCTIONS:
        raise ValueError(f"reconstruction must be one of {RECONSTRUCTIONS}, got {reconstruction!r}")
    value = F.mse_loss(output.reconstruction, x)
    if reconstruction == "sum":
        value = value * x.shape[1]
    extras = output.extras or {}
    if "mu" in extras:
        kl = gaussian_kl(extras["mu"], extras["logvar"])
        return value + beta * (kl if capacity is None else (kl - capacity).abs())
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
    capacity: float = 0.0,
    kl_warmup_epochs: int = 0,
    reconstruction: Reconstruction = "mean",
) -> list[float]:
    """Train a learned conceptizer alone on its concept loss (DiSENN's pre-training phase); mean loss per epoch.

    Adam at a constant ``learning_rate``, seeded batch order; the conceptizer is left in training mode. The KL
    schedule (:func:`kl_schedule` with ``capacity`` and ``kl_warmup_epochs``) starts here, at epoch 0.
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
        for epoch in range(epochs):
            total = x.new_zeros(())
            order = torch.randperm(x.shape[0], generator=generator, device=x.device)
            for step, batch in enumerate(x[order].split(sizes)):
                weight, target = kl_schedule(
                    epoch + step / len(sizes), beta=beta, capacity=capacity, warmup_epochs=kl_warmup_epochs
                )
                concepts, decoded, extras = conceptizer(batch)
                value = concept_loss(
                    batch,
                    NetworkOutput(batch, None, concepts, decoded, extras),
                    beta=weight,
                    sparsity_reg=sparsity_reg,
                    capacity=target,
                    reconstruction=reconstruction,
                )
                flat.zero_grad()
                value.backward()
                optimizer.step(learning_rate)
                total += value.detach()
            losses.append(total.item() / len(sizes))
    return losses
