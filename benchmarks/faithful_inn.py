"""Issue 22's study: INN-Shapley's candidates against INN, chosen on the selection half, reported on the report half.

Two parts, each one row per (candidate, unit) appended to a CSV (a rerun skips finished units, so it resumes):

``synthetic``: XAI-Bench targets at the paper's sizes (1000 training / 100 test rows, d = 5, noise 0.01, 100 epochs,
registry defaults plus the candidate's parameters). Per unit: test MSE; the native explanation's interventional
Shapley correlation against the benchmark's ground truth (``xai.shapley.ground_truth_shapley``, 1000 background
draws from N(0, Σ), the benchmark's random stream) and its faithfulness (``xai.metrics.faithfulness``, 100
conditional draws, the benchmark's stream): the numbers ``xai/benchmark.py`` computes for the same unit; and the
per-row correlation with the exact interventional Shapley values of the SAME model with 250 training rows as
background (``explainers.bruteforce_shap.BruteForceShap``, every coalition). Fit and explanation seconds.

``real``: cached CC18 datasets, the registry's split and defaults. Per unit: test AUROC, the explanation-vs-
sensitivity rank correlation of the defaults study (``experiments.runner.sensitivity_audit``: Spearman's ρ between
mean |attribution| and mean |Δ output| when a feature is resampled from the training rows, 5 draws per test row),
fit seconds (wall and process CPU; one thread), explanation seconds per test row (minimum of 3 calls), and, where the data has at most
``--self_shapley_max_features`` features, the per-row correlation with the model's exact interventional Shapley
values (100 training rows as background, up to 100 test rows).

Halves (``experiments/suites.json``): without ``--report`` the report half's datasets and synthetic seeds are
refused, so that a candidate is chosen on the selection half; ``--report`` runs the chosen design (candidate
``chosen``: the registry's defaults) beside INN on the report half. The real part also records the explanation's and
the sensitivity's share of every feature (``shares``, JSON) for the per-feature checks (credit-g's
``checking_status``).

Usage (from the repository root)::

    python -m benchmarks.faithful_inn synthetic --candidates inn centred shapley1 \\
        --targets gaussianNonLinearAdditive --rhos 0 0.5 --seeds 100 101 102 --output /work/results/faithful/syn.csv
    python -m benchmarks.faithful_inn real --candidates inn shapley1 --datasets 37 1464 --seeds 0 1 2 \\
        --openml_cache_dir ../shared/openml_cache --output /work/results/faithful/real.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: The design every INN-Shapley candidate starts from (the first one measured), spelled out so that a candidate
#: means the same whatever the registry's defaults become.
FIRST_DESIGN: dict[str, Any] = {
    "readout": "product",
    "shapley_strength": 1.0,
    "shapley_coalitions": 1,
    "shapley_background": 1,
    "shapley_detach": True,
    "shapley_pass": "separate",
    "shapley_split_only": False,
    "readout_norm": 0.0,
}


def _variant(**changes: Any) -> tuple[str, dict[str, Any]]:
    return "inn_shapley", {**FIRST_DESIGN, **changes}


#: name -> (method, estimator parameters beyond the registry's defaults). "_nd": the hybrid rows' read-outs are
#: trained too (not detached); "_joint": and they share the batch's forward pass; "_k": coalitions per row.
CANDIDATES: dict[str, tuple[str, dict[str, Any]]] = {
    "inn": ("inn", {}),
    "chosen": ("inn_shapley", {}),  # the registry's defaults: the design chosen on the selection half
    # (1) the centred read-out with one constant bias, no consistency term
    "centred": _variant(shapley_strength=0.0),
    "centred_l1": _variant(shapley_strength=0.0, readout_norm=0.1),
    # (2) plus the Shapley-consistency term: strength, coalitions per row, background rows per coalition
    "shapley0.3": _variant(shapley_strength=0.3),
    "shapley1": _variant(),
    "shapley3": _variant(shapley_strength=3.0),
    "shapley10": _variant(shapley_strength=10.0),
    "shapley1_k4": _variant(shapley_coalitions=4),
    "shapley1_m4": _variant(shapley_background=4),
    "shapley1_l1": _variant(readout_norm=0.1),
    "shapley0.3_nd": _variant(shapley_strength=0.3, shapley_detach=False),
    "shapley1_nd": _variant(shapley_detach=False),
    "shapley3_nd": _variant(shapley_strength=3.0, shapley_detach=False),
    "shapley1_nd_k0.5": _variant(shapley_detach=False, shapley_coalitions=0.5),
    "shapley1_nd_k4": _variant(shapley_detach=False, shapley_coalitions=4),
    "shapley1_nd_l1": _variant(shapley_detach=False, readout_norm=0.1),
    "shapley1_joint": _variant(shapley_detach=False, shapley_pass="joint"),
    # (3) an explanation head: the network emits ψ(x) itself
    "head0": _variant(readout="head", shapley_strength=0.0),
    "head1": _variant(readout="head"),
    "head10": _variant(readout="head", shapley_strength=10.0),
    "head1_nd": _variant(readout="head", shapley_detach=False),
    "head0.3_nd": _variant(readout="head", shapley_strength=0.3, shapley_detach=False),
    "head1_nd_k0.5": _variant(readout="head", shapley_detach=False, shapley_coalitions=0.5),
    # product and head together: ψ_j(x) = W_j(x)·x_j + a_j(x)
    "affine0": _variant(readout="affine", shapley_strength=0.0),
    "affine1_nd": _variant(readout="affine", shapley_detach=False),
    "affine0.3_nd": _variant(readout="affine", shapley_strength=0.3, shapley_detach=False),
    "affine1_nd_k0.5": _variant(readout="affine", shapley_detach=False, shapley_coalitions=0.5),
    "affine1_joint": _variant(readout="affine", shapley_detach=False, shapley_pass="joint"),
    "affine0.3_joint": _variant(readout="affine", shapley_strength=0.3, shapley_detach=False, shapley_pass="joint"),
    "affine1_joint_detached": _variant(readout="affine", shapley_pass="joint"),
    "affine1_detached": _variant(readout="affine"),
    "affine1_joint_split": _variant(readout="affine", shapley_pass="joint", shapley_split_only=True),
    "affine1_joint_nd_split": _variant(
        readout="affine", shapley_pass="joint", shapley_detach=False, shapley_split_only=True
    ),
}
#: Training rows (a seeded sample) that are the background of the model's own exact Shapley values.
SELF_BACKGROUND = 250


def _report_half() -> dict[str, Any]:
    from experiments.sweep import load_suites

    return load_suites()["report"]


def _done(path: Path, keys: Sequence[str]) -> set[tuple[str, ...]]:
    if not path.is_file():
        return set()
    with path.open() as handle:
        return {tuple(str(row[key]) for key in keys) for row in csv.DictReader(handle)}


def _append(path: Path, row: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.is_file()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
        handle.flush()
        os.fsync(handle.fileno())


def _mean_row_correlation(a: np.ndarray, b: np.ndarray) -> float:
    from xai.metrics import row_correlation

    return float(np.nanmean(row_correlation(a, b)))


def synthetic_unit(candidate: str, target: str, rho: float, seed: int, *, epochs: int) -> dict[str, Any]:
    """One (candidate, target, ρ, seed) of the synthetic part (see the module docstring)."""
    from data.synthetic import make_synthetic
    from explainers.bruteforce_shap import BruteForceShap
    from methods import get_method
    from studies.xai_bench.fitting import synthetic_split
    from studies.xai_bench.scoring import random_stream as _stream
    from xai.metrics import faithfulness, shapley_corr
    from xai.shapley import ground_truth_shapley

    method, params = CANDIDATES[candidate]
    spec = get_method(method)
    data = make_synthetic(target, d=5, rho=rho, n_train=1000, n_test=100, noise=0.01, seed=seed)
    split = synthetic_split(data, target)
    model = spec.build(split, seed=seed, device="cpu", params={**params, "nr_epochs": epochs})
    start = time.perf_counter()
    model.fit(data.X_train.astype(np.float32), data.y_train)
    fit_seconds = time.perf_counter() - start

    def predict(rows: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(np.asarray(rows, dtype=np.float32)), dtype=np.float64).reshape(-1)

    start = time.perf_counter()
    attribution = spec.explain(model, split, data.X_test.astype(np.float32))
    explain_seconds = time.perf_counter() - start
    phi = np.asarray(attribution.values, dtype=np.float64)[:, :, 0]
    truth = ground_truth_shapley(
        predict,
        data.X_test,
        value_function="interventional",
        distribution=data.distribution,
        n_samples=1000,
        rng=_stream(seed, target, rho, "interventional ground truth"),
    )
    deltas = faithfulness(
        predict,
        data.X_test,
        np.zeros_like(data.X_test),
        distribution=data.distribution,
        n_samples=100,
        rng=_stream(seed, target, rho, "faithfulness"),
    ).extras["deltas"]
    own = BruteForceShap(predict, data.X_train, background_size=SELF_BACKGROUND, seed=seed).explain(data.X_test)
    own_values = np.asarray(own.values, dtype=np.float64)[:, :, 0]
    return {
        "candidate": candidate,
        "method": method,
        "params": json.dumps(params, sort_keys=True),
        "target": target,
        "rho": rho,
        "seed": seed,
        "test_mse": float(np.mean((predict(data.X_test) - data.y_test) ** 2)),
        "shapley_corr_interventional": shapley_corr(phi, truth.values).value,
        "faithfulness": _mean_row_correlation(np.abs(phi), deltas),
        "self_shapley_corr": _mean_row_correlation(phi, own_values),
        "self_shapley_mse": float(np.mean((phi - own_values) ** 2)),
        # Ceilings: the model's own exact Shapley values scored by the same two metrics.
        "own_shapley_corr_interventional": shapley_corr(own_values, truth.values).value,
        "own_faithfulness": _mean_row_correlation(np.abs(own_values), deltas),
        "rest_sd": float(np.std(np.asarray(attribution.rest)[:, 0])),
        "additivity_error": attribution.additivity_error(),
        "fit_seconds": fit_seconds,
        "explain_seconds": explain_seconds,
    }


def real_unit(
    candidate: str, dataset_id: int, seed: int, *, cache: str | None, self_shapley_max_features: int
) -> dict[str, Any]:
    """One (candidate, dataset, seed) of the real-data part (see the module docstring)."""
    from data import load_dataset, prepare_split
    from experiments.runner import sensitivity_audit
    from explainers.bruteforce_shap import BruteForceShap
    from methods import get_method
    from models.metrics import auroc

    method, params = CANDIDATES[candidate]
    spec = get_method(method)
    raw = load_dataset(dataset_id=dataset_id, openml_cache_dir=cache)
    split = prepare_split(raw, mode="classification", seed=seed, encoding_type=spec.encoding)
    model = spec.build(split, seed=seed, device="cpu", params=params)
    X_train, X_test = spec.inputs(split)
    start, cpu_start = time.perf_counter(), time.process_time()
    model.fit(X_train, split.y_train)
    fit_seconds, fit_cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    proba = model.predict_proba(X_test)
    explain_times = []
    for _ in range(3):
        start = time.perf_counter()
        attribution = spec.explain(model, split, X_test)
        explain_times.append(time.perf_counter() - start)
    audit = sensitivity_audit(spec, model, split, attribution, seed=seed)
    row = {
        "candidate": candidate,
        "method": method,
        "params": json.dumps(params, sort_keys=True),
        "dataset_id": dataset_id,
        "dataset_name": raw.name,
        "seed": seed,
        "n_features": len(split.feature_names),
        "n_inputs": len(split.input_names),
        "n_classes": split.n_classes,
        "test_auroc": auroc(split.y_test, proba, split.n_classes),
        "sensitivity_rank_correlation": audit["sensitivity_rank_correlation"],
        "fit_seconds": fit_seconds,
        "fit_cpu_seconds": fit_cpu_seconds,
        "explain_seconds_per_row": min(explain_times) / max(1, split.n_test),
        "rest_sd": float(np.std(np.asarray(attribution.rest), axis=0).max()),
        "additivity_error": attribution.additivity_error(),
        "self_shapley_corr": float("nan"),
        "shares": json.dumps(
            {
                "explanation": audit["sensitivity_audit"]["explanation_share"],
                "sensitivity": audit["sensitivity_audit"]["sensitivity_share"],
            }
        ),
    }
    if len(split.feature_names) <= self_shapley_max_features:
        rows = X_test[:100]
        own = BruteForceShap(
            lambda x: spec.output(model, np.asarray(x, dtype=np.float32)),
            X_train,
            background_size=100,
            seed=seed,
            input_to_feature=split.input_to_feature,
            feature_names=split.feature_names,
        ).explain(rows)
        mine = spec.explain(model, split, rows)
        row["self_shapley_corr"] = float(
            np.mean([_mean_row_correlation(mine.values[:, :, c], own.values[:, :, c]) for c in range(own.n_outputs)])
        )
    return row


def _markdown(frame) -> str:
    """A frame (its index as the first columns) as a Markdown table, numbers to 4 significant digits."""
    from plots.tables import markdown_table

    return markdown_table(frame.reset_index()).rstrip("\n")


#: Where the doc's tables are drawn from (``docs/faithful_inn.md``), relative to the repository root.
FIGURES = Path("docs/figures/faithful_inn")
#: The selection rule, fixed before the last selection runs: among the candidates run on every selection dataset,
#: those within this much mean test AUROC of INN (paired), then the highest mean explanation-vs-sensitivity ρ.
AUROC_TOLERANCE = 0.003
#: The synthetic candidates shown in the doc's selection table (the others are in the CSV).
SHOWN_SYNTHETIC = ("inn", "centred", "shapley1", "shapley1_nd", "head1_nd", "affine1_nd", "affine1_joint",
                   "affine0.3_joint", "affine1_joint_split")  # fmt: skip


def _mean_sd(values) -> str:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return "–"
    if values.size == 1:
        return f"{values[0]:.3f}"
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f}"


def selection_synthetic_markdown(frame) -> str:
    """Selection half, XAI-Bench non-linear additive target: per candidate and ρ, means over the seeds."""
    columns = {
        "test_mse": "test MSE",
        "shapley_corr_interventional": "Shapley corr. (interv.)",
        "faithfulness": "faithfulness",
        "self_shapley_corr": "corr. with its exact SHAP",
        "rest_sd": "sd of the rest",
    }
    shown = frame[frame["candidate"].isin(SHOWN_SYNTHETIC)]
    table = shown.groupby(["rho", "candidate"])[list(columns)].mean()
    table["seeds"] = shown.groupby(["rho", "candidate"]).size()
    order = {name: index for index, name in enumerate(SHOWN_SYNTHETIC)}
    table = table.reset_index().sort_values(
        ["rho", "candidate"], key=lambda c: c.map(order) if c.name == "candidate" else c
    )
    return _markdown(table.set_index(["rho", "candidate"]).rename(columns=columns))


def paired_with_inn(frame, candidate: str):
    """The rows of ``candidate`` and INN's on the same (dataset, seed) units, aligned: ``(mine, inn)``."""
    key = ["dataset_id", "seed"]
    mine = frame[frame["candidate"] == candidate].set_index(key).sort_index()
    inn = frame[frame["candidate"] == "inn"].set_index(key).sort_index()
    common = mine.index.intersection(inn.index)
    return mine.loc[common], inn.loc[common]


def selection_real_markdown(frame) -> str:
    """Selection half, cached CC18: per candidate, paired with INN on the units both ran."""
    rows = []
    all_datasets = frame.loc[frame["candidate"] == "inn", "dataset_id"].nunique()
    for candidate in frame["candidate"].unique():
        if candidate == "inn":
            continue
        mine, inn = paired_with_inn(frame, candidate)
        rows.append(
            {
                "candidate": candidate,
                "datasets": mine.index.get_level_values(0).nunique(),
                "units": len(mine),
                "AUROC − INN's": float((mine["test_auroc"] - inn["test_auroc"]).mean()),
                "ρ": float(mine["sensitivity_rank_correlation"].mean()),
                "INN's ρ": float(inn["sensitivity_rank_correlation"].mean()),
                "corr. with its exact SHAP": float(mine["self_shapley_corr"].mean()),
                "fit / INN's (median)": float((mine["fit_seconds"] / inn["fit_seconds"]).median()),
                "on every dataset": mine.index.get_level_values(0).nunique() == all_datasets,
            }
        )
    import pandas as pd

    table = pd.DataFrame(rows).sort_values(["on every dataset", "ρ"], ascending=False).set_index("candidate")
    return _markdown(table)


def choose(frame) -> str:
    """The selection rule (:data:`AUROC_TOLERANCE`) applied to the selection half's real-data rows."""
    all_datasets = frame.loc[frame["candidate"] == "inn", "dataset_id"].nunique()
    best, best_rho = "inn", -np.inf
    for candidate in frame["candidate"].unique():
        if candidate == "inn":
            continue
        mine, inn = paired_with_inn(frame, candidate)
        if mine.index.get_level_values(0).nunique() < all_datasets:
            continue
        gap = float((mine["test_auroc"] - inn["test_auroc"]).mean())
        rho = float(mine["sensitivity_rank_correlation"].mean())
        if gap >= -AUROC_TOLERANCE and rho > best_rho:
            best, best_rho = candidate, rho
    return best


def share_distance(shares: str) -> float:
    """Total-variation distance between a unit's explanation shares and sensitivity shares (``shares`` JSON):
    ``½ Σ_j |e_j − s_j|``, 0 when they agree, 1 when they share nothing."""
    parsed = json.loads(shares)
    names = list(parsed["sensitivity"])
    return 0.5 * float(sum(abs(parsed["explanation"][name] - parsed["sensitivity"][name]) for name in names))


def largest_sensitivity_share(shares: str) -> float:
    """The largest share of the measured sensitivity (near ``1/F``: the features matter alike and their ranks are
    noise)."""
    return float(max(json.loads(shares)["sensitivity"].values()))


def report_real_markdown(frame) -> str:
    """Report half: per dataset, INN and the chosen INN-Shapley (mean ± sample sd over seeds), then all units."""
    from scipy.stats import wilcoxon

    mine, inn = paired_with_inn(frame, "chosen")
    lines = [
        "| dataset | seeds | AUROC INN | AUROC INN-Shapley | ρ INN | ρ INN-Shapley | share distance INN | share distance "
        "INN-Shapley | largest sensitivity share | fit s INN | fit s INN-Shapley |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset_id in sorted(set(mine.index.get_level_values(0))):
        a, b = inn.loc[dataset_id], mine.loc[dataset_id]
        lines.append(
            f"| {b['dataset_name'].iloc[0]} ({dataset_id}) | {len(b)} | {_mean_sd(a['test_auroc'])} | "
            f"{_mean_sd(b['test_auroc'])} | {_mean_sd(a['sensitivity_rank_correlation'])} | "
            f"{_mean_sd(b['sensitivity_rank_correlation'])} | {_mean_sd(a['shares'].map(share_distance))} | "
            f"{_mean_sd(b['shares'].map(share_distance))} | {b['shares'].map(largest_sensitivity_share).mean():.3f} | "
            f"{a['fit_seconds'].mean():.1f} | {b['fit_seconds'].mean():.1f} |"
        )
    gap = mine["test_auroc"] - inn["test_auroc"]
    per_dataset = gap.groupby(level=0).mean()
    p_units = wilcoxon(mine["test_auroc"], inn["test_auroc"]).pvalue
    p_datasets = wilcoxon(per_dataset).pvalue if len(per_dataset) > 1 else float("nan")
    rho_mine = mine["sensitivity_rank_correlation"].groupby(level=0).mean()
    rho_inn = inn["sensitivity_rank_correlation"].groupby(level=0).mean()
    lines.append(
        f"| **all ({len(per_dataset)} datasets)** | {len(mine)} units | {inn['test_auroc'].mean():.4f} | "
        f"{mine['test_auroc'].mean():.4f} | {rho_inn.mean():.3f} | {rho_mine.mean():.3f} | "
        f"{inn['shares'].map(share_distance).mean():.3f} | {mine['shares'].map(share_distance).mean():.3f} | | "
        f"{inn['fit_seconds'].mean():.1f} | {mine['fit_seconds'].mean():.1f} |"
    )
    own = mine["self_shapley_corr"].groupby(level=0).mean().dropna()
    own_inn = inn["self_shapley_corr"].groupby(level=0).mean().dropna()
    fit_ratio = mine["fit_seconds"] / inn["fit_seconds"]
    cpu_ratio = mine["fit_cpu_seconds"] / inn["fit_cpu_seconds"]
    explain_ratio = mine["explain_seconds_per_row"] / inn["explain_seconds_per_row"]
    lines += [
        "",
        f"AUROC, INN-Shapley − INN: mean {gap.mean():+.4f} over {len(gap)} paired units (median {gap.median():+.4f}; "
        f"per dataset from {per_dataset.min():+.4f} to {per_dataset.max():+.4f}); Wilcoxon signed-rank p = "
        f"{p_units:.3g} over units, p = {p_datasets:.3g} over the {len(per_dataset)} dataset means. "
        f"ρ (explanation vs. sensitivity, mean of the dataset means): INN {rho_inn.mean():.3f}, INN-Shapley "
        f"{rho_mine.mean():.3f}; INN-Shapley's ρ is at least 0.9 on {int((rho_mine >= 0.9).sum())} of "
        f"{len(rho_mine)} datasets. Per-row correlation with the same model's exact Shapley values (brute force, "
        f"100 training rows as background, up to 100 test rows; on the {len(own)} datasets of at most 5 features, "
        f"and ilpd's INN seed 0): INN-Shapley "
        + ", ".join(f"{dataset} {value:.3f}" for dataset, value in own.items())
        + "; INN "
        + ", ".join(f"{dataset} {value:.3f}" for dataset, value in own_inn.items())
        + f". Cost, paired per unit (same process, one thread, one after the other): fit time "
        f"{fit_ratio.median():.2f}× INN's (median; wall; CPU time {cpu_ratio.median():.2f}×; max {fit_ratio.max():.2f}×), "
        f"explanation time per row {explain_ratio.median():.2f}× (median).",
    ]
    return "\n".join(lines)


def shares_markdown(frame, dataset_id: int = 31, feature: str = "checking_status") -> str:
    """One feature's share of the explanation and of the measured sensitivity, per method, over the seeds."""
    lines = ["| model | seeds | explanation share | sensitivity share | ratio |", "|---|---|---|---|---|"]
    for candidate, label in (("inn", "INN"), ("chosen", "INN-Shapley")):
        rows = frame[(frame["candidate"] == candidate) & (frame["dataset_id"] == dataset_id)]
        shares = [json.loads(text) for text in rows["shares"]]
        explanation = np.array([share["explanation"][feature] for share in shares])
        sensitivity = np.array([share["sensitivity"][feature] for share in shares])
        lines.append(
            f"| {label} | {len(rows)} | {_mean_sd(explanation)} | {_mean_sd(sensitivity)} | "
            f"{(explanation / sensitivity).mean():.2f} |"
        )
    return "\n".join(lines)


def removal_markdown(frame) -> str:
    """Removal with retraining (``studies.faithfulness``'s ``removal.csv``): per dataset and ranking, the mean test
    AUROC drop at each ``k`` and over ``k = 1..5`` (mean ± sample sd over seeds), then the paired comparisons."""
    frame = frame[frame["k"] > 0]
    per_seed = frame.groupby(["dataset", "label", "seed"])["drop"].mean().sort_index()
    by_k = frame.groupby(["dataset", "label", "k"], sort=False)["drop"].mean().unstack("k")
    ks = list(by_k.columns)
    lines = [
        "| dataset | ranking | seeds | " + " | ".join(f"drop k={k}" for k in ks) + " | mean drop k=1..5 |",
        "|---|---|---|" + "---|" * len(ks) + "---|",
    ]
    for (dataset, label), row in by_k.iterrows():
        seeds = per_seed.loc[(dataset, label)]
        cells = " | ".join(f"{row[k]:.3f}" for k in ks)
        lines.append(f"| {dataset} | {label} | {len(seeds)} | {cells} | {_mean_sd(seeds)} |")
    summary = []
    for dataset in frame["dataset"].unique():
        mine = per_seed.loc[(dataset, "INN-Shapley")]
        parts = []
        for other in ("INN-Shapley (random order)", "TabResNet + KernelSHAP", "INN"):
            if (dataset, other) not in by_k.index:
                continue
            theirs = per_seed.loc[(dataset, other)]
            common = mine.index.intersection(theirs.index)
            gap = mine.loc[common] - theirs.loc[common]
            parts.append(
                f"{gap.mean():+.3f} against {other} ({len(common)} paired seeds, larger on {int((gap > 0).sum())})"
            )
        summary.append(f"{dataset}: " + "; ".join(parts))
    lines += ["", "INN-Shapley's mean drop minus the other ranking's, same seeds: " + ". ".join(summary) + "."]
    return "\n".join(lines)


def xai_table(frame, rho: float) -> str:
    """The XAI benchmark's own table at ``rho`` (``studies.xai_bench``), from its ``results.csv``."""
    from studies.xai_bench.tables import paper_table, table_markdown

    return table_markdown(paper_table(frame, rho=rho), rho=rho)


def _mse_cell(values) -> str:
    if len(values) < 2:
        return f"{values.mean():.4f}" if len(values) else "–"
    return f"{values.mean():.4f} ± {values.std(ddof=1):.4f} ({values.min():.4f}–{values.max():.4f})"


def xai_models_markdown(frame) -> str:
    """Per target and ρ: the test MSE of INN and INN-Shapley (mean ± sample sd and range over seeds), and the
    faithfulness of INN-Shapley's own explanation beside exact Shapley values (BF-SHAP) of its model and of
    TabResNet's."""
    faithfulness = frame[frame["metric"] == "faithfulness"]
    lines = [
        "| target | ρ | test MSE INN | test MSE INN-Shapley | faithfulness: INN-Shapley's own | BF-SHAP on INN-Shapley "
        "| BF-SHAP on TabResNet |",
        "|---|---|---|---|---|---|---|",
    ]
    for (dataset, rho), part in faithfulness.groupby(["dataset", "rho"], sort=True):
        native = part[part["native"]]
        mse = {model: native[native["model"] == model]["model_test_mse"] for model in ("inn", "inn_shapley")}
        values = {entry: part[part["entry"] == entry]["value"] for entry in
                  ("inn_shapley", "bruteforce_shap@inn_shapley", "bruteforce_shap")}  # fmt: skip
        lines.append(
            f"| {dataset} | {rho:g} | {_mse_cell(mse['inn'])} | {_mse_cell(mse['inn_shapley'])} | "
            + " | ".join(_mean_sd(value) for value in values.values())
            + " |"
        )
    return "\n".join(lines)


def _read(name: str, root: Path):
    import pandas as pd

    return pd.read_csv(root / FIGURES / name)


#: The doc's generated blocks: name -> (what it is drawn from, how).
BLOCKS = {
    "selection_synthetic": ("selection_synthetic.csv", selection_synthetic_markdown),
    "selection_real": ("selection_real.csv", selection_real_markdown),
    "report_real": ("report_real.csv", report_real_markdown),
    "credit_g_shares": ("report_real.csv", shares_markdown),
    "removal": ("removal.csv", removal_markdown),
    "xai_rho0": ("xai_results.csv", lambda frame: xai_table(frame, 0.0)),
    "xai_rho05": ("xai_results.csv", lambda frame: xai_table(frame, 0.5)),
    "xai_models": ("xai_results.csv", xai_models_markdown),
}


def render(name: str, root: Path = Path(".")) -> str:
    """The Markdown of the doc's block ``name`` (:data:`BLOCKS`), drawn from its CSV under ``root``."""
    source, make = BLOCKS[name]
    return make(_read(source, root))


def write_blocks(doc: Path, root: Path = Path(".")) -> None:
    """Rewrite every ``<!-- table:NAME -->`` block of ``doc`` whose NAME is one of :data:`BLOCKS` by :func:`render`'s
    table (``plots.tables.replace_table_blocks``)."""
    from plots.tables import replace_table_blocks

    text = doc.read_text(encoding="utf-8")
    names = [name for name in re.findall(r"<!-- table:(\S+) -->", text) if name in BLOCKS]
    text, _ = replace_table_blocks(text, {name: render(name, root) + "\n" for name in names})
    doc.write_text(text, encoding="utf-8")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parts = parser.add_subparsers(dest="part", required=True)
    synthetic = parts.add_parser("synthetic", help="XAI-Bench targets, paper sizes")
    synthetic.add_argument("--targets", nargs="+", default=["gaussianNonLinearAdditive"])
    synthetic.add_argument("--rhos", nargs="+", type=float, default=[0.0, 0.5])
    synthetic.add_argument("--seeds", nargs="+", type=int, default=[100, 101, 102])
    synthetic.add_argument("--nr_epochs", type=int, default=100)
    real = parts.add_parser("real", help="cached CC18 datasets")
    real.add_argument("--datasets", nargs="+", type=int, default=[37, 1464, 1510, 29, 1068, 40994])
    real.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    real.add_argument("--openml_cache_dir", default=None)
    real.add_argument("--self_shapley_max_features", type=int, default=10)
    report = parts.add_parser("report", help="the doc's tables from the CSVs under docs/figures/faithful_inn")
    report.add_argument("--write", type=Path, default=None, help="refresh the generated blocks of this doc")
    for part in (synthetic, real):
        part.add_argument("--candidates", nargs="+", choices=list(CANDIDATES), required=True)
        part.add_argument("--output", type=Path, required=True, help="the CSV to append rows to")
        part.add_argument("--report", action="store_true", help="allow the report half (the lead's run only)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    torch.set_num_threads(1)
    args = build_parser().parse_args(argv)
    if args.part == "report":
        if args.write is not None:
            write_blocks(args.write)
        else:
            for name in BLOCKS:
                print(f"## {name}\n\n{render(name)}\n")
            print(f"chosen on the selection half: {choose(_read('selection_real.csv', Path('.')))}")
        return 0
    if args.part == "synthetic":
        report_seeds = set(_report_half()["synthetic_seeds"])
        if not args.report and set(args.seeds) & report_seeds:
            raise SystemExit(
                f"error: seeds {sorted(report_seeds)} are the report half; use --report for the report run"
            )
        keys = ("candidate", "target", "rho", "seed")
        done = _done(args.output, keys)
        for target in args.targets:
            for candidate in args.candidates:
                for rho in args.rhos:
                    for seed in args.seeds:
                        if (candidate, target, str(rho), str(seed)) in done:
                            continue
                        row = synthetic_unit(candidate, target, rho, seed, epochs=args.nr_epochs)
                        _append(args.output, row)
                        print(
                            f"{candidate:14s} {target} rho={rho:g} seed={seed}: mse {row['test_mse']:.4f} "
                            f"corr {row['shapley_corr_interventional']:.3f} faith {row['faithfulness']:.3f} "
                            f"self {row['self_shapley_corr']:.3f} fit {row['fit_seconds']:.1f}s",
                            flush=True,
                        )
        return 0
    report_datasets = set(_report_half()["dataset_ids"])
    if not args.report and set(args.datasets) & report_datasets:
        print(
            f"error: datasets {sorted(report_datasets)} are the report half; use --report for the report run",
            file=sys.stderr,
        )
        return 2
    keys = ("candidate", "dataset_id", "seed")
    done = _done(args.output, keys)
    for dataset_id in args.datasets:
        for seed in args.seeds:
            for candidate in args.candidates:
                if (candidate, str(dataset_id), str(seed)) in done:
                    continue
                row = real_unit(
                    candidate,
                    dataset_id,
                    seed,
                    cache=args.openml_cache_dir,
                    self_shapley_max_features=args.self_shapley_max_features,
                )
                _append(args.output, row)
                print(
                    f"{candidate:14s} {dataset_id} seed={seed}: auroc {row['test_auroc']:.4f} "
                    f"sens-rho {row['sensitivity_rank_correlation']:.3f} self {row['self_shapley_corr']:.3f} "
                    f"fit {row['fit_seconds']:.1f}s explain/row {row['explain_seconds_per_row'] * 1e6:.1f}us",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
