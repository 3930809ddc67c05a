"""Explainers: one module per method, each returning an :class:`~explainers.attribution.Attribution`.

Native explainers explain one kind of model exactly (or as the model itself defines it) and are named by the
method registry (``methods.MethodSpec.explainer``); post-hoc explainers take a forward function (captum's
convention) and explain any model. Modules are imported when an explainer is asked for, so importing this
package loads no machine-learning library.
"""

from __future__ import annotations

import importlib
from typing import Any

from explainers.attribution import (
    DEFAULT_REFERENCE,
    IMPORTANCE_KINDS,
    REFERENCE_KINDS,
    Attribution,
    aggregate_columns,
    linear_attribution,
    reference_point,
)


class _Lazy(dict):
    """``id -> explainer class``, importing each module on first use."""

    def __init__(self, locations: dict[str, str]) -> None:
        super().__init__()
        self._locations = locations

    def __getitem__(self, key: str) -> Any:
        if key not in self._locations:
            raise KeyError(f"unknown explainer {key!r}; known: {sorted(self._locations)}")
        module, name = self._locations[key].split(":")
        return getattr(importlib.import_module(module), name)

    def __contains__(self, key: object) -> bool:
        return key in self._locations

    def __iter__(self):
        return iter(self._locations)

    def __len__(self) -> int:
        return len(self._locations)

    def keys(self):
        return self._locations.keys()


#: Native explainers by id: ``explain(model, X, *, reference, ...) -> Attribution`` over the model's inputs.
NATIVE_EXPLAINERS = _Lazy(
    {
        "inn": "explainers.inn:INNExplainer",
        "gradient_x_input": "explainers.gradient:NetworkGradientExplainer",
        "linear": "explainers.linear:LinearExplainer",
        "tree_shap": "explainers.tree_shap:TreeShapExplainer",
        "catboost_shap": "explainers.catboost_shap:CatBoostShapExplainer",
        "tabnet_masks": "explainers.tabnet_masks:TabNetMaskExplainer",
        "ebm": "explainers.ebm:EBMExplainer",
    }
)

__all__ = [
    "DEFAULT_REFERENCE",
    "IMPORTANCE_KINDS",
    "NATIVE_EXPLAINERS",
    "REFERENCE_KINDS",
    "Attribution",
    "aggregate_columns",
    "linear_attribution",
    "reference_point",
]
