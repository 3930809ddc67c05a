"""INN-Shapley's native explanation: the centred read-outs of its contributions (exact, free, constant rest).

``φ_j(x) = ψ_j(x) − E_train[ψ_j(X)]`` with ``rest = E_train[f(X)]`` (``models.inn_shapley``): one forward pass, no
sampling or background at explanation time. ``INNShapleyExplainer`` reads it out of a fitted estimator and refuses
any other model.
"""

from __future__ import annotations

import numpy as np

from explainers.inn import _network_output
from models.attribution import Attribution, ReferenceKind


class INNShapleyExplainer:
    """The exact explanation of an ``INNShapleyClassifier``/``INNShapleyRegressor``."""

    id = "inn_shapley"
    exact = True

    def explain(self, model, X, *, reference: ReferenceKind | np.ndarray = "mean") -> Attribution:
        """Attributions over the model's input columns ``(N, D, C)`` (see ``models.inn_shapley._INNShapley.explain``;
        relative to the training distribution, so ``reference`` changes nothing).

        Raises:
            TypeError: ``model`` is not an INN-Shapley estimator.
        """
        from models.inn_shapley import _INNShapley

        if not isinstance(model, _INNShapley):
            raise TypeError(f"INNShapleyExplainer explains INN-Shapley estimators only, not {type(model).__name__}")
        return model.explain(X, reference=reference)

    @staticmethod
    def output(model, X) -> np.ndarray:
        """The output this explanation explains, ``(N, C)``: logits (classifiers) or predictions (regressors)."""
        return _network_output(model, X)
