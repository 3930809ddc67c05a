"""Gradient × input for any differentiable model given as a forward function (captum's convention).

``values_j = ∂f/∂x_j (x) · (x_j − m_j)`` per output, relative to a reference ``m`` (default the origin, the
classic definition). It is exact only for a model that is linear in its inputs; for a network, ``rest`` is what
the values leave unexplained (``output − Σ values``), so additivity holds by definition and says nothing.

One arithmetic (:class:`GradientTimesInput`, over input columns) behind two interfaces: the native explanation of
a black-box network estimator (:class:`NetworkGradientExplainer`, named by the registry) and the post-hoc
explainer over original features (:class:`GradientXInput`, id ``gradient_x_input`` of ``POSTHOC_EXPLAINERS``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from explainers.posthoc import ExplanationTarget, FeatureGrouping, forward_arguments
from models._runtime import flush_denormals, limit_threads
from models.attribution import Attribution


class GradientTimesInput:
    """Gradient × (input − reference) of a forward function's outputs.

    Args:
        forward_func: ``x (B, D) float32 tensor -> outputs (B, C)``, differentiable (e.g.
            ``estimator.logits_function()``).
        batch_size: rows per backward pass (memory is one batch of activations plus the outputs).
        threads: CPU threads while explaining (``None``: leave torch's setting).
        output_scale, output_shift: map the forward outputs to the explained outputs (a regressor's target units).
        output_name: what the outputs are, in words.
    """

    id = "gradient_x_input"
    exact = False

    def __init__(
        self,
        forward_func: Callable[[torch.Tensor], torch.Tensor],
        *,
        batch_size: int = 1024,
        threads: int | None = None,
        output_scale: float = 1.0,
        output_shift: float = 0.0,
        output_name: str = "logit",
    ) -> None:
        self.forward_func = forward_func
        self.batch_size = batch_size
        self.threads = threads
        self.output_scale = output_scale
        self.output_shift = output_shift
        self.output_name = output_name

    def gradients(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Input gradients ``(N, D, C)`` and outputs ``(N, C)`` of the forward function (before scaling)."""
        x = np.ascontiguousarray(X, dtype=np.float32)
        gradient: np.ndarray | None = None
        output: np.ndarray | None = None
        # Gradients with respect to the inputs only, batch by batch: memory stays at one batch of activations.
        with flush_denormals(True), limit_threads(self.threads):
            for start in range(0, max(x.shape[0], 1), self.batch_size):
                end = min(start + self.batch_size, x.shape[0])
                batch = torch.from_numpy(x[start:end]).requires_grad_(True)
                with torch.enable_grad():
                    logits = self.forward_func(batch)
                    n_outputs = logits.shape[1]
                    per_output = [
                        torch.autograd.grad(logits[:, c].sum(), batch, retain_graph=c < n_outputs - 1)[0]
                        for c in range(n_outputs)
                    ]
                if gradient is None:
                    gradient = np.empty((x.shape[0], x.shape[1], n_outputs), dtype=np.float32)
                    output = np.empty((x.shape[0], n_outputs), dtype=np.float32)
                gradient[start:end] = torch.stack(per_output, dim=-1).detach().cpu().numpy()
                output[start:end] = logits.detach().cpu().numpy()
        return gradient, output

    def explain(
        self,
        X,
        *,
        reference: np.ndarray | None = None,
        reference_name: str = "zero",
        feature_names: Sequence[str] | None = None,
    ) -> Attribution:
        """Attributions over the input columns ``(N, D, C)``; ``reference`` ``(D,)`` defaults to the origin."""
        x = np.ascontiguousarray(X, dtype=np.float32)
        gradient, output = self.gradients(x)
        point = np.zeros(x.shape[1]) if reference is None else np.asarray(reference, dtype=np.float64)
        centred = (x - point[None, :].astype(np.float32))[:, :, None]
        values = np.multiply(gradient, centred, out=gradient)  # in place: the gradients are not returned
        if self.output_scale != 1.0:
            values *= self.output_scale
            output *= self.output_scale
        output += self.output_shift
        names = feature_names if feature_names is not None else [f"x{j}" for j in range(x.shape[1])]
        return Attribution(
            values=values,
            rest=output - values.sum(axis=1),
            output=output,
            feature_names=tuple(names),
            explainer=self.id,
            exact=False,
            reference=point,
            reference_name=reference_name,
            output_name=self.output_name,
        )


class NetworkGradientExplainer:
    """The native explanation of a black-box network estimator: gradient × (input − reference) of its logits.

    It uses the estimator's training mean as the default reference (like every exact explainer), its thread
    count, and maps regressors' logits to target units.
    """

    id = "gradient_x_input"
    exact = False

    def __init__(self, batch_size: int = 1024) -> None:
        self.batch_size = batch_size

    def explain(self, model, X, *, reference="mean") -> Attribution:
        """Attributions over the estimator's input columns ``(N, D, C)``."""
        from models.attribution import reference_point

        scale, shift = model.output_transform()
        point, name = reference_point(reference, model.reference_)
        explainer = GradientTimesInput(
            model.logits_function(),
            batch_size=self.batch_size,
            threads=getattr(model, "threads_", None),
            output_scale=scale,
            output_shift=shift,
            output_name=model.output_name(),
        )
        return explainer.explain(X, reference=point, reference_name=name, feature_names=model.input_names())

    @staticmethod
    def output(model, X) -> np.ndarray:
        """The output this explanation explains, ``(N, C)``: the network's logits (a regressor's predictions)."""
        from explainers.inn import _network_output

        return _network_output(model, X)


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
