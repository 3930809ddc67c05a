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

The package's modules, bottom to top: ``networks`` (conceptizers, parameterizers, :class:`SENNNetwork`,
:class:`ConceptSENNNetwork`), ``losses`` (the robustness loss on the logits, the concept loss, the
conceptizer's pre-training), ``estimators`` (the scikit-learn classifiers and regressors, their explanations,
why learned concepts keep one snapshot) and ``pictures`` (the data behind the concept pictures). Every public
name is importable from ``models.senn``.
"""

from models.senn.estimators import DiSENNClassifier, DiSENNRegressor, SENNClassifier, SENNRegressor
from models.senn.losses import (
    RECONSTRUCTIONS,
    ROBUST_ESTIMATORS,
    ROBUST_FORMS,
    Reconstruction,
    RobustEstimator,
    RobustForm,
    concept_loss,
    gaussian_kl,
    kl_schedule,
    pretrain_conceptizer,
    robustness_loss,
)
from models.senn.networks import (
    CONCEPTIZERS,
    PARAMETERIZERS,
    SENN_CONCEPTIZERS,
    AutoencoderConceptizer,
    Conceptizer,
    ConceptSENNNetwork,
    IdentityConceptizer,
    MLPParameterizer,
    Parameterizer,
    ResNetParameterizer,
    SENNNetwork,
    VAEConceptizer,
)
from models.senn.pictures import concept_prototypes, latent_statistics, latent_traversal

__all__ = [
    "CONCEPTIZERS",
    "PARAMETERIZERS",
    "RECONSTRUCTIONS",
    "ROBUST_ESTIMATORS",
    "ROBUST_FORMS",
    "SENN_CONCEPTIZERS",
    "AutoencoderConceptizer",
    "ConceptSENNNetwork",
    "Conceptizer",
    "DiSENNClassifier",
    "DiSENNRegressor",
    "IdentityConceptizer",
    "MLPParameterizer",
    "Parameterizer",
    "Reconstruction",
    "ResNetParameterizer",
    "RobustEstimator",
    "RobustForm",
    "SENNClassifier",
    "SENNNetwork",
    "SENNRegressor",
    "VAEConceptizer",
    "concept_loss",
    "concept_prototypes",
    "gaussian_kl",
    "kl_schedule",
    "latent_statistics",
    "latent_traversal",
    "pretrain_conceptizer",
    "robustness_loss",
]
