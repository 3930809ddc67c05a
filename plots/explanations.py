"""Explanation figures for every method that saved an ``explanations.npz``: global importance and one example.

The file is read only through :func:`experiments.results.read_explanations` and becomes the project's one
explanation type, :class:`models.attribution.Attribution`. Nothing here assumes a method: what the values
are is read from the file and written on the figure, namely whether the explanation is exact
(``values + rest == output``), the reference point the values are relative to (``reference_name``) and the
explained output (``output_name``). Exact explanations get a waterfall from the base value to the output;
signed but inexact ones (gradient × input) end with a "Rest (not explained)" step instead of starting from a
bias; unsigned ones (TabNet's attention masks) get plain magnitude bars, with no direction and no sum.
:func:`explanation_figures` draws the same waterfalls (and ACD hierarchies) for the rows ``explain.py`` explained.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from errors import UserError
from experiments.results import EXPLANATIONS_FILENAME, read_explanations
from models.attribution import Attribution
from plots.figures import shorten, text
from plots.stats import listing, natural_sorted
from plots.style import method_color, method_label

if TYPE_CHECKING:  # only for annotations: matplotlib is imported when a figure is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from experiments.explaining import Explained

POSITIVE_COLOR = "#C0392B"  # pushes the output up
NEGATIVE_COLOR = "#2E86C1"  # pushes the output down
NEUTRAL_COLOR = "#7F7F7F"
REST_LABEL = "Rest (not explained)"
BASE_LABEL = "Base value"


@dataclass(frozen=True)
class StoredExplanation:
    """One run's ``explanations.npz``: the attribution of its test rows and what the rows are.

    Attributes:
        attribution: values ``(N, F, C)``, rest and output ``(N, C)``, and what they mean.
        classes: the class names (empty for regression).
        y_true: ``(N,)`` the true targets of the rows.
        path: the file.
    """

    attribution: Attribution
    classes: tuple[str, ...]
    y_true: np.ndarray
    path: Path

    @property
    def n_rows(self) -> int:
        """Number of explained test rows."""
        return self.attribution.n_examples


def load_explanation(path: str | Path) -> StoredExplanation:
    """Read an ``explanations.npz`` of any method (schema 1 or 2).

    Raises:
        ValueError: the file is unreadable, truncated, misses an array, has inconsistent shapes or non-finite
            values (the message names the file).
    """
    path = Path(path)
    arrays = read_explanations(path)
    reference = np.asarray(arrays["reference"], dtype=np.float64)
    try:
        attribution = Attribution(
            values=np.asarray(arrays["values"], dtype=np.float64),
            rest=np.asarray(arrays["rest"], dtype=np.float64),
            output=np.asarray(arrays["output"], dtype=np.float64),
            feature_names=tuple(str(name) for name in arrays["feature_names"]),
            explainer=str(arrays["explainer"]),
            exact=bool(arrays["exact"]),
            reference=reference if reference.size else None,
            reference_name=str(arrays["reference_name"]),
            output_name=str(arrays["output_name"]),
            signed=bool(arrays["signed"]),
        )
    except ValueError as error:
        raise ValueError(f"{path}: inconsistent explanations file ({error})") from None
    if not (np.isfinite(attribution.values).all() and np.isfinite(attribution.output).all()):
        raise ValueError(f"{path}: non-finite attribution values or outputs")
    classes = tuple(str(name) for name in np.atleast_1d(arrays["classes"]))
    return StoredExplanation(attribution, classes, np.atleast_1d(arrays["y_true"]), path)


def global_importance(explanation: StoredExplanation) -> pd.Series:
    """Mean |value| over rows, summed over outputs, normalised to sum 1 (``Attribution.global_importance``); largest first."""
    shares = explanation.attribution.global_importance("mean_abs")
    names = list(explanation.attribution.feature_names)
    return pd.Series(shares, index=names, name="importance").sort_values(ascending=False, kind="stable")


def explained_output(explanation: StoredExplanation, index: int) -> tuple[int, str]:
    """The output column shown for example ``index`` and that output in words.

    Several outputs (multiclass): the predicted class's column. One output: the file's ``output_name``, with the
    positive class named for a binary logit or probability.
    """
    attribution, classes = explanation.attribution, explanation.classes
    outputs = attribution.output[index]
    name = attribution.output_name
    if len(outputs) > 1:
        column = int(np.argmax(outputs))
        label = classes[column] if column < len(classes) else str(column)
        return column, f"{name.removesuffix(' (one per class)')} of the predicted class '{label}'"
    kind = name.split(" ")[0]
    if len(classes) == 2 and kind in ("logit", "probability") and "predicted" not in name:
        # One output of a binary classifier is the positive class's (named here as the file's classes name it).
        predicted = classes[int(outputs[0] > (0.0 if kind == "logit" else 0.5))]
        return 0, f"{kind} of class '{classes[1]}' (predicted '{predicted}')"
    return 0, name


def _check_row(explanation: StoredExplanation, index: int) -> None:
    if not 0 <= index < explanation.n_rows:
        raise UserError(
            f"--explain_example {index} is out of range for {explanation.path}: it has {explanation.n_rows} test rows"
        )


def waterfall_steps(explanation: StoredExplanation, index: int, top_k: int = 10) -> pd.DataFrame:
    """The steps of a signed explanation of example ``index``, from where it starts to the explained output.

    Exact: the base value (the rest: bias and reference's share), the top-k contributions, the other features,
    then the output, which the last contribution ends on. Not exact: the contributions from 0, the other
    features, the rest the explainer leaves unexplained (when it reports one), then the output.

    Returns:
        Rows ``label``, ``value``, ``start``, ``end`` and ``kind`` (``base``, ``feature``, ``other``, ``rest``,
        ``total``).

    Raises:
        UserError: ``index`` is not a row of the explanations.
        ValueError: the explanation is unsigned (it has no direction to add up).
    """
    _check_row(explanation, index)
    attribution = explanation.attribution
    if not attribution.signed:
        raise ValueError(f"{explanation.path}: an unsigned explanation ({attribution.explainer}) has no waterfall")
    column, _ = explained_output(explanation, index)
    values = attribution.values[index, :, column].astype(float)
    order = np.argsort(-np.abs(values), kind="stable")
    shown, others = order[:top_k], order[top_k:]
    rest = float(attribution.rest[index, column])
    steps = []
    position = 0.0
    if attribution.exact:
        steps.append((BASE_LABEL, rest, 0.0, rest, "base"))
        position = rest
    for feature in shown:
        value = float(values[feature])
        steps.append((attribution.feature_names[feature], value, position, position + value, "feature"))
        position += value
    if len(others):
        value = float(values[others].sum())
        label = f"Other {len(others)} feature" + ("s" if len(others) > 1 else "")
        steps.append((label, value, position, position + value, "other"))
        position += value
    if not attribution.exact and np.isfinite(rest):
        steps.append((REST_LABEL, rest, position, position + rest, "rest"))
    output = float(attribution.output[index, column])
    steps.append((attribution.output_name.split(" ")[0].capitalize(), output, 0.0, output, "total"))
    return pd.DataFrame(steps, columns=["label", "value", "start", "end", "kind"])


def local_magnitudes(explanation: StoredExplanation, index: int, top_k: int = 10) -> pd.Series:
    """The ``top_k`` largest values of example ``index`` (for unsigned explanations), largest first."""
    _check_row(explanation, index)
    column, _ = explained_output(explanation, index)
    values = pd.Series(explanation.attribution.values[index, :, column], index=explanation.attribution.feature_names)
    return values.sort_values(ascending=False, kind="stable").head(top_k)


def describe(explanation: StoredExplanation) -> str:
    """What the values are, in two lines: the explainer and whether it is exact; the reference point and the output."""
    attribution = explanation.attribution
    if not attribution.signed:
        kind = "unsigned magnitudes (no direction; they do not add up to the output)"
    elif attribution.exact:
        kind = "exact (base value + contributions = output)"
    else:
        kind = "not exact (contributions + rest not explained = output)"
    return (
        f"{attribution.explainer}: {kind}\nreference: {attribution.reference_name}; output: {attribution.output_name}"
    )


# ----------------------------------------------------------------------------------------------------------------
# Drawing


def plot_importance(
    importance: pd.Series, ax: Axes, *, top_k: int = 10, color: str = "#444444", usetex: bool = False
) -> Axes:
    """Horizontal bars of the ``top_k`` largest shares of :func:`global_importance`, largest on top."""
    shown = importance.iloc[:top_k]
    positions = np.arange(len(shown))
    ax.barh(positions, shown.to_numpy(), color=color, edgecolor="black", linewidth=0.5)
    ax.set_yticks(positions)
    ax.set_yticklabels([text(shorten(str(name)), usetex) for name in shown.index])
    ax.invert_yaxis()
    rest = 1.0 - shown.sum()
    suffix = f" (other features: {rest:.0%})" if rest > 0.0005 else ""
    ax.set_xlabel(text(f"Share of mean |value|{suffix}", usetex))
    ax.set_title(f"Global importance (top {len(shown)})")
    ax.grid(axis="x", alpha=0.3)
    return ax


def plot_waterfall(steps: pd.DataFrame, ax: Axes, *, output: str = "output", usetex: bool = False) -> Axes:
    """A waterfall of :func:`waterfall_steps`: red bars push the output up, blue ones down, grey are base/rest/total."""
    positions = np.arange(len(steps))
    neutral = ("base", "rest", "total")
    colors = [
        NEUTRAL_COLOR if kind in neutral else (POSITIVE_COLOR if value >= 0 else NEGATIVE_COLOR)
        for kind, value in zip(steps["kind"], steps["value"], strict=True)
    ]
    hatches = ["//" if kind == "rest" else "" for kind in steps["kind"]]
    widths = (steps["end"] - steps["start"]).to_numpy()
    bars = ax.barh(positions, widths, left=steps["start"].to_numpy(), color=colors, edgecolor="black", linewidth=0.5)
    for bar, hatch in zip(bars, hatches, strict=True):
        bar.set_hatch(hatch)
    for i in range(len(steps) - 2):  # dotted connectors from one step's end to the next step's start
        ax.plot([steps["end"].iloc[i]] * 2, [i, i + 1], color="#888888", linewidth=0.6, linestyle=":")
    span = max(np.abs(steps[["start", "end"]].to_numpy()).max(), 1e-12)
    for i, (value, end, kind) in enumerate(zip(steps["value"], steps["end"], steps["kind"], strict=True)):
        label = f"{value:.2f}" if kind in ("base", "total") else f"{value:+.2f}"
        offset = 0.02 * span if value >= 0 else -0.02 * span
        ax.text(end + offset, i, label, va="center", ha="left" if value >= 0 else "right", fontsize=8)
    ax.axvline(0.0, color="black", linewidth=0.6)
    ax.set_yticks(positions)
    ax.set_yticklabels([text(shorten(label), usetex) for label in steps["label"]])
    ax.invert_yaxis()
    ax.set_xlim(
        min(steps[["start", "end"]].min().min(), 0) - 0.2 * span,
        max(steps[["start", "end"]].max().max(), 0) + 0.2 * span,
    )
    ax.set_xlabel(text(f"Contribution to the {output} (red +, blue −)", usetex))
    ax.grid(axis="x", alpha=0.3)
    return ax


def plot_magnitudes(values: pd.Series, ax: Axes, *, color: str = "#444444", usetex: bool = False) -> Axes:
    """Bars of unsigned values (no direction, no sum), largest on top."""
    positions = np.arange(len(values))
    ax.barh(positions, values.to_numpy(), color=color, edgecolor="black", linewidth=0.5)
    ax.set_yticks(positions)
    ax.set_yticklabels([text(shorten(str(name)), usetex) for name in values.index])
    ax.invert_yaxis()
    ax.set_xlabel("Value (unsigned: magnitude only, no direction)")
    ax.grid(axis="x", alpha=0.3)
    return ax


def explanation_size(explanation: StoredExplanation, top_k: int) -> tuple[float, float]:
    """``(width, height)`` in inches of the two-panel figure of :func:`draw_explanation`."""
    rows = min(top_k, explanation.attribution.n_features) + 4
    return 10.0, 1.8 + 0.28 * rows


def draw_explanation(
    figure: Figure,
    explanation: StoredExplanation,
    *,
    title: str,
    example: int = 0,
    top_k: int = 10,
    color: str = "#444444",
    usetex: bool = False,
) -> tuple[Axes, Axes]:
    """Two panels on ``figure``: the global importance and one test example (waterfall or magnitudes)."""
    _check_row(explanation, example)
    left, right = figure.subplots(1, 2)
    plot_importance(global_importance(explanation), left, top_k=top_k, color=color, usetex=usetex)
    _, output = explained_output(explanation, example)
    if explanation.attribution.signed:
        steps = waterfall_steps(explanation, example, top_k)
        plot_waterfall(steps, right, output=explanation.attribution.output_name.split(" ")[0], usetex=usetex)
    else:
        plot_magnitudes(local_magnitudes(explanation, example, top_k), right, color=color, usetex=usetex)
    right.set_title(text(f"Test example {example}{_true_label(explanation, example)}:\n{output}", usetex), fontsize=10)
    figure.suptitle(text(f"{title}\n{describe(explanation)}", usetex), fontsize=10)
    return left, right


def _true_label(explanation: StoredExplanation, index: int) -> str:
    if len(explanation.y_true) <= index:
        return ""
    value = explanation.y_true[index]
    classes = explanation.classes
    if len(classes) and np.issubdtype(np.asarray(value).dtype, np.integer) and 0 <= int(value) < len(classes):
        value = classes[int(value)]
    return f" (true class '{value}')" if len(classes) else f" (true value {value})"


# ----------------------------------------------------------------------------------------------------------------
# Which runs to explain


def explanation_targets(
    runs: pd.DataFrame, methods: Sequence[str], dataset: str | None = None, seed: str | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """The runs whose explanations are drawn, and notes about the runs that cannot be.

    Default: the first dataset (natural order) on which a compared method saved ``explanations.npz``; ``all``:
    every dataset on which one did; a dataset id: that dataset. On a dataset, every compared method with a run,
    at ``seed`` or at its first seed with the file.

    Returns:
        The chosen rows of ``runs`` with a column ``explanations`` (the file's path), and the notes.

    Raises:
        UserError: ``dataset`` names a dataset without a run of the compared methods.
    """
    part = runs[runs["method"].isin(methods)].copy()
    part["explanations"] = [str(Path(path).parent / EXPLANATIONS_FILENAME) for path in part["path"]]
    part["has_file"] = [Path(path).is_file() for path in part["explanations"]]
    with_file = natural_sorted(part.loc[part["has_file"], "dataset_id"])
    if dataset is None or dataset == "all":
        datasets = with_file if dataset == "all" else with_file[:1]
        if not datasets:
            return part.iloc[:0], ["no explanation figure: no compared run saved an explanations.npz"]
    elif dataset in set(part["dataset_id"]):
        datasets = [dataset]
    else:
        raise UserError(f"--explain_dataset {dataset}: no run of the compared methods on that dataset")
    chosen, notes, absent = [], [], []
    for dataset_id in datasets:
        for method in methods:
            runs_of = part[(part["dataset_id"] == dataset_id) & (part["method"] == method)]
            if runs_of.empty:
                continue
            seeds = natural_sorted(runs_of["seed"])
            pick = seed if seed is not None else (natural_sorted(runs_of.loc[runs_of["has_file"], "seed"]) or seeds)[0]
            if pick not in seeds:
                notes.append(f"no explanation figure for {method} on dataset {dataset_id}: no run with seed {pick}")
                continue
            row = runs_of[runs_of["seed"] == pick].iloc[0]
            if row["has_file"]:
                chosen.append(row)
            else:
                absent.append(f"{method}/{dataset_id}/{pick}")
    if absent:
        notes.append(f"no explanation figure for {len(absent)} run(s) without an explanations.npz: {listing(absent)}")
    return pd.DataFrame(chosen, columns=part.columns), notes


def load_targets(
    runs: pd.DataFrame,
    methods: Sequence[str],
    dataset: str | None = None,
    seed: str | None = None,
    example: int = 0,
) -> tuple[list[tuple[pd.Series, StoredExplanation]], list[str]]:
    """Read and check the explanations chosen by :func:`explanation_targets`, before anything is drawn.

    An unreadable file (truncated, incomplete, inconsistent) is left out with a note that names it; an exact
    explanation that does not add up is kept with a note.

    Returns:
        ``(run row, explanation)`` pairs and the notes.

    Raises:
        UserError: ``example`` is beyond the rows of a chosen file, or ``dataset`` has no run.
    """
    targets, notes = explanation_targets(runs, methods, dataset, seed)
    chosen = []
    for _, row in targets.iterrows():
        try:
            stored = load_explanation(row["explanations"])
        except ValueError as error:
            notes.append(f"skipping {error}")
            continue
        _check_row(stored, example)
        attribution = stored.attribution
        error = attribution.additivity_error() if attribution.exact else 0.0
        if error > 1e-3 * max(1.0, float(np.abs(attribution.output).max(initial=0.0))):
            notes.append(
                f"{stored.path}: values + rest differ from the output by up to {error:.3g}; the waterfall shows both"
            )
        chosen.append((row, stored))
    return chosen, notes


def render_explanation(
    out_dir: Path,
    row: pd.Series,
    explanation: StoredExplanation,
    example: int = 0,
    top_k: int = 10,
    usetex: bool = False,
) -> list[Path]:
    """Draw and save ``explanation_<run_id>_<dataset_id>_<seed>.png``/``.pdf`` of one run; returns the paths."""
    from plots.figures import render

    method, dataset, seed = row["method"], row["dataset_id"], row["seed"]
    title = f"{method_label(method)} explanation: {row['dataset_name']} (dataset {dataset}, seed {seed})"

    def draw(figure: Figure) -> None:
        draw_explanation(
            figure, explanation, title=title, example=example, top_k=top_k, color=method_color(method), usetex=usetex
        )

    stem = out_dir / f"explanation_{method}_{dataset}_{seed}"
    return render(stem, explanation_size(explanation, top_k), draw, usetex=usetex)


# ----------------------------------------------------------------------------------------------------------------
# explain.py's figures


def explanation_figures(result: Explained, *, n_figures: int, top_k: int = 10) -> dict[str, bytes]:
    """The figures of the first ``n_figures`` rows explained by ``explain.py``, rendered in memory.

    ``waterfall_row<k>.png``/``.pdf`` for each row (magnitude bars for unsigned values) and, for ``--explainer acd``,
    ``acd_row<k>.png``/``.pdf`` (``plots.acd``); ``<k>`` is the row number as given. None without an explanation.
    """
    if result.attribution is None:
        return {}
    n_figures = min(n_figures, len(result.rows.labels))
    files = _waterfall_figures(result, n_figures, top_k)
    if result.trees is not None:
        files.update(_acd_figures(result, n_figures))
    return files


def _figure_files(stem: str, size: tuple[float, float], draw: Callable[[Figure], None]) -> dict[str, bytes]:
    from plots.figures import figure_bytes, new_figure

    with new_figure(*size) as figure:
        draw(figure)
        return {f"{stem}.{suffix}": data for suffix, data in figure_bytes(figure).items()}


def _waterfall_figures(result: Explained, n_figures: int, top_k: int) -> dict[str, bytes]:
    saved, rows, attribution, names = result.saved, result.rows, result.attribution, result.output_names
    stored = StoredExplanation(attribution, tuple(saved.classes or ()), np.empty(0), Path(rows.source))
    files: dict[str, bytes] = {}
    for index in range(n_figures):
        label = int(rows.labels[index])
        height = 1.9 + 0.3 * (min(top_k, attribution.n_features) + 4)

        def draw(figure: Figure, index: int = index, label: int = label) -> None:
            ax = figure.subplots()
            if attribution.signed:
                plot_waterfall(waterfall_steps(stored, index, top_k), ax, output=attribution.output_name.split(" ")[0])
            else:
                plot_magnitudes(local_magnitudes(stored, index, top_k), ax)
            truth = "" if rows.y_true is None else f", true {rows.y_true[index]}"
            ax.set_title(f"{rows.source} row {label}{truth}: {names[index]}", fontsize=9)
            figure.suptitle(f"{saved.spec.label} ({saved.run_id}), {describe(stored)}", fontsize=9)

        files.update(_figure_files(f"waterfall_row{label}", (7.5, height), draw))
    return files


def _acd_figures(result: Explained, n_figures: int) -> dict[str, bytes]:
    from plots.acd import plot_acd_hierarchy

    saved, rows = result.saved, result.rows
    files: dict[str, bytes] = {}
    for index in range(n_figures):
        tree, label = result.trees[index], int(rows.labels[index])
        n = len(tree.feature_names)

        def draw(figure: Figure, tree: Any = tree, label: int = label) -> None:
            ax = figure.subplots()
            mappable = plot_acd_hierarchy(tree, ax, title=False)
            figure.colorbar(mappable, ax=ax, label="CD score", shrink=0.6)
            ax.set_title(
                f"ACD, {saved.spec.label} ({saved.run_id}), {rows.source} row {label}: {tree.output_name} = "
                f"{tree.output_value:.3g}\nreference: {tree.reference_name}; rule: {tree.rule}",
                fontsize=9,
            )

        files.update(_figure_files(f"acd_row{label}", (max(6.5, 0.42 * n + 3.0), max(4.0, 0.34 * n + 2.6)), draw))
    return files
