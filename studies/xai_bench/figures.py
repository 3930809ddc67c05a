"""Figures of the interpretability benchmark: every metric against the feature correlation ρ.

One panel per metric (:func:`plot_metric_vs_rho` draws one on given axes), one line per explanation (mean over
seeds, with the min-max band across seeds), colours stable per explanation: a model's own explanation has its
method's colour (``methods.REGISTRY``), a post-hoc explainer its colour in ``explainers.POSTHOC_COLORS``, the
same explainer on another model a lighter shade of it. Models' own explanations are drawn thicker, Random dashed.
The input is the benchmark's tidy table (``studies.xai_bench.combine``).
"""

from __future__ import annotations

import colorsys
import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from studies.xai_bench.config import BENCHMARK_METRICS
from studies.xai_bench.tables import dataset_label, entry_order, metric_label

_FALLBACK = "#666666"


def _lighten(color: str, amount: float = 0.45) -> str:
    red, green, blue = (int(color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    hue, lightness, saturation = colorsys.rgb_to_hls(red, green, blue)
    lightness += (1 - lightness) * amount
    red, green, blue = colorsys.hls_to_rgb(hue, lightness, saturation)
    return "#" + "".join(f"{round(channel * 255):02X}" for channel in (red, green, blue))


def entry_style(explainer: str, model: str, native: bool) -> dict[str, object]:
    """Line style of one explanation: colour, width and dash (the same in every figure)."""
    from explainers import POSTHOC_COLORS
    from methods import REGISTRY
    from studies.xai_bench.config import DEFAULT_POSTHOC_MODELS

    if native:
        color = REGISTRY[model].color if model in REGISTRY else _FALLBACK
        return {"color": color, "linewidth": 2.6, "linestyle": "-", "marker": "o", "zorder": 3}
    color = POSTHOC_COLORS.get(explainer, _FALLBACK)
    if model not in DEFAULT_POSTHOC_MODELS:
        color = _lighten(color)
    return {
        "color": color,
        "linewidth": 1.5,
        "linestyle": "--" if explainer == "random" else "-",
        "marker": ".",
        "zorder": 2,
    }


def plot_metric_vs_rho(
    frame: pd.DataFrame, ax: Axes, *, metric: str, dataset: str, entries: Sequence[str] | None = None
) -> None:
    """Draw one metric of one dataset against ρ on ``ax``: a line per explanation, a min-max band over seeds.

    Args:
        frame: the benchmark's tidy table.
        ax: the axes to draw on (nothing else of the figure is touched).
        metric: the metric.
        dataset: the dataset.
        entries: the explanations to draw (default: all, in table order).
    """
    rows = frame[(frame["metric"] == metric) & (frame["dataset"] == dataset)]
    if rows.empty:
        ax.set_axis_off()
        return
    for entry in entries if entries is not None else entry_order(rows):
        data = rows[rows["entry"] == entry]
        if data.empty:
            continue
        first = data.iloc[0]
        by_rho = data.groupby("rho")["value"].agg(["mean", "min", "max"]).sort_index()
        style = entry_style(str(first["explainer"]), str(first["model"]), bool(first["native"]))
        ax.plot(by_rho.index, by_rho["mean"], label=str(first["entry_label"]), markersize=4, **style)
        if data["seed"].nunique() > 1:
            ax.fill_between(by_rho.index, by_rho["min"], by_rho["max"], color=style["color"], alpha=0.12, linewidth=0)
    ax.set_title(metric_label(metric), fontsize=10)
    ax.set_xlabel("feature correlation ρ")
    ax.grid(alpha=0.3)


def metric_vs_rho_figure(
    frame: pd.DataFrame, dataset: str, metrics: Sequence[str] | None = None, *, ncols: int = 3
) -> Figure:
    """One figure per dataset: a panel per metric, one shared legend."""
    present = [metric for metric in BENCHMARK_METRICS if metric in set(frame["metric"])]
    metrics = [metric for metric in (metrics or present) if metric in present]
    nrows = max(1, int(np.ceil(len(metrics) / ncols)))
    figure = Figure(figsize=(4.2 * ncols, 3.2 * nrows + 0.9), layout="constrained")
    axes = np.atleast_1d(figure.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, metric in zip(axes, metrics, strict=False):
        plot_metric_vs_rho(frame, ax, metric=metric, dataset=dataset)
    for ax in axes[len(metrics) :]:
        ax.set_axis_off()
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 7), fontsize=9)
    seeds = frame.loc[frame["dataset"] == dataset, "seed"].nunique()
    figure.suptitle(f"{dataset_label(dataset)}: metrics against ρ (mean over {seeds} seed(s))", fontsize=12)
    return figure


def figure_bytes(figure: Figure, *, dpi: int = 130) -> bytes:
    """A figure as PNG bytes (to be written atomically)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
