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

from collections.abc import Callable
from typing import Any

import numpy as np

from errors import MissingDependencyError
from explainers.posthoc import BackgroundSampleExplainer, TokenModel, predict_outputs
from models.attribution import Attribution


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


def shap_inputs(
    explainer: BackgroundSampleExplainer, X: np.ndarray, n_outputs: int
) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray, np.ndarray]:
    """The model, the rows and the background data that shap is handed to explain ``X`` with ``explainer``.

    Without a feature grouping they are the explainer's model, ``X`` and its background sample; with one, feature
    tokens (:class:`~explainers.posthoc.TokenModel`), so that shap's column masking moves whole features. The
    model returns a vector for a single output, as shap expects.

    Shape:
        X ``(N, D)`` -> model ``(M, K) -> (M,)`` or ``(M, C)``, rows ``(N, K)``, data ``(B, K)`` (``K``: ``D`` or ``F``)
    """
    if explainer.grouping.identity:
        model, rows, data = explainer.predict, X, explainer.sample
    else:
        tokens = TokenModel(explainer.predict, X, explainer.sample, explainer.grouping, chunk_size=explainer.chunk_size)
        model, rows, data = tokens, tokens.row_tokens, tokens.background_tokens

    def function(points: np.ndarray) -> np.ndarray:
        values = predict_outputs(model, np.asarray(points, dtype=np.float64), explainer.chunk_size)
        return values[:, 0] if n_outputs == 1 else values

    return function, rows, data


class ExactShap(BackgroundSampleExplainer):
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

    def explain(self, X: Any) -> Attribution:
        """SHAP values ``(N, F, C)``; ``rest`` is shap's base value, the mean output over the background sample."""
        shap = import_shap()
        X = self.check_rows(X)
        output = self.outputs(X)
        function, rows, data = shap_inputs(self, X, output.shape[1])
        masker = shap.maskers.Independent(data, max_samples=data.shape[0])
        explanation = shap.explainers.Exact(function, masker)(rows, silent=True)
        values = shap_array(explanation.values, X.shape[0], self.grouping.n_features)
        base = np.asarray(explanation.base_values, dtype=np.float64).reshape(X.shape[0], output.shape[1])
        return self.attribution(values, output, rest=base, reference_name=self.sample_name, extras={"base_value": base})
