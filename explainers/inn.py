"""INN's native explanation: the per-example linear model the hypernetwork generated (exact, free).

INN predicts ``[x, 1]·W(x)``; the explanation is that product split per input column, relative to a reference
point (default: the training mean). ``INNExplainer`` only reads it out of a fitted estimator; it refuses a
model that generates no weights, since no other model's output is a linear model of its inputs.
"""

from __future__ import annotations

import numpy as np

from models.attribution import Attribution, ReferenceKind


class INNExplainer:
    """The exact explanation of an INN estimator (``INNClassifier``/``INNRegressor`` or any model with ``explain``)."""

    id = "inn"
    exact = True

    def explain(self, model, X, *, reference: ReferenceKind | np.ndarray = "mean") -> Attribution:
        """Attributions over the model's input columns ``(N, D, C)`` (see ``INNClassifier.explain``).

        Raises:
            TypeError: ``model`` is not an INN (it generates no per-example linear models).
        """
        explain = getattr(model, "explain", None)
        if explain is None:
            raise TypeError(
                f"INNExplainer explains INN estimators only; {type(model).__name__} generates no per-example "
                "linear model (use a post-hoc explainer such as gradient_x_input)"
            )
        return explain(X, reference=reference)

    @staticmethod
    def output(model, X) -> np.ndarray:
        """The output this explanation explains, ``(N, C)``, without explaining: logits (predictions)."""
        return _network_output(model, X)


def _network_output(model, X) -> np.ndarray:
    if hasattr(model, "decision_function"):
        scores = np.asarray(model.decision_function(X), dtype=np.float64)
    else:
        scores = np.asarray(model.predict(X), dtype=np.float64)
    return scores.reshape(scores.shape[0], -1)
