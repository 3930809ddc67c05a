"""Exact Shapley values of a CatBoost model relative to one reference row (CatBoost's own TreeSHAP).

CatBoost computes interventional ("independent") Shapley values against ``reference_data``; with one reference
row ``m`` they add up exactly to ``f(x) − f(m)`` in the model's raw units (log-odds for classification, the
prediction for regression), natively, categorical features included. ``rest = f(m)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from models.attribution import Attribution


class CatBoostShapExplainer:
    """Interventional TreeSHAP of a fitted CatBoost classifier or regressor on its input frame."""

    id = "catboost_shap"
    exact = True

    @staticmethod
    def output(model, X: pd.DataFrame) -> np.ndarray:
        """The output this explanation explains, ``(N, C)``: CatBoost's raw formula value (log-odds)."""
        output = np.asarray(model.predict(X, prediction_type="RawFormulaVal"), dtype=np.float64)
        return output.reshape(len(X), -1)

    def explain(
        self,
        model,
        X: pd.DataFrame,
        *,
        reference: pd.DataFrame,
        reference_name: str,
        feature_names: Sequence[str] | None = None,
    ) -> Attribution:
        """Attributions over the frame's columns ``(N, F, C)`` (C = 1 for binary tasks and regression)."""
        import catboost

        cat_features = [int(i) for i in model.get_cat_feature_indices()]

        def pool(frame: pd.DataFrame):
            # CatBoost insists on labels for a classification loss even where none are used.
            return catboost.Pool(frame, label=np.zeros(len(frame)), cat_features=cat_features)

        shap_values = np.asarray(
            model.get_feature_importance(pool(X), type="ShapValues", reference_data=pool(reference)),
            dtype=np.float64,
        )
        if shap_values.ndim == 2:  # (N, F + 1): binary or regression
            values, rest = shap_values[:, :-1, None], shap_values[:, -1:]
        else:  # (N, C, F + 1): multiclass
            values, rest = shap_values[:, :, :-1].transpose(0, 2, 1), shap_values[:, :, -1]
        output = np.asarray(model.predict(X, prediction_type="RawFormulaVal"), dtype=np.float64)
        output = output.reshape(len(X), -1)
        classifier = hasattr(model, "classes_") and model.get_param("loss_function") != "RMSE"
        names = feature_names if feature_names is not None else [str(column) for column in X.columns]
        return Attribution(
            values=np.ascontiguousarray(values),
            rest=np.ascontiguousarray(rest),
            output=output,
            feature_names=tuple(names),
            explainer=self.id,
            exact=True,
            reference=None,
            reference_name=reference_name,
            output_name="logit" if classifier else "prediction",
            extras={"reference_row": reference.astype(str).to_numpy()[0]},
        )
