"""Contextual decomposition (CD) as a post-hoc explainer of the benchmark: the CD score of every single feature.

An adapter: it builds ``explainers.cd.CDExplainer`` (written with the network CD rules) from an
:class:`~explainers.posthoc.ExplanationTarget` and explains the target's fitted network estimator with it. CD is
model-specific: it needs the project's network estimator itself (``target.model``), not a predict function.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from explainers.attribution import Attribution
from explainers.posthoc import ExplanationTarget


class ContextualDecomposition:
    """CD scores of single original features of a project network (INN, TabResNet).

    Args:
        model: the fitted network estimator.
        reference: the reference point ``(D,)`` of the input split.
        input_to_feature: ``(D,)`` the feature of every column (``None``: one column per feature).
        feature_names: the ``F`` feature names.
        rule: CD's activation rule (``relevant_first`` as in ACD, or ``shapley``).
    """

    id = "cd"
    exact = False
    requires = "model"

    def __init__(
        self,
        model: Any,
        reference: np.ndarray,
        *,
        input_to_feature: np.ndarray | None = None,
        feature_names: tuple[str, ...] | None = None,
        rule: str = "relevant_first",
    ) -> None:
        from explainers.cd import CDExplainer

        self.model = model
        self.inner = CDExplainer(feature_names, input_to_feature, reference=np.asarray(reference), rule=rule)

    @classmethod
    def from_target(cls, target: ExplanationTarget, *, seed: int = 0, **options: Any) -> ContextualDecomposition:
        """CD of ``target``'s network estimator, relative to the target's reference."""
        del seed  # deterministic
        if target.model is None or not hasattr(target.model, "model_"):
            raise ValueError("CD explains the project's network estimators only (the target has no network)")
        return cls(
            target.model,
            target.reference,
            input_to_feature=target.input_to_feature,
            feature_names=target.feature_names,
            **options,
        )

    def explain(self, X: Any) -> Attribution:
        """CD scores ``(N, F, C)`` of every single feature (``rest``: what they leave of the output)."""
        return self.inner.explain(self.model, np.asarray(X, dtype=np.float64))
