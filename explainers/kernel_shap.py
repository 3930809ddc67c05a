"""KernelSHAP (Lundberg & Lee 2017) from ``shap.KernelExplainer``: Shapley values as a weighted regression.

KernelSHAP samples coalitions, evaluates ``v_x(S) = mean_b f(x_S, b_¬S)`` over the background rows and solves the
Shapley-kernel weighted least squares with the efficiency constraint, so ``Σ_j φ_j = f(x) − E_b f``. With few
features (``2^F − 2`` at most ``n_samples``) it enumerates every coalition and is exact for that game; otherwise
the values are estimates. The background sample has ``background_size`` rows (shap recommends a summary, as its
cost is linear in it). ``l1_reg`` is off: every feature gets a value. shap draws coalitions from NumPy's global
generator; it is seeded for the call and restored after, so results depend on ``seed`` only. With a feature
grouping, shap sees feature tokens (:class:`~explainers.posthoc.TokenModel`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from explainers.exact_shap import import_shap, shap_array, shap_inputs
from explainers.posthoc import BackgroundSampleExplainer, Predict, SampleOptions
from models.attribution import Attribution

if TYPE_CHECKING:
    from typing import Unpack


class KernelShap(BackgroundSampleExplainer):
    """KernelSHAP values from ``shap.KernelExplainer``.

    Args:
        predict: the model, ``(M, D) -> (M,)`` or ``(M, C)``.
        background: background rows ``(B, D)``; ``background_size`` of them are drawn with ``seed``.
        n_samples: coalitions per row (``"auto"``: shap's ``2F + 2048``, capped at the ``2^F − 2`` that exist).
        background_size: background rows kept (``None``: all).
        seed: seed of the background sample and of shap's coalition draws.
        input_to_feature, feature_names, output_name, chunk_size: see :class:`~explainers.posthoc.PostHocExplainer`.
    """

    id = "kernel_shap"
    exact = False

    def __init__(
        self,
        predict: Predict,
        background: np.ndarray,
        *,
        n_samples: int | str = "auto",
        **options: Unpack[SampleOptions],
    ) -> None:
        super().__init__(predict, background, **options)
        if n_samples != "auto" and (not isinstance(n_samples, int | np.integer) or n_samples < 1):
            raise ValueError(f"n_samples must be 'auto' or an integer >= 1, got {n_samples!r}")
        self.n_samples = n_samples

    def explain(self, X: Any) -> Attribution:
        """KernelSHAP values ``(N, F, C)``; ``rest`` is what they leave of the output (``E_b f`` up to rounding)."""
        shap = import_shap()
        X = self.check_rows(X)
        output = self.outputs(X)
        function, rows, data = shap_inputs(self, X, output.shape[1])
        # shap draws coalitions from NumPy's global generator: seed it for this call and give the caller's back.
        state = np.random.get_state()  # noqa: NPY002 - restored below
        np.random.seed(self.seed)  # noqa: NPY002 - shap reads the legacy global generator
        try:
            explainer = shap.KernelExplainer(function, data)
            raw = explainer.shap_values(rows, nsamples=self.n_samples, l1_reg=False, silent=True)
        finally:
            np.random.set_state(state)  # noqa: NPY002 - the caller's state back
        values = shap_array(raw, X.shape[0], self.grouping.n_features)
        base = np.broadcast_to(np.asarray(explainer.expected_value, dtype=np.float64).reshape(1, -1), output.shape)
        return self.attribution(values, output, reference_name=self.sample_name, extras={"base_value": np.array(base)})
