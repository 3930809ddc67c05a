"""Train one of the paper's five baselines on one dataset and seed; write the results like main_experiment.py.

Usage:
    python baseline_experiment.py --model_name catboost                 # embedded credit-g (OpenML 31), seed 0
    python baseline_experiment.py --model_name tabnet --dataset_id 54 --seed 3 --openml_cache_dir ~/openml
    python baseline_experiment.py --model_name random_forest --mode regression --dataset_path data.csv

The data pipeline is main_experiment.py's (``data.load_dataset`` then ``data.prepare_split`` with the same
seed and test size), so every method is tested on the same rows. Results go to
``<output_dir>/<model_name>/<dataset_id>/<seed>/output_info.json``, written last and atomically.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from experiments import cli
from experiments.metrics import classification_metrics, regression_metrics
from experiments.results import (
    BASELINE_METHODS,
    build_report,
    results_path,
    split_fields,
    summary_line,
    write_json_atomic,
)
from models.baselines import BASELINES, get_baseline, predict_output
from models.device import resolve_device

#: Model flags -> (baseline, parameter). Unset flags (None) keep the registry's default.
MODEL_FLAGS: dict[str, tuple[str, str]] = {
    "catboost_iterations": ("catboost", "iterations"),
    "tabnet_max_epochs": ("tabnet", "max_epochs"),
    "tabnet_patience": ("tabnet", "patience"),
    "tabnet_batch_size": ("tabnet", "batch_size"),
    "tabnet_virtual_batch_size": ("tabnet", "virtual_batch_size"),
}


def build_parser() -> argparse.ArgumentParser:
    """The command line: the baseline, its few settings, and the data and run flags of main_experiment.py."""
    parser = argparse.ArgumentParser(
        description="Train a baseline (CatBoost, random forest, logistic regression, decision tree or TabNet).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    model = parser.add_argument_group("model")
    model.add_argument("--model_name", choices=BASELINE_METHODS, required=True, help="the baseline to train")
    model.add_argument("--n_jobs", type=cli.positive_int, default=1, help="CPU threads of the model")
    classification = BASELINES["catboost"].defaults["classification"]
    tabnet = BASELINES["tabnet"].defaults["classification"]
    model.add_argument(
        "--catboost_iterations",
        type=cli.positive_int,
        default=None,
        help=f"CatBoost boosting rounds (default {classification['iterations']})",
    )
    model.add_argument(
        "--tabnet_max_epochs",
        type=cli.positive_int,
        default=None,
        help=f"TabNet's most epochs (default {tabnet['max_epochs']})",
    )
    model.add_argument(
        "--tabnet_patience",
        type=cli.non_negative_int,
        default=None,
        help=f"TabNet's early-stopping patience in epochs (default {tabnet['patience']}; 0: none)",
    )
    model.add_argument(
        "--tabnet_batch_size",
        type=cli.positive_int,
        default=None,
        help=f"TabNet batch size, capped at a quarter of the rows it trains on (default {tabnet['batch_size']})",
    )
    model.add_argument(
        "--tabnet_virtual_batch_size",
        type=cli.positive_int,
        default=None,
        help=f"TabNet ghost batch-norm size (default {tabnet['virtual_batch_size']})",
    )
    cli.add_data_arguments(parser)
    cli.add_run_arguments(parser)
    return parser


def model_overrides(config: Mapping[str, Any]) -> dict[str, Any]:
    """The model parameters set by flags for the chosen baseline (flags of other baselines are ignored)."""
    return {
        parameter: config[flag]
        for flag, (method, parameter) in MODEL_FLAGS.items()
        if method == config["model_name"] and config.get(flag) is not None
    }


def run(config: Mapping[str, Any]) -> dict[str, Any]:
    """Load, split, train, evaluate and write one baseline run; returns the report.

    Raises:
        UserError: bad data, target, device or a missing optional package (nothing is written then).
    """
    config = dict(config)
    method = config["model_name"]
    spec = get_baseline(method)
    device = resolve_device(config["device"])  # a missing GPU is an error for every model, as for INN
    if not spec.uses_device:
        device = resolve_device("cpu")  # scikit-learn has no GPU path
    overrides = model_overrides(config)

    raw = cli.load_raw_dataset(config)
    split = cli.split_dataset(raw, config, encoding_type=spec.encoding)
    for note in split.notes:
        print(f"note: {note}", file=sys.stderr)

    tuning = None
    if config.get("hpo_tuning"):
        # HPO (experiments/hpo.py): a 60/20/20 study; the spec comes back with the best parameters as defaults.
        from experiments.hpo import tune_baseline

        spec, tuning = tune_baseline(spec, raw, config, device=device, fixed=overrides)
    model = spec.build(split, seed=config["seed"], device=device, n_jobs=config["n_jobs"], params=overrides)
    X_train, X_test = spec.inputs(split)
    start = time.perf_counter()
    model.fit(X_train, split.y_train)
    train_time = time.perf_counter() - start
    start = time.perf_counter()
    outputs = {"train": predict_output(model, X_train, split.task), "test": predict_output(model, X_test, split.task)}
    inference_time = time.perf_counter() - start

    metrics: dict[str, float] = {}
    for part, output in outputs.items():
        y_true = getattr(split, f"y_{part}")
        if split.task == "regression":
            metrics.update(regression_metrics(y_true, output, part))
        else:
            metrics.update(classification_metrics(y_true, output, split.n_classes, part))

    resolved = {key: str(value) if isinstance(value, Path) else value for key, value in config.items()}
    resolved.update(
        device=str(device),
        encoding_type=split.encoding_type,
        model_params=spec.resolve_params(split.mode, overrides),
    )
    if tuning is not None:
        resolved["hpo"] = tuning.summary(
            n_trials=config["n_trials"], timeout=config["hpo_timeout"], seed=config["seed"]
        )
    extra: dict[str, Any] = {
        "importance_method": spec.importance_method,
        "dropped_columns": split.dropped_columns,
    }
    if hasattr(model, "best_epoch_"):
        extra["best_epoch"] = model.best_epoch_
    report = build_report(
        method=method,
        seed=config["seed"],
        **split_fields(split),
        n_inputs=X_train.shape[1],
        metrics=metrics,
        train_time=train_time,
        inference_time=inference_time,
        importances=spec.importances(model, split),
        config=resolved,
        extra=extra,
    )
    path = results_path(config["output_dir"], method, split.dataset_id, config["seed"])
    if tuning is not None:
        tuning.write_trials(path.parent)  # every trial, beside output_info.json (which still comes last)
    write_json_atomic(path, report)  # last: its existence means the run is complete
    print(summary_line(report, path))
    return report


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, skip a finished run unless ``--force``, and run; returns the exit code."""
    args = build_parser().parse_args(argv)
    config = vars(args)

    def work() -> None:
        if cli.already_done(args, args.model_name):
            return
        run(config)

    return cli.run_main(work)


if __name__ == "__main__":
    raise SystemExit(main())
