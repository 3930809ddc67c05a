"""SENN's and DiSENN's scikit-learn estimators: the network hooks, the losses in training, explanations.

Snapshots. With identity concepts the snapshot ensemble averages the generated linear models (as INN), which
is exact: the logits are linear in θ for a fixed input. With learned concepts each snapshot has its own
concepts, and a mean of ``Σ_k θ_k h_k`` over snapshots is no longer one relevance per concept, so learned
concepts train with one cosine cycle and keep one snapshot (``nr_restarts`` is not used): the explanation stays
exact for the model that predicts.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Literal

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from models._runtime import limit_threads, resolve_threads
from models.attribution import Attribution, ReferenceKind, reference_point
from models.device import resolve_device
from models.estimators import _NeuralClassifier, _NeuralRegressor, neural_init
from models.senn.losses import (
    RECONSTRUCTIONS,
    ROBUST_ESTIMATORS,
    ROBUST_FORMS,
    concept_loss,
    kl_schedule,
    pretrain_conceptizer,
    robustness_loss,
)
from models.senn.networks import (
    CONCEPTIZERS,
    PARAMETERIZERS,
    SENN_CONCEPTIZERS,
    Conceptizer,
    ConceptSENNNetwork,
    SENNNetwork,
)
from models.training import TrainingConfig, batch_bounds

#: SENN's own parameters, name -> default (documented on :class:`SENNClassifier`); the shared ones follow them
#: (``models.estimators.NEURAL_PARAMETERS``). INN's ``weight_norm`` is not one: SENN's regulariser is the
#: robustness loss.
SENN_PARAMETERS: dict[str, Any] = {
    "conceptizer": "identity",
    "parameterizer": "resnet",
    "parameterizer_sizes": None,
    "num_concepts": 5,
    "robust_reg": 0.1,
    "robust_estimator": "exact",
    "robust_form": "logits",
    "concept_reg": 1.0,
    "sparsity_reg": 2e-5,
    "pretrain_epochs": 0,
}
#: DiSENN's own parameters, documented on :class:`DiSENNClassifier`: the reproduction's (5 concepts, β = 4, λ = 1e-3,
#: one pre-training epoch at β = 1) except the concept loss's scale and schedule, which keep the latents active
#: (the summed reconstruction and a 20-nat capacity reached over 50 epochs; chosen on the synthetic selection seeds
#: 100-102 of digits, docs/senn.md; the reproduction's recipe: ``reconstruction="mean", capacity=0``).
DISENN_PARAMETERS: dict[str, Any] = {
    "parameterizer": "resnet",
    "parameterizer_sizes": None,
    "num_concepts": 5,
    "robust_reg": 1e-3,
    "robust_estimator": "exact",
    "robust_form": "logits",
    "concept_reg": 1.0,
    "beta": 4.0,
    "pre_beta": 1.0,
    "pretrain_epochs": 1,
    "capacity": 20.0,
    "kl_warmup_epochs": 50,
    "reconstruction": "sum",
}


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
        if self.reconstruction not in RECONSTRUCTIONS:
            raise ValueError(f"reconstruction must be one of {RECONSTRUCTIONS}, got {self.reconstruction!r}")
        if self.robust_form not in ROBUST_FORMS:
            raise ValueError(f"robust_form must be one of {tuple(ROBUST_FORMS)}, got {self.robust_form!r}")
        sizes = self.parameterizer_sizes
        if sizes is not None and (
            self.parameterizer != "mlp"
            or len(sizes) == 0
            or not all(isinstance(size, int | np.integer) and size >= 1 for size in sizes)
        ):
            raise ValueError(f"parameterizer_sizes must be hidden widths >= 1 of the mlp parameterizer, got {sizes!r}")
        if not isinstance(self.num_concepts, int | np.integer) or self.num_concepts < 1:
            raise ValueError(f"num_concepts must be an integer >= 1, got {self.num_concepts!r}")
        for name in ("pretrain_epochs", "kl_warmup_epochs"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if self.kl_warmup_epochs > 0 and self.augmentation_probability > 0:
            # The schedule counts the loss's calls as optimiser steps; FGSM calls the loss twice per batch.
            raise ValueError("kl_warmup_epochs needs augmentation_probability=0 (the schedule counts steps)")
        for name in ("robust_reg", "concept_reg", "sparsity_reg", "beta", "pre_beta", "capacity"):
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
            "parameterizer_sizes": None if self.parameterizer_sizes is None else tuple(self.parameterizer_sizes),
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
                    capacity=self.capacity,
                    kl_warmup_epochs=self.kl_warmup_epochs,
                    reconstruction=self.reconstruction,
                )
        return network

    def _fit_network(self, x: np.ndarray, target: np.ndarray, **kwargs) -> None:
        # The pre-training phase needs the training inputs inside ``_build_network``; they are lent for the fit.
        # The KL schedule counts the joint training's steps from where the pre-training stopped.
        self._pretraining_inputs = x
        n_rows = x.shape[0] if kwargs.get("rows") is None else len(kwargs["rows"])
        # (Fewer than 2 rows: the base class refuses the fit with scikit-learn's message.)
        self._schedule = {"step": 0, "per_epoch": len(batch_bounds(n_rows, self.batch_size)) if n_rows >= 2 else 1}
        try:
            super()._fit_network(x, target, **kwargs)
        finally:
            del self._pretraining_inputs, self._schedule

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
                output, inputs, identity=not self._learned(), estimator=self.robust_estimator, form=self.robust_form
            )
        if self._learned() and self.concept_reg > 0:
            schedule = self._schedule
            weight, target = kl_schedule(
                self.pretrain_epochs + schedule["step"] / schedule["per_epoch"],
                beta=self.beta,
                capacity=self.capacity,
                warmup_epochs=self.kl_warmup_epochs,
            )
            schedule["step"] += 1
            value = value + self.concept_reg * concept_loss(
                x,
                output,
                beta=weight,
                sparsity_reg=self.sparsity_reg,
                capacity=target,
                reconstruction=self.reconstruction,
            )
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
    """The constructor of SENN's classifier and regressor: :data:`SENN_PARAMETERS`, then the shared ones."""

    __init__ = neural_init(SENN_PARAMETERS)

    #: Only the β-VAE has a KL term (and its schedule); SENN's autoencoder has none.
    beta = 0.0
    pre_beta = 0.0
    capacity = 0.0
    kl_warmup_epochs = 0
    reconstruction = "mean"

    def _check_params(self) -> None:
        if self.conceptizer not in SENN_CONCEPTIZERS:
            raise ValueError(f"conceptizer must be one of {SENN_CONCEPTIZERS} (β-VAE concepts: DiSENN), got "
                             f"{self.conceptizer!r}")  # fmt: skip
        super()._check_params()


class _DiSENNParameters(_SENN):
    """The constructor of DiSENN's classifier and regressor: :data:`DISENN_PARAMETERS`, then the shared ones."""

    __init__ = neural_init(DISENN_PARAMETERS)

    #: The β-VAE's KL term is its regulariser; there is no L1 term on its concepts.
    sparsity_reg = 0.0

    def _conceptizer_kind(self) -> Conceptizer:
        return "vae"


class SENNClassifier(_SENNParameters, _NeuralClassifier):
    """Self-explaining neural network classifier: ``logit_c(x) = Σ_k θ_kc(x)·h_k(x)``.

    ``explain(X)`` is exact for the model that predicts (see ``_SENN.explain``). Its own parameters
    (:data:`SENN_PARAMETERS`) come before the shared ones (``models.estimators.NEURAL_PARAMETERS``, documented on
    ``_NeuralEstimator``); INN's ``weight_norm`` is not one of them (SENN's regulariser is the robustness loss).

    Args:
        conceptizer: ``identity`` (the inputs plus a constant concept: INN's form) or ``autoencoder`` (learned
            concepts with a reconstruction and sparsity loss; one snapshot, see the module).
        parameterizer: ``resnet`` (the project's residual backbone with a head, as INN) or ``mlp`` (the SENN
            paper's tanh MLP, ``nr_blocks + 1`` hidden layers of ``hidden_size``).
        parameterizer_sizes: the ``mlp`` parameterizer's hidden widths instead (the SENN code's COMPAS network:
            ``(10, 10, 5)``); None: as above.
        num_concepts: ``K``, the number of learned concepts (identity concepts are the inputs: unused).
        robust_reg: λ, the weight of the robustness loss on the logits (0: off, and no double backward).
        robust_estimator: ``exact`` (one double-backward pass per class) or ``hutchinson`` (one pass, unbiased).
        robust_form: ``logits`` (this project's loss, the default) or the SENN code's ``senn`` (post-link output,
            the intercept's relevance penalised, unsquared norm of the batch: the papers' λ scale) and the forms
            between them (``models.senn.losses.ROBUST_FORMS``).
        concept_reg: ξ, the weight of the concept loss (learned concepts).
        sparsity_reg: the weight of the L1 term on the concepts inside the concept loss (autoencoder).
        pretrain_epochs: epochs of conceptizer-only pre-training before the joint training (learned concepts).
    """


class SENNRegressor(_SENNParameters, _NeuralRegressor):
    """Self-explaining neural network regressor; explanations are in target units. Parameters as the classifier."""


class DiSENNClassifier(_DiSENNParameters, _NeuralClassifier):
    """DiSENN classifier: SENN with β-VAE concepts (posterior means), pre-trained for ``pretrain_epochs``.

    Parameters (:data:`DISENN_PARAMETERS`, then the shared ones) as :class:`SENNClassifier` without
    ``conceptizer`` and ``sparsity_reg``, plus the β-VAE's; the defaults are the DiSENN reproduction's (5 concepts,
    β = 4, λ = 1e-3, one pre-training epoch at β = 1) with a summed reconstruction and a 20-nat capacity reached
    over 50 epochs, which keep its latents active (at the reproduction's recipe they collapse to the prior on
    digits; docs/senn.md).

    Args:
        beta: β, the weight of the KL term in the concept loss of the joint training.
        pre_beta: β of the conceptizer's pre-training.
        capacity: ``C`` in nats: with ``C > 0`` the KL term is ``β·|KL − C|`` (Burgess et al. 2018), which holds
            the posterior's information near ``C`` instead of letting the latents collapse to the prior; 0: β·KL.
        kl_warmup_epochs: epochs, counted from the first pre-training epoch, over which the KL schedule ramps
            linearly (``models.senn.losses.kl_schedule``): β from 0 without a capacity, ``C`` from 0 with one.
        reconstruction: the reconstruction error's ``mean`` over input columns (the codebases') or its ``sum``
            (a VAE's scale, against which the KL summed over latents is weighed; see ``concept_loss``).
    """


class DiSENNRegressor(_DiSENNParameters, _NeuralRegressor):
    """DiSENN regressor (β-VAE concepts); explanations are in target units. Parameters as the classifier."""
