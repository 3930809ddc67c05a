"""Contextual decomposition (CD) of the project's networks: what a group of features contributes on its own.

CD (Murdoch et al. 2018; Singh et al. 2019) splits the input of a network into a *relevant* part, the columns of
a feature group ``S``, and an *irrelevant* part, everything else, and carries both parts through the network as
two streams whose sum is, at every layer, the layer's true activation. At the output the relevant stream is the CD
score of ``S``; the irrelevant stream holds the rest (the other features, the interactions of ``S`` with them and
the bias not given to ``S``), so relevant + irrelevant is the logit: CD is complete for every group.

Reference point. The input split is taken relative to a point ``m`` ``(D,)``: relevant ``= x − m`` on the group's
columns and 0 elsewhere, irrelevant ``= m`` on the group's columns and ``x`` elsewhere. ``m = 0`` is classic CD; a
row whose group columns equal ``m`` gives the group a score of exactly 0.

Rules, one per layer (``rel``, ``irrel``: the streams; ``σ``: an elementwise activation):

* ``Linear`` ``Wz + b`` and eval-mode ``BatchNorm1d`` (the affine map ``a·z + c`` of its running statistics): the
  weights act on each stream, and the bias is shared out in proportion to the streams' magnitudes before it,
  ``rel' = W·rel + b·|W·rel| / (|W·rel| + |W·irrel|)``, as in the ACD paper and the ``acd`` package (which adds
  ``1e-20`` to both magnitudes; here a unit where both are exactly 0 gives its bias to ``irrel``, so an empty
  group scores exactly 0). Batch norm is shared out after its own scaling, not folded into the linear layer.
* activations (GELU, ReLU, ...), selectable with ``rule``. ``"relevant_first"`` (ACD): ``rel' = σ(rel) − σ(0)``:
  the group is evaluated alone and every interaction goes to ``irrel``. ``"shapley"`` (the two-ordering rule of
  CD for LSTMs): ``rel' = ½[(σ(rel) − σ(0)) + (σ(rel + irrel) − σ(irrel))]``, the Shapley value of the relevant
  stream in a game of two players: interactions are split half and half. ``σ(0)`` goes to ``irrel``.
* ``Dropout`` (and ``Identity``): the identity, as in evaluation mode.
* the residual sum ``branch + skip``: the streams are added.
* INN's product ``[x, 1]·W(x)`` of two decomposed factors, ``x = x_rel + x_irrel`` (the input split) and
  ``W = W_rel + W_irrel`` (CD through the hypernetwork). Of the four terms, ``x_rel·W_rel`` goes to ``rel`` and
  ``x_irrel·W_irrel`` to ``irrel``; the two cross terms ``x_rel·W_irrel + x_irrel·W_rel`` go to ``irrel`` under
  ``relevant_first`` and half to each stream under ``shapley`` (the Shapley split of a product of two players,
  ``rel' = ½(x_rel·W + x·W_rel)``). The bias row ``W_0`` multiplies the constant 1: ``W_0,rel`` goes to ``rel``,
  ``W_0,irrel`` to ``irrel``, under both rules.
* SENN with identity concepts, ``[x, 1]·θ(x)``: INN's product with the decomposed parameterizer's output.
* ``Conv2d`` (the CNN, ``models.cnn``): as ``Linear``, the kernel acts on each stream and the bias is shared by
  magnitude, per output pixel and channel (CDEP's and ACD's ``propagate_conv_linear``).
* ``MaxPool2d``: the pooling window's winner is chosen by the *total* (the true activation) and both streams are
  read at that position: ``rel' = rel[argmax total]`` (ACD's ``propagate_pooling``, CDEP's mask-and-sum). The
  network's own choice of pixel is kept, so the sum of the streams is the pooled activation exactly; the relevant
  stream is not pooled on its own (its own maximum could sit where the network never looks). The rule is the same
  under ``relevant_first`` and ``shapley``.
* ``Flatten`` and the CNN's placing of the input columns in the image (a gather with zeros for missing pixels):
  linear maps without bias, applied to each stream.
* a snapshot ensemble: the mean of its members' decompositions.

Every rule defines ``irrel' = (true output) − rel'``, so the code carries each layer as ``(rel, total)``, with
``irrel = total − rel`` implied. The total (the true activation) is the same for all groups of a row: it has
shape ``(B, 1, H)`` against ``(B, G, H)`` for ``rel``, so each layer costs one matrix product per group (not two)
and each activation of the total is evaluated once per row. The final ``total`` is the network's output computed
by the CD pass itself; the tests compare it with the network's own forward pass. Being a difference, the
irrelevant stream carries rounding noise where it is truly 0 (e.g. for the group of all features); the bias share
treats magnitudes below ``sqrt(eps)`` of the layer's scale as 0, so that noise never grows into a bias leak
(:func:`share_bias`).

Networks are composed from these rules by functions registered per module type (:func:`register_cd`); a new
network built from the same layers registers one small function (SENN with identity concepts: its parameterizer
and INN's product). :func:`cd_module` dispatches, :func:`contextual_decomposition` runs a network over many rows
and groups at once (chunked, no per-row loop) in float64. The rules live here, beside the networks, because training
uses them too (the CD penalties of ``models.penalties``); ``explainers.cd`` scores groups of original features and
explains with them.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models.cnn import CNNNetwork, ConvolutionalBody
from models.networks import INNNetwork, ResidualBackbone, ResidualBlock, SnapshotEnsemble, TabResNetNetwork
from models.senn import MLPParameterizer, ResNetParameterizer, SENNNetwork

Rule = Literal["relevant_first", "shapley"]
RULES: tuple[Rule, ...] = ("relevant_first", "shapley")
#: A decomposed tensor ``(rel, total)``: the relevant stream ``(..., G, H)`` and the true activation, broadcastable
#: to it (``(..., 1, H)``); the irrelevant stream is ``total − rel``.
Decomposed = tuple[torch.Tensor, torch.Tensor]
#: A CD function of a module type: ``(module, rel, total, *, rule) -> (rel, total)``.
CDFunction = Callable[..., Decomposed]
#: A feature group: indices into the original features or their names.
Group = Sequence[int | str]

#: (row, group) pairs per CD pass: streams of ~0.5 MB at hidden size 128 in float64 stay in the CPU caches and
#: are recycled by the allocator; much larger chunks were slower on the CPU (page faults), much smaller ones pay
#: per-operation overhead.
CD_BATCH_SIZE = 512

_CD_FUNCTIONS: dict[type[nn.Module], CDFunction] = {}


def register_cd(*module_types: type[nn.Module]) -> Callable[[CDFunction], CDFunction]:
    """Register the CD function of one or more module types (subclasses inherit it unless they register their own).

    The function has the signature ``fn(module, rel, total, *, rule) -> (rel, total)``: it maps the relevant
    stream by the module's rule and the total by the module itself.
    """

    def decorator(function: CDFunction) -> CDFunction:
        for module_type in module_types:
            _CD_FUNCTIONS[module_type] = function
        return function

    return decorator


def cd_module(
    module: nn.Module, rel: torch.Tensor, total: torch.Tensor, *, rule: Rule = "relevant_first"
) -> Decomposed:
    """Propagate a decomposed tensor through ``module`` with the CD function registered for its type.

    Shape:
        rel ``(..., G, D_in)``, total ``(..., 1, D_in)`` -> ``(..., G, D_out)``, ``(..., 1, D_out)``
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    for module_type in type(module).__mro__:
        function = _CD_FUNCTIONS.get(module_type)
        if function is not None:
            return function(module, rel, total, rule=rule)
    raise TypeError(
        f"no CD rule for {type(module).__name__}; register one with models.decomposition.register_cd({type(module).__name__})"
    )


# ----------------------------------------------------------------------------------------------- layer rules
def _like(tensor: torch.Tensor | None, reference: torch.Tensor) -> torch.Tensor | None:
    return None if tensor is None else tensor.to(dtype=reference.dtype, device=reference.device)


def share_bias(rel: torch.Tensor, total: torch.Tensor, bias: torch.Tensor | None) -> Decomposed:
    """Add ``bias`` in proportion to the streams' magnitudes ``|rel|`` and ``|total − rel|`` (both 0: to irrel).

    The irrelevant stream is a difference, ``total − rel``: where it is truly 0 (e.g. for the group of all features)
    it comes out as rounding noise, and a share computed from noise would leak bias into it, more at every layer.
    So an irrelevant magnitude below ``sqrt(eps)`` times the largest activation of the layer (over the rows passed
    together) counts as 0: 1.5e-8 in float64, far below any magnitude that changes a score.

    Shape:
        rel ``(..., G, H)``, total ``(..., 1, H)``, bias ``(H,)`` -> ``(..., G, H)``, ``(..., 1, H)``
    """
    if bias is None:
        return rel, total
    magnitude = rel.abs()
    other = torch.sub(total, rel).abs_()
    rounding = float(total.detach().abs().max()) * math.sqrt(torch.finfo(rel.dtype).eps) if total.numel() else 0.0
    # Rounding noise -> the smallest normal float rather than 0: the denominator |rel| + |irrel| is then never 0,
    # and a unit where both streams are 0 gives the relevant stream a share of 0 / tiny = 0.
    F.threshold_(other, rounding, torch.finfo(rel.dtype).tiny)
    denominator = other.add_(magnitude)
    return magnitude.mul_(bias).div_(denominator).add_(rel), total + bias


@register_cd(nn.Linear)
def cd_linear(layer: nn.Linear, rel: torch.Tensor, total: torch.Tensor, *, rule: Rule = "relevant_first") -> Decomposed:
    """``Wz + b``: the weights act on each stream, the bias is shared by magnitude (:func:`share_bias`).

    Shape:
        rel ``(..., G, D_in)``, total ``(..., 1, D_in)`` -> ``(..., G, D_out)``, ``(..., 1, D_out)``
    """
    weight = _like(layer.weight, rel)
    return share_bias(F.linear(rel, weight), F.linear(total, weight), _like(layer.bias, rel))


def _per_image(function: Callable[[torch.Tensor], torch.Tensor], tensor: torch.Tensor) -> torch.Tensor:
    """``function`` of images ``(N, C, H, W)`` applied to a stream with any leading dimensions ``(..., C, H, W)``."""
    out = function(tensor.reshape(-1, *tensor.shape[-3:]))
    return out.reshape(*tensor.shape[:-3], *out.shape[1:])


@register_cd(nn.Conv2d)
def cd_conv2d(layer: nn.Conv2d, rel: torch.Tensor, total: torch.Tensor, *, rule: Rule = "relevant_first") -> Decomposed:
    """A 2-D convolution: the kernel acts on each stream, the bias is shared by magnitude (:func:`share_bias`).

    Shape:
        rel ``(..., G, C_in, H, W)``, total ``(..., 1, C_in, H, W)`` -> ``(..., G, C_out, H', W')``,
        ``(..., 1, C_out, H', W')``
    """
    if layer.padding_mode != "zeros":
        raise ValueError(f"CD of a convolution needs zero padding, got padding_mode={layer.padding_mode!r}")
    weight = _like(layer.weight, rel)

    def convolve(images: torch.Tensor) -> torch.Tensor:
        return F.conv2d(images, weight, None, layer.stride, layer.padding, layer.dilation, layer.groups)

    bias = _like(layer.bias, rel)
    return share_bias(
        _per_image(convolve, rel), _per_image(convolve, total), None if bias is None else bias[:, None, None]
    )


@register_cd(nn.MaxPool2d)
def cd_maxpool2d(
    pool: nn.MaxPool2d, rel: torch.Tensor, total: torch.Tensor, *, rule: Rule = "relevant_first"
) -> Decomposed:
    """Max-pooling: each window's winner is the argmax of the *total*, and the relevant stream is read there.

    Both rules alike (ACD's ``propagate_pooling``): the sum of the streams is the pooled activation exactly.

    Shape:
        rel ``(..., G, C, H, W)``, total ``(..., 1, C, H, W)`` -> ``(..., G, C, H', W')``, ``(..., 1, C, H', W')``
    """
    images = total.reshape(-1, *total.shape[-3:])
    pooled, winners = F.max_pool2d(
        images, pool.kernel_size, pool.stride, pool.padding, pool.dilation, ceil_mode=pool.ceil_mode,
        return_indices=True,
    )  # fmt: skip
    channels, height, width = pooled.shape[1:]
    leading = torch.broadcast_shapes(rel.shape[:-3], total.shape[:-3])
    # The winners' flat positions in each channel's H·W pixels, one set per row, shared by the row's groups.
    index = winners.reshape(*total.shape[:-3], channels, height * width).expand(*leading, channels, height * width)
    chosen = rel.expand(*leading, *rel.shape[-3:]).flatten(-2).gather(-1, index)
    return chosen.unflatten(-1, (height, width)), pooled.reshape(*total.shape[:-3], channels, height, width)


@register_cd(nn.Flatten)
def cd_flatten(
    flatten: nn.Flatten, rel: torch.Tensor, total: torch.Tensor, *, rule: Rule = "relevant_first"
) -> Decomposed:
    """``Flatten`` on each stream. The module counts dimensions from one batch dimension; a stream has two,
    ``(rows, groups)`` (as :func:`split_input` and the penalties make them), so its dimensions shift by one.

    Shape:
        rel ``(B, G, C, H, W)``, total ``(B, 1, C, H, W)`` -> ``(B, G, C·H·W)``, ``(B, 1, C·H·W)`` (``start_dim=1``)
    """
    if flatten.start_dim == 0 or flatten.start_dim < -rel.ndim + 2:
        raise ValueError("CD keeps the rows and groups apart: a Flatten must not flatten the batch dimension")
    start = flatten.start_dim + 1 if flatten.start_dim > 0 else flatten.start_dim
    end = flatten.end_dim + 1 if flatten.end_dim > 0 else flatten.end_dim
    return rel.flatten(start, end), total.flatten(start, end)


@register_cd(nn.BatchNorm1d)
def cd_batchnorm(
    norm: nn.BatchNorm1d, rel: torch.Tensor, total: torch.Tensor, *, rule: Rule = "relevant_first"
) -> Decomposed:
    """Batch norm in evaluation mode, ``a·z + c`` from the running statistics; ``c`` is shared by magnitude.

    The running statistics are used whatever ``norm.training`` says: CD explains the network as it predicts.

    Shape:
        rel ``(..., G, H)``, total ``(..., 1, H)`` -> the same shapes
    """
    if norm.running_mean is None or norm.running_var is None:
        raise ValueError("CD needs a batch norm with running statistics (track_running_stats=True)")
    scale = torch.rsqrt(_like(norm.running_var, rel) + norm.eps)
    shift = -_like(norm.running_mean, rel) * scale
    if norm.weight is not None:
        scale = scale * _like(norm.weight, rel)
        shift = shift * _like(norm.weight, rel)
    if norm.bias is not None:
        shift = shift + _like(norm.bias, rel)
    return share_bias(rel * scale, total * scale, shift)


def cd_elementwise(
    function: Callable[[torch.Tensor], torch.Tensor],
    rel: torch.Tensor,
    total: torch.Tensor,
    *,
    rule: Rule = "relevant_first",
) -> Decomposed:
    """An elementwise activation ``σ`` by the ``relevant_first`` (ACD) or the two-ordering ``shapley`` rule.

    ``relevant_first``: ``rel' = σ(rel) − σ(0)``. ``shapley``: ``rel' = ½[(σ(rel) − σ(0)) + (σ(total) −
    σ(total − rel))]``. Both: ``total' = σ(total)`` (so ``irrel' = σ(total) − rel'`` holds ``σ(0)``).

    Shape:
        rel ``(..., G, H)``, total ``(..., 1, H)`` -> the same shapes
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    new_total = function(total)
    alone = function(rel)
    at_zero = float(function(torch.zeros((), dtype=rel.dtype, device=rel.device)))
    if at_zero != 0.0:  # GELU, ReLU, tanh: σ(0) = 0, nothing to take off
        alone = alone - at_zero
    if rule == "relevant_first":
        return alone, new_total
    return 0.5 * (alone + (new_total - function(total - rel))), new_total


def _activation(function: Callable[[nn.Module], Callable[[torch.Tensor], torch.Tensor]]) -> CDFunction:
    def propagate(module: nn.Module, rel: torch.Tensor, total: torch.Tensor, *, rule: Rule = "relevant_first"):
        return cd_elementwise(function(module), rel, total, rule=rule)

    return propagate


# Functional forms, so that an in-place module (ReLU(inplace=True)) never overwrites a stream.
register_cd(nn.GELU)(_activation(lambda module: lambda t: F.gelu(t, approximate=module.approximate)))
register_cd(nn.ReLU)(_activation(lambda module: torch.relu))
register_cd(nn.LeakyReLU)(_activation(lambda module: lambda t: F.leaky_relu(t, module.negative_slope)))
register_cd(nn.Tanh)(_activation(lambda module: torch.tanh))
register_cd(nn.Sigmoid)(_activation(lambda module: torch.sigmoid))


@register_cd(nn.Dropout, nn.Identity)
def cd_identity(
    module: nn.Module, rel: torch.Tensor, total: torch.Tensor, *, rule: Rule = "relevant_first"
) -> Decomposed:
    """Dropout (evaluation mode) and the identity: both streams pass unchanged."""
    return rel, total


def cd_add(first: Decomposed, second: Decomposed) -> Decomposed:
    """A sum of two decomposed tensors (the residual connection): the streams are added."""
    return first[0] + second[0], first[1] + second[1]


def _dot(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``Σ_d x_d·W_dc`` with broadcasting leading dimensions: ``(..., D)``, ``(..., D, C)`` -> ``(..., C)``."""
    return (x.unsqueeze(-1) * weights).sum(-2)


def cd_inn_product(
    x_rel: torch.Tensor,
    x_total: torch.Tensor,
    weights_rel: torch.Tensor,
    weights_total: torch.Tensor,
    *,
    rule: Rule = "relevant_first",
) -> Decomposed:
    """INN's ``[x, 1]·W`` of a decomposed input and decomposed generated weights (last row of ``W``: the bias).

    ``relevant_first``: ``rel = x_rel·W_rel`` (all cross terms to irrel). ``shapley``: ``rel = x_rel·W_rel +
    ½(x_rel·W_irrel + x_irrel·W_rel) = ½(x_rel·W + x·W_rel)``. Both add the bias row's ``W_0,rel``.

    Shape:
        x_rel ``(..., G, D)``, x_total ``(..., 1, D)``, weights_rel ``(..., G, D + 1, C)``, weights_total
        ``(..., 1, D + 1, C)`` -> ``(..., G, C)``, ``(..., 1, C)``
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    n_inputs = x_rel.shape[-1]
    w_rel, w_total = weights_rel[..., :n_inputs, :], weights_total[..., :n_inputs, :]
    alone = rule == "relevant_first"
    rel = _dot(x_rel, w_rel) if alone else 0.5 * (_dot(x_rel, w_total) + _dot(x_total, w_rel))
    return rel + weights_rel[..., n_inputs, :], _dot(x_total, w_total) + weights_total[..., n_inputs, :]


# ------------------------------------------------------------------------------------- network compositions
@register_cd(nn.Sequential)
def cd_sequential(
    sequence: nn.Sequential, rel: torch.Tensor, total: torch.Tensor, *, rule: Rule = "relevant_first"
) -> Decomposed:
    """The modules in order (e.g. a plain Linear/ReLU MLP, or the backbone's stack of residual blocks)."""
    for module in sequence:
        rel, total = cd_module(module, rel, total, rule=rule)
    return rel, total


@register_cd(ResidualBlock)
def cd_residual_block(
    block: ResidualBlock, rel: torch.Tensor, total: torch.Tensor, *, rule: Rule = "relevant_first"
) -> Decomposed:
    """``GELU(x + BN(Linear(Dropout(GELU(BN(Linear(x)))))))``, layer by layer."""
    out = cd_module(block.linear_first, rel, total, rule=rule)
    out = cd_module(block.norm_first, *out, rule=rule)
    out = cd_elementwise(F.gelu, *out, rule=rule)
    out = cd_module(block.dropout, *out, rule=rule)
    out = cd_module(block.linear_second, *out, rule=rule)
    out = cd_module(block.norm_second, *out, rule=rule)
    return cd_elementwise(F.gelu, *cd_add(out, (rel, total)), rule=rule)


@register_cd(ResidualBackbone)
def cd_backbone(
    backbone: ResidualBackbone, rel: torch.Tensor, total: torch.Tensor, *, rule: Rule = "relevant_first"
) -> Decomposed:
    """``Linear -> BN -> GELU`` and the residual blocks."""
    out = cd_module(backbone.input_layer, rel, total, rule=rule)
    out = cd_module(backbone.input_norm, *out, rule=rule)
    out = cd_elementwise(F.gelu, *out, rule=rule)
    return cd_module(backbone.blocks, *out, rule=rule)


@register_cd(TabResNetNetwork, ResNetParameterizer)
def cd_tabresnet(
    network: TabResNetNetwork | ResNetParameterizer,
    rel: torch.Tensor,
    total: torch.Tensor,
    *,
    rule: Rule = "relevant_first",
) -> Decomposed:
    """The backbone and the linear head (TabResNet; SENN's residual parameterizer).

    Shape:
        rel ``(..., G, D)``, total ``(..., 1, D)`` -> ``(..., G, C)``, ``(..., 1, C)``
    """
    return cd_module(network.head, *cd_module(network.backbone, rel, total, rule=rule), rule=rule)


def _generated_linear_model(
    flat: Decomposed, inputs: Decomposed, n_outputs: int, *, rule: Rule = "relevant_first"
) -> Decomposed:
    """Decomposed flat generated weights ``(..., (D + 1)·C)`` viewed as ``(..., D + 1, C)`` and applied to the
    decomposed input (:func:`cd_inn_product`)."""
    shape = (inputs[0].shape[-1] + 1, n_outputs)
    weights = tuple(part.reshape(*part.shape[:-1], *shape) for part in flat)
    return cd_inn_product(inputs[0], inputs[1], weights[0], weights[1], rule=rule)


@register_cd(INNNetwork)
def cd_inn(network: INNNetwork, rel: torch.Tensor, total: torch.Tensor, *, rule: Rule = "relevant_first") -> Decomposed:
    """The hypernetwork's decomposed weights ``W(x)`` times the decomposed input (:func:`cd_inn_product`).

    Shape:
        rel ``(..., G, D)``, total ``(..., 1, D)`` -> ``(..., G, C)``, ``(..., 1, C)``
    """
    flat = cd_module(network.head, *cd_module(network.backbone, rel, total, rule=rule), rule=rule)
    return _generated_linear_model(flat, (rel, total), network.n_outputs, rule=rule)


@register_cd(MLPParameterizer)
def cd_mlp_parameterizer(
    network: MLPParameterizer, rel: torch.Tensor, total: torch.Tensor, *, rule: Rule = "relevant_first"
) -> Decomposed:
    """SENN's tanh MLP parameterizer: its layers in order."""
    return cd_module(network.layers, rel, total, rule=rule)


@register_cd(SENNNetwork)
def cd_senn(
    network: SENNNetwork, rel: torch.Tensor, total: torch.Tensor, *, rule: Rule = "relevant_first"
) -> Decomposed:
    """SENN with identity concepts, ``[x, 1]·θ(x)``: INN's product of the decomposed input and relevances.

    Shape:
        rel ``(..., G, D)``, total ``(..., 1, D)`` -> ``(..., G, C)``, ``(..., 1, C)``
    """
    flat = cd_module(network.parameterizer, rel, total, rule=rule)
    return _generated_linear_model(flat, (rel, total), network.n_outputs, rule=rule)


@register_cd(ConvolutionalBody)
def cd_convolutional_body(
    body: ConvolutionalBody, rel: torch.Tensor, total: torch.Tensor, *, rule: Rule = "relevant_first"
) -> Decomposed:
    """The CNN's body: the columns placed in the image (missing pixels 0 in both streams), the convolution blocks
    (Conv2d, ReLU, MaxPool2d), ``Flatten``, the dense layer, ReLU and dropout.

    Shape:
        rel ``(B, G, D)``, total ``(B, 1, D)`` -> ``(B, G, H)``, ``(B, 1, H)``
    """
    out = cd_module(body.convolutions, body.image(rel), body.image(total), rule=rule)
    for module in (body.flatten, body.dense, body.activation, body.dropout):
        out = cd_module(module, *out, rule=rule)
    return out


@register_cd(CNNNetwork)
def cd_cnn(network: CNNNetwork, rel: torch.Tensor, total: torch.Tensor, *, rule: Rule = "relevant_first") -> Decomposed:
    """The CNN: its body and the linear head.

    Shape:
        rel ``(B, G, D)``, total ``(B, 1, D)`` -> ``(B, G, C)``, ``(B, 1, C)``
    """
    return cd_module(network.head, *cd_module(network.body, rel, total, rule=rule), rule=rule)


@register_cd(SnapshotEnsemble)
def cd_ensemble(
    ensemble: SnapshotEnsemble, rel: torch.Tensor, total: torch.Tensor, *, rule: Rule = "relevant_first"
) -> Decomposed:
    """The mean of the members' decompositions (the ensemble's logits are the mean of theirs)."""
    parts = [cd_module(member, rel, total, rule=rule) for member in ensemble.members]
    return torch.stack([part[0] for part in parts]).mean(0), torch.stack([part[1] for part in parts]).mean(0)


# ------------------------------------------------------------------------------------------------- driver
def network_logits(output) -> torch.Tensor:
    """The logits of a network's output: a ``NetworkOutput``, a ``(logits, ...)`` tuple or a plain tensor."""
    if hasattr(output, "logits"):
        return output.logits
    if isinstance(output, tuple | list):
        return output[0]
    return output


def split_input(x: torch.Tensor, masks: torch.Tensor, reference: torch.Tensor | None = None) -> Decomposed:
    """The decomposed input: ``rel = x − m`` on a group's columns and 0 elsewhere; ``total = x`` (so irrel is ``m``
    on the group's columns and ``x`` elsewhere).

    Args:
        x: rows ``(B, D)``.
        masks: the groups' columns, boolean, shared by all rows ``(G, D)`` or per row ``(B, G, D)``.
        reference: the point ``m`` ``(D,)``; ``None`` is the origin (classic CD).

    Shape:
        -> rel ``(B, G, D)``, total ``(B, 1, D)``
    """
    masks = masks.to(device=x.device, dtype=torch.bool)
    rows = x.unsqueeze(1)
    centred = rows if reference is None else rows - reference.to(dtype=x.dtype, device=x.device)
    return torch.where(masks, centred, torch.zeros((), dtype=x.dtype, device=x.device)), rows


def _tensor(value) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    array = np.asarray(value)
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def contextual_decomposition(
    network: nn.Module,
    x: np.ndarray | torch.Tensor,
    masks: np.ndarray | torch.Tensor,
    *,
    reference: np.ndarray | torch.Tensor | None = None,
    rule: Rule = "relevant_first",
    dtype: torch.dtype = torch.float64,
    batch_size: int = CD_BATCH_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """CD of every row for every group of input columns, batched over rows and groups.

    Runs without gradients on the network's device, in ``dtype`` (float64: complete to ~1e-14) on a copy of the
    network cast to ``dtype`` (the network is left as it is); batch norms use their running statistics.

    Args:
        network: any module with a registered CD function (the project's networks, a snapshot ensemble, an
            ``nn.Sequential`` of Linear/ReLU, ...).
        x: rows ``(N, D)``.
        masks: boolean column masks, shared ``(G, D)`` or per row ``(N, G, D)``.
        reference: the point ``m`` ``(D,)`` of the input split; ``None``: the origin (classic CD).
        rule: the rule of the nonlinearities and INN's product (``relevant_first`` or ``shapley``).
        dtype: the floating type of the computation.
        batch_size: (row, group) pairs per pass; small chunks keep the streams in the CPU caches (see
            :data:`CD_BATCH_SIZE`; take more on a GPU).

    Shape:
        -> relevant, irrelevant ``(N, G, C)`` each; ``relevant + irrelevant`` is the logits for every group
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size=}")
    device = next(network.parameters()).device
    x = _tensor(x).to(device=device, dtype=dtype)
    masks = _tensor(masks).to(device=device, dtype=torch.bool)
    if x.ndim != 2:
        raise ValueError(f"x must be (N, D), got shape {tuple(x.shape)}")
    n_rows, n_inputs = x.shape
    if masks.shape[-1] != n_inputs or masks.ndim not in (2, 3) or (masks.ndim == 3 and masks.shape[0] != n_rows):
        raise ValueError(f"masks must be (G, {n_inputs}) or ({n_rows}, G, {n_inputs}), got {tuple(masks.shape)}")
    point = None if reference is None else _tensor(reference).to(device=device, dtype=dtype)
    if point is not None and point.shape != (n_inputs,):
        raise ValueError(f"reference must be ({n_inputs},), got {tuple(point.shape)}")
    twin = copy.deepcopy(network).to(dtype=dtype)  # parameters cast once, not in every chunk
    n_groups = masks.shape[-2]
    group_step = max(1, min(n_groups, batch_size))
    row_step = max(1, batch_size // group_step)
    relevant: torch.Tensor | None = None
    irrelevant: torch.Tensor | None = None
    with torch.no_grad():
        # Chunks of rows × groups: the rows of a chunk and its groups travel through the network together.
        for row in range(0, n_rows, row_step):
            rows = slice(row, min(row + row_step, n_rows))
            for group in range(0, n_groups, group_step):
                groups = slice(group, min(group + group_step, n_groups))
                chunk_masks = masks[groups] if masks.ndim == 2 else masks[rows, groups]
                rel, total = cd_module(twin, *split_input(x[rows], chunk_masks, point), rule=rule)
                if relevant is None:
                    relevant = torch.empty((n_rows, n_groups, rel.shape[-1]), dtype=dtype)
                    irrelevant = torch.empty_like(relevant)
                relevant[rows, groups] = rel.cpu()
                irrelevant[rows, groups] = (total - rel).cpu()
    if relevant is None:  # no rows or no groups
        n_outputs = network_forward(network, np.zeros((1, n_inputs)), dtype=dtype).shape[-1]
        relevant = irrelevant = torch.zeros((n_rows, n_groups, n_outputs), dtype=dtype)
    return relevant.numpy(), irrelevant.numpy()


def network_forward(
    network: nn.Module, x: np.ndarray | torch.Tensor, *, dtype: torch.dtype = torch.float64, batch_size: int = 8192
) -> np.ndarray:
    """The logits of the network's own forward pass in ``dtype`` (evaluation mode, on a copy of the network).

    Shape:
        x ``(N, D)`` -> ``(N, C)``
    """
    device = next(network.parameters()).device
    twin = copy.deepcopy(network).to(dtype=dtype).eval()
    x = _tensor(x).to(device=device, dtype=dtype)
    with torch.no_grad():
        parts = [network_logits(twin(x[start : start + batch_size])).cpu() for start in range(0, len(x), batch_size)]
    if not parts:
        return np.zeros((0, network_logits(twin(torch.zeros((1, x.shape[1]), dtype=dtype, device=device))).shape[-1]))
    return torch.cat(parts).numpy()
