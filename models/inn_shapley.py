"""INN-Shapley: a faithful INN whose free, exact explanation estimates the model's own interventional Shapley values.

INN's explanation ``W_j(x)·(x_j − m_j)`` adds up to the logit but is not a faithful attribution (issue 22): one
reference point, effects routed through a generated bias that no feature gets, and a split between weights and
bias that the optimiser chooses. This network keeps INN's backbone and training loop and changes three things:

- **One constant bias.** The network emits per-example *contributions* ``ψ(x)`` ``(D, C)`` and ONE learned
  constant ``b`` ``(C,)``; the prediction is ``f(x) = Σ_j ψ_j(x) + b``. ``readout`` says how the head makes
  ``ψ``: ``affine`` (default) ``ψ_j(x) = W_j(x)·x_j + a_j(x)``, INN's generated weights times the input plus a
  generated offset; ``product`` ``W_j(x)·x_j`` alone (then ``ψ_j`` is 0 wherever ``x_j`` is 0); ``head`` the
  offset alone (an explanation head: the prediction is a sum of emitted contributions).
- **A centred read-out.** The explanation is ``φ_j(x) = ψ_j(x) − E_train[ψ_j(X)]`` (a feature's columns summed)
  and ``rest = b + Σ_j E_train[ψ_j(X)] = E_train[f(X)]``, the mean training output: a constant, so nothing that
  separates one prediction from another is left unattributed. The means are fixed after training on the training
  rows (:meth:`ShapleyINNNetwork.set_contribution_mean`, a buffer of every snapshot, so saved runs keep it).
- **A Shapley-consistency term** (weight ``shapley_strength``). For a coalition ``S`` of ORIGINAL features
  (``feature_groups``: one-hot columns of a feature move together) drawn from the Shapley kernel (size ``s`` with
  probability ``∝ (G − 1)/(s(G − s))``, then a uniform subset), a row ``x`` of the batch and a background row ``z``
  from the same batch (never ``x`` itself), the hybrid row ``h = (x_S, z_S̄)`` must be explained by the read-outs
  of its parts: ``r = Σ_j ψ_j(h) − Σ_{j∈S} ψ_j(x) − Σ_{j∉S} ψ_j(z)``, penalised as ``mean r²`` (summed over
  outputs). ``S = ∅`` and ``S = all`` give ``r = 0`` exactly, so efficiency is built in; ``b`` cancels.

  *Why this targets Shapley values.* For a fixed ``S``, under the product measure of ``x`` and ``z`` the best
  additive fit ``u(x) + w(z)`` of ``g(x, z) = f(x_S, z_S̄)`` is ``u(x) = E_z g = v_x(S)`` and ``w(z) = E_x g``
  (up to constants; the ANOVA decomposition), so the term's minimiser over the read-outs is that of KernelSHAP's
  weighted least squares ``Σ_S k(S) (Σ_{j∈S} φ_j(x) − v_x(S) + v(∅))²`` with the interventional value function
  ``v_x(S) = E_z f(x_S, z_S̄)`` over the training distribution; the interaction part of ``g`` adds only a constant.
  ``shapley_background`` > 1 averages the hybrid and background read-outs over that many ``z`` before squaring
  (the exact-expectation version in the limit). For a model that is additive over the features the term is zero
  at its true Shapley values (tested).

  *Where gradients flow.* Always through ``ψ(x)`` and ``ψ(z)`` (the batch's own read-outs). Through ``ψ(h)`` only
  with ``shapley_detach=False`` (default): the network may then also change what it does off the data (at hybrid
  rows, where the task loss does not look) instead of bending its fit on the data; with a detached target the
  selection runs lost accuracy (XAI-Bench at ρ = 0.5, and badly on real data). ``shapley_pass="joint"``
  (default) sends the hybrid rows through the same forward pass as the batch (batch norm then normalises the
  batch and its hybrid rows together, running statistics included): one pass of ``2B`` rows costs about 1.4 of
  one of ``B`` rows on a CPU, two passes 2. ``separate`` runs them in a second pass with batch norm on their own
  statistics and the running statistics untouched (a separate pass in evaluation mode, on running statistics
  that lag the weights, diverged at a learning-rate restart).

The snapshot ensemble averages contributions, bias and logits (``combine``); its explanation is the mean of its
snapshots' centred read-outs with the mean of their means, so it is exact for the ensemble that predicts and its
rest is the ensemble's own mean training output (the mean of the snapshots' constant rests).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from models._runtime import flush_denormals, limit_threads
from models.attribution import Attribution, ReferenceKind
from models.estimators import _NeuralClassifier, _NeuralRegressor, neural_init
from models.inference import predict_in_batches
from models.networks import NetworkOutput, _BackboneWithHead
from models.training import add_l1

ShapleyPass = Literal["separate", "joint"]
SHAPLEY_PASSES: tuple[ShapleyPass, ...] = ("separate", "joint")
Readout = Literal["product", "head", "affine"]
READOUTS: tuple[Readout, ...] = ("product", "head", "affine")
#: What the explanation is relative to, in words (``Attribution.reference_name``).
REFERENCE_NAME = "training distribution (rest = mean training output)"
_BATCH_ROWS = 8192

#: INN-Shapley's own parameters (documented on :class:`_INNShapley`), name -> default. The defaults were chosen on
#: the selection half of ``experiments/suites.json`` (``docs/faithful_inn.md``): the affine read-out, λ = 0.3, one
#: coalition and one background row per training row, hybrid rows trained too, in the batch's own forward pass.
INN_SHAPLEY_PARAMETERS: dict[str, object] = {
    "readout": "affine",
    "shapley_strength": 0.3,
    "shapley_coalitions": 1.0,
    "shapley_background": 1,
    "shapley_detach": False,
    "shapley_split_only": False,
    "shapley_pass": "joint",
    "readout_norm": 0.0,
    "feature_groups": None,
}


class ShapleyINNNetwork(_BackboneWithHead):
    """INN's backbone emitting per-example contributions ``ψ(x)`` and one learned constant bias.

    ``logits = Σ_j ψ_j(x) + b``; ``readout="product"``: ``ψ_j(x) = W_j(x)·x_j`` (the head generates ``W(x)``),
    ``readout="head"``: the head generates ``ψ(x)``; ``readout="affine"``: ``ψ_j(x) = W_j(x)·x_j + a_j(x)``. The buffer ``contribution_mean`` holds ``E_train[ψ(X)]``
    once :meth:`set_contribution_mean` has been called (zeros before).

    Shape:
        x ``(B, D)`` -> logits ``(B, C)``; ``extras["contributions"]`` ``(B, D, C)``, ``extras["bias"]`` ``(B, C)``,
        ``extras["generated"]`` ``(B, K, D, C)`` (what the head emitted: ``W(x)``, ``ψ(x)`` or both, ``K`` = 1 or 2,
        for the L1 term)
    """

    def __init__(
        self,
        *,
        n_inputs: int,
        n_outputs: int,
        readout: Readout = "affine",
        hidden_size: int = 128,
        nr_blocks: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(
            n_inputs=n_inputs,
            n_outputs=n_outputs,
            head_size=(2 if readout == "affine" else 1) * n_inputs * n_outputs,
            hidden_size=hidden_size,
            nr_blocks=nr_blocks,
            dropout=dropout,
        )
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout=}")
        self.readout = readout
        self.bias = nn.Parameter(torch.zeros(n_outputs))
        self.register_buffer("contribution_mean", torch.zeros(n_inputs, n_outputs, dtype=torch.float64))
        #: Set while training with ``shapley_pass="joint"``: the training forward then adds hybrid rows to the batch
        #: and returns the consistency residuals (``extras["consistency_residual"]``). Not part of the state.
        self.sampler: CoalitionSampler | None = None

    def _readout(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Contributions ``(B, D, C)`` and what the head generated ``(B, K, D, C)``."""
        generated = self.head(self.backbone(x)).view(x.shape[0], -1, self.n_inputs, self.n_outputs)
        if self.readout == "product":
            return generated[:, 0] * x.unsqueeze(2), generated
        if self.readout == "head":
            return generated[:, 0], generated
        return torch.addcmul(generated[:, 1], generated[:, 0], x.unsqueeze(2)), generated

    def forward(self, x: torch.Tensor) -> NetworkOutput:
        extras = {}
        if self.training and self.sampler is not None and x.shape[0] >= 2:
            # One pass over the batch and its hybrid rows: batch norm normalises both with their joint statistics.
            coalitions = self.sampler.sample(x)
            contributions, generated = self._readout(torch.cat([x, coalitions.hybrid]))
            batch = x.shape[0]
            hybrid = contributions[batch:]
            contributions, generated = contributions[:batch], generated[:batch]
            extras["consistency_residual"] = coalitions.residual(
                contributions, hybrid.detach() if self.sampler.detach else hybrid, split_only=self.sampler.split_only
            )
        else:
            contributions, generated = self._readout(x)
        bias = self.bias.expand(x.shape[0], self.n_outputs)
        logits = contributions.sum(1) + bias
        return NetworkOutput(
            logits, extras={"contributions": contributions, "bias": bias, "generated": generated, **extras}
        )

    @staticmethod
    def combine(outputs: Sequence[NetworkOutput], x: torch.Tensor) -> NetworkOutput:
        """The snapshot ensemble's output: mean logits, mean contributions and mean bias (so still additive)."""
        extras = {
            name: torch.stack([output.extras[name] for output in outputs]).mean(0)
            for name in ("contributions", "bias", "generated")
        }
        return NetworkOutput(torch.stack([output.logits for output in outputs]).mean(0), extras=extras)

    @torch.no_grad()
    def set_contribution_mean(self, x: torch.Tensor) -> None:
        """Fix ``contribution_mean = E[ψ(X)]`` over the rows ``x`` (the training rows), accumulated in float64."""
        was_training = self.training
        contributions = predict_in_batches(self, x, batch_size=_BATCH_ROWS, fields=("contributions",))
        self.contribution_mean.copy_(contributions["contributions"].double().sum(0) / max(x.shape[0], 1))
        self.train(was_training)


def kernel_size_probabilities(n_groups: int) -> np.ndarray:
    """The Shapley kernel's distribution of coalition sizes ``s = 1 .. G − 1``: ``∝ (G − 1) / (s (G − s))``.

    Shape:
        ``(G − 1,)`` (empty for ``G < 2``: there is no coalition strictly between ∅ and all features)
    """
    sizes = np.arange(1, n_groups, dtype=np.float64)
    if sizes.size == 0:
        return sizes
    weights = (n_groups - 1) / (sizes * (n_groups - sizes))
    return weights / weights.sum()


def sample_coalitions(
    n: int, size_probabilities: torch.Tensor, n_groups: int, generator: torch.Generator
) -> torch.Tensor:
    """``n`` coalitions of ``n_groups`` features from the Shapley kernel: a size, then a uniform subset of it.

    Shape:
        -> ``(n, G)`` bool, every row with between 1 and ``G − 1`` members
    """
    device = size_probabilities.device
    sizes = torch.multinomial(size_probabilities, n, replacement=True, generator=generator) + 1
    keys = torch.rand(n, n_groups, generator=generator, device=device)
    ranks = keys.argsort(1).argsort(1)
    return ranks < sizes[:, None]


@dataclass(frozen=True)
class Coalitions:
    """One batch's coalitions: for coalition ``i``, row ``rows[i]`` keeps the columns ``inside[i]`` and takes the
    others from the rows ``background[i]``, giving the hybrid rows ``hybrid`` (``(n · m, D)``, coalition-major)."""

    rows: torch.Tensor  # (n,)
    background: torch.Tensor  # (n, m)
    inside: torch.Tensor  # (n, D) bool
    hybrid: torch.Tensor  # (n · m, D)

    def residual(
        self, contributions: torch.Tensor, hybrid_contributions: torch.Tensor, *, split_only: bool = False
    ) -> torch.Tensor:
        """``r = mean_z Σ_j ψ_j(x_S, z_S̄) − Σ_{j∈S} ψ_j(x) − mean_z Σ_{j∉S} ψ_j(z)`` per coalition.

        ``split_only``: the gradient reaching the batch's read-outs is projected onto changes that keep every row's
        sum ``Σ_j ψ_j`` (so the term moves how an output is split among the features, not the output).

        Shape:
            contributions ``(B, D, C)`` of the batch, hybrid_contributions ``(n · m, D, C)`` -> ``(n, C)``
        """
        if split_only:  # same values; the gradient loses its mean over the columns
            total = contributions.sum(1, keepdim=True)
            contributions = contributions - (total - total.detach()) / contributions.shape[1]
        n, m = self.background.shape
        target = hybrid_contributions.sum(1).view(n, m, -1).mean(1)
        mask = self.inside.to(contributions.dtype)[:, :, None]  # (n, D, 1)
        own = (contributions[self.rows] * mask).sum(1)
        others = (contributions[self.background] * (1.0 - mask)[:, None]).sum(2).mean(1)
        return target - own - others


@dataclass
class CoalitionSampler:
    """Draws the consistency term's coalitions and background rows for a batch (see the module docstring).

    Attributes:
        groups: the original feature of every input column ``(D,)``, values ``0 .. G − 1``.
        size_probabilities: :func:`kernel_size_probabilities` of ``G`` ``(G − 1,)`` on the device.
        n_coalitions: coalitions per row (below 1: that share of the rows, drawn at random, gets one).
        n_background: background rows per coalition (never the row itself).
        generator: the fit's seeded generator.
        detach: whether the hybrid rows' read-outs are a fixed target.
        split_only: whether the term may only move how the batch's outputs are split (:meth:`Coalitions.residual`).
    """

    groups: torch.Tensor
    size_probabilities: torch.Tensor
    n_coalitions: float
    n_background: int
    generator: torch.Generator
    detach: bool = True
    split_only: bool = False

    def sample(self, x: torch.Tensor) -> Coalitions:
        """Coalitions for the batch ``x`` ``(B, D)``: ``round(B · n_coalitions)`` of them (at least one)."""
        batch = x.shape[0]
        n = max(1, round(batch * self.n_coalitions))
        device = x.device
        if n < batch:
            rows = torch.randperm(batch, generator=self.generator, device=device)[:n]
        else:
            rows = torch.arange(n, device=device) % batch
        n_groups = self.size_probabilities.shape[0] + 1
        inside = sample_coalitions(n, self.size_probabilities, n_groups, self.generator)[:, self.groups]
        offsets = torch.randint(1, batch, (n, self.n_background), generator=self.generator, device=device)
        background = (rows[:, None] + offsets) % batch
        hybrid = torch.where(inside[:, None, :], x[rows][:, None, :], x[background]).reshape(-1, x.shape[1])
        return Coalitions(rows, background, inside, hybrid)


@contextmanager
def _frozen_statistics(network: nn.Module):
    """Run ``network`` in its current mode without updating batch norm's running statistics (momentum 0)."""
    norms = [module for module in network.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]
    saved = [(norm.momentum, norm.num_batches_tracked.clone()) for norm in norms]
    for norm in norms:
        norm.momentum = 0.0
    try:
        yield
    finally:
        for norm, (momentum, count) in zip(norms, saved, strict=True):
            norm.momentum = momentum
            norm.num_batches_tracked.copy_(count)


def consistency_residual(
    network: nn.Module, x: torch.Tensor, contributions: torch.Tensor, sampler: CoalitionSampler
) -> torch.Tensor:
    """The consistency residuals of one batch with the hybrid rows in a SEPARATE forward pass (``shapley_pass=
    "separate"``): in the network's current mode, batch norm on the hybrid rows' own statistics, running statistics
    untouched, without gradients when ``sampler.detach``.

    Args:
        network: the network being trained (returns ``extras["contributions"]``).
        x: the batch ``(B, D)``.
        contributions: ``ψ(x)`` of the batch from its training forward ``(B, D, C)``.
        sampler: the coalitions' sampler.

    Shape:
        -> ``(n, C)`` (:meth:`Coalitions.residual`)
    """
    coalitions = sampler.sample(x)
    with torch.set_grad_enabled(torch.is_grad_enabled() and not sampler.detach), _frozen_statistics(network):
        hybrid = network(coalitions.hybrid).extras["contributions"]
    return coalitions.residual(contributions, hybrid, split_only=sampler.split_only)


def _check_groups(feature_groups: Sequence[int] | None, n_inputs: int) -> np.ndarray:
    """The original feature of every input column as ``0 .. G − 1`` (default: every column its own feature)."""
    if feature_groups is None:
        return np.arange(n_inputs)
    groups = np.asarray(feature_groups)
    if groups.shape != (n_inputs,) or not np.issubdtype(groups.dtype, np.integer) or (groups.size and groups.min() < 0):
        raise ValueError(f"feature_groups must give a feature index >= 0 for each of the {n_inputs} input columns")
    return np.unique(groups, return_inverse=True)[1].reshape(-1)


class _INNShapley:
    """INN-Shapley's parameters, hooks and explanation, shared by the classifier and the regressor.

    Args:
        readout: ``affine`` (``ψ_j(x) = W_j(x)·x_j + a_j(x)``), ``product`` (``W_j(x)·x_j``, INN's generated
            weights times the input) or ``head`` (the network emits ``ψ(x)`` itself: an explanation head).
        shapley_strength: λ, the weight of the Shapley-consistency term (0: off, the centred read-out alone).
        shapley_coalitions: coalitions drawn per row and step (below 1: that share of the rows gets one).
        shapley_background: background rows per coalition, averaged inside the residual.
        shapley_detach: the hybrid rows' read-outs are a fixed target (True: the term shapes the read-outs of the
            training rows only) or are trained too (False: the network may also change what it does off the data).
        shapley_split_only: the term may only change how each training row's output is split among the features,
            not the output itself (its gradient on the batch's read-outs is projected onto zero-sum changes); with
            ``shapley_detach=True`` it then puts no direct pressure on the function at all.
        shapley_pass: the hybrid rows go through the network in a ``separate`` forward pass (batch norm on their own
            statistics, running statistics untouched) or ``joint``ly with the batch (one pass over both: cheaper, and
            batch norm's statistics, running ones included, are those of the batch and its hybrid rows together).
        readout_norm: strength of the L1 term on what the head generates (``W(x)`` or ``ψ(x)``), ``mean|·|``
            (INN's ``weight_norm``, named apart because INN's command-line default, 0.1, is not this method's).
        feature_groups: the original feature of every input column ``(D,)`` (one-hot columns of a feature share
            one); coalitions are drawn over these features. None: every column is a feature. The registry sets it
            from the split.

    The other parameters are INN's (``models.estimators._NeuralEstimator``) without ``weight_norm``,
    ``weight_norm_scale`` and ``product_inputs``.
    """

    __init__ = neural_init(INN_SHAPLEY_PARAMETERS)

    #: INN's L1 term on generated weights is ``readout_norm`` here (the base class reads ``weight_norm``).
    weight_norm = 0.0

    def _check_params(self) -> None:
        if self.readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {self.readout!r}")
        if not (np.isfinite(self.readout_norm) and self.readout_norm >= 0):
            raise ValueError(f"readout_norm must be a finite number >= 0, got {self.readout_norm!r}")
        if not (np.isfinite(self.shapley_strength) and self.shapley_strength >= 0):
            raise ValueError(f"shapley_strength must be a finite number >= 0, got {self.shapley_strength!r}")
        if self.shapley_pass not in SHAPLEY_PASSES:
            raise ValueError(f"shapley_pass must be one of {SHAPLEY_PASSES}, got {self.shapley_pass!r}")
        if not (np.isfinite(self.shapley_coalitions) and self.shapley_coalitions > 0):
            raise ValueError(f"shapley_coalitions must be a finite number > 0, got {self.shapley_coalitions!r}")
        if not isinstance(self.shapley_background, int | np.integer) or self.shapley_background < 1:
            raise ValueError(f"shapley_background must be an integer >= 1, got {self.shapley_background!r}")
        super()._check_params()

    def _build_network(self, n_inputs: int, n_outputs: int) -> nn.Module:
        network = ShapleyINNNetwork(
            n_inputs=n_inputs,
            n_outputs=n_outputs,
            readout=self.readout,
            hidden_size=self.hidden_size,
            nr_blocks=self.nr_blocks,
            dropout=self.dropout,
        )
        sampler = getattr(self, "_sampler", None)  # set while fitting only
        if sampler is not None and self.shapley_pass == "joint":
            network.sampler = sampler
        return network

    def _fit_network(self, x: np.ndarray, target: np.ndarray, **kwargs) -> None:
        """Set up the consistency term's coalitions and generator, train, then fix the read-outs' training means
        (over the training rows before any oversampling)."""
        self._check_params()
        groups = _check_groups(self.feature_groups, x.shape[1])
        n_groups = int(groups.max()) + 1 if groups.size else 0
        self._sampler = None
        if self.shapley_strength > 0 and n_groups >= 2:
            from models.device import resolve_device

            device = resolve_device(self.device)
            generator = torch.Generator(device=device)
            generator.manual_seed(self.seed + 2)  # the loop's batch order uses seed, its augmentations seed + 1
            self._sampler = CoalitionSampler(
                groups=torch.as_tensor(groups, device=device),
                size_probabilities=torch.as_tensor(
                    kernel_size_probabilities(n_groups), dtype=torch.float32, device=device
                ),
                n_coalitions=float(self.shapley_coalitions),
                n_background=int(self.shapley_background),
                generator=generator,
                detach=bool(self.shapley_detach),
                split_only=bool(self.shapley_split_only),
            )
        try:
            super()._fit_network(x, target, **kwargs)
        finally:
            del self._sampler  # device tensors of this fit
        rows = torch.as_tensor(x, dtype=torch.float32, device=self.device_)
        with limit_threads(self.threads_), flush_denormals(self.device_.type == "cpu"):
            for member in self.model_.members:
                member.sampler = None  # snapshots are copies of the training network: they keep no sampler
                member.set_contribution_mean(rows)

    def _loss(self, network, x, y, output, mixing):
        """Task loss + ``readout_norm · mean|generated|`` + ``shapley_strength · mean r²`` (:func:`consistency_residual`)."""
        value = super()._loss(network, x, y, output, mixing)
        if self.readout_norm > 0:
            value = add_l1(value, output.extras["generated"], self.readout_norm)
        residual = output.extras.get("consistency_residual")  # shapley_pass="joint": from the forward itself
        if residual is None and self._sampler is not None and self.shapley_pass == "separate" and x.shape[0] >= 2:
            residual = consistency_residual(network, x, output.extras["contributions"], self._sampler)
        if residual is not None:
            value = value + self.shapley_strength * residual.square().sum(1).mean()
        return value

    # ------------------------------------------------------------------------------------------ explanation
    def _decompose(self, X) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The ensemble's contributions ``(N, D, C)``, bias ``(N, C)``, logits ``(N, C)`` and the training means of
        its contributions ``(D, C)``, all float64, in one batched forward pass in the network's dtype."""
        outputs, _ = self._raw_outputs(X, fields=("contributions", "bias", "logits"))
        contributions, bias, logits = (outputs[name].astype(np.float64) for name in ("contributions", "bias", "logits"))
        mean = torch.stack([member.contribution_mean for member in self.model_.members]).mean(0)
        return contributions, bias, logits, mean.double().cpu().numpy()

    def explain(self, X, *, reference: ReferenceKind | np.ndarray = "mean") -> Attribution:
        """The exact, centred explanation: ``φ_j(x) = ψ_j(x) − E_train[ψ_j(X)]``, ``rest = E_train[f(X)]``.

        ``values.sum(1) + rest`` is the model's output (classifiers: logits ``(N, C)``, ``C = 1`` for binary
        tasks; regressors: predictions in target units), and ``rest`` is the same for every row: the mean output
        over the training rows. The values estimate the model's interventional Shapley values with the training
        rows as background (the consistency term trains them to); they are relative to the training
        distribution, not to a point, so ``reference`` is accepted and ignored.

        Shape:
            X ``(N, D)`` -> values ``(N, D, C)`` over input columns (``Attribution.aggregate`` sums a feature's)
        """
        del reference  # relative to the training distribution (see the docstring)
        contributions, bias, logits, mean = self._decompose(X)
        scale, shift = self.output_transform()
        values = (contributions - mean[None]) * scale
        rest = (bias + mean.sum(0)[None]) * scale + shift
        return Attribution(
            values=values,
            rest=rest,
            output=logits * scale + shift,
            feature_names=tuple(self.input_names()),
            explainer="inn_shapley",
            exact=True,
            reference=None,
            reference_name=REFERENCE_NAME,
            output_name=self.output_name(),
        )


class INNShapleyClassifier(_INNShapley, _NeuralClassifier):
    """A faithful INN classifier: contributions ``ψ(x)`` plus one constant bias, explained by centred read-outs that
    a Shapley-consistency term trains toward the model's own interventional Shapley values (per class)."""


class INNShapleyRegressor(_INNShapley, _NeuralRegressor):
    """A faithful INN regressor; explanations in target units, the rest is the mean training prediction."""
