"""Our default-setting test AUROC beside the IMN paper's Table 8, on the datasets both have.

The paper's Table 8 gives test AUROC with default hyperparameters, the mean of 10 seeds, for 35 datasets
(transcribed in ``../shared/docs/related/imn_tables.md``); six of them are in the offline OpenML cache (3, 31, 54,
1464, 1489, 40984). This script reads a results tree of INN, TabResNet and CatBoost runs on them (``sweep.py``,
our defaults), keeps one row per run (:func:`runs_frame`, also written as a CSV so the table can be rebuilt
without the tree), and writes the per-dataset table of ours against the paper's (:func:`comparison_markdown`)::

    python sweep.py --methods inn,tabresnet,catboost --datasets 3 31 54 1464 1489 40984 --seeds 0-4 \\
        --workers 1 --openml_cache_dir ../shared/openml_cache --output_dir /work/results/imn/table8
    python -m studies.imn_table8 --results_dir /work/results/imn/table8 \\
        --runs_csv docs/figures/imn_table8_runs.csv --table docs/figures/imn_table8.md
    python -m studies.imn_table8 --runs_csv docs/figures/imn_table8_runs.csv     # from the CSV alone

The paper's IMN is compared with our INN (the arXiv-v1 defaults of ``docs/defaults.md``: 100 epochs, L1 0.1, no
dropout), its TabResNet and CatBoost with ours at our defaults.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

#: The methods compared: our method id -> (our label, the paper's column).
METHODS: dict[str, tuple[str, str]] = {
    "inn": ("INN", "IMN"),
    "tabresnet": ("TabResNet", "TabResNet"),
    "catboost": ("CatBoost", "CatBoost"),
}
#: The IMN paper's Table 8 (test AUROC, defaults, mean of 10 seeds) on the datasets in the offline cache:
#: dataset id -> (name, {paper column: AUROC}).
PAPER_TABLE8: dict[int, tuple[str, dict[str, float]]] = {
    3: ("kr-vs-kp", {"TabResNet": 0.999, "CatBoost": 0.999, "IMN": 0.999}),
    31: ("credit-g", {"TabResNet": 0.756, "CatBoost": 0.790, "IMN": 0.751}),
    54: ("vehicle", {"TabResNet": 0.968, "CatBoost": 0.934, "IMN": 0.957}),
    1464: ("blood-transfusion", {"TabResNet": 0.740, "CatBoost": 0.709, "IMN": 0.742}),
    1489: ("phoneme", {"TabResNet": 0.949, "CatBoost": 0.948, "IMN": 0.950}),
    40984: ("segment", {"TabResNet": 0.994, "CatBoost": 0.995, "IMN": 0.994}),
}
#: The paper's means over all its 35 datasets (not comparable with a mean over six).
PAPER_MEANS_35: dict[str, float] = {"IMN": 0.8912, "TabResNet": 0.8937, "CatBoost": 0.9012}
RUN_COLUMNS = ["method", "dataset_id", "seed", "test_auroc", "train_time"]


def runs_frame(results_dir: str | Path) -> pd.DataFrame:
    """One row per finished run of the compared methods on the paper's datasets (``RUN_COLUMNS``), sorted."""
    from experiments.results import load_runs

    runs = load_runs(results_dir).runs
    runs = runs[runs["method"].isin(list(METHODS)) & runs["dataset_id"].astype(int).isin(list(PAPER_TABLE8))]
    frame = runs[RUN_COLUMNS].copy()
    frame["dataset_id"] = frame["dataset_id"].astype(int)
    frame["seed"] = frame["seed"].astype(int)
    return frame.sort_values(["dataset_id", "method", "seed"]).reset_index(drop=True)


def comparison(runs: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and method: the paper's AUROC, our mean and sample sd over seeds, the number of seeds and the
    difference (ours − paper)."""
    rows = []
    for dataset_id, (name, paper) in PAPER_TABLE8.items():
        for method, (label, column) in METHODS.items():
            values = runs.loc[(runs["dataset_id"] == dataset_id) & (runs["method"] == method), "test_auroc"]
            mean = float(values.mean()) if len(values) else np.nan
            rows.append({"dataset_id": dataset_id, "dataset": name, "method": label, "paper": paper[column],
                         "mean": mean, "sd": float(values.std(ddof=1)) if len(values) > 1 else np.nan,
                         "n_seeds": int(values.size), "difference": mean - paper[column]})  # fmt: skip
    return pd.DataFrame(rows)


def comparison_markdown(runs: pd.DataFrame) -> str:
    """The table: one row per dataset, per method the paper's AUROC and ours (mean ± sample sd), and the mean
    over the six datasets of both."""
    table = comparison(runs)
    labels = [label for label, _ in METHODS.values()]
    header = "| dataset | " + " | ".join(f"{label}: paper | ours | Δ" for label in labels) + " |"
    lines = [header, "|---|" + "---|---|---|" * len(labels)]
    for (dataset_id, name), group in table.groupby(["dataset_id", "dataset"], sort=False):
        cells = []
        for row in group.itertuples():
            ours = f"{row.mean:.3f} ± {row.sd:.3f}" if np.isfinite(row.sd) else f"{row.mean:.3f}"
            cells.append(f"{row.paper:.3f} | {ours} | {row.difference:+.3f}")
        lines.append(f"| {name} ({dataset_id}) | " + " | ".join(cells) + " |")
    means = table.groupby("method", sort=False)[["paper", "mean"]].mean()
    cells = [f"{means.loc[label, 'paper']:.3f} | {means.loc[label, 'mean']:.3f} | "
             f"{means.loc[label, 'mean'] - means.loc[label, 'paper']:+.3f}" for label in labels]  # fmt: skip
    lines.append("| **mean of the 6** | " + " | ".join(cells) + " |")
    seeds = sorted(runs["seed"].unique())
    counts = sorted(set(table["n_seeds"]))
    caption = (
        f"Paper: the IMN paper's Table 8 (defaults, mean of 10 seeds; its IMN column beside our INN). Ours: test "
        f"AUROC, mean ± sample sd over seeds {', '.join(map(str, seeds))} ({'/'.join(map(str, counts))} per cell), "
        f"our defaults, our split. Δ: ours − paper."
    )
    return "\n".join(lines) + "\n\n" + caption + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results_dir", type=Path, default=None, help="a results tree (else --runs_csv is read)")
    parser.add_argument("--runs_csv", type=Path, default=None, help="written from --results_dir, else read")
    parser.add_argument("--table", type=Path, default=None, help="write the Markdown table here too")
    args = parser.parse_args(argv)
    from experiments.results import atomic_write_bytes

    if args.results_dir is not None:
        runs = runs_frame(args.results_dir)
        if args.runs_csv is not None:
            atomic_write_bytes(args.runs_csv, runs.to_csv(index=False).encode())
    elif args.runs_csv is not None:
        runs = pd.read_csv(args.runs_csv)
    else:
        parser.error("give --results_dir or --runs_csv")
    text = comparison_markdown(runs)
    if args.table is not None:
        atomic_write_bytes(args.table, text.encode())
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
