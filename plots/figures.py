"""The comparison's figures: every ``plot_*`` draws on a given matplotlib axis and returns it.

The caller creates the figure (:func:`new_figure`: a standalone Agg figure under the house rc settings, no pyplot
and no global state) and saves it (:func:`save_figure`: PNG and PDF, each written atomically). matplotlib is
imported only when a figure is made, so importing :mod:`plots` stays cheap.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from experiments.results import atomic_write_bytes
from plots.stats import REFERENCE_METHOD, Analysis, FeatureRanking, RankTest, ratio_summary
from plots.style import method_color, method_label, metric_label
from plots.tables import correlation_name, latex_escape

if TYPE_CHECKING:  # only for annotations: matplotlib is imported when a figure is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def rc_params(usetex: bool = False) -> dict[str, Any]:
    """Paper-quality defaults, applied inside ``matplotlib.rc_context`` only (never globally)."""
    return {
        "font.size": 10,
        "axes.titlesize": 11,
        "axes.labelsize": 10,
        "xtick.labelsize": 9,
        "ytick.labelsize": 9,
        "legend.fontsize": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "pdf.fonttype": 42,  # embed TrueType: journals reject Type 3 fonts
        "ps.fonttype": 42,
        "text.usetex": usetex,
        "font.family": "serif" if usetex else "sans-serif",
    }


@contextlib.contextmanager
def new_figure(
    width: float, height: float, usetex: bool = False, layout: str | None = "constrained"
) -> Iterator[Figure]:
    """A standalone Agg figure (no pyplot, no global backend) under the house rc settings; save it inside the block."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(rc_params(usetex)):
        figure = Figure(figsize=(width, height), layout=layout)
        FigureCanvasAgg(figure)
        yield figure


def figure_bytes(figure: Figure) -> dict[str, bytes]:
    """The figure rendered in memory: ``{"png": ... (200 dpi), "pdf": ...}``, without dates or software names (the
    same figure gives the same bytes)."""
    png, pdf = io.BytesIO(), io.BytesIO()
    figure.savefig(png, format="png", dpi=200, metadata={"Software": None})
    figure.savefig(pdf, format="pdf", metadata={"CreationDate": None, "Creator": None, "Producer": None})
    return {"png": png.getvalue(), "pdf": pdf.getvalue()}


def save_figure(figure: Figure, stem: Path) -> list[Path]:
    """Write ``<stem>.png`` (200 dpi) and ``<stem>.pdf``, each atomically; returns the paths.

    Both are rendered in memory first, so a failure or a kill leaves the previous files (or none), never half a file.
    """
    rendered = figure_bytes(figure)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for path in paths:
        atomic_write_bytes(path, rendered[path.suffix[1:]])
    return paths


def render(
    stem: Path, size: tuple[float, float], draw: Callable[[Any], Any], *, usetex: bool = False, full: bool = False
) -> list[Path]:
    """Create a figure of ``size`` inches, let ``draw`` fill it and save it as ``<stem>.png`` and ``<stem>.pdf``.

    ``draw`` gets the figure, or with ``full`` one axes spanning the whole figure (for :func:`plot_cd_diagram`).
    """
    with new_figure(*size, usetex=usetex, layout=None if full else "constrained") as figure:
        draw(figure.add_axes((0, 0, 1, 1)) if full else figure)
        return save_figure(figure, stem)


def box_size(n_methods: int) -> tuple[float, float]:
    """``(width, height)`` in inches of a figure with one box or violin per method."""
    return max(4.0, 0.9 * n_methods + 1.5), 3.6


def text(value: str, usetex: bool) -> str:
    """``value`` escaped for LaTeX when the figure is typeset with it."""
    return latex_escape(value) if usetex else value


def shorten(value: str, width: int = 32) -> str:
    """``value`` cut to ``width`` characters with an ellipsis."""
    return value if len(value) <= width else value[: width - 1] + "…"


def _method_axis(ax: Axes, methods: Sequence[str], usetex: bool) -> None:
    ax.set_xticks(range(1, len(methods) + 1))
    ax.set_xticklabels([text(method_label(m), usetex) for m in methods], rotation=25, ha="right")


def _jitter(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.12, 0.12, n)


# ----------------------------------------------------------------------------------------------------------------
# Critical-difference diagram


def _cd_layout(test: RankTest) -> tuple[list[tuple[int, int]], float, float]:
    """The CD groups, the y of the first label row and the diagram's height in inches (its y unit)."""
    cd = test.critical_difference if test.critical_difference is not None else 0.0
    groups = cd_groups(test.mean_ranks.to_numpy(), cd)
    first_row = 0.85 + 0.3 + 0.12 * len(groups)
    height = first_row + 0.26 * (math.ceil(len(test.mean_ranks) / 2) - 1) + 0.55
    return groups, first_row, height


def cd_diagram_size(test: RankTest) -> tuple[float, float]:
    """``(width, height)`` in inches of the figure :func:`plot_cd_diagram` expects to fill (axes at (0, 0, 1, 1))."""
    return 8.0, _cd_layout(test)[2]


def cd_groups(sorted_ranks: np.ndarray, cd: float) -> list[tuple[int, int]]:
    """Maximal runs of methods (in rank order) whose extreme average ranks differ by at most ``cd``."""
    groups: list[tuple[int, int]] = []
    furthest = -1
    for i in range(len(sorted_ranks)):
        j = i
        while j + 1 < len(sorted_ranks) and sorted_ranks[j + 1] - sorted_ranks[i] <= cd:
            j += 1
        if j > i and j > furthest:
            groups.append((i, j))
            furthest = j
    return groups


def plot_cd_diagram(test: RankTest, ax: Axes, usetex: bool = False) -> Axes:
    """Critical-difference diagram: average ranks on an axis, best on the right as autorank draws it.

    Methods whose average ranks differ by at most the Nemenyi critical difference are joined by a thick bar. The
    diagram is laid out in inches: give it axes spanning a figure of :func:`cd_diagram_size`.
    """
    ranks = test.mean_ranks
    methods = list(ranks.index)
    k = len(methods)
    cd = test.critical_difference if test.critical_difference is not None else 0.0
    groups, first_row, height = _cd_layout(test)
    half = math.ceil(k / 2)
    axis_y, row_gap = 0.85, 0.26
    low, high = 1, max(k, math.ceil(ranks.max()))
    left, right = 0.27, 0.73  # the rank axis in axes fractions; the rest holds the labels

    def x_of(rank: float) -> float:
        return right - (rank - low) / (high - low) * (right - left)  # best (rank 1) on the right

    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(height, 0)
    line = {"color": "black", "linewidth": 0.8}
    ax.plot([x_of(low), x_of(high)], [axis_y, axis_y], **line)
    for value in np.arange(low, high + 0.25, 0.5):
        tick = 0.1 if float(value).is_integer() else 0.05
        ax.plot([x_of(value)] * 2, [axis_y - tick, axis_y], **line)
        if float(value).is_integer():
            ax.text(x_of(value), axis_y - 0.13, str(int(value)), ha="center", va="bottom", fontsize=9)
    if test.critical_difference is not None:
        ax.plot([x_of(low), x_of(low + cd)], [0.3, 0.3], **line)
        for end in (low, low + cd):
            ax.plot([x_of(end)] * 2, [0.25, 0.35], **line)
        ax.text((x_of(low) + x_of(low + cd)) / 2, 0.23, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=9)
    for i, group in enumerate(groups):
        y = axis_y + 0.18 + 0.12 * i
        xs = [x_of(ranks.iloc[group[0]]) + 0.006, x_of(ranks.iloc[group[1]]) - 0.006]
        ax.plot(xs, [y, y], color="black", linewidth=3, solid_capstyle="round")
    for i, method in enumerate(methods):
        rank = float(ranks.iloc[i])
        on_right = i < half  # the better half is labelled on the right, next to its end of the axis
        y = first_row + row_gap * (i if on_right else k - 1 - i)
        end = right + 0.02 if on_right else left - 0.02
        ax.plot([x_of(rank), x_of(rank), end], [axis_y, y, y], **line)
        marker = {"markersize": 5, "markeredgecolor": "black", "markeredgewidth": 0.5, "zorder": 3}
        ax.plot([x_of(rank)], [axis_y], "o", color=method_color(method), **marker)
        label = text(f"{method_label(method)} ({rank:.2f})", usetex)
        ax.text(end + (0.01 if on_right else -0.01), y, label, ha="left" if on_right else "right", va="center")
    verdict = "significant" if test.significant else "not significant"
    note = f"Friedman test p = {test.pvalue:.2g} ({verdict} at alpha = {test.alpha:g}), {test.n_datasets} datasets"
    if test.critical_difference is not None:
        note += "; bars join methods within the Nemenyi CD"
    ax.text(0.5, height - 0.12, text(note, usetex), ha="center", va="bottom", fontsize=8, color="#444444")
    return ax


# ----------------------------------------------------------------------------------------------------------------
# Gains, ranks and times


def plot_gain(
    gains: pd.DataFrame, ax: Axes, metric: str, reference: str = REFERENCE_METHOD, usetex: bool = False
) -> Axes:
    """Box plot of the per-dataset gain over ``reference``, methods ordered by median gain."""
    order = gains.groupby("method")["gain"].median().sort_values(ascending=False).index.tolist()
    data = [gains.loc[gains["method"] == m, "gain"].to_numpy() for m in order]
    boxes = ax.boxplot(
        data,
        positions=range(1, len(order) + 1),
        widths=0.55,
        patch_artist=True,
        showfliers=False,
        medianprops={"color": "black", "linewidth": 1.2},
    )
    for patch, method in zip(boxes["boxes"], order, strict=True):
        patch.set(facecolor=method_color(method), alpha=0.75, edgecolor="black", linewidth=0.8)
    for position, values in enumerate(data, start=1):
        jittered = position + _jitter(len(values), position)
        ax.scatter(jittered, values, s=9, color="black", alpha=0.55, zorder=3, linewidths=0)
    ax.axhline(0.0, color="#555555", linestyle="--", linewidth=0.8)
    _method_axis(ax, order, usetex)
    ax.set_ylabel(text(f"{metric_label(metric)} gain over {method_label(reference)}", usetex))
    ax.set_title(text(f"Gain over {method_label(reference)} per dataset ({gains['dataset_id'].nunique()})", usetex))
    ax.grid(axis="y", alpha=0.3)
    return ax


def plot_rank_distribution(ranks: pd.DataFrame, ax: Axes, usetex: bool = False) -> Axes:
    """Violin plot of each method's rank over datasets, best average rank first; white dots mark the mean.

    Shape:
        ranks ``(datasets, methods)``
    """
    order = ranks.mean().sort_values().index.tolist()
    k = ranks.shape[1]
    for position, method in enumerate(order, start=1):
        values = ranks[method].to_numpy()
        if np.ptp(values) > 0:
            parts = ax.violinplot([values], positions=[position], widths=0.7, showextrema=False)
            for body in parts["bodies"]:
                body.set(facecolor=method_color(method), edgecolor="black", linewidth=0.6, alpha=0.8)
        else:  # one rank on every dataset: a kernel density is undefined, draw the point mass as a bar
            ax.plot([position - 0.3, position + 0.3], [values[0]] * 2, color=method_color(method), linewidth=4)
        jittered = position + _jitter(len(values), position)
        ax.scatter(jittered, values, s=8, color="black", alpha=0.45, linewidths=0, zorder=3)
        ax.scatter([position], [values.mean()], s=36, color="white", edgecolor="black", zorder=4)
    _method_axis(ax, order, usetex)
    ax.set_ylim(k + 0.5, 0.5)  # rank 1 at the top
    ax.set_yticks(range(1, k + 1))
    ax.set_ylabel("Rank on a dataset (1 = best)")
    ax.set_title(f"Distribution of ranks over {len(ranks)} datasets")
    ax.grid(axis="y", alpha=0.3)
    return ax


def plot_time_ratio(ratios: pd.DataFrame, ax: Axes, usetex: bool = False) -> Axes:
    """Per-dataset INN / TabResNet time ratios (training and inference) on a log axis, 1 = the same runtime."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    tick_labels, shown = [], []
    for position, (column, name) in enumerate(
        [("train_time_ratio", "Training"), ("inference_time_ratio", "Inference")], 1
    ):
        values = ratios[column].to_numpy(dtype=float)
        values = values[np.isfinite(values) & (values > 0)]  # a zero time cannot go on a log axis
        summary = ratio_summary(pd.Series(values))
        if not summary["n"]:
            tick_labels.append(f"{name}\n(no data)")
            continue
        shown.append(values)
        box = {"facecolor": method_color("inn"), "alpha": 0.6}
        ax.boxplot(
            [values],
            positions=[position],
            widths=0.5,
            showfliers=False,
            patch_artist=True,
            boxprops=box,
            medianprops={"color": "black"},
        )
        jittered = position + _jitter(len(values), position)
        ax.scatter(jittered, values, s=10, color="black", alpha=0.6, linewidths=0, zorder=3)
        spread = f" ± {summary['std']:.2f}" if not math.isnan(summary["std"]) else ""
        tick_labels.append(f"{name}\nmean {summary['mean']:.2f}{spread}\ngeo. mean {summary['geometric_mean']:.2f}")
    ax.axhline(1.0, color="#555555", linestyle="--", linewidth=0.8)
    ax.text(2.45, 1.0, "same\nruntime", fontsize=8, va="center", ha="left", color="#555555")
    ax.set_yscale("log")
    # Plain numbers at 'nice' ratios: the default log labels (2 x 10^0) are unreadable for ratios near 1.
    values = np.concatenate(shown) if shown else np.array([1.0])
    low, high = min(values.min(), 1.0), max(values.max(), 1.0)
    # Ticks inside the data's range (the axis is as tall as the data): a fine grid near 1, coarser further out.
    candidates = (0.1, 0.2, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.1, 1.2, 1.3, 1.5, 2, 3, 4, 5, 10, 20, 50, 100)
    ticks = [t for t in candidates if low / 1.05 <= t <= high * 1.05]
    if len(ticks) > 8:
        ticks = [t for t in ticks if t in (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 50, 100)]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_yticklabels([f"{t:g}" for t in ticks])
    ax.set_xticks([1, 2])
    ax.set_xticklabels(tick_labels)
    ax.set_xlim(0.5, 2.75)
    ax.set_ylabel(text(f"{method_label('inn')} / {method_label('tabresnet')} time", usetex))
    ax.set_title(f"Runtime relative to the black box ({len(ratios)} datasets)")
    ax.grid(axis="y", alpha=0.3, which="both")
    return ax


# ----------------------------------------------------------------------------------------------------------------
# Feature rankings


def ranking_figure_size(ranking: FeatureRanking, top_k: int) -> tuple[float, float]:
    """``(width, height)`` in inches for the rank heat map and the correlation matrix side by side."""
    n_methods, n_rows = len(ranking.methods), min(top_k, len(ranking.ranks))
    return 4.5 + 1.5 * n_methods, 1.8 + max(0.28 * n_rows, 0.45 * n_methods)


def _annotated_matrix(ax: Axes, values: np.ndarray, cmap: Any, vmin: float, vmax: float, fmt: str) -> Any:
    """``imshow`` of a matrix with its values written in the cells (NaN cells grey and empty)."""
    masked = np.ma.masked_invalid(values)
    image = ax.imshow(masked, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    for (row, column), value in np.ndenumerate(values):
        if np.isfinite(value):
            shade = (value - vmin) / (vmax - vmin) if vmax > vmin else 0.5
            dark = np.mean(cmap(shade)[:3]) < 0.5
            ax.text(
                column, row, fmt.format(value), ha="center", va="center", fontsize=8, color="white" if dark else "black"
            )
    ax.spines[:].set_visible(False)
    return image


def plot_feature_ranks(ranking: FeatureRanking, ax: Axes, top_k: int = 20, usetex: bool = False) -> Axes:
    """Heat map of feature ranks (rows: the ``top_k`` features by mean rank, columns: methods), ranks written in.

    A dark cell is an important feature (rank 1); grey: the method has no value for the feature.
    """
    from matplotlib import colormaps

    shown = ranking.ranks.head(top_k)
    methods = ranking.methods
    cmap = colormaps["Blues_r"].with_extremes(bad="#DDDDDD")
    image = _annotated_matrix(ax, shown[methods].to_numpy(dtype=float), cmap, 1, max(len(ranking.ranks), 2), "{:g}")
    ax.set_xticks(range(len(methods)))
    ax.set_xticklabels([text(method_label(m), usetex) for m in methods], rotation=30, ha="right")
    ax.set_yticks(range(len(shown)))
    ax.set_yticklabels([text(shorten(str(feature), 28), usetex) for feature in shown.index])
    ax.figure.colorbar(image, ax=ax, label="Rank (1 = most important)", shrink=0.8)
    cut = f", top {len(shown)} of {len(ranking.ranks)}" if len(shown) < len(ranking.ranks) else ""
    ax.set_title(text(f"Rank by global importance (features by mean rank{cut})", usetex), fontsize=10)
    return ax


def plot_rank_correlation(ranking: FeatureRanking, ax: Axes, usetex: bool = False) -> Axes:
    """The pairwise rank-correlation matrix of the methods' feature importances (-1 to 1, values written in)."""
    from matplotlib import colormaps

    methods = ranking.methods
    labels = [text(method_label(m), usetex) for m in methods]
    cmap = colormaps["RdBu_r"].with_extremes(bad="#DDDDDD")
    values = ranking.correlation.loc[methods, methods].to_numpy(dtype=float)
    image = _annotated_matrix(ax, values, cmap, -1.0, 1.0, "{:.2f}")
    ax.set_xticks(range(len(methods)))
    ax.set_xticklabels(labels, rotation=30, ha="right")
    ax.set_yticks(range(len(methods)))
    ax.set_yticklabels(labels)
    ax.figure.colorbar(image, ax=ax, label=text(correlation_name(ranking.kind), usetex), shrink=0.8)
    ax.set_title("Agreement of the rankings", fontsize=10)
    return ax


def render_ranking(
    ranking: FeatureRanking, out_dir: Path, name: str = "", top_k: int = 20, usetex: bool = False
) -> list[Path]:
    """Save ``feature_ranking_<id>.png``/``.pdf``: the rank heat map and the correlation matrix side by side."""

    def draw(figure: Figure) -> None:
        left, right = figure.subplots(1, 2, width_ratios=[1.3, 1])
        plot_feature_ranks(ranking, left, top_k, usetex)
        plot_rank_correlation(ranking, right, usetex)
        figure.suptitle(text(f"Feature rankings on {name or 'dataset'} ({ranking.dataset_id})", usetex))

    stem = out_dir / f"feature_ranking_{ranking.dataset_id}"
    return render(stem, ranking_figure_size(ranking, top_k), draw, usetex=usetex)


def render_analysis(analysis: Analysis, out_dir: Path, usetex: bool = False) -> list[Path]:
    """Draw and save every figure the analysis supports (:func:`plots.stats.analysis_notes` says why not the others).

    The rank distribution (two methods or more), the CD diagram (a critical difference), the gain over the
    reference (compared) and the INN / TabResNet time ratio (both compared, with positive times).
    """
    a = analysis
    jobs: list[tuple[str, tuple[float, float], Callable[[Any], Any], bool]] = []
    if len(a.methods) >= 2:
        draw = partial(_on_new_axes, plot_rank_distribution, a.ranks, usetex=usetex)
        jobs.append(("rank_distribution", box_size(len(a.methods)), draw, False))
    if a.test is not None and a.test.critical_difference is not None:
        jobs.append(("cd_diagram", cd_diagram_size(a.test), partial(plot_cd_diagram, a.test, usetex=usetex), True))
    if a.gains is not None:
        draw = partial(_on_new_axes, plot_gain, a.gains, metric=a.metric, reference=a.reference, usetex=usetex)
        jobs.append((f"gain_over_{a.reference}", box_size(len(a.methods) - 1), draw, False))
    if a.ratio_info and a.ratio_info["n"]:
        jobs.append(
            (
                "inn_tabresnet_time_ratio",
                (4.6, 3.8),
                partial(_on_new_axes, plot_time_ratio, a.ratios, usetex=usetex),
                False,
            )
        )
    files: list[Path] = []
    for stem, size, draw, full in jobs:
        files += render(out_dir / stem, size, draw, usetex=usetex, full=full)
    return files


def _on_new_axes(plot: Callable[..., Axes], data: Any, figure: Figure, **kwargs: Any) -> Axes:
    """``plot(data, <one new axes of figure>, **kwargs)``."""
    return plot(data, figure.add_subplot(), **kwargs)
