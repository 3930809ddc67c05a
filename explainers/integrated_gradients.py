"""Integrated gradients (Sundararajan et al. 2017) from captum: gradients averaged on the path from a baseline.

``IG_j(x) = (x_j − m_j) ∫₀¹ ∂f/∂x_j(m + α(x − m)) dα`` with the baseline ``m`` (the project's reference: the
training mean), computed by captum's ``IntegratedGradients`` with a Gauss-Legendre rule of ``n_steps`` points.
Completeness makes ``Σ_j IG_j ≈ f(x) − f(m)`` (exact for a linear model, where ``IG_j = w_j (x_j − m_j)``), so
``rest`` is about ``f(m)``. It needs the model as a differentiable torch function (``forward``, e.g. an
estimator's ``logits_function()``); its outputs times ``output_scale`` plus ``output_shift`` are the explained
outputs (a regressor's target units). Column attributions are summed per feature. ``captum`` is optional.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from errors import MissingDependencyError
from explainers.posthoc import ExplanationTarget, FeatureGrouping, forward_arguments
from models._runtime import flush_denormals
from models.attribution import Attribution


class IntegratedGradients:
    """Integrated gradients of a differentiable model, relative to a baseline point.

    Args:
        forward: ``x (B, D) float32 tensor -> outputs (B, C)``, differentiable.
        reference: the baseline ``(D,)``.
        reference_name: the baseline in words.
        n_steps: points of the path integral.
        method: captum's integration rule (``gausslegendre``, ``riemann_trapezoid``, ...).
        batch_size: rows per captum call (each expands to ``batch_size · n_steps`` forward rows).
        input_to_feature: ``(D,)`` the feature of every column (``None``: one column per feature).
        feature_names: the ``F`` feature names.
        output_scale, output_shift: map the forward outputs to the explained outputs.
        output_name: what the outputs are, in words.
    """

    id = "integrated_gradients"
    exact = False
    requires = "forward"

    def __init__(
        self,
        forward: Callable[[torch.Tensor], torch.Tensor],
        reference: np.ndarray,
        *,
        reference_name: str = "training mean",
        n_steps: int = 50,
        method: str = "gausslegendre",
        batch_size: int = 256,
        input_to_feature: Sequence[int] | np.ndarray | None = None,
        feature_names: Sequence[str] | None = None,
        output_scale: float = 1.0,
        output_shift: float = 0.0,
        output_name: str = "prediction",
    ) -> None:
        if n_steps < 1 or batch_size < 1:
            raise ValueError(f"n_steps and batch_size must be at least 1, got {n_steps=}, {batch_size=}")
        self.forward = forward
        self.reference = np.asarray(reference, dtype=np.float64).reshape(-1)
        self.reference_name = reference_name
        self.n_steps = n_steps
        self.method = method
        self.batch_size = batch_size
        self.grouping = FeatureGrouping.create(input_to_feature, self.reference.shape[0])
        names = feature_names if feature_names is not None else [f"x{j}" for j in range(self.grouping.n_features)]
        self.feature_names = tuple(str(name) for name in names)
        self.output_scale = output_scale
        self.output_shift = output_shift
        self.output_name = output_name

    @classmethod
    def from_target(cls, target: ExplanationTarget, *, seed: int = 0, **options: Any) -> IntegratedGradients:
        """The explainer of ``target``'s differentiable model, with the target's reference as baseline."""
        del seed  # deterministic
        return cls(**forward_arguments(target, "integrated gradients"), **options)

    def explain(self, X: Any) -> Attribution:
        """Integrated gradients ``(N, F, C)`` in the explained outputs' units."""
        try:
            from captum.attr import IntegratedGradients as CaptumIG
        except ImportError as exc:
            raise MissingDependencyError("captum", "integrated gradients") from exc
        x = np.ascontiguousarray(X, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.grouping.n_inputs:
            raise ValueError(f"X must be (N, {self.grouping.n_inputs}), got shape {x.shape}")
        baseline = torch.as_tensor(self.reference, dtype=torch.float32)[None, :]
        ig = CaptumIG(self.forward)
        values: np.ndarray | None = None
        output: np.ndarray | None = None
        with flush_denormals(True):
            for start in range(0, x.shape[0], self.batch_size):
                batch = torch.from_numpy(x[start : start + self.batch_size])
                with torch.no_grad():
                    logits = self.forward(batch).detach().cpu().numpy().astype(np.float64)
                if values is None:
                    values = np.empty((x.shape[0], x.shape[1], logits.shape[1]))
                    output = np.empty((x.shape[0], logits.shape[1]))
                output[start : start + batch.shape[0]] = logits
                for c in range(logits.shape[1]):
                    attributions = ig.attribute(
                        batch,
                        baselines=baseline.expand_as(batch),
                        target=c,
                        n_steps=self.n_steps,
                        method=self.method,
                    )
                    values[start : start + batch.shape[0], :, c] = attributions.detach().cpu().numpy()
        if values is None:
            raise ValueError("no rows to explain")
        values = self.grouping.aggregate(values * self.output_scale)
        output = output * self.output_scale + self.output_shift
        return Attribution(
            values=values,
            rest=output - values.sum(axis=1),
            output=output,
            feature_names=self.feature_names,
            explainer=self.id,
            exact=False,
            reference=self.reference,
            reference_name=self.reference_name,
            output_name=self.output_name,
        )
