"""shap's exact explainer: interventional Shapley values by enumerating coalitions, with an ``Independent`` masker.

This is XAI-Bench's ``shap`` explainer: ``shap.Explainer(f, X_train)`` resolves, for a few features, to
``shap.explainers.Exact`` with an ``Independent`` masker that keeps 100 background rows. Here the background
sample is drawn once (``background_size`` rows, seeded) and handed to the masker whole, so the values are the
exact Shapley values of ``v_x(S) = mean_b f(x_S, b_¬S)`` and equal :class:`~explainers.bruteforce_shap.BruteForceShap`
on the same sample. With a feature grouping, shap sees feature tokens (:class:`~explainers.posthoc.TokenModel`),
so a masked feature takes all its columns from one background row. ``shap`` is optional
(:class:`~errors.MissingDependencyError` without it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from errors import MissingDependencyError
from explainers.attribution import Attribution
from explainers.posthoc import (
    DEFAULT_BACKGROUND_SIZE,
    DEFAULT_CHUNK_SIZE,
    PostHocExplainer,
    Predict,
    TokenModel,
    predict_outputs,
    sample_background,
)


def import_shap() -> Any:
    """The ``shap`` package, or a one-line error naming it."""
    try:
        import shap
    except ImportError as exc:
        raise MissingDependencyError("shap", "the SHAP explainers") from exc
    return shap


def shap_array(values: Any, n_rows: int, n_features: int) -> np.ndarray:
    """shap's values (an array ``(N, F)`` / ``(N, F, C)`` or a list of ``(N, F)`` per output) as ``(N, F, C)``."""
    if isinstance(values, list):
        values = np.stack([np.asarray(part, dtype=np.float64) for part in values], axis=-1)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 2:
        values = values[:, :, None]
    if values.shape[:2] != (n_rows, n_features):
        raise ValueError(f"shap returned values of shape {values.shape}, expected ({n_rows}, {n_features}, C)")
    return values


class ExactShap(PostHocExplainer):
    """Exact interventional SHAP values from ``shap.explainers.Exact``.

    Args:
        predict: the model, ``(M, D) -> (M,)`` or ``(M, C)``.
        background: background rows ``(B, D)``; ``background_size`` of them are drawn with ``seed``.
        background_size: background rows kept (``None``: all; shap's default keeps 100).
        seed: seed of the background sample.
        input_to_feature, feature_names, output_name, chunk_size: see :class:`~explainers.posthoc.PostHocExplainer`.
    """

    id = "exact_shap"
    exact = True

    def __init__(
        self,
        predict: Predict,
        background: np.ndarray,
        *,
        background_size: int | None = DEFAULT_BACKGROUND_SIZE,
        seed: int = 0,
        input_to_feature: Sequence[int] | np.ndarray | None = None,
        feature_names: Sequence[str] | None = None,
        output_name: str = "prediction",
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        super().__init__(
            predict,
            background,
            input_to_feature=input_to_feature,
            feature_names=feature_names,
            output_name=output_name,
            chunk_size=chunk_size,
        )
        self.sample = sample_background(self.background, background_size, seed)

    def explain(self, X: Any) -> Attribution:
        """SHAP values ``(N, F, C)``; ``rest`` is shap's base value, the mean output over the background sample."""
        shap = import_shap()
        X = self.check_rows(X)
        output = self.outputs(X)
        n_outputs = output.shape[1]
        if self.grouping.identity:
            model, rows, data = self.predict, X, self.sample
        else:
            tokens = TokenModel(self.predict, X, self.sample, self.grouping, chunk_size=self.chunk_size)
            model, rows, data = tokens, tokens.row_tokens, tokens.background_tokens

        def function(points: np.ndarray) -> np.ndarray:
            values = predict_outputs(model, np.asarray(points, dtype=np.float64), self.chunk_size)
            return values[:, 0] if n_outputs == 1 else values

        masker = shap.maskers.Independent(data, max_samples=data.shape[0])
        explanation = shap.explainers.Exact(function, masker)(rows, silent=True)
        values = shap_array(explanation.values, X.shape[0], self.grouping.n_features)
        base = np.asarray(explanation.base_values, dtype=np.float64).reshape(X.shape[0], n_outputs)
        return self.attribution(
            values,
            output,
            rest=base,
            reference_name=f"background sample ({self.sample.shape[0]} rows)",
            extras={"base_value": base},
        )
