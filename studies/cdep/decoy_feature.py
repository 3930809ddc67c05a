"""Decoy feature on real data, the tabular analogue of DecoyMNIST: do explanation penalties remove a shortcut?

Every dataset gets one extra numerical column, ``decoy``: a noisy copy of the label in the training rows
(``label code + N(0, NOISE²)``) and, in the test rows of the same split, the same kind of value drawn independently
of the label (``Bernoulli(training positive rate) + N(0, NOISE²)``), so its marginal is the same and it carries no
information. A model that leans on the decoy loses test AUROC; the *blind* model (decoy removed from the input) is
the reference a penalty tries to reach. For TabResNet, INN and SENN (identity concepts, robustness loss off) the
script runs vanilla, blind and every penalty of ``common.PENALTY_GRID`` over its λ grid, through ``sweep.py`` with
one variant per column, on one derived file per seed (``common.write_seed_files``), and writes:

* ``decoy_feature.{csv,md}``: test AUROC, flip rate, AUROC drop and explanation share per dataset × method ×
  penalty × λ (mean ± sd over seeds); ``decoy_feature_runs.csv``: every run;
* ``decoy_recovery.{csv,md}``: per method and penalty × λ, the share of the AUROC that blind regains over vanilla
  which the penalty regains, ``(AUROC_p − AUROC_vanilla) / (AUROC_blind − AUROC_vanilla)``, per dataset and on
  average, and whether the penalty was *gamed* (explanation share down to a quarter of vanilla's or less while
  the flip rate stays at three quarters of vanilla's or more);
* ``decoy_claimed_vs_behaviour.png`` (``plots.reliance``) and ``decoy_auroc.png``.

Usage (one process; the sweep resumes where it stopped)::

    nice -n 10 python -m studies.cdep.decoy_feature --openml_cache_dir ../shared/openml_cache --seeds 0 1 2
    nice -n 10 python -m studies.cdep.decoy_feature --tables_only   # re-read the runs, rewrite the outputs
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from studies.cdep import common

#: Five of the dev datasets (binary, small): credit-g, diabetes, blood-transfusion, credit-approval, kc2.
DATASETS: tuple[int, ...] = (31, 37, 1464, 29, 1063)
#: Their names in the runs (the halves of ``experiments/suites.json`` name datasets by OpenML id).
DATASET_NAMES: dict[int, str] = {
    31: "credit-g", 37: "diabetes", 1464: "blood-transfusion-service-center", 29: "credit-approval", 1063: "kc2",
}  # fmt: skip
#: Standard deviation of the decoy's noise, in label units: the decoy alone separates the training classes with an
#: AUROC of Φ(1 / (NOISE·√2)) ≈ 0.92, more than most real features.
NOISE = 0.5
FEATURE = "decoy"
#: A penalty is called *gamed* when its explanation share falls to this fraction of vanilla's or less ...
GAMED_SHARE = 0.25
#: ... while its flip rate stays at this fraction of vanilla's or more.
GAMED_FLIPS = 0.75


def add_decoy(raw: Any, split: Any, seed: int, *, noise: float = NOISE) -> Any:
    """``raw`` with the ``decoy`` column: a noisy label copy in ``split``'s training rows, independent elsewhere."""
    if split.n_classes != 2:
        raise ValueError(f"the decoy feature is defined for binary tasks, {raw.name} has {split.n_classes} classes")
    rng = common.seeded_rng("decoy", raw.dataset_id, seed)
    codes = common.label_codes(raw, split).astype(np.float64)
    positive_rate = float(np.mean(split.y_train))
    independent = rng.binomial(1, positive_rate, size=len(codes)).astype(np.float64)
    value = np.where(np.isin(np.arange(len(codes)), split.train_index), codes, independent)
    X = raw.X.copy()
    X[FEATURE] = value + noise * rng.normal(size=len(codes))
    return common.replace_raw(raw, X=X, categorical=[*raw.categorical, False])


def base_name(name: str) -> str:
    """The original dataset of a derived file's name (``credit-g_decoy_s0`` -> ``credit-g``)."""
    return re.sub(r"_decoy_s\d+$", "", name)


def recovery_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per method × penalty × λ: the AUROC recovery towards blind per dataset and its mean, and whether the
    penalty was gamed.

    ``claim_ratio``: the penalty's own quantity on the test rows (``common.CLAIM_COLUMNS``) over vanilla's;
    ``share_ratio``: the same for the native explanation's share of the decoy; ``flip_ratio``: the flip rate over
    vanilla's (means over datasets of per-dataset ratios). *Gamed*: the penalty's quantity fell to
    :data:`GAMED_SHARE` of vanilla's or less while the flip rate stayed at :data:`GAMED_FLIPS` of vanilla's or
    more; *washed*: the same for the native explanation's share. The counterfactual penalty's quantity is the
    behaviour itself (no claim column).
    """
    keys = ["dataset", "method"]
    values = ["test_auroc_mean", "test_flip_rate_mean", "explanation_share_mean"]
    values += [f"{column}_mean" for column in common.CLAIM_COLUMNS if f"{column}_mean" in summary]
    reference = summary[summary["penalty"].isin(["vanilla", "blind"])].pivot_table(
        index=keys, columns="penalty", values=values, dropna=False
    )
    rows = []
    for (dataset, method, penalty, strength), part in summary.groupby(
        ["dataset", "method", "penalty", "strength"], sort=False
    ):
        if penalty in ("vanilla", "blind") or (dataset, method) not in reference.index:
            continue
        ref = reference.loc[(dataset, method)]
        vanilla, blind = ref[("test_auroc_mean", "vanilla")], ref[("test_auroc_mean", "blind")]
        row = part.iloc[0]
        gap = blind - vanilla
        claim = f"claim_{penalty}_mean"
        rows.append({
            "method": method, "penalty": penalty, "strength": strength, "dataset": dataset,
            "recovery": (row["test_auroc_mean"] - vanilla) / gap if gap > 0 else np.nan,
            "claim_ratio": row[claim] / ref[(claim, "vanilla")] if claim in row.index else np.nan,
            "share_ratio": row["explanation_share_mean"] / ref[("explanation_share_mean", "vanilla")],
            "flip_ratio": row["test_flip_rate_mean"] / ref[("test_flip_rate_mean", "vanilla")],
        })  # fmt: skip
    frame = pd.DataFrame(rows)
    table = frame.groupby(["method", "penalty", "strength"], sort=False).agg(
        recovery_mean=("recovery", "mean"),
        recovery_min=("recovery", "min"),
        claim_ratio=("claim_ratio", "mean"),
        share_ratio=("share_ratio", "mean"),
        flip_ratio=("flip_ratio", "mean"),
        datasets=("dataset", "nunique"),
    )
    behaves = table["flip_ratio"] >= GAMED_FLIPS
    table["gamed"] = (table["claim_ratio"] <= GAMED_SHARE) & behaves
    table["washed"] = (table["share_ratio"] <= GAMED_SHARE) & behaves
    per_dataset = frame.pivot_table(index=["method", "penalty", "strength"], columns="dataset", values="recovery")
    return table.join(per_dataset, how="left").reset_index()


def halves_table(runs: pd.DataFrame, suites: Path | None = None) -> pd.DataFrame:
    """λ per method and penalty chosen on the selection half's datasets (``experiments/suites.json``), reported on
    the report half's (issue 24), against the λ the report half would have chosen for itself.

    The criterion is the mean recovery over the half's datasets (:func:`recovery_table`); ties go to the smaller
    λ. ``recovery at chosen λ`` and ``… at the other λ`` are the report half's mean recovery.
    """
    import json

    path = suites or Path(__file__).resolve().parents[2] / "experiments" / "suites.json"
    halves = json.loads(path.read_text())
    names = {half: [DATASET_NAMES[i] for i in halves[half]["dataset_ids"] if i in DATASET_NAMES]
             for half in ("selection", "report")}  # fmt: skip
    summaries = {
        half: recovery_table(
            common.summarise(
                runs[runs["dataset"].isin(names[half])],
                ["dataset", "method", "penalty", "strength"],
                [*common.RUN_COLUMNS, *common.CLAIM_COLUMNS],
            )
        )  # fmt: skip
        for half in names
    }
    rows = []
    for (method, penalty), part in summaries["selection"].groupby(["method", "penalty"], sort=False):
        chosen = float(part.sort_values(["recovery_mean", "strength"], ascending=[False, True]).iloc[0]["strength"])
        report = summaries["report"]
        report = report[(report["method"] == method) & (report["penalty"] == penalty)].set_index("strength")
        hindsight = float(report.sort_values(["recovery_mean"], ascending=False, kind="stable").index[0])
        rows.append({
            "method": method, "penalty": penalty, "λ (selection datasets)": f"{chosen:g}",
            "λ the report datasets would pick": f"{hindsight:g}",
            "recovery at chosen λ (report)": f"{report.loc[chosen, 'recovery_mean']:.2f}",
            "recovery at the other λ (report)": "; ".join(
                f"λ={value:g}: {row.recovery_mean:.2f}" for value, row in report.iterrows() if value != chosen
            ),
            "verdict at chosen λ (report)": "gamed" if report.loc[chosen, "gamed"] else (
                "removed" if report.loc[chosen, "flip_ratio"] <= 0.25 else "not removed"),
        })  # fmt: skip
    table = pd.DataFrame(rows)
    table.attrs["datasets"] = names
    return table


def tables(results_dir: Path, out: Path) -> None:
    """Read every run back and write the tables and figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from plots.reliance import claimed_vs_behaviour_figure, draw_metric_by_penalty, draw_penalty_claim

    runs = common.collect(results_dir, base_of=base_name)
    if runs.empty:
        print(f"no finished runs under {results_dir}")
        return
    out.mkdir(parents=True, exist_ok=True)
    runs.to_csv(out / "decoy_feature_runs.csv", index=False)
    summary = common.summarise(
        runs, ["dataset", "method", "penalty", "strength"], [*common.RUN_COLUMNS, *common.CLAIM_COLUMNS]
    )
    shown = ["test_auroc", "test_flip_rate", "test_auroc_drop", "explanation_share"]
    print(common.write_table(common.mean_sd_table(summary, shown), out, "decoy_feature"))
    recovery = recovery_table(summary)
    print(common.write_table(recovery, out, "decoy_recovery"))
    figure = claimed_vs_behaviour_figure(runs, [m for m in common.METHODS if m in set(runs["method"])])
    figure.savefig(out / "decoy_claimed_vs_behaviour.png", dpi=150, bbox_inches="tight")
    plt.close(figure)
    gaming_figure(runs, out / "decoy_gaming.png", draw_penalty_claim)
    methods = [m for m in common.METHODS if m in set(runs["method"])]
    figure, axes = plt.subplots(1, len(methods), figsize=(4.6 * len(methods), 3.4), squeeze=False, sharey=True)
    for ax, method in zip(axes[0], methods, strict=True):
        # AUROC relative to vanilla per dataset and seed, so that datasets of different difficulty can be pooled.
        part = runs[runs["method"] == method].copy()
        vanilla = part[part["penalty"] == "vanilla"].set_index(["dataset", "seed"])["test_auroc"]
        part["test_auroc_gain"] = (
            part["test_auroc"] - vanilla.reindex(pd.MultiIndex.from_frame(part[["dataset", "seed"]])).to_numpy()
        )
        draw_metric_by_penalty(ax, part, "test_auroc_gain")
        ax.set_title(method)
        ax.set_ylabel("test AUROC − vanilla's")
    figure.tight_layout()
    figure.savefig(out / "decoy_auroc.png", dpi=150, bbox_inches="tight")
    plt.close(figure)


def gaming_figure(runs: pd.DataFrame, path: Path, draw) -> None:
    """One panel per penalty with a claim: its own quantity against the flip rate, both relative to vanilla."""
    import matplotlib.pyplot as plt

    penalties = [name for name in ("cdep", "cd_logit", "cd_strict", "weights", "rrr") if name in set(runs["penalty"])]
    if not penalties:
        return
    figure, axes = plt.subplots(1, len(penalties), figsize=(3.6 * len(penalties), 3.4), squeeze=False)
    for ax, penalty in zip(axes[0], penalties, strict=True):
        draw(ax, runs, penalty)
    figure.tight_layout()
    figure.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(figure)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=int, nargs="+", default=list(DATASETS), help="OpenML ids (binary)")
    parser.add_argument("--halves_only", action="store_true",
                        help="only write decoy_halves.{csv,md} from <out>/decoy_feature_runs.csv")  # fmt: skip
    parser.add_argument("--openml_cache_dir", type=Path, default=None)
    common.add_grid_arguments(parser, seeds=[0, 1, 2, 3, 4], results_dir="results/cdep/decoy_feature", strengths=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.halves_only:
        runs = pd.read_csv(args.out / "decoy_feature_runs.csv")
        print(common.write_table(halves_table(runs), args.out, "decoy_halves"))
        return 0
    if not args.tables_only:
        from data import load_dataset

        files = []
        for dataset in args.datasets:
            raw = load_dataset(dataset_id=dataset, openml_cache_dir=args.openml_cache_dir)
            paths = common.write_seed_files(
                raw, args.seeds, args.results_dir / "data", add_decoy, name=f"{raw.name}_decoy"
            )
            files += [paths[seed] for seed in args.seeds]
        grid = common.variants({name: common.PENALTY_GRID[name] for name in args.penalties}, args.methods)
        common.run_grid(files, args.seeds, grid, [FEATURE], args.results_dir, workers=args.workers)
    tables(args.results_dir, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
