"""Explainers: anything that maps a fitted model and inputs ``X`` to per-feature attributions.

INN needs no explainer of its own: its generated linear models are the explanation, and ``INNExplainer``
only reads them out. ``GradientTimesInput`` serves black boxes such as TabResNet. Attributions over model
input columns are summed to the original features (one-hot columns map back to their feature), and the
global importance is the mean absolute attribution, so local and global never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from models.training import flush_denormals, limit_threads


@dataclass(frozen=True)
class Attribution:
    """Per-example attributions and the part of the output no feature accounts for.

    For exact (additive) explainers ``values.sum(axis=1) + baseline == output``.

    Attributes:
        values: ``(N, F, C)`` attribution of every feature to every output.
        baseline: ``(N, C)`` the rest of the output (INN: the generated bias).
        output: ``(N, C)`` the model's outputs (logits) that are explained.
        feature_names: ``F`` names.
    """

    values: np.ndarray
    baseline: np.ndarray
    output: np.ndarray
    feature_names: tuple[str, ...]

    def global_importance(self) -> np.ndarray:
        """Mean |attribution| per feature over examples, summed over outputs, normalised to sum 1.

        Uses no labels, so it is defined for every task and every example.
        """
        importance = np.abs(self.values).mean(axis=0).sum(axis=-1)
        total = importance.sum()
        return importance / total if total > 0 else np.full(importance.shape, 1.0 / max(importance.size, 1))


@runtime_checkable
class Explainer(Protocol):
    """Maps a fitted model and ``X`` ``(N, D)`` to an :class:`Attribution` over original features."""

    def explain(self, model, X) -> Attribution: ...


def aggregate_inputs(values: np.ndarray, input_to_feature: Sequence[int] | np.ndarray, n_features: int) -> np.ndarray:
    """Sum attributions of input columns that belong to the same original feature.

    Shape:
        values ``(N, D, C)``, input_to_feature ``(D,)`` -> ``(N, F, C)``
    """
    mapping = np.asarray(input_to_feature, dtype=np.int64)
    if mapping.shape != (values.shape[1],):
        raise ValueError(f"input_to_feature has shape {mapping.shape}, expected ({values.shape[1]},)")
    membership = np.zeros((values.shape[1], n_features), dtype=values.dtype)
    membership[np.arange(mapping.size), mapping] = 1
    return np.einsum("ndc,df->nfc", values, membership)


class _FeatureMapping:
    def __init__(
        self, feature_names: Sequence[str] | None = None, input_to_feature: Sequence[int] | np.ndarray | None = None
    ) -> None:
        self.feature_names = feature_names
        self.input_to_feature = input_to_feature

    def _to_features(self, values: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
        if self.input_to_feature is None:
            names = self.feature_names or [f"x{index}" for index in range(values.shape[1])]
            return values, tuple(str(name) for name in names)
        names = tuple(str(name) for name in self.feature_names)
        return aggregate_inputs(values, self.input_to_feature, len(names)), names


class INNExplainer(_FeatureMapping):
    """The exact explanation of an INN estimator: its generated weights times the inputs."""

    def explain(self, model, X) -> Attribution:
        return self.from_explanation(model.explain(X))

    def from_explanation(self, explanation) -> Attribution:
        """The attribution over original features of an ``Explanation`` already computed by ``model.explain``."""
        values, names = self._to_features(explanation.contributions)
        return Attribution(values=values, baseline=explanation.bias, output=explanation.logits, feature_names=names)


class GradientTimesInput(_FeatureMapping):
    """Gradient × input of the logits, for any fitted estimator of ``models.estimators``.

    Not exact for a non-linear network: ``baseline`` is what the attributions leave unexplained.
    """

    def __init__(self, *args, batch_size: int = 1024, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.batch_size = batch_size

    def explain(self, model, X) -> Attribution:
        x = np.asarray(X, dtype=np.float32)
        network = model.model_
        network.eval()
        device = next(network.parameters()).device
        gradient: np.ndarray | None = None  # (N, D, C), allocated once the first batch shows C
        output: np.ndarray | None = None  # (N, C)
        # Gradients with respect to the inputs only: parameters need none, and batches never build on each
        # other, so memory stays at one batch of activations plus the output arrays.
        with flush_denormals(device.type == "cpu"), limit_threads(getattr(model, "threads_", None)):
            for start in range(0, max(x.shape[0], 1), self.batch_size):
                end = min(start + self.batch_size, x.shape[0])
                batch = torch.from_numpy(x[start:end]).to(device).requires_grad_(True)
                with torch.enable_grad():
                    logits, _ = network(batch)
                    n_outputs = logits.shape[1]
                    per_output = [
                        torch.autograd.grad(logits[:, c].sum(), batch, retain_graph=c < n_outputs - 1)[0]
                        for c in range(n_outputs)
                    ]
                if gradient is None:
                    gradient = np.empty((x.shape[0], x.shape[1], n_outputs), dtype=np.float32)
                    output = np.empty((x.shape[0], n_outputs), dtype=np.float32)
                gradient[start:end] = torch.stack(per_output, dim=-1).cpu().numpy()
                output[start:end] = logits.detach().cpu().numpy()
        contributions = np.multiply(gradient, x[:, :, None], out=gradient)  # in place: gradient is not returned
        baseline = output - contributions.sum(axis=1)
        values, names = self._to_features(contributions)
        return Attribution(values=values, baseline=baseline, output=output, feature_names=names)
