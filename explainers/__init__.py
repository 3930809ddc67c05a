"""Explainers: one module per method, each returning an :class:`~models.attribution.Attribution`.

Native explainers explain one kind of model exactly (or as the model itself defines it) and are named by the
method registry (``methods.MethodSpec.explainer``); post-hoc explainers (:data:`POSTHOC_EXPLAINERS`, base and
shared pieces in ``explainers.posthoc``) take a predict or forward function and background rows (captum's
convention) and explain any model. Modules are imported when an explainer is asked for, so importing this
package loads no machine-learning library.
"""

from __future__ import annotations

import importlib
from typing import Any

from models.attribution import (
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


#: Post-hoc explainers by id (captum's convention): ``cls(predict or forward, background, ...)`` or
#: ``cls.from_target(explainers.posthoc.ExplanationTarget, seed=..., **options)``, then ``explain(X) -> Attribution``
#: over ORIGINAL features (a feature's encoded columns move together). ``cls.requires`` says what of a model they
#: need: ``predict`` (any model), ``forward`` (a differentiable torch function) or ``model`` (a project network).
POSTHOC_EXPLAINERS = _Lazy(
    {
        "random": "explainers.random_attribution:RandomExplainer",
        "exact_shap": "explainers.exact_shap:ExactShap",
        "kernel_shap": "explainers.kernel_shap:KernelShap",
        "bruteforce_shap": "explainers.bruteforce_shap:BruteForceShap",
        "lime": "explainers.lime_tabular:Lime",
        "maple": "explainers.maple:Maple",
        "breakdown": "explainers.breakdown:BreakDown",
        "integrated_gradients": "explainers.integrated_gradients:IntegratedGradients",
        "gradient_x_input": "explainers.gradient:GradientXInput",
        "cd": "explainers.cd:ContextualDecomposition",
    }
)
#: The post-hoc explainers' labels and colours in every table and figure (native explanations use their method's
#: label and colour from ``methods.REGISTRY``). Colours avoid the methods' Okabe-Ito colours.
POSTHOC_LABELS: dict[str, str] = {
    "random": "Random",
    "exact_shap": "SHAP",
    "kernel_shap": "KernelSHAP",
    "bruteforce_shap": "BF-SHAP",
    "lime": "LIME",
    "maple": "MAPLE",
    "breakdown": "BreakDown",
    "integrated_gradients": "IG",
    "gradient_x_input": "Grad×Input",
    "cd": "CD",
}
POSTHOC_COLORS: dict[str, str] = {
    "random": "#9E9E9E",
    "exact_shap": "#332288",
    "kernel_shap": "#6699CC",
    "bruteforce_shap": "#44AA99",
    "lime": "#117733",
    "maple": "#A6761D",
    "breakdown": "#CC6677",
    "integrated_gradients": "#882255",
    "gradient_x_input": "#7570B3",
    "cd": "#222222",
}

__all__ = [
    "DEFAULT_REFERENCE",
    "IMPORTANCE_KINDS",
    "POSTHOC_COLORS",
    "POSTHOC_EXPLAINERS",
    "POSTHOC_LABELS",
    "REFERENCE_KINDS",
    "Attribution",
    "aggregate_columns",
    "linear_attribution",
    "reference_point",
]
