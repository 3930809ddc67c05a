"""The Explainable Boosting Machine (EBM) baseline: interpret's glass-box GAM, seeded and on native categoricals.

An EBM predicts ``intercept + Σ_t g_t`` over one-feature shape functions and a few two-feature ones, learned
by cyclic gradient boosting; the terms are its exact explanation (``explainers.ebm``). It takes the unencoded
frame (categorical columns as strings, declared ``nominal``; numerical ones ``continuous``), so no encoding
choice of ours changes what it learns. ``interpret-core`` is optional: a missing package raises
:class:`~errors.MissingDependencyError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from errors import MissingDependencyError

if TYPE_CHECKING:
    from data import PreparedSplit


def build_ebm(split: PreparedSplit, *, seed: int, device: Any, n_jobs: int, params: dict[str, Any]) -> Any:
    """An unfitted ``ExplainableBoostingClassifier`` (or ``Regressor``) for ``split``'s frame, seeded by ``seed``.

    EBM has no GPU path; ``device`` is ignored. Classification is not re-weighted: interpret's EBM has no class
    weights parameter (sample weights would change its bagging), so it fits the data's own class balance.
    """
    try:
        from interpret.glassbox import ExplainableBoostingClassifier, ExplainableBoostingRegressor
    except ImportError as exc:
        raise MissingDependencyError("interpret-core", "the EBM baseline") from exc
    categorical = set(split.categorical_feature_names)
    options = {
        "feature_names": list(split.feature_names),
        "feature_types": ["nominal" if name in categorical else "continuous" for name in split.feature_names],
        "random_state": seed,
        "n_jobs": n_jobs,
        **params,
    }
    if split.task == "regression":
        return ExplainableBoostingRegressor(**options)
    return ExplainableBoostingClassifier(**options)
