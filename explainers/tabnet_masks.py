"""TabNet's attention masks as local explanations: unsigned and not additive.

TabNet's ``explain`` aggregates, per example, the feature-selection masks of its decision steps weighted by
each step's contribution. The values say how much the model *attended* to a feature, not in which direction it
moved the output, and they do not add up to any output (``rest`` is NaN, ``signed`` is False). They are
relative to no reference point. The explained output is the probability of the predicted class
(classification) or the prediction (regression), one column.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.attribution import Attribution


class TabNetMaskExplainer:
    """Per-example attention masks of a fitted ``models.baselines.TabNetBaseline``."""

    id = "tabnet_masks"
    exact = False

    @staticmethod
    def output(model, X) -> np.ndarray:
        """The output shown beside the masks, ``(N, 1)``: the probability of the predicted class (regression:
        the prediction)."""
        x = np.asarray(X, dtype=np.float32)
        if model.task == "regression":
            return np.asarray(model.predict(x), dtype=np.float64).reshape(-1, 1)
        return np.asarray(model.predict_proba(x), dtype=np.float64).max(axis=1, keepdims=True)

    def explain(self, model, X, *, feature_names: Sequence[str] | None = None, **_: object) -> Attribution:
        """Masks over the input columns ``(N, D, 1)``; reference arguments are accepted and ignored."""
        x = np.asarray(X, dtype=np.float32)
        masks = np.asarray(model.explain(x), dtype=np.float64)
        if model.task == "regression":
            output = np.asarray(model.predict(x), dtype=np.float64).reshape(-1, 1)
            output_name = "prediction"
        else:
            output = np.asarray(model.predict_proba(x), dtype=np.float64).max(axis=1, keepdims=True)
            output_name = "probability of the predicted class"
        names = feature_names if feature_names is not None else [f"x{j}" for j in range(x.shape[1])]
        return Attribution(
            values=masks[:, :, None],
            rest=np.full_like(output, np.nan),
            output=output,
            feature_names=tuple(names),
            explainer=self.id,
            exact=False,
            reference=None,
            reference_name="none (attention masks)",
            output_name=output_name,
            signed=False,
        )
