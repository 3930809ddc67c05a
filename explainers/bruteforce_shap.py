"""Brute-force interventional SHAP: exact Shapley values over a background sample, by enumerating coalitions.

``v_x(S) = mean_b f(x_S, b_¬S)`` over the background rows ``b`` for all ``2^F`` coalitions of original features
(a feature's columns move together), then the classical Shapley weights (``models.shapley.shapley_matrix``). The
values are exact for that game: ``Σ_j φ_j + v(∅) = f(x)``, and for a linear model ``φ_j = w_j (x_j − mean_b b_j)``.
XAI-Bench's ``brutekernelshap`` ("K. SHAP" in the IMN paper's figures) computes the same game but solves the
KernelSHAP regression without an intercept, which shifts every value by about ``v(∅)/F``; ``compat=True``
reproduces that estimator (``models.shapley.kernel_shap_without_intercept``). Cost: ``N · 2^F · B`` model inputs,
sent in large batches; ``F`` is at most ``models.shapley.MAX_SHAPLEY_FEATURES``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from explainers.posthoc import BackgroundSampleExplainer, Predict, SampleOptions, interventional_values
from models.attribution import Attribution
from models.shapley import coalition_masks, kernel_shap_without_intercept, shapley_matrix

if TYPE_CHECKING:
    from typing import Unpack


class BruteForceShap(BackgroundSampleExplainer):
    """Exact interventional Shapley values over a background sample.

    Args:
        predict: the model, ``(M, D) -> (M,)`` or ``(M, C)``.
        background: background rows ``(B, D)``; ``background_size`` of them are drawn with ``seed``.
        compat: XAI-Bench's KernelSHAP regression without intercept instead of the Shapley formula.
        background_size, seed: the background sample, see :class:`~explainers.posthoc.BackgroundSampleExplainer`.
        input_to_feature, feature_names, output_name, chunk_size: see :class:`~explainers.posthoc.PostHocExplainer`.
    """

    id = "bruteforce_shap"
    exact = True

    def __init__(
        self, predict: Predict, background: np.ndarray, *, compat: bool = False, **options: Unpack[SampleOptions]
    ) -> None:
        super().__init__(predict, background, **options)
        self.compat = compat
        self.exact = not compat  # the no-intercept estimate does not add up to the output

    def coalition_values(self, X: np.ndarray) -> np.ndarray:
        """``v_x(S)`` of every row and coalition in the order of ``xai.shapley.coalition_masks``.

        Shape:
            X ``(N, D)`` -> ``(N, 2^F, C)``
        """
        masks = coalition_masks(self.grouping.n_features)
        return interventional_values(self.predict, X, masks, self.sample, self.grouping, chunk_size=self.chunk_size)

    def explain(self, X: Any) -> Attribution:
        """Shapley values ``(N, F, C)``; ``rest`` is ``v(∅)``, the mean output over the background sample."""
        X = self.check_rows(X)
        values = self.coalition_values(X)  # (N, 2^F, C)
        output = values[:, -1, :]  # the full coalition is f(x) itself
        if self.compat:
            phi = np.stack([kernel_shap_without_intercept(values[:, :, c]) for c in range(values.shape[2])], axis=2)
            rest = None
        else:
            phi = np.einsum("nkc,kf->nfc", values, shapley_matrix(self.grouping.n_features))
            rest = values[:, 0, :]
        return self.attribution(
            phi,
            output,
            rest=rest,
            reference_name=self.sample_name,
            extras={"base_value": values[:, 0, :]},
        )
