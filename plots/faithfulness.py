"""The removal test's figure (the paper's Figure 6 form): test AUROC drop against the number of features removed.

Input is the tidy frame of ``studies.faithfulness.removal_frame``: one row per (dataset, method, seed, k) with
``drop`` = AUROC of the full model minus AUROC after removing the top-``k`` features (``k = 0``: the full model,
drop 0). :func:`draw_removal` draws one dataset on given axes (mean over seeds, bars: the smallest and largest
seed); :func:`removal_figure` puts one panel per dataset side by side. Colours come from the method registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from plots.style import method_color

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Marker per method, so the lines stay apart in greyscale.
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def draw_removal(ax: Axes, frame: pd.DataFrame, dataset_id: int | None = None, *, relative: bool = False) -> None:
    """AUROC drop vs ``k`` for every method of one dataset, on ``ax``.

    Args:
        ax: the axes to draw on.
        frame: the removal frame (columns ``dataset_id``, ``dataset``, ``method``, ``label``, ``seed``, ``k``,
            ``auroc``, ``drop``).
        dataset_id: the dataset to draw (default: the only one in ``frame``).
        relative: draw the drop in percent of the full model's AUROC (the paper's "percentual decrease").

    Raises:
        ValueError: ``dataset_id`` is not in ``frame``, or ``frame`` holds several datasets and none is chosen.
    """
    ids = sorted(frame["dataset_id"].unique())
    if dataset_id is None:
        if len(ids) != 1:
            raise ValueError(f"the frame holds datasets {ids}; choose one")
        dataset_id = ids[0]
    data = frame[frame["dataset_id"] == dataset_id].copy()
    if data.empty:
        raise ValueError(f"no removal results for dataset {dataset_id}; present: {ids}")
    if relative:
        base = data[data.k == 0].set_index(["method", "seed"])["auroc"]
        data["drop"] = 100.0 * data["drop"] / base.reindex(pd_index(data)).to_numpy()
    n_methods = data["method"].nunique()
    seeds = data.groupby("method", sort=False)["seed"].nunique()
    uniform = seeds.nunique() == 1
    for index, (method, group) in enumerate(data.groupby("method", sort=False)):
        stats = group.groupby("k")["drop"].agg(["mean", "min", "max"]).sort_index()
        ks = stats.index.to_numpy()
        label = group["label"].iloc[0] if uniform else f"{group['label'].iloc[0]} ({_seeds_text(seeds[method])})"
        ax.errorbar(
            ks + (index - (n_methods - 1) / 2) * 0.05,  # a small offset per method keeps the bars apart
            stats["mean"],
            yerr=np.vstack([stats["mean"] - stats["min"], stats["max"] - stats["mean"]]),
            label=label,
            color=method_color(method),
            marker=_MARKERS[index % len(_MARKERS)],
            markersize=5,
            capsize=2,
            linewidth=1.5,
        )
    ax.axhline(0.0, color="grey", linewidth=0.8, linestyle=":")
    # The seeds per method: one count in the title when every method has it, else each in its legend label.
    where = _seeds_text(int(seeds.iloc[0])) if uniform else "seeds per method in the legend"
    ax.set_title(f"{data['dataset'].iloc[0]} ({dataset_id}), {where}")
    ax.set_xlabel("top-k features removed")
    ax.set_ylabel("AUROC drop (%)" if relative else "test AUROC drop")
    ax.set_xticks(sorted(data["k"].unique()))
    ax.grid(alpha=0.3)


def _seeds_text(n_seeds: int) -> str:
    return f"{n_seeds} seed{'s' if n_seeds != 1 else ''}"


def pd_index(data: pd.DataFrame):
    """The ``(method, seed)`` index of every row (to align each row with its full model's AUROC)."""
    import pandas as pd

    return pd.MultiIndex.from_frame(data[["method", "seed"]])


def removal_figure(
    frame: pd.DataFrame, datasets: Sequence[int] | None = None, *, relative: bool = False, panel_width: float = 4.2
) -> Figure:
    """One :func:`draw_removal` panel per dataset (default: every dataset in ``frame``), one shared legend."""
    import matplotlib.pyplot as plt

    ids = list(datasets) if datasets else sorted(frame["dataset_id"].unique())
    fig, axes = plt.subplots(1, len(ids), figsize=(panel_width * len(ids), 3.6), squeeze=False)
    for ax, dataset_id in zip(axes[0], ids, strict=True):
        draw_removal(ax, frame, dataset_id, relative=relative)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 6), bbox_to_anchor=(0.5, 1.08))
    fig.tight_layout()
    return fig
