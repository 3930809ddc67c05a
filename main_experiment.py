"""Train INN (``--interpretable``) or its black-box twin TabResNet on one dataset and seed; write the results.

Usage:
    python main_experiment.py                      # TabResNet on the embedded credit-g (OpenML 31), seed 0
    python main_experiment.py --interpretable      # INN on the same data
    python main_experiment.py --dataset_id 1590 --nr_restarts 3 --weight_norm 0.1 --seed 0 --interpretable

Results go to ``<output_dir>/<inn|tabresnet>/<dataset_id>/<seed>/output_info.json`` (written last and
atomically); INN also writes ``explanations.npz`` and both save the snapshot ensemble as ``model.pt``.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from experiments import cli
from experiments.errors import MissingDependencyError, UserError
from experiments.results import (
    EXPLANATIONS_FILENAME,
    MODEL_FILENAME,
    atomic_write_bytes,
    build_report,
    results_path,
    run_dir,
    split_fields,
    summary_line,
    write_json_atomic,
)

#: Flags that are estimator parameters under the same name.
MODEL_PARAMETERS = (
    "nr_blocks",
    "hidden_size",
    "nr_epochs",
    "batch_size",
    "learning_rate",
    "weight_decay",
    "weight_norm",
    "dropout",
    "augmentation_probability",
    "scheduler_t_mult",
    "nr_restarts",
    "class_balance",
    "device",
    "seed",
    "threads",
    "compile",
)


def build_parser() -> argparse.ArgumentParser:
    """The command line: the original INN flags plus data, run and HPO flags shared with the baselines."""
    parser = argparse.ArgumentParser(
        description="Train INN (--interpretable) or TabResNet on an OpenML dataset or your own file.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    model = parser.add_argument_group("model and training")
    model.add_argument("--interpretable", action="store_true", help="train INN instead of TabResNet")
    model.add_argument("--nr_blocks", type=cli.non_negative_int, default=2, help="residual blocks")
    model.add_argument("--hidden_size", type=cli.positive_int, default=128, help="units per hidden layer")
    model.add_argument("--nr_epochs", type=cli.positive_int, default=100, help="training epochs")
    model.add_argument("--batch_size", type=cli.positive_int, default=64, help="batch size")
    model.add_argument("--learning_rate", type=cli.positive_float, default=0.01, help="peak learning rate of Adam")
    model.add_argument("--weight_decay", type=cli.non_negative_float, default=0.01, help="Adam's L2 weight decay")
    model.add_argument(
        "--weight_norm", type=cli.non_negative_float, default=0.1, help="L1 penalty on INN's generated weights"
    )
    model.add_argument("--dropout", type=cli.dropout_rate, default=0.0, help="dropout in the residual blocks")
    model.add_argument(
        "--augmentation_probability", type=cli.probability, default=0.0, help="chance that a batch is augmented"
    )
    model.add_argument("--scheduler_t_mult", type=cli.positive_float, default=2.0, help="cosine cycle growth (>= 1)")
    model.add_argument("--nr_restarts", type=cli.positive_int, default=3, help="cosine cycles = snapshots")
    model.add_argument(
        "--class_balance",
        choices=("weight", "oversample", "none"),
        default="weight",
        help="weight: balanced class weights in the loss (the baselines' class_weight='balanced', same number "
        "of steps); oversample: repeat minority rows (the original code); none",
    )
    model.add_argument(
        "--encoding_type",
        choices=("paper", "onehot", "target", "ordinal"),
        default="paper",
        help="categorical encoding; paper: target encoding for binary/regression, one-hot for multiclass",
    )
    model.add_argument(
        "--threads",
        type=cli.positive_int,
        default=None,
        help="CPU threads while training (default: 1 for batches up to 512x128, else torch's, OMP_NUM_THREADS)",
    )
    model.add_argument(
        "--compile", action="store_true", help="torch.compile the training forward pass (pays off for long runs)"
    )
    cli.add_data_arguments(parser)
    cli.add_run_arguments(parser)
    tracking = parser.add_argument_group("tracking")
    tracking.add_argument("--wandb_project", default=None, help="log to Weights & Biases (off unless given)")
    return parser


def method_of(config: Mapping[str, Any]) -> str:
    """The method id (results directory name) of a configuration."""
    return "inn" if config["interpretable"] else "tabresnet"


def make_estimator(config: Mapping[str, Any], mode: str, *, categorical_inputs: list[int] | None = None):
    """The estimator that ``config`` asks for (INN or TabResNet, classifier or regressor)."""
    from models.estimators import ESTIMATORS

    params = {name: config[name] for name in MODEL_PARAMETERS}
    return ESTIMATORS[method_of(config), mode](
        **params, categorical_inputs=categorical_inputs, progress=bool(config.get("progress", False))
    )


def categorical_input_positions(split) -> list[int]:
    """Model input columns that encode a categorical feature (mixup leaves them alone)."""
    flags = np.asarray(split.categorical_features, dtype=bool)
    return np.flatnonzero(flags[split.input_to_feature]).tolist() if flags.size else []


def evaluate(estimator, split, mode: str) -> tuple[dict[str, float], float]:
    """Train and test metrics of a fitted estimator, and the inference time on both parts."""
    from experiments.metrics import classification_metrics, regression_metrics

    start = time.perf_counter()
    if mode == "regression":
        predictions = {"train": estimator.predict(split.X_train), "test": estimator.predict(split.X_test)}
    else:
        predictions = {"train": estimator.predict_proba(split.X_train), "test": estimator.predict_proba(split.X_test)}
    inference_time = time.perf_counter() - start
    metrics: dict[str, float] = {}
    for part, output in predictions.items():
        y_true = getattr(split, f"y_{part}")
        if mode == "regression":
            metrics.update(regression_metrics(y_true, output, part))
        else:
            metrics.update(classification_metrics(y_true, output, split.n_classes, part))
    return metrics, inference_time


def explain(estimator, split, interpretable: bool):
    """Per-original-feature attributions of the test set, and INN's generated weights (``None`` for TabResNet).

    INN's are exact (its own linear models, computed once); TabResNet's are gradient × input.
    """
    from models.explainers import GradientTimesInput, INNExplainer

    mapping = {"feature_names": split.feature_names, "input_to_feature": split.input_to_feature}
    if interpretable:
        explanation = estimator.explain(split.X_test)
        return INNExplainer(**mapping).from_explanation(explanation), explanation.weights
    return GradientTimesInput(**mapping).explain(estimator, split.X_test), None


def explanation_arrays(split, attribution, weights: np.ndarray) -> dict[str, np.ndarray]:
    """The arrays of ``explanations.npz`` (see docs/DESIGN.md)."""
    classes = split.classes if split.classes is not None else []
    return {
        "feature_names": np.asarray(split.feature_names, dtype=str),
        "input_names": np.asarray(split.input_names, dtype=str),
        "input_to_feature": np.asarray(split.input_to_feature, dtype=np.int64),
        "weights": weights.astype(np.float32),
        "contributions": attribution.values.astype(np.float32),
        "bias": attribution.baseline.astype(np.float32),
        "logits": attribution.output.astype(np.float32),
        "y_true": np.asarray(split.y_test),
        "classes": np.asarray(classes, dtype=str),
    }


def save_model(path: Path, estimator, split, config: Mapping[str, Any]) -> None:
    """Save the snapshot ensemble's state dicts with what is needed to rebuild it."""
    import torch

    members = estimator.model_.members
    payload = {
        "method": method_of(config),
        "network": type(members[0]).__name__,
        "n_inputs": members[0].n_inputs,
        "n_outputs": members[0].n_outputs,
        "hyperparameters": {name: config[name] for name in ("nr_blocks", "hidden_size", "dropout")},
        "snapshots": [{key: value.cpu() for key, value in member.state_dict().items()} for member in members],
        "input_names": list(split.input_names),
        "classes": split.classes,
    }
    if config["mode"] == "regression":
        payload["target_mean"], payload["target_scale"] = estimator.target_mean_, estimator.target_scale_
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def run(config: Mapping[str, Any]) -> dict[str, Any]:
    """Load, split, train, evaluate, explain and write one run; returns the report.

    Raises:
        UserError: bad data, target, device or a missing optional package (nothing is written then).
    """
    config = dict(config)
    method = method_of(config)
    mode = config["mode"]
    raw = cli.load_raw_dataset(config)
    split = cli.split_dataset(raw, config, encoding_type=config["encoding_type"])
    for note in split.notes:
        print(f"note: {note}", file=sys.stderr)
    if config.get("hpo_tuning"):
        from experiments.hpo import tune_neural

        # HPO (experiments/hpo.py): 60/20/20 study, trials.csv in the run's directory, best config refit below.
        config = tune_neural(
            config,
            raw,
            output_dir=run_dir(config["output_dir"], method, split.dataset_id, config["seed"]),
            make_estimator=lambda trial_config, hpo_split: make_estimator(
                trial_config, mode, categorical_inputs=categorical_input_positions(hpo_split)
            ),
        )
    estimator = make_estimator(config, mode, categorical_inputs=categorical_input_positions(split))
    tracker = _start_tracking(config, method, split) if config.get("wandb_project") else None

    start = time.perf_counter()
    try:
        estimator.fit(split.X_train, split.y_train)
    except FloatingPointError as error:
        raise UserError(str(error)) from None
    train_time = time.perf_counter() - start
    metrics, inference_time = evaluate(estimator, split, mode)
    start = time.perf_counter()
    attribution, weights = explain(estimator, split, config["interpretable"])
    explain_time = time.perf_counter() - start

    config["device"] = str(estimator.device_)
    report = build_report(
        method=method,
        seed=config["seed"],
        **split_fields(split),
        n_inputs=split.n_inputs,
        metrics=metrics,
        train_time=train_time,
        inference_time=inference_time,
        importances=attribution.global_importance(),
        config={key: str(value) if isinstance(value, Path) else value for key, value in config.items()},
        extra={
            "explain_time": explain_time,
            "importance_method": "mean |W(x)·x| (exact)" if config["interpretable"] else "mean |gradient·x|",
            "epoch_losses": estimator.epoch_losses_,
            "snapshot_steps": list(estimator.snapshot_steps_),
            "dropped_columns": split.dropped_columns,
        },
    )
    directory = run_dir(config["output_dir"], method, split.dataset_id, config["seed"])
    if config["interpretable"]:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **explanation_arrays(split, attribution, weights))
        atomic_write_bytes(directory / EXPLANATIONS_FILENAME, buffer.getvalue())
    save_model(directory / MODEL_FILENAME, estimator, split, config)
    write_json_atomic(directory / "output_info.json", report)
    if tracker is not None:
        for epoch, loss in enumerate(estimator.epoch_losses_):
            tracker.log({"epoch": epoch, "train_loss": loss})
        tracker.summary.update(metrics)
        tracker.finish()
    print(summary_line(report, results_path(config["output_dir"], method, split.dataset_id, config["seed"])))
    return report


def _start_tracking(config: Mapping[str, Any], method: str, split):
    """Start a Weights & Biases run; imported only when asked for."""
    try:
        import wandb
    except ImportError:
        raise MissingDependencyError("wandb", "--wandb_project") from None
    name = f"{method}-{split.dataset_id}-{config['seed']}"
    return wandb.init(project=config["wandb_project"], name=name, config=dict(config))


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, skip a finished run unless ``--force``, and run; returns the exit code."""
    args = build_parser().parse_args(argv)
    config = vars(args) | {"progress": sys.stderr.isatty()}

    def work() -> None:
        if cli.already_done(args, method_of(config)):
            return
        run(config)

    return cli.run_main(work)


if __name__ == "__main__":
    raise SystemExit(main())
