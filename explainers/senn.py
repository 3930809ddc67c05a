"""SENN's native explanation: the relevances its parameterizer generated, times the concepts (exact, free).

A SENN predicts ``logit_c = Σ_k θ_kc(x)·h_k(x)``; the explanation is that sum split per concept, relative to a
reference input ``m`` (default: the training mean). With identity concepts the concepts are the input columns
(explainer id ``senn``, aggregated to the original features like INN's); with learned concepts (autoencoder,
DiSENN's β-VAE) they are the concepts ``c0, c1, ...`` (id ``senn_concepts``), which no mapping turns into input
features: ``methods.MethodSpec.explain`` leaves such an explanation over concepts, and ``explanations.npz`` then
holds concept names as its ``feature_names`` and the relevances and activations as extras.
"""

from __future__ import annotations

import numpy as np

from explainers.inn import _network_output
from models.attribution import Attribution, ReferenceKind


class SENNExplainer:
    """The exact explanation of a SENN estimator (``models.senn``): over inputs or over concepts."""

    id = "senn"
    exact = True

    def explain(self, model, X, *, reference: ReferenceKind | np.ndarray = "mean") -> Attribution:
        """Attributions ``(N, D, C)`` over input columns or ``(N, K, C)`` over concepts (``model.explain``).

        Raises:
            TypeError: ``model`` is not a SENN (it has no concepts to explain with).
        """
        if not hasattr(model, "explanation_space") or not hasattr(model, "explain"):
            raise TypeError(
                f"SENNExplainer explains SENN estimators only, not {type(model).__name__} "
                "(use a post-hoc explainer such as gradient_x_input)"
            )
        return model.explain(X, reference=reference)

    @staticmethod
    def output(model, X) -> np.ndarray:
        """The output this explanation explains, ``(N, C)``, without explaining: logits (predictions)."""
        return _network_output(model, X)


class SENNConceptExplainer(SENNExplainer):
    """The same explanation, registered under the id of learned-concept explanations (DiSENN's)."""

    id = "senn_concepts"
