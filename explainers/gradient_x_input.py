"""Gradient × (input − reference) as a post-hoc explainer over original features.

The arithmetic is ``explainers.gradient.GradientTimesInput`` (a network's native explanation in the registry);
this class gives it the post-hoc interface (``from_target``), the project's reference (the training mean; the
classic definition is the origin, ``reference="zero"`` of the target) and sums the columns of every feature.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from explainers.attribution import Attribution
from explainers.gradient import GradientTimesInput
from explainers.posthoc import ExplanationTarget, FeatureGrouping, forward_arguments


class GradientXInput:
    """Gradient × (input − reference) of a differentiable model, per original feature.

    Args:
        forward: ``x (B, D) float32 tensor -> outputs (B, C)``, differentiable.
        reference: the reference ``(D,)`` (``None``: the origin).
        reference_name: the reference in words.
        input_to_feature: ``(D,)`` the feature of every column (``None``: one column per feature).
        feature_names: the ``F`` feature names.
        output_scale, output_shift: map the forward outputs to the explained outputs.
        output_name: what the outputs are, in words.
        batch_size: rows per backward pass.
    """

    id = "gradient_x_input"
    exact = False
    requires = "forward"

    def __init__(
        self,
        forward: Callable[[torch.Tensor], torch.Tensor],
        reference: np.ndarray | None = None,
        *,
        reference_name: str = "zero",
        input_to_feature: Sequence[int] | np.ndarray | None = None,
        feature_names: Sequence[str] | None = None,
        output_scale: float = 1.0,
        output_shift: float = 0.0,
        output_name: str = "prediction",
        batch_size: int = 1024,
    ) -> None:
        self.reference = None if reference is None else np.asarray(reference, dtype=np.float64).reshape(-1)
        self.reference_name = reference_name
        self.input_to_feature = input_to_feature
        self.feature_names = None if feature_names is None else tuple(str(name) for name in feature_names)
        self.inner = GradientTimesInput(
            forward,
            batch_size=batch_size,
            output_scale=output_scale,
            output_shift=output_shift,
            output_name=output_name,
        )

    @classmethod
    def from_target(cls, target: ExplanationTarget, *, seed: int = 0, **options: Any) -> GradientXInput:
        """The explainer of ``target``'s differentiable model, relative to the target's reference."""
        del seed  # deterministic
        return cls(**forward_arguments(target, "gradient x input"), **options)

    def explain(self, X: Any) -> Attribution:
        """Gradient × (input − reference) ``(N, F, C)`` in the explained outputs' units."""
        x = np.ascontiguousarray(X, dtype=np.float32)
        grouping = FeatureGrouping.create(self.input_to_feature, x.shape[1])
        attribution = self.inner.explain(x, reference=self.reference, reference_name=self.reference_name)
        values = grouping.aggregate(np.asarray(attribution.values, dtype=np.float64))
        names = self.feature_names or tuple(f"x{j}" for j in range(grouping.n_features))
        output = np.asarray(attribution.output, dtype=np.float64)
        return replace(attribution, values=values, output=output, rest=output - values.sum(axis=1), feature_names=names)
