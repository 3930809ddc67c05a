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
    flat = frame.reset_index()
    cells = [[f"{value:.4g}" if isinstance(value, float) else str(value) for value in row] for row in flat.to_numpy()]
    lines = ["| " + " | ".join(map(str, flat.columns)) + " |", "|" + "---|" * len(flat.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def summarise(synthetic: Sequence[Path], real: Sequence[Path]) -> str:
    """The selection tables (Markdown): per candidate, means over units; ratios to INN paired by unit."""
    import pandas as pd

    parts = []
    frames = [pd.read_csv(path) for path in synthetic if path.is_file()]
    if frames:
        frame = pd.concat(frames, ignore_index=True)
        inn = frame[frame["candidate"] == "inn"].groupby(["target", "rho", "seed"])["test_mse"].mean()
        frame["mse_over_inn"] = (
            frame["test_mse"].to_numpy()
            / inn.reindex(pd.MultiIndex.from_frame(frame[["target", "rho", "seed"]])).to_numpy()
        )
        columns = {
            "test_mse": "test MSE",
            "mse_over_inn": "MSE / INN's",
            "shapley_corr_interventional": "Shapley corr. (interv.)",
            "faithfulness": "faithfulness",
            "own_faithfulness": "faithfulness of its exact SHAP",
            "self_shapley_corr": "corr. with its exact SHAP",
            "fit_seconds": "fit s",
        }
        table = frame.groupby(["target", "rho", "candidate"], sort=False)[list(columns)].mean()
        table["units"] = frame.groupby(["target", "rho", "candidate"], sort=False).size()
        parts.append(_markdown(table.rename(columns=columns)))
    frames = [pd.read_csv(path) for path in real if path.is_file()]
    if frames:
        frame = pd.concat(frames, ignore_index=True)
        key = ["dataset_id", "seed"]
        inn = frame[frame["candidate"] == "inn"].groupby(key).mean(numeric_only=True)
        index = pd.MultiIndex.from_frame(frame[key])
        frame["auroc_minus_inn"] = frame["test_auroc"].to_numpy() - inn["test_auroc"].reindex(index).to_numpy()
        frame["fit_over_inn"] = frame["fit_seconds"].to_numpy() / inn["fit_seconds"].reindex(index).to_numpy()
        frame["explain_over_inn"] = (
            frame["explain_seconds_per_row"].to_numpy() / inn["explain_seconds_per_row"].reindex(index).to_numpy()
        )
        complete = frame.groupby("candidate")["dataset_id"].transform("nunique") > 0
        table = (
            frame[complete]
            .groupby("candidate", sort=False)
            .agg(
                units=("test_auroc", "size"),
                datasets=("dataset_id", "nunique"),
                test_auroc=("test_auroc", "mean"),
                auroc_minus_inn=("auroc_minus_inn", "mean"),
                sensitivity_rank_correlation=("sensitivity_rank_correlation", "mean"),
                self_shapley_corr=("self_shapley_corr", "mean"),
                fit_over_inn_median=("fit_over_inn", "median"),
                explain_over_inn_median=("explain_over_inn", "median"),
            )
        )
        parts.append(_markdown(table))
    return "\n\n".join(parts)


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
    summary = parts.add_parser("summary", help="the selection tables from the CSVs")
    summary.add_argument("--synthetic", nargs="*", type=Path, default=[])
    summary.add_argument("--real", nargs="*", type=Path, default=[])
    for part in (synthetic, real):
        part.add_argument("--candidates", nargs="+", choices=list(CANDIDATES), required=True)
        part.add_argument("--output", type=Path, required=True, help="the CSV to append rows to")
        part.add_argument("--report", action="store_true", help="allow the report half (the lead's run only)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    torch.set_num_threads(1)
    args = build_parser().parse_args(argv)
    if args.part == "summary":
        print(summarise(args.synthetic, args.real))
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
