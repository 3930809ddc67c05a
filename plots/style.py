"""Method ids -> human labels and colours, and metric labels: the one place the plots take them from.

Method ids are the frozen directory names of the results tree (``experiments.results.METHODS``). Colours come
from the colour-blind-safe Okabe-Ito palette; INN gets the strongest one because it is the method under study.
An unknown method (a new baseline) still gets a readable label and a stable grey-ish colour.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from experiments.results import METHODS

METHOD_LABELS: dict[str, str] = {
    "inn": "INN",
    "tabresnet": "TabResNet",
    "catboost": "CatBoost",
    "random_forest": "Random Forest",
    "logistic_regression": "Logistic Regression",
    "decision_tree": "Decision Tree",
    "tabnet": "TabNet",
}

METHOD_COLORS: dict[str, str] = {
    "inn": "#D55E00",  # vermilion
    "tabresnet": "#0072B2",  # blue
    "catboost": "#009E73",  # bluish green
    "random_forest": "#E69F00",  # orange
    "logistic_regression": "#CC79A7",  # reddish purple
    "decision_tree": "#56B4E9",  # sky blue
    "tabnet": "#F0E442",  # yellow
}

# Fallback colours for methods this module does not know, picked by a stable hash of the id.
_FALLBACK_COLORS = ("#666666", "#8C564B", "#7F7F7F", "#BCBD22", "#17BECF", "#9467BD")

METRIC_LABELS: dict[str, str] = {
    "test_auroc": "Test AUROC",
    "train_auroc": "Train AUROC",
    "test_accuracy": "Test accuracy",
    "train_accuracy": "Train accuracy",
    "test_mse": "Test MSE",
    "train_mse": "Train MSE",
    "train_time": "Training time (s)",
    "inference_time": "Inference time (s)",
}


def method_label(method: str) -> str:
    """The human label of a method id; unknown ids become title case (``my_model`` -> ``My Model``)."""
    return METHOD_LABELS.get(method, method.replace("_", " ").title())


def method_color(method: str) -> str:
    """The colour of a method id; unknown ids get a fallback that is the same in every figure."""
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    return _FALLBACK_COLORS[zlib.crc32(method.encode()) % len(_FALLBACK_COLORS)]


def method_order(methods: Iterable[str]) -> list[str]:
    """Methods in the canonical order of ``experiments.results.METHODS``, unknown ones last, alphabetically."""
    unique = set(methods)
    known = [method for method in METHODS if method in unique]
    return known + sorted(unique - set(METHODS))


def metric_label(metric: str) -> str:
    """The human label of a metric key (``test_auroc`` -> ``Test AUROC``)."""
    return METRIC_LABELS.get(metric, metric.replace("_", " ").capitalize())
