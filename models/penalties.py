"""Explanation penalties: training terms that stop a network from relying on a set ``S`` of input columns.

CDEP (Rieger et al. 2020) adds to the task loss a penalty on the contextual-decomposition (CD) importance of
features the model must not use. For the project's networks this needs care, because an explanation-based
penalty can be met by changing the *explanation* rather than the *behaviour*: a hypernetwork can move the effect
of ``S`` into the other generated weights and the bias (its own explanation then says "S unused" while the
predictions still follow ``S``), and CDEP's softmax share can be driven to zero by inflating the irrelevant stream
of every class by one constant. Every penalty here is therefore shipped with a behavioural measurement of
reliance (``xai.reliance``), and the experiments report which penalties are gamed.

The penalties (``x``: a batch ``(B, D)``; ``m``: the reference point, the training mean of every input column;
``z``: the logits ``(B, C)``; ``z̃``: the *logit differences*, ``z`` itself when ``C = 1`` (a binary task's one
logit is already the log-odds; a regression's prediction), else the centred logits ``z − mean_c z``, which do
not change when a constant is added to every logit; every term is a mean over the batch):

* ``cdep``: the paper's code. ``CD(S)`` is the CD of the logits with the relevant stream ``x_S − m_S`` (zero
  elsewhere): ``rel`` is what ``S`` contributes on its own, ``irrel`` the rest. The term is the mean over rows
  and classes of ``softmax([rel_c, irrel_c])_0 = sigmoid(rel_c − irrel_c)``. Kept for fidelity to the paper;
  it is gameable (a large common ``irrel`` makes it vanish without changing any prediction).
* ``cd_logit``: ``mean |rel(S)|`` of the CD of the logit differences ``z̃`` (the network's output layer centred
  across classes, bias included), so adding a constant to every logit changes nothing. It still measures ``S``
  *alone*: the network can move the effect of ``S`` into its interactions with the other features.
* ``cd_strict``: the allowed features are the relevant stream (the input ``x`` with ``x_S`` set to ``m_S``), and
  the irrelevant stream of ``z̃``, which holds ``S`` alone and every interaction that involves ``S``, is
  penalised: ``mean |irrel|``. A network that ignores ``S`` has ``irrel = 0`` exactly.
* ``weights``: INN's and SENN's own explanation of ``S``, ``mean_{b,c} Σ_{j∈S} |W_jc(x)·(x_j − m_j)|`` (the
  issue's ``|W_S(x)·x_S|`` relative to the project's reference). Cheap, and shown to be gameable.
* ``counterfactual``: ``mean_{b,c} |z̃(x') − z̃(x)|`` where ``x'`` is ``x`` with ``x_S`` replaced by the ``S``
  columns of a random training row (a draw from the training marginal of ``S``, one per row and step).
* ``rrr``: "Right for the right reasons" (Ross et al. 2017): ``mean_b Σ_{j∈S} (∂/∂x_j Σ_k log p_k(x))²``
  (regression: the gradient of the prediction). Local, so it misses the jump of a binary attribute.

Training mode. CDEP's public code calls ``model.eval()`` inside its CD and never switches back, so dropout and
batch norm silently run in evaluation mode for the rest of the epoch. Nothing here changes a module's mode:

* the CD penalties run ``models.decomposition``'s per-layer rules on the live network (differentiable, in the network's
  dtype); those rules read batch norm as the affine map of its *running* statistics and dropout as the identity,
  i.e. they decompose the network as it predicts, without calling ``eval()``. Early in training the running
  statistics lag the batch statistics; the decomposition is then of the network as it would predict at that step.
* ``counterfactual`` and ``rrr`` need extra forward passes in training mode; they run through
  ``torch.func.functional_call`` on *copies* of the buffers (batch norm's running statistics are not updated by
  them) and under one forked RNG state (the two passes of ``counterfactual`` share their dropout masks, so the
  change of the output is the change of ``x_S``, not of dropout; the training's own RNG stream is untouched).

A penalty is a function ``(network, x, output, context) -> scalar`` (:data:`PENALTY_FUNCTIONS`);
:func:`build_penalty` binds one to a network and its training data (:class:`ExplanationPenalty`), which is what
the estimators' loss hook adds, times ``penalty_strength`` (``models.estimators``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models.cnn import CNNNetwork
from models.networks import INNNetwork, NetworkOutput, TabResNetNetwork
from models.senn import MLPParameterizer, ResNetParameterizer, SENNNetwork

Penalty = Literal["cdep", "cd_logit", "cd_strict", "weights", "counterfactual", "rrr"]
PENALTIES: tuple[Penalty, ...] = ("cdep", "cd_logit", "cd_strict", "weights", "counterfactual", "rrr")
Objective = Literal["binary", "multiclass", "regression"]
#: The penalties computed by contextual decomposition.
CD_PENALTIES: tuple[Penalty, ...] = ("cdep", "cd_logit", "cd_strict")


class PenaltyError(ValueError):
    """A penalty that the network cannot have (e.g. ``weights`` for a network that generates no weights)."""


@dataclass(frozen=True)
class PenaltyContext:
    """What a penalty needs besides the batch: the penalised columns, the reference point and the training rows.

    Attributes:
        columns: ``(D,)`` bool, the input columns of ``S``.
        reference: ``(D,)`` the reference point ``m`` (the training mean of every input column).
        pool: ``(M, D)`` the training rows; ``counterfactual`` draws ``x_S`` from them.
        generator: seeds those draws.
        objective: ``binary``, ``multiclass`` or ``regression`` (``rrr`` differentiates the log-likelihoods).
    """

    columns: torch.Tensor
    reference: torch.Tensor
    pool: torch.Tensor
    generator: torch.Generator
    objective: Objective


#: A penalty: ``(network, x (B, D), the network's output on x, context) -> scalar``.
PenaltyFunction = Callable[[nn.Module, torch.Tensor, NetworkOutput, PenaltyContext], torch.Tensor]


# ----------------------------------------------------------------------------------------------------------
# Contextual decomposition of the logits (differentiable, on the live network)


def logit_differences(logits: torch.Tensor) -> torch.Tensor:
    """``z`` when there is one output, else ``z − mean_c z`` (invariant to adding a constant to every logit).

    Shape:
        ``(..., C)`` -> ``(..., C)``
    """
    return logits if logits.shape[-1] == 1 else logits - logits.mean(-1, keepdim=True)


def _output_layer(
    layer: nn.Linear, rel: torch.Tensor, total: torch.Tensor, *, n_outputs: int, centred: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """CD through a network's last linear layer, optionally centred across the ``n_outputs`` classes.

    The layer's ``R · C`` outputs are ``R`` rows of ``C`` classes (``R = 1``: logits; ``R = D + 1``: generated
    weights). Centring is linear, so it is folded into the layer (``W ← P W``, ``b ← P b`` with ``P = I − 11ᵀ/C``
    per row) before the bias is shared out: a constant added to every class's bias then cancels exactly.
    """
    from models.decomposition import share_bias

    weight, bias = layer.weight, layer.bias
    if centred and n_outputs > 1:
        rows = weight.view(-1, n_outputs, weight.shape[-1])
        weight = (rows - rows.mean(1, keepdim=True)).reshape(weight.shape)
        if bias is not None:
            grouped = bias.view(-1, n_outputs)
            bias = (grouped - grouped.mean(1, keepdim=True)).reshape(bias.shape)
    return share_bias(F.linear(rel, weight), F.linear(total, weight), bias)


def _body_and_head(network: nn.Module) -> tuple[nn.Module, nn.Linear, bool]:
    """The module before the output layer, the output layer, and whether the output layer generates a per-example
    linear model (INN, SENN with identity concepts) rather than the logits (TabResNet, the CNN)."""
    if isinstance(network, TabResNetNetwork):
        return network.backbone, network.head, False
    if isinstance(network, CNNNetwork):
        return network.body, network.head, False
    if isinstance(network, INNNetwork):
        return network.backbone, network.head, True
    if isinstance(network, SENNNetwork):
        parameterizer = network.parameterizer
        if isinstance(parameterizer, ResNetParameterizer):
            return parameterizer.backbone, parameterizer.head, True
        if isinstance(parameterizer, MLPParameterizer):
            return parameterizer.layers[:-1], parameterizer.layers[-1], True
    raise PenaltyError(
        f"no contextual decomposition of {type(network).__name__} for a penalty (TabResNet, INN, SENN with "
        "identity concepts and the CNN have one)"
    )


def decompose_logits(
    network: nn.Module, rel: torch.Tensor, total: torch.Tensor, *, centred: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """The CD of a network's logits (or logit differences) for a decomposed input, differentiably.

    Uses ``models.decomposition``'s rules (relevant first) up to the output layer, then the output layer centred across
    classes when ``centred`` (:func:`logit_differences`), then INN's product for networks that generate weights.
    The network's mode is not changed: batch norm is read by its running statistics, dropout as the identity.

    Args:
        network: a TabResNet, INN, SENN (identity concepts) or CNN network.
        rel: the relevant part of the input ``(B, G, D)``.
        total: the input ``(B, 1, D)``.
        centred: decompose ``z̃`` (logit differences) instead of the logits.

    Shape:
        -> relevant ``(B, G, C)`` and total ``(B, 1, C)`` (the irrelevant part is ``total − relevant``)
    """
    from models.decomposition import cd_inn_product, cd_module

    body, head, generates = _body_and_head(network)
    n_outputs = network.n_outputs
    hidden = cd_module(body, rel, total)
    out = _output_layer(head, *hidden, n_outputs=n_outputs, centred=centred)
    if not generates:
        return out
    shape = (rel.shape[-1] + 1, n_outputs)
    weights_rel, weights_total = (part.reshape(*part.shape[:-1], *shape) for part in out)
    return cd_inn_product(rel, total, weights_rel, weights_total)


def _alone(x: torch.Tensor, context: PenaltyContext) -> tuple[torch.Tensor, torch.Tensor]:
    """The input split with ``S`` relevant: ``rel = x_S − m_S`` on ``S``, 0 elsewhere; ``total = x``."""
    rows = x.unsqueeze(1)
    rel = torch.where(context.columns, rows - context.reference, torch.zeros((), dtype=x.dtype, device=x.device))
    return rel, rows


# ----------------------------------------------------------------------------------------------------------
# The penalties


def cdep_penalty(network: nn.Module, x: torch.Tensor, output: NetworkOutput, context: PenaltyContext) -> torch.Tensor:
    """CDEP's softmax share ``mean_{b,c} sigmoid(rel_c − irrel_c)`` of ``S`` alone, on the raw logits."""
    rel, total = decompose_logits(network, *_alone(x, context), centred=False)
    return torch.sigmoid(rel - (total - rel)).mean()


def cd_logit_penalty(
    network: nn.Module, x: torch.Tensor, output: NetworkOutput, context: PenaltyContext
) -> torch.Tensor:
    """``mean |rel(S)|`` of the CD of the logit differences (shift-invariant)."""
    rel, _ = decompose_logits(network, *_alone(x, context), centred=True)
    return rel.abs().mean()


def cd_strict_penalty(
    network: nn.Module, x: torch.Tensor, output: NetworkOutput, context: PenaltyContext
) -> torch.Tensor:
    """``mean |irrel|`` of the logit differences with the allowed features relevant (``x`` with ``x_S := m_S``)."""
    rows = x.unsqueeze(1)
    allowed = torch.where(context.columns, context.reference.to(x.dtype), rows)
    rel, total = decompose_logits(network, allowed, rows, centred=True)
    return (total - rel).abs().mean()


def weights_penalty(
    network: nn.Module, x: torch.Tensor, output: NetworkOutput, context: PenaltyContext
) -> torch.Tensor:
    """The network's own explanation of ``S``: ``mean_{b,c} Σ_{j∈S} |W_jc(x)·(x_j − m_j)|``."""
    weights = output.weights
    if weights is None or weights.shape[1] != x.shape[1] + 1:
        raise PenaltyError(
            f"the weights penalty needs a network that generates a linear model over its inputs (INN, SENN with "
            f"identity concepts), not {type(network).__name__}"
        )
    contributions = weights[:, : x.shape[1], :] * (x - context.reference).unsqueeze(-1)
    return contributions[:, context.columns, :].abs().sum(1).mean()


def _side_logits(network: nn.Module, batches: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The network's logits on each batch in training mode, as extra passes that change nothing in the network.

    Each pass gets fresh copies of the buffers (batch norm's running statistics stay as they are) and the same
    RNG state (equal dropout masks for batches of one shape); the caller's RNG stream is restored afterwards.
    """
    parameters = dict(network.named_parameters())
    device = next(iter(parameters.values())).device
    devices = (
        [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    )
    outputs = []
    with torch.random.fork_rng(devices=devices):
        state = torch.get_rng_state()
        cuda_state = torch.cuda.get_rng_state(device) if devices else None
        for batch in batches:
            torch.set_rng_state(state)
            if cuda_state is not None:
                torch.cuda.set_rng_state(cuda_state, device)
            buffers = {name: buffer.clone() for name, buffer in network.named_buffers()}
            result = torch.func.functional_call(network, {**parameters, **buffers}, (batch,))
            outputs.append(result.logits)
    return outputs


def counterfactual_penalty(
    network: nn.Module, x: torch.Tensor, output: NetworkOutput, context: PenaltyContext
) -> torch.Tensor:
    """``mean_{b,c} |z̃(x') − z̃(x)|`` with ``x'_S`` drawn from the training rows (one draw per row)."""
    donors = torch.randint(
        0, context.pool.shape[0], (x.shape[0],), generator=context.generator, device=context.generator.device
    ).to(context.pool.device)
    moved = torch.where(context.columns, context.pool[donors].to(x.dtype), x)
    base, changed = _side_logits(network, [x, moved])
    return (logit_differences(changed) - logit_differences(base)).abs().mean()


def rrr_penalty(network: nn.Module, x: torch.Tensor, output: NetworkOutput, context: PenaltyContext) -> torch.Tensor:
    """Right for the right reasons: ``mean_b Σ_{j∈S} (∂/∂x_j Σ_k log p_k)²`` (regression: ∂ prediction)."""
    inputs = x.detach().requires_grad_(True)
    (logits,) = _side_logits(network, [inputs])
    if context.objective == "binary":
        score = F.logsigmoid(logits) + F.logsigmoid(-logits)
    elif context.objective == "multiclass":
        score = F.log_softmax(logits, dim=-1)
    else:
        score = logits
    (gradient,) = torch.autograd.grad(score.sum(), inputs, create_graph=True)
    return gradient[:, context.columns].square().sum(1).mean()


PENALTY_FUNCTIONS: dict[Penalty, PenaltyFunction] = {
    "cdep": cdep_penalty,
    "cd_logit": cd_logit_penalty,
    "cd_strict": cd_strict_penalty,
    "weights": weights_penalty,
    "counterfactual": counterfactual_penalty,
    "rrr": rrr_penalty,
}


# ----------------------------------------------------------------------------------------------------------
# Binding a penalty to a network


def check_penalty(penalty: str, network: nn.Module) -> None:
    """Raise :class:`PenaltyError` unless ``network`` can have ``penalty`` (checked before any training).

    CD penalties need a CD of the network (TabResNet, INN, SENN with identity concepts, the CNN); ``weights`` needs
    a network that generates a linear model over its inputs (INN, SENN with identity concepts); ``counterfactual``
    and ``rrr`` work for any network.
    """
    if penalty not in PENALTIES:
        raise PenaltyError(f"penalty must be one of {PENALTIES}, got {penalty!r}")
    if penalty in CD_PENALTIES:
        _body_and_head(network)
    if penalty == "weights" and not isinstance(network, INNNetwork | SENNNetwork):
        raise PenaltyError(
            f"the weights penalty needs a network that generates a linear model over its inputs (INN, SENN with "
            f"identity concepts), not {type(network).__name__}"
        )


class ExplanationPenalty:
    """A penalty bound to one network's training: ``term(network, x, output) -> scalar`` (the loss adds λ·term).

    Args:
        penalty: one of :data:`PENALTIES`.
        context: the penalised columns, reference and training rows (:class:`PenaltyContext`).
    """

    def __init__(self, penalty: Penalty, context: PenaltyContext) -> None:
        self.penalty = penalty
        self.function = PENALTY_FUNCTIONS[penalty]
        self.context = context

    def __call__(self, network: nn.Module, x: torch.Tensor, output: NetworkOutput) -> torch.Tensor:
        return self.function(network, x, output, self.context)


def build_penalty(
    penalty: Penalty,
    network: nn.Module,
    *,
    columns: Sequence[int] | np.ndarray,
    pool: torch.Tensor,
    reference: np.ndarray | torch.Tensor,
    objective: Objective,
    seed: int = 0,
) -> ExplanationPenalty:
    """Check ``penalty`` against ``network`` and bind it to the training data.

    Args:
        penalty: one of :data:`PENALTIES`.
        network: the network being trained (its device and dtype are the penalty's).
        columns: the input columns of ``S`` (indices).
        pool: the training rows ``(M, D)``, on the network's device.
        reference: the reference point ``m`` ``(D,)`` (the training mean).
        objective: the task.
        seed: seeds the counterfactual draws.

    Raises:
        PenaltyError: an unknown penalty, one the network cannot have, or columns outside ``0..D-1``.
    """
    check_penalty(penalty, network)
    parameter = next(network.parameters())
    n_inputs = pool.shape[1]
    index = np.asarray(columns, dtype=np.int64).reshape(-1)
    if index.size == 0 or index.min() < 0 or index.max() >= n_inputs:
        raise PenaltyError(f"penalised columns must be non-empty indices into the {n_inputs} input columns")
    mask = torch.zeros(n_inputs, dtype=torch.bool, device=parameter.device)
    mask[torch.as_tensor(index, device=parameter.device)] = True
    generator = torch.Generator(device=parameter.device)
    generator.manual_seed(seed)
    context = PenaltyContext(
        columns=mask,
        reference=torch.as_tensor(np.asarray(reference), dtype=parameter.dtype, device=parameter.device),
        pool=pool.to(device=parameter.device, dtype=parameter.dtype),
        generator=generator,
        objective=objective,
    )
    return ExplanationPenalty(penalty, context)


# ----------------------------------------------------------------------------------------------------------
# What the penalised quantities say about a fitted model


#: The measures of :func:`penalty_measures`, by the penalty whose term each one is.
MEASURES: tuple[Penalty, ...] = ("cdep", "cd_logit", "cd_strict", "weights", "rrr")


def penalty_measures(
    network: nn.Module,
    x: np.ndarray | torch.Tensor,
    columns: Sequence[int] | np.ndarray,
    reference: np.ndarray | torch.Tensor,
    *,
    objective: Objective = "binary",
) -> dict[str, float]:
    """Each explanation penalty's own quantity on the rows ``x``, for the network as it predicts.

    This is what a penalty *claims* about a fitted model's use of ``S`` (the counterfactual penalty's quantity is
    the behavioural ``mean |Δ logit|`` of ``xai.reliance``, measured there): ``cdep`` (the softmax share),
    ``cd_logit`` (``|CD score of S|`` on logit differences), ``cd_strict`` (the irrelevant stream with the allowed
    features relevant), ``weights`` (``|W_S(x)·(x_S − m_S)|``; None for a network without generated weights) and
    ``rrr`` (squared input gradients of ``S``). A snapshot ensemble is decomposed as the mean of its members'
    decompositions (its logits are the mean of theirs); ``weights`` and ``rrr`` use its own forward pass. The
    network's mode is not changed (fitted ensembles are in evaluation mode).

    Shape:
        x ``(N, D)`` -> a float (or None) per name of :data:`MEASURES`
    """
    from models.networks import SnapshotEnsemble

    members = list(network.members) if isinstance(network, SnapshotEnsemble) else [network]
    parameter = next(network.parameters())
    rows = torch.as_tensor(np.asarray(x), dtype=parameter.dtype, device=parameter.device)
    mask = torch.zeros(rows.shape[1], dtype=torch.bool, device=parameter.device)
    mask[torch.as_tensor(np.asarray(columns, dtype=np.int64), device=parameter.device)] = True
    point = torch.as_tensor(np.asarray(reference), dtype=parameter.dtype, device=parameter.device)
    context = PenaltyContext(mask, point, rows[:1], torch.Generator(device=parameter.device), objective)

    def mean_decomposition(rel: torch.Tensor, total: torch.Tensor, centred: bool) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [decompose_logits(member, rel, total, centred=centred) for member in members]
        return torch.stack([p[0] for p in parts]).mean(0), torch.stack([p[1] for p in parts]).mean(0)

    with torch.no_grad():
        rel, total = mean_decomposition(*_alone(rows, context), centred=False)
        measures: dict[str, float | None] = {"cdep": float(torch.sigmoid(rel - (total - rel)).mean())}
        rel, _ = mean_decomposition(*_alone(rows, context), centred=True)
        measures["cd_logit"] = float(rel.abs().mean())
        allowed = torch.where(mask, point, rows.unsqueeze(1))
        rel, total = mean_decomposition(allowed, rows.unsqueeze(1), centred=True)
        measures["cd_strict"] = float((total - rel).abs().mean())
        output = network(rows)
        measures["weights"] = (
            float(weights_penalty(members[0], rows, output, context))
            if output.weights is not None and output.weights.shape[1] == rows.shape[1] + 1
            else None
        )
    inputs = rows.detach().requires_grad_(True)
    logits = network(inputs).logits
    if objective == "binary":
        score = F.logsigmoid(logits) + F.logsigmoid(-logits)
    elif objective == "multiclass":
        score = F.log_softmax(logits, dim=-1)
    else:
        score = logits
    (gradient,) = torch.autograd.grad(score.sum(), inputs)
    measures["rrr"] = float(gradient[:, mask].square().sum(1).mean())
    return measures
