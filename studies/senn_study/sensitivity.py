"""Behaviour against explanation (``sensitivity``): Spearman's ρ between an explanation's global importance and the
model's resampling sensitivity, fitted in-process and resumable (also the fits of ``select`` and ``report``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from studies.senn_study.common import LAMBDAS, lambda_name, markdown, summarise


def sensitivity_study(args: argparse.Namespace) -> None:
    """Spearman ρ between explanation importance and resampling sensitivity, INN and SENN at every λ."""
    models = [("inn", {})] + [(f"senn {lambda_name(value)}", {"robust_reg": value}) for value in LAMBDAS]
    sensitivity_fits(args, models, "senn_sensitivity")
    sensitivity_tables(args.out)


def sensitivity_fits(args: argparse.Namespace, models: Sequence[tuple[str, dict[str, Any]]], name: str) -> None:
    """Fit every model on every dataset and seed in-process and compare its explanation with its behaviour.

    One row per fit is appended to ``<out>/<name>_runs.csv`` (and the per-feature shares to ``_shares.csv``) as soon
    as it is made; a fit whose row is already there is not made again, so an interrupted stage resumes.
    """
    import torch

    from data import load_dataset, prepare_split
    from methods import get_method
    from models.baselines import predict_output
    from models.metrics import classification_metrics
    from xai.sensitivity import compare_with_explanation, model_sensitivity

    torch.set_num_threads(1)
    runs_path, shares_path = args.out / f"{name}_runs.csv", args.out / f"{name}_shares.csv"
    done = set()
    if runs_path.exists():
        previous = pd.read_csv(runs_path)
        done = set(zip(previous["dataset"], previous["model"], previous["seed"], strict=True))
    # Seed by seed over every dataset, so that a stage cut short has every dataset with the first seeds.
    raws = {
        dataset: load_dataset(dataset_id=dataset, openml_cache_dir=args.openml_cache_dir) for dataset in args.datasets
    }
    for seed in args.seeds:
        for dataset, raw in raws.items():
            for model_name, params in models:
                if (dataset, model_name, seed) in done:
                    continue
                spec = get_method(model_name.split()[0])
                split = prepare_split(raw, mode="classification", seed=seed, encoding_type=spec.encoding)
                model = spec.build(split, seed=seed, device="cpu", params={"nr_epochs": args.nr_epochs, **params})
                train, test = spec.inputs(split)
                start = time.perf_counter()
                model.fit(train, split.y_train)
                fit_time = time.perf_counter() - start
                attribution = spec.explain(model, split, test)
                comparison = compare_with_explanation(
                    model_sensitivity(spec, model, split, seed=seed), attribution.global_importance(),
                    split.feature_names,
                )  # fmt: skip
                metrics = classification_metrics(split.y_test, predict_output(model, test, split.task),
                                                 split.n_classes, "test")  # fmt: skip
                table = comparison.table()
                top = table.iloc[0]
                row = {"dataset": dataset, "dataset_name": raw.name, "model": model_name, "seed": seed,
                       "spearman": comparison.rank_correlation, "test_auroc": metrics["test_auroc"],
                       "test_accuracy": metrics["test_accuracy"], "top_feature": top["feature"],
                       "top_sensitivity_share": top["sensitivity_share"],
                       "top_explanation_share": top["explanation_share"],
                       "flagged": ", ".join(comparison.flagged), "fit_time": fit_time}  # fmt: skip
                shares = [{"dataset": dataset, "model": model_name, "seed": seed, **line.to_dict()}
                          for _, line in table.iterrows()]  # fmt: skip
                args.out.mkdir(parents=True, exist_ok=True)
                for path, frame in ((runs_path, pd.DataFrame([row])), (shares_path, pd.DataFrame(shares))):
                    frame.to_csv(path, mode="a", header=not path.exists(), index=False)
                print(f"{raw.name} seed {seed} {model_name}: rho {comparison.rank_correlation:.3f}, top "
                      f"{top['feature']} {top['sensitivity_share']:.3f}/{top['explanation_share']:.3f}, AUROC "
                      f"{metrics['test_auroc']:.4f}, {fit_time:.0f}s", flush=True)  # fmt: skip


def sensitivity_tables(out: Path, name: str = "senn_sensitivity") -> pd.DataFrame:
    """``<name>.{csv,md}`` from the study's per-run files: Spearman's ρ, AUROC (and accuracy where recorded), and
    the shares of sensitivity and explanation of INN's most used feature of each dataset (of the first model's
    when INN was not fitted), e.g. credit-g's ``checking_status``. Returns the summary."""
    frame = pd.read_csv(out / f"{name}_runs.csv")
    shares = pd.read_csv(out / f"{name}_shares.csv")
    first = "inn" if (shares["model"] == "inn").any() else shares["model"].iloc[0]
    watched_model = shares[shares["model"] == first].groupby(["dataset", "feature"])["sensitivity_share"].mean()
    watched = watched_model.groupby("dataset").idxmax().map(lambda key: key[1])  # dataset -> most used feature
    picked = shares[shares["feature"] == shares["dataset"].map(watched)]
    frame = frame.merge(
        picked.loc[:, ["dataset", "model", "seed", "feature", "sensitivity_share", "explanation_share"]],
        on=["dataset", "model", "seed"],
    )
    columns = ["spearman", "test_auroc", *(["test_accuracy"] if "test_accuracy" in frame else []),
               "sensitivity_share", "explanation_share"]  # fmt: skip
    summary = summarise(frame, ["dataset", "dataset_name", "model", "feature"], columns)
    out.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out / f"{name}.csv", index=False)
    (out / f"{name}.md").write_text(markdown(summary, columns) + "\n")
    print(markdown(summary, columns))
    return summary
