"""The exact explanation of an Explainable Boosting Machine (EBM), relative to a reference row.

An EBM's logit (prediction for regression) is ``intercept + Σ_t g_t(x_{T_t})`` over main terms (one feature)
and pair terms (two features). Relative to a reference row ``m``, a main term gives its feature
``g_j(x_j) − g_j(m_j)``; a pair term ``g_ij`` is shared by its exact Shapley split,
``φ_i = ½[g(x_i, m_j) − g(m_i, m_j)] + ½[g(x_i, x_j) − g(m_i, x_j)]`` (and symmetrically ``φ_j``), which adds
up to ``g(x_i, x_j) − g(m_i, m_j)``. Because Shapley values are linear and the EBM is a sum of terms, the result
is exactly the Shapley value of the whole model for the game ``v(S) = f(x_S, m_¬S)``: additive
(``Σ values + rest = output`` with ``rest = f(m)``), and zero for a row equal to ``m``. The pair terms'
own contributions ``g_ij(x) − g_ij(m)`` are kept in ``extras["pair_values"]`` with their names in
``extras["pair_names"]``, so a figure can show them separately.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from models.attribution import Attribution


class EBMExplainer:
    """Exact, reference-relative attributions of a fitted ``ExplainableBoosting{Classifier,Regressor}``."""

    id = "ebm"
    exact = True

    @staticmethod
    def output(model, X: pd.DataFrame) -> np.ndarray:
        """The output this explanation explains, ``(N, C)``: the logit (regression: the prediction)."""
        output = np.asarray(model.decision_function(X) if hasattr(model, "classes_") else model.predict(X))
        return output.reshape(len(X), -1).astype(np.float64)

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
        n, n_features = len(X), X.shape[1]
        terms = list(model.term_features_)
        if any(len(term) > 2 for term in terms):
            raise ValueError("EBM explanations support main and pair terms only (the EBM has higher-order terms)")

        def evaluate(frame: pd.DataFrame) -> np.ndarray:
            values = np.asarray(model.eval_terms(frame), dtype=np.float64)
            return values if values.ndim == 3 else values[:, :, None]  # (rows, T, C)

        full = evaluate(X)
        at_reference = evaluate(reference)[0]  # (T, C)
        # Pair terms need each pair with one of its features at the reference: evaluate X with column k at the
        # reference, for every feature k that appears in a pair, as one batch.
        paired = sorted({feature for term in terms if len(term) == 2 for feature in term})
        with_reference: dict[int, np.ndarray] = {}
        if paired:
            stacked = pd.concat([X.assign(**{X.columns[k]: reference.iloc[0, k]}) for k in paired], ignore_index=True)
            evaluated = evaluate(stacked.astype(X.dtypes.to_dict()))
            with_reference = {k: evaluated[i * n : (i + 1) * n] for i, k in enumerate(paired)}
        n_outputs = full.shape[2]
        values = np.zeros((n, n_features, n_outputs))
        pair_values, pair_names = [], []
        for t, term in enumerate(terms):
            if len(term) == 1:
                values[:, term[0], :] += full[:, t, :] - at_reference[t]
                continue
            i, j = term
            x_i_m_j = with_reference[j][:, t, :]  # g(x_i, m_j)
            m_i_x_j = with_reference[i][:, t, :]  # g(m_i, x_j)
            values[:, i, :] += 0.5 * (x_i_m_j - at_reference[t]) + 0.5 * (full[:, t, :] - m_i_x_j)
            values[:, j, :] += 0.5 * (m_i_x_j - at_reference[t]) + 0.5 * (full[:, t, :] - x_i_m_j)
            pair_values.append(full[:, t, :] - at_reference[t])
            pair_names.append(f"{X.columns[i]} x {X.columns[j]}")
        intercept = np.atleast_1d(np.asarray(model.intercept_, dtype=np.float64))
        rest = np.broadcast_to(intercept + at_reference.sum(axis=0), (n, n_outputs)).copy()
        classifier = hasattr(model, "classes_")
        output = np.asarray(model.decision_function(X) if classifier else model.predict(X), dtype=np.float64)
        names = feature_names if feature_names is not None else [str(column) for column in X.columns]
        extras: dict[str, np.ndarray] = {"reference_row": reference.astype(str).to_numpy()[0]}
        if pair_values:
            extras["pair_values"] = np.stack(pair_values, axis=1)
            extras["pair_names"] = np.asarray(pair_names, dtype=str)
        return Attribution(
            values=values,
            rest=rest,
            output=output.reshape(n, -1),
            feature_names=tuple(names),
            explainer=self.id,
            exact=True,
            reference=None,
            reference_name=reference_name,
            output_name="logit" if classifier else "prediction",
            extras=extras,
        )
