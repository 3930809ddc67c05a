"""The exact explanation of a linear baseline: coefficient × (input − reference), in the model's decision units.

The logistic-regression baseline is ``StandardScaler`` followed by ``LogisticRegression`` (classification) or
``Ridge`` (regression): ``f(x) = Σ_j β_j (x_j − μ_j) / σ_j + b``, so per input column ``β_j/σ_j · (x_j − m_j)``
plus ``rest = f(m)`` is exactly the decision function (logits; predictions for regression).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.attribution import Attribution, linear_attribution


class LinearExplainer:
    """Exact attributions of a fitted scikit-learn pipeline ``[StandardScaler,] LogisticRegression | Ridge``."""

    id = "linear"
    exact = True

    def explain(
        self, model, X, *, reference: np.ndarray, reference_name: str, feature_names: Sequence[str] | None = None
    ) -> Attribution:
        """Attributions over the input columns ``(N, D, C)`` (C = 1 for binary tasks and regression)."""
        steps = list(getattr(model, "steps", [(None, model)]))
        linear = steps[-1][1]
        coef = np.atleast_2d(np.asarray(linear.coef_, dtype=np.float64))  # (C, D)
        intercept = np.atleast_1d(np.asarray(linear.intercept_, dtype=np.float64))
        scale = np.ones(coef.shape[1])
        mean = np.zeros(coef.shape[1])
        for _, step in steps[:-1]:
            scale = scale * np.where(step.scale_ == 0, 1.0, step.scale_) if step.scale_ is not None else scale
            mean = step.mean_ if step.mean_ is not None else mean
        weights = (coef / scale[None, :]).T  # (D, C) on raw inputs
        bias = intercept - weights.T @ mean
        x = np.asarray(X, dtype=np.float64)
        decision = np.asarray(model.decision_function(X) if hasattr(model, "decision_function") else model.predict(X))
        output = decision.reshape(x.shape[0], -1).astype(np.float64)
        is_classifier = hasattr(linear, "classes_")
        names = feature_names if feature_names is not None else [f"x{j}" for j in range(x.shape[1])]
        return linear_attribution(
            weights,
            bias,
            x,
            reference,
            feature_names=names,
            explainer=self.id,
            reference_name=reference_name,
            output=output,
            output_name="logit" if is_classifier else "prediction",
        )

    @staticmethod
    def output(model, X) -> np.ndarray:
        """The output this explanation explains, ``(N, C)``: the decision function (regression: predictions)."""
        decision = np.asarray(model.decision_function(X) if hasattr(model, "decision_function") else model.predict(X))
        return decision.reshape(decision.shape[0], -1).astype(np.float64)
