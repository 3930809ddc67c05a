"""Method ids -> human labels and colours, and metric labels: the plots read them from the method registry.

Labels and colours are defined once, in ``methods.REGISTRY``. A run id ``<method>-<variant>`` (a penalty
strength, an ablation) is labelled ``Label (variant)`` and drawn in its method's colour, lightened by a stable
amount per variant, so variants of one method read as a family. An unknown id still gets a readable label and
a stable colour.
"""

from __future__ import annotations

import colorsys
import zlib
from collections.abc import Iterable

from methods import REGISTRY, parse_run_id

METHOD_LABELS: dict[str, str] = {method: spec.label for method, spec in REGISTRY.items()}
METHOD_COLORS: dict[str, str] = {method: spec.color for method, spec in REGISTRY.items()}

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
    "explain_time": "Explanation time (s)",
}


def method_label(method: str) -> str:
    """The human label of a method or run id; unknown ids become title case (``my_model`` -> ``My Model``)."""
    base, variant = parse_run_id(method)
    label = METHOD_LABELS.get(base, base.replace("_", " ").title())
    return f"{label} ({variant})" if variant else label


def method_color(method: str) -> str:
    """The colour of a method or run id; unknown ids get a fallback that is the same in every figure."""
    base, variant = parse_run_id(method)
    color = METHOD_COLORS.get(base) or _FALLBACK_COLORS[zlib.crc32(base.encode()) % len(_FALLBACK_COLORS)]
    if variant is None:
        return color
    return _shade(color, 0.25 + 0.5 * (zlib.crc32(variant.encode()) % 1000) / 1000)


def _shade(color: str, amount: float) -> str:
    """``color`` lightened (towards white) by ``amount`` in [0, 1] of its remaining lightness."""
    red, green, blue = (int(color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    hue, lightness, saturation = colorsys.rgb_to_hls(red, green, blue)
    lightness = lightness + (1 - lightness) * amount * 0.8
    red, green, blue = colorsys.hls_to_rgb(hue, lightness, saturation)
    return "#" + "".join(f"{round(channel * 255):02X}" for channel in (red, green, blue))


def method_order(methods: Iterable[str]) -> list[str]:
    """Run ids in registry order of their method (variants after their method, alphabetically), unknown ones last."""
    unique = set(methods)
    order = {method: position for position, method in enumerate(REGISTRY)}

    def key(name: str) -> tuple[int, str, str]:
        base, variant = parse_run_id(name)
        return (order.get(base, len(order)), base if base not in order else "", variant or "")

    return sorted(unique, key=key)


def metric_label(metric: str) -> str:
    """The human label of a metric key (``test_auroc`` -> ``Test AUROC``)."""
    return METRIC_LABELS.get(metric, metric.replace("_", " ").capitalize())
