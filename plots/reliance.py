"""Claimed against behavioural reliance on forbidden features, per method and penalty (``docs/cdep.md``).

Input is a tidy frame with one row per run (``studies.cdep.common.collect``): ``method``, ``penalty``
(``vanilla``, ``blind`` or a penalty id), ``strength`` (λ; NaN for vanilla and blind), ``explanation_share`` (what
the explanation claims: the share of ``S`` in its global importance), ``test_flip_rate`` (what the model does: the
share of test predictions that change when ``S`` is resampled) and ``test_auroc``.

:func:`draw_claimed_vs_behaviour` draws one method on given axes: a point per (penalty, λ), the mean over the rows
(datasets and seeds), explanation share on x and flip rate on y. Vanilla and blind are marked. A penalty that is
*gamed* lands top-left: the explanation claims ``S`` is unused while the predictions still follow it.
:func:`claimed_vs_behaviour_figure` puts one panel per method side by side; :func:`draw_metric_by_penalty` draws
a metric (test AUROC, flip rate) per penalty and λ as grouped points.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from plots.style import method_label

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: One colour and marker per penalty (Okabe-Ito), the same in every figure; vanilla and blind in grey and black.
PENALTY_STYLES: dict[str, tuple[str, str]] = {
    "vanilla": ("#999999", "o"),
    "blind": ("#000000", "*"),
    "cdep": ("#E69F00", "s"),
    "cd_logit": ("#56B4E9", "^"),
    "cd_strict": ("#009E73", "D"),
    "weights": ("#CC79A7", "v"),
    "counterfactual": ("#D55E00", "P"),
    "rrr": ("#0072B2", "X"),
}


def penalty_style(penalty: str) -> tuple[str, str]:
    """``(colour, marker)`` of a penalty (an unknown one: dark grey circles)."""
    return PENALTY_STYLES.get(penalty, ("#444444", "o"))


def _means(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Mean of ``columns`` per (penalty, strength), in :data:`PENALTY_STYLES` order then λ."""
    grouped = frame.groupby(["penalty", "strength"], dropna=False, sort=False)[list(columns)].mean().reset_index()
    order = {penalty: index for index, penalty in enumerate(PENALTY_STYLES)}
    grouped["_order"] = grouped["penalty"].map(lambda name: order.get(name, len(order)))
    return grouped.sort_values(["_order", "strength"], kind="stable").drop(columns="_order")


def _limits(values: Sequence[float] | pd.Series, low: float = -0.02) -> tuple[float, float]:
    """Axis limits from ``low`` to a tenth above the largest finite value (at least ``low + 0.05``), so that no
    point is clipped (setting only the lower limit freezes the upper one where it happened to be)."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    top = float(finite.max()) if finite.size else 0.0
    return low, max(top * 1.1 + 0.005, low + 0.05)


def draw_claimed_vs_behaviour(
    ax: Axes,
    frame: pd.DataFrame,
    *,
    claimed: str = "explanation_share",
    behaviour: str = "test_flip_rate",
    title: str | None = None,
    legend: bool = True,
) -> None:
    """Explanation share of ``S`` (x) against a behavioural reliance (y), one point per penalty and λ.

    Args:
        ax: the axes to draw on.
        frame: runs of one method (see the module docstring).
        claimed: the column of the explanation's claim.
        behaviour: the column of the measured reliance (``test_flip_rate``, ``test_auroc_drop``, ...).
        title: the panel's title (default: the method's label).
        legend: add a legend of the penalties.
    """
    means = _means(frame, [claimed, behaviour])
    labelled: set[str] = set()
    for row in means.itertuples(index=False):
        penalty = str(row.penalty)
        color, marker = penalty_style(penalty)
        x, y = getattr(row, claimed), getattr(row, behaviour)
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        size = 90 if penalty in ("vanilla", "blind") else 40 + 25 * np.log10(max(float(row.strength), 1e-3) * 10)
        ax.scatter(x, y, color=color, marker=marker, s=max(size, 20), edgecolor="black", linewidth=0.4, zorder=3,
                   label=None if penalty in labelled else penalty)  # fmt: skip
        labelled.add(penalty)
        if np.isfinite(row.strength):
            ax.annotate(f"{row.strength:g}", (x, y), textcoords="offset points", xytext=(4, 3), fontsize=6)
    vanilla = means[means["penalty"] == "vanilla"]
    if len(vanilla) and np.isfinite(vanilla[behaviour].iloc[0]):
        ax.axhline(float(vanilla[behaviour].iloc[0]), color="#999999", linestyle=":", linewidth=0.8, zorder=1)
    ax.set_xlabel("claimed: explanation's share of S")
    ax.set_ylabel({"test_flip_rate": "behaviour: flip rate when S is resampled"}.get(behaviour, behaviour))
    ax.set_xlim(*_limits(means[claimed]))
    ax.set_ylim(*_limits(means[behaviour]))
    if title is None and "method" in frame and frame["method"].nunique() == 1:
        title = method_label(str(frame["method"].iloc[0]))
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, linewidth=0.5)
    if legend:
        ax.legend(fontsize=7, loc="best", frameon=False)


def claimed_vs_behaviour_figure(
    frame: pd.DataFrame, methods: Sequence[str] | None = None, *, behaviour: str = "test_flip_rate"
) -> Figure:
    """One :func:`draw_claimed_vs_behaviour` panel per method (default: every method in ``frame``).

    The panels share one y range, wide enough for every method's points (no panel's range clips another's), and
    one legend below them that lists every penalty of any panel (a penalty only some methods have, such as
    ``weights``, included).
    """
    import matplotlib.pyplot as plt

    methods = list(methods) if methods is not None else list(dict.fromkeys(frame["method"]))
    figure, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods), 3.8), squeeze=False, sharey=True)
    shown = frame[frame["method"].isin(methods)]
    for ax, method in zip(axes[0], methods, strict=True):
        draw_claimed_vs_behaviour(ax, frame[frame["method"] == method], behaviour=behaviour, legend=False)
    bottom, top = _limits(_panel_means(shown, behaviour))
    for ax in axes[0]:
        ax.set_ylim(bottom, top)
    handles: dict[str, object] = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    order = {penalty: index for index, penalty in enumerate(PENALTY_STYLES)}
    labels = sorted(handles, key=lambda name: order.get(name, len(order)))
    figure.tight_layout()
    figure.legend([handles[label] for label in labels], labels, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                  ncol=min(len(labels), 8), fontsize=8, frameon=False)  # fmt: skip
    return figure


def _panel_means(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Every point's y value over all methods (the means per method, penalty and λ)."""
    values = [_means(part, [column])[column].to_numpy() for _, part in frame.groupby("method", sort=False)]
    return np.concatenate(values) if values else np.zeros(0)


def draw_metric_by_penalty(
    ax: Axes, frame: pd.DataFrame, metric: str = "test_auroc", *, reference_lines: bool = True
) -> None:
    """A metric per penalty (x groups) and λ (points within a group), mean over rows with the standard deviation.

    Vanilla and blind are drawn as horizontal lines when ``reference_lines`` (and as their own groups otherwise).
    """
    means = _means(frame, [metric])
    spread = frame.groupby(["penalty", "strength"], dropna=False, sort=False)[metric].std().reset_index()
    means = means.merge(spread.rename(columns={metric: "sd"}), on=["penalty", "strength"], how="left")
    groups = [
        name for name in dict.fromkeys(means["penalty"]) if not (reference_lines and name in ("vanilla", "blind"))
    ]
    for position, penalty in enumerate(groups):
        part = means[means["penalty"] == penalty]
        color, marker = penalty_style(penalty)
        offsets = np.linspace(-0.25, 0.25, len(part)) if len(part) > 1 else np.zeros(1)
        ax.errorbar(position + offsets, part[metric], yerr=part["sd"], color=color, marker=marker, linestyle="none",
                    capsize=2, markersize=5)  # fmt: skip
        for offset, strength, value in zip(offsets, part["strength"], part[metric], strict=True):
            if np.isfinite(strength) and np.isfinite(value):
                ax.annotate(f"{strength:g}", (position + offset, value), fontsize=6, ha="left", va="bottom",
                            xytext=(2, 2), textcoords="offset points")  # fmt: skip
    if reference_lines:
        for name in ("vanilla", "blind"):
            row = means[means["penalty"] == name]
            if len(row):
                ax.axhline(float(row[metric].iloc[0]), color=penalty_style(name)[0], linestyle="--", linewidth=1,
                           label=name)  # fmt: skip
        ax.legend(fontsize=7, frameon=False)
    ax.set_xticks(range(len(groups)), groups, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(metric)
    ax.grid(axis="y", alpha=0.3, linewidth=0.5)


def draw_penalty_claim(
    ax: Axes, frame: pd.DataFrame, penalty: str, *, behaviour: str = "test_flip_rate", relative: bool = True
) -> None:
    """What a penalty's own quantity says (x) against the behaviour (y), per method: vanilla → the penalty's λs.

    ``frame`` needs ``claim_<penalty>`` (``models.penalties.penalty_measures`` on the test rows). With
    ``relative`` both axes are divided by vanilla's value of the same method and dataset (then averaged), so the
    vanilla point is (1, 1) for every method: a penalty that moved only its own quantity lands left of 1 at
    height 1 (gamed), one that removed the reliance lands near the bottom.
    """
    from plots.style import method_color

    claim = f"claim_{penalty}"
    if claim not in frame:
        raise ValueError(f"the frame has no {claim} column")
    data = frame[frame["penalty"].isin(["vanilla", penalty])].copy()
    if relative:
        keys = ["method", "dataset"] if "dataset" in data else ["method"]
        vanilla = data[data["penalty"] == "vanilla"].groupby(keys)[[claim, behaviour]].mean()
        scale = vanilla.reindex(_rows_index(data, keys))
        data[claim] = data[claim].to_numpy() / scale[claim].to_numpy()
        data[behaviour] = data[behaviour].to_numpy() / scale[behaviour].to_numpy()
    for method in dict.fromkeys(data["method"]):
        part = _means(data[data["method"] == method], [claim, behaviour])
        part = part[np.isfinite(part[claim]) & np.isfinite(part[behaviour])]
        if part.empty:
            continue
        color = method_color(str(method))
        ax.plot(part[claim], part[behaviour], color=color, marker="o", linewidth=1, label=method_label(str(method)))
        for row in part.itertuples(index=False):
            text = "vanilla" if row.penalty == "vanilla" else f"λ={row.strength:g}"
            ax.annotate(text, (getattr(row, claim), getattr(row, behaviour)), textcoords="offset points",
                        xytext=(3, 3), fontsize=6, color=color)  # fmt: skip
    suffix = " / vanilla's" if relative else ""
    ax.set_xlabel(f"{penalty}'s own quantity on the test rows{suffix}")
    ax.set_ylabel(f"{'flip rate' if behaviour == 'test_flip_rate' else behaviour}{suffix}")
    if relative:
        ax.axhline(1.0, color="#999999", linestyle=":", linewidth=0.8)
        ax.axvline(1.0, color="#999999", linestyle=":", linewidth=0.8)
    ax.set_title(penalty, fontsize=10)
    ax.grid(alpha=0.3, linewidth=0.5)
    ax.legend(fontsize=7, frameon=False)


def _rows_index(frame: pd.DataFrame, keys: Sequence[str]) -> pd.Index:
    """The rows of ``frame`` as an index over ``keys`` (to align per-group references with rows)."""
    import pandas as pd

    return pd.MultiIndex.from_frame(frame[list(keys)]) if len(keys) > 1 else pd.Index(frame[keys[0]])
