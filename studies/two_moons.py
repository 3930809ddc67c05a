"""The paper's toy figure: INN on two moons, its generated local hyperplanes, and how far each one stays accurate.

INN predicts every point ``x`` with its own linear model ``w(x)·z + b(x)``; on two moons that model is a line in
the plane. The figure shows the data, INN's decision boundary and the lines ``{z : w(x)·z + b(x) = 0}`` of a few
points ``x`` near the boundary (each drawn through the plot, its point marked). The table is the paper's
local-hyperplane accuracy: the accuracy of the line generated for a point on that point's ``k`` nearest
neighbours (``k = 10, 25, 50, 100, 200``), averaged over all points (the paper reports 0.84 for ``k = 10``
falling to 0.77 for ``k = 200``). It is computed against the true labels and, as a fidelity measure, against
INN's own predictions.

The paper describes its number as the accuracy of a point's hyperplane "on the k nearest neighbours per class".
The IMN repository's script for it (``neighbors.py``, branch ``danet``) builds a class-balanced neighbourhood,
``k/2`` points of class 1 and ``k/2`` of class 0, but takes them from the first rows of the data set instead of
from the neighbour list it looked up, the same rows for every point. The table therefore has four columns:
:func:`local_hyperplane_accuracy` (the ``k`` nearest points whatever their class: the neighbourhood's label
purity when the line leaves the neighbourhood on the point's side), :func:`nearest_per_class_accuracy` with
``per_class="half"`` (the ``k/2`` nearest points of each class: the script's procedure as intended) and with
``per_class="all"`` (the ``k`` nearest points of each class, ``2k`` in all: the caption read literally), and
:func:`balanced_prefix_accuracy` (the script as committed).

Data and training follow the IMN repository's toy scripts: ``make_moons(n_samples=1000, noise=0.1,
random_state=11)``, the network fitted on all points and evaluated on them, 1000 epochs, learning rate 0.001,
batch 64, no L1 term (``weight_norm 0``); the rest are ``INNClassifier``'s defaults (2 blocks of 128, weight decay
0.01, cosine restarts with snapshots)::

    python -m studies.two_moons --figure docs/figures/two_moons.png --table docs/figures/two_moons.md
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: The paper's neighbourhood sizes.
KS: tuple[int, ...] = (10, 25, 50, 100, 200)
#: The IMN repository's toy data (``toy_example.py``, ``neighbors.py``).
N_SAMPLES, NOISE, DATA_SEED = 1000, 0.1, 11
#: The IMN repository's toy training (``neighbors.py``) in ``INNClassifier``'s parameters.
TOY_PARAMS: dict[str, Any] = {"nr_epochs": 1000, "learning_rate": 0.001, "batch_size": 64, "weight_norm": 0.0}


def local_hyperplanes(model: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The linear model a fitted binary INN generates for every row: weights ``(N, D)`` and bias ``(N,)``.

    ``w(x)·x + b(x)`` is the logit of the second class.

    Shape:
        X ``(N, D)`` -> ``(N, D)``, ``(N,)``
    """
    weights = np.asarray(model.explain(X, reference="zero").extras["weights"], dtype=np.float64)
    if weights.shape[2] != 1:
        raise ValueError(f"expected a binary INN (one logit), got {weights.shape[2]} outputs")
    return weights[:, :-1, 0], weights[:, -1, 0]


def _check(weights: np.ndarray, bias: np.ndarray, X: np.ndarray, ks: Sequence[int]) -> None:
    if weights.shape != X.shape or bias.shape != (X.shape[0],):
        raise ValueError(f"weights {weights.shape} and bias {bias.shape} do not fit X {X.shape}")
    if any(k < 1 or k >= X.shape[0] for k in ks):
        raise ValueError(f"every k must be in [1, {X.shape[0] - 1}], got {list(ks)}")


def local_hyperplane_accuracy(
    weights: np.ndarray, bias: np.ndarray, X: np.ndarray, labels: np.ndarray, ks: Sequence[int] = KS
) -> dict[int, float]:
    """Mean accuracy of every point's hyperplane on that point's ``k`` nearest OTHER points, for each ``k``.

    Point ``i``'s hyperplane predicts class 1 for a neighbour ``z`` when ``w_i·z + b_i > 0``; the accuracy is
    averaged over the ``k`` neighbours and then over all points (Euclidean distance; ties by row order).

    Args:
        weights: ``(N, D)`` every point's generated weights.
        bias: ``(N,)`` every point's generated bias.
        X: ``(N, D)`` the points (also the neighbour pool).
        labels: ``(N,)`` 0/1 labels to score against (true labels, or a model's predictions for fidelity).
        ks: neighbourhood sizes, each in ``[1, N - 1]``.

    Shape:
        weights ``(N, D)``, bias ``(N,)``, X ``(N, D)``, labels ``(N,)`` -> one float per ``k``
    """
    from sklearn.neighbors import NearestNeighbors

    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    _check(weights, bias, X, ks)
    k_max = max(ks)
    # One query for the largest k; the first neighbour of each point is the point itself (distance 0).
    index = NearestNeighbors(n_neighbors=k_max + 1).fit(X).kneighbors(X, return_distance=False)
    neighbours = np.empty((X.shape[0], k_max), dtype=np.int64)
    for row in range(X.shape[0]):  # drop the point itself wherever the tie order put it
        others = index[row][index[row] != row]
        neighbours[row] = others[:k_max]
    scores = np.einsum("nkd,nd->nk", X[neighbours], weights) + bias[:, None]  # (N, k_max)
    correct = (scores > 0).astype(np.int64) == labels[neighbours]
    return {int(k): float(correct[:, :k].mean()) for k in ks}


def nearest_per_class_accuracy(
    weights: np.ndarray,
    bias: np.ndarray,
    X: np.ndarray,
    labels: np.ndarray,
    ks: Sequence[int] = KS,
    *,
    per_class: Literal["half", "all"] = "half",
) -> dict[int, float]:
    """Mean accuracy of every point's hyperplane on a class-balanced neighbourhood of that point, for each ``k``.

    ``per_class="half"``: the ``k // 2`` nearest other points of class 1 and the ``k - k // 2`` nearest of class 0
    (``k`` points; what the IMN repository's ``neighbors.py`` sets out to do); ``"all"``: the ``k`` nearest other
    points of each class (``2k`` points). Classes are those of ``labels``; Euclidean distance, ties by row order.
    A line that leaves the whole neighbourhood on one side scores 0.5; only a line that separates the two classes
    near the point scores high.

    Shape:
        weights ``(N, D)``, bias ``(N,)``, X ``(N, D)``, labels ``(N,)`` -> one float per ``k``
    """
    from sklearn.neighbors import NearestNeighbors

    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    _check(weights, bias, X, ks)
    if per_class not in ("half", "all"):
        raise ValueError(f"per_class must be 'half' or 'all', got {per_class!r}")
    counts = {k: (k // 2, k - k // 2) if per_class == "half" else (k, k) for k in ks}  # (class 1, class 0)
    result = {int(k): 0.0 for k in ks}
    for cls in (1, 0):
        pool = np.flatnonzero(labels == cls)
        need = max(count[0] if cls == 1 else count[1] for count in counts.values())
        if need + 1 > pool.size:
            raise ValueError(f"class {cls} has {pool.size} points, fewer than the {need} neighbours asked for")
        index = NearestNeighbors(n_neighbors=need + 1).fit(X[pool]).kneighbors(X, return_distance=False)
        neighbours = np.empty((X.shape[0], need), dtype=np.int64)
        for row in range(X.shape[0]):  # drop the point itself when it belongs to this class
            others = pool[index[row]]
            neighbours[row] = others[others != row][:need]
        scores = np.einsum("nkd,nd->nk", X[neighbours], weights) + bias[:, None]
        correct = (scores > 0).astype(np.int64) == cls  # every neighbour here has label ``cls``
        for k, count in counts.items():
            result[int(k)] += float(correct[:, : count[0] if cls == 1 else count[1]].sum(axis=1).mean())
    return {k: result[k] / sum(counts[k]) for k in result}


def balanced_prefix_accuracy(
    weights: np.ndarray, bias: np.ndarray, X: np.ndarray, labels: np.ndarray, ks: Sequence[int] = KS
) -> dict[int, float]:
    """What the IMN repository's ``neighbors.py`` computes: every point's hyperplane scored on the first
    ``k // 2`` rows of class 1 and the first ``k - k // 2`` rows of class 0 of the data set (the same rows for
    every point, whatever its neighbours).

    Shape:
        weights ``(N, D)``, bias ``(N,)``, X ``(N, D)``, labels ``(N,)`` -> one float per ``k``
    """
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    _check(weights, bias, X, ks)
    result = {}
    for k in ks:
        rows = np.concatenate([np.flatnonzero(labels == 1)[: k // 2], np.flatnonzero(labels == 0)[: k - k // 2]])
        scores = weights @ X[rows].T + bias[:, None]  # (N, k)
        result[int(k)] = float(((scores > 0).astype(np.int64) == labels[rows][None, :]).mean())
    return result


def boundary_points(logits: np.ndarray, X: np.ndarray, n_points: int) -> np.ndarray:
    """Indices of ``n_points`` rows close to the decision boundary and spread along it: among the tenth of rows
    with the smallest ``|logit|``, the ones at evenly spaced quantiles of the first coordinate."""
    close = np.argsort(np.abs(logits), kind="stable")[: max(n_points, X.shape[0] // 10)]
    ordered = close[np.argsort(X[close, 0], kind="stable")]
    positions = np.linspace(0, len(ordered) - 1, n_points).round().astype(int)
    return ordered[positions]


def draw_two_moons(
    ax: Axes,
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    points: Sequence[int],
    weights: np.ndarray,
    bias: np.ndarray,
) -> None:
    """The data, INN's decision boundary and the generated lines of ``points``, on ``ax``.

    Each point ``x_i`` gets two lines in its colour: dashed, its local model's decision line
    ``{z : w(x_i)·z + b(x_i) = 0}`` (where the hyperplane generated for ``x_i`` changes its prediction), and a solid
    segment through ``x_i`` parallel to it (the local model's level line through the point).
    """
    pad = 0.4
    (x_low, y_low), (x_high, y_high) = X.min(axis=0) - pad, X.max(axis=0) + pad
    grid_x, grid_y = np.meshgrid(np.linspace(x_low, x_high, 300), np.linspace(y_low, y_high, 300))
    grid = np.column_stack([grid_x.ravel(), grid_y.ravel()]).astype(np.float32)
    proba = model.predict_proba(grid)[:, 1].reshape(grid_x.shape)
    ax.contourf(grid_x, grid_y, proba, levels=[0.0, 0.5, 1.0], colors=["#DCE9F5", "#F9E0D0"], alpha=0.8)
    ax.contour(grid_x, grid_y, proba, levels=[0.5], colors="black", linewidths=1.8)
    ax.scatter(X[y == 0, 0], X[y == 0, 1], s=6, color="#0072B2", alpha=0.6, label="class 0")
    ax.scatter(X[y == 1, 0], X[y == 1, 1], s=6, color="#D55E00", alpha=0.6, marker="^", label="class 1")
    colors = ("#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#999933", "#000000")
    line_x = np.linspace(x_low, x_high, 200)
    for number, index in enumerate(points):
        w, b = weights[index], bias[index]
        color = colors[number % len(colors)]
        if abs(w[1]) > 1e-12:
            ax.plot(line_x, -(w[0] * line_x + b) / w[1], color=color, linewidth=1.6, linestyle="--")
        else:  # a vertical line
            ax.axvline(-b / w[0], color=color, linewidth=1.6, linestyle="--")
        direction = np.array([-w[1], w[0]]) / max(np.linalg.norm(w), 1e-12)
        segment = X[index] + np.outer([-0.35, 0.35], direction)
        ax.plot(segment[:, 0], segment[:, 1], color=color, linewidth=2.4)
        ax.scatter(*X[index], s=90, color=color, edgecolor="black", zorder=5)
        ax.annotate(f"$x_{number + 1}$", X[index], xytext=(6, 6), textcoords="offset points", fontsize=11)
    ax.plot([], [], color="black", linewidth=1.8, label="INN decision boundary")
    ax.plot([], [], color="grey", linewidth=1.6, linestyle="--", label=r"$w(x_i)\cdot z + b(x_i) = 0$")
    ax.plot([], [], color="grey", linewidth=2.4, label=r"$w(x_i)\cdot z = w(x_i)\cdot x_i$")
    ax.set_xlim(x_low, x_high)
    ax.set_ylim(y_low, y_high)
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.legend(loc="lower left", fontsize=8, framealpha=0.9)


def run(
    *,
    ks: Sequence[int] = KS,
    n_points: int = 4,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    n_samples: int = N_SAMPLES,
    noise: float = NOISE,
    data_seed: int = DATA_SEED,
) -> dict[str, Any]:
    """Fit INN on two moons and compute the figure's pieces and the table.

    Returns ``model``, ``X``, ``y``, ``weights``, ``bias``, ``points``, ``accuracy`` (INN's accuracy on the
    points), ``fit_seconds``, ``line_distance`` (the median distance from a point to its own decision line) and
    ``table`` (one row per ``k``: accuracy of the local hyperplanes on the ``k`` nearest points' true labels,
    their agreement with INN's predictions there, the accuracy on the ``k/2`` and on the ``k`` nearest points of
    each class, and the IMN script's balanced-prefix variant).
    """
    import pandas as pd
    from sklearn.datasets import make_moons

    from models.estimators import INNClassifier

    X, y = make_moons(n_samples=n_samples, noise=noise, random_state=data_seed)
    X = X.astype(np.float32)
    model = INNClassifier(**{**TOY_PARAMS, **(params or {})}, seed=seed, device="cpu")
    start = time.perf_counter()
    model.fit(X, y)
    fit_seconds = time.perf_counter() - start
    weights, bias = local_hyperplanes(model, X)
    logits = np.einsum("nd,nd->n", X.astype(np.float64), weights) + bias
    predicted = model.predict(X)
    distance = np.abs(logits) / np.maximum(np.linalg.norm(weights, axis=1), 1e-12)
    table = pd.DataFrame(
        {
            "k": list(ks),
            "accuracy (true labels)": list(local_hyperplane_accuracy(weights, bias, X, y, ks).values()),
            "agreement with INN": list(local_hyperplane_accuracy(weights, bias, X, predicted, ks).values()),
            "k/2 nearest per class": list(nearest_per_class_accuracy(weights, bias, X, y, ks).values()),
            "k nearest per class": list(nearest_per_class_accuracy(weights, bias, X, y, ks, per_class="all").values()),
            "IMN script (balanced first rows)": list(balanced_prefix_accuracy(weights, bias, X, y, ks).values()),
        }
    )
    return {
        "model": model,
        "X": X,
        "y": y,
        "weights": weights,
        "bias": bias,
        "points": boundary_points(logits, X, n_points),
        "accuracy": float((predicted == y).mean()),
        "fit_seconds": fit_seconds,
        "line_distance": float(np.median(distance)),
        "table": table,
    }


#: The IMN paper's Table 1 (local-hyperplane accuracy on two moons, by ``k``).
PAPER_TABLE1: dict[int, float] = {10: 0.84, 25: 0.82, 50: 0.78, 100: 0.77, 200: 0.77}


def summary_table(tables: Sequence[Any], paper: dict[int, float] = PAPER_TABLE1) -> Any:
    """Per ``k``: the paper's value and every column of :func:`run`'s table as mean ± sample sd over the seeds'
    tables (the mean alone for one seed)."""
    import pandas as pd

    stacked = pd.concat(tables, keys=range(len(tables)), names=["run", "row"])
    columns = [column for column in tables[0].columns if column != "k"]
    rows = []
    for k, group in stacked.groupby("k", sort=False):
        row: dict[str, Any] = {"k": int(k), "paper": f"{paper[int(k)]:.2f}" if int(k) in paper else "–"}
        for column in columns:
            values = group[column].to_numpy(dtype=np.float64)
            row[column] = f"{values.mean():.3f}" + (f" ± {values.std(ddof=1):.3f}" if len(values) > 1 else "")
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--figure", type=Path, default=Path("docs/figures/two_moons.png"))
    parser.add_argument("--table", type=Path, default=Path("docs/figures/two_moons.md"))
    parser.add_argument("--ks", type=int, nargs="+", default=list(KS))
    parser.add_argument("--points", type=int, default=4, help="points whose lines are drawn")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="INN's seeds (the figure: the first)")
    parser.add_argument("--nr_epochs", type=int, default=TOY_PARAMS["nr_epochs"])
    parser.add_argument("--learning_rate", type=float, default=TOY_PARAMS["learning_rate"])
    parser.add_argument("--weight_norm", type=float, default=TOY_PARAMS["weight_norm"])
    parser.add_argument("--dropout", type=float, default=0.0, help="the IMN script's network has 0.25")
    parser.add_argument("--nr_restarts", type=int, default=3, help="1: one cosine cycle, as the IMN script")
    parser.add_argument("--n_samples", type=int, default=N_SAMPLES)
    args = parser.parse_args(argv)
    if any(k < 1 or k >= args.n_samples for k in args.ks):
        print(f"error: every k must be in [1, {args.n_samples - 1}]", file=sys.stderr)
        return 2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from experiments.results import atomic_write_bytes
    from studies.faithfulness import markdown

    params = {"nr_epochs": args.nr_epochs, "learning_rate": args.learning_rate, "weight_norm": args.weight_norm,
              "dropout": args.dropout, "nr_restarts": args.nr_restarts}  # fmt: skip
    results = []
    for seed in args.seeds:
        results.append(run(ks=args.ks, n_points=args.points, seed=seed, params=params, n_samples=args.n_samples))
        print(f"seed {seed}: accuracy {results[-1]['accuracy']:.3f}, fit {results[-1]['fit_seconds']:.0f} s",
              file=sys.stderr)  # fmt: skip
    first = results[0]
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    draw_two_moons(ax, first["model"], first["X"], first["y"], first["points"], first["weights"], first["bias"])
    ax.set_title(
        f"INN on two moons, seed {args.seeds[0]} (accuracy {first['accuracy']:.3f}): local hyperplanes of "
        f"{args.points} points"
    )
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
    atomic_write_bytes(args.figure, buffer.getvalue())
    accuracy = ", ".join(f"{r['accuracy']:.3f}" for r in results)
    fits = ", ".join(f"{r['fit_seconds']:.0f}" for r in results)
    distances = ", ".join(f"{r['line_distance']:.2f}" for r in results)
    spread = "mean ± sample sd over the seeds" if len(results) > 1 else "one seed"
    caption = (
        f"INN on make_moons(n_samples={args.n_samples}, noise={NOISE}, random_state={DATA_SEED}), seeds "
        f"{', '.join(map(str, args.seeds))}, {args.nr_epochs} epochs, learning rate {args.learning_rate}, "
        f"weight_norm {args.weight_norm}, dropout {args.dropout}, {args.nr_restarts} cosine cycle(s): accuracy on "
        f"the points {accuracy}; fit {fits} s. Median distance from a point to its own decision line: {distances}. "
        f"Table: {spread}; `paper`: the IMN paper's Table 1."
    )
    text = caption + "\n\n" + markdown(summary_table([r["table"] for r in results])) + "\n"
    atomic_write_bytes(args.table, text.encode())
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
