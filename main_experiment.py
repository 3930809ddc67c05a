"""Train a neural method (INN, TabResNet, ...) on one dataset and seed; write the results.

Usage:
    python main_experiment.py                      # TabResNet on the embedded credit-g (OpenML 31), seed 0
    python main_experiment.py --interpretable      # INN on the same data (= --method inn)
    python main_experiment.py --dataset_id 1590 --nr_restarts 3 --weight_norm 0.1 --seed 0 --interpretable
    python main_experiment.py --method inn --weight_norm 0.01 --variant wn0.01   # -> results/inn-wn0.01/...

Results go to ``<output_dir>/<method>[-<variant>]/<dataset_id>/<seed>/``: ``output_info.json``,
``explanations.npz`` and the snapshot ensemble as ``model.pt``, written together as one unit.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import argtypes
from experiments import cli
from methods import REGISTRY, neural_methods

#: The default method when neither --method nor --interpretable is given (the original script's default).
DEFAULT_METHOD = "tabresnet"


def build_parser() -> argparse.ArgumentParser:
    """The command line: the original INN flags plus data, run and HPO flags shared with the baselines."""
    parser = argparse.ArgumentParser(
        description="Train INN, TabResNet or another neural method on an OpenML dataset or your own file.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    model = parser.add_argument_group("model and training")
    model.add_argument(
        "--method",
        choices=neural_methods(),
        default=None,
        help=f"the neural method (default {DEFAULT_METHOD}; --interpretable means inn)",
    )
    model.add_argument("--interpretable", action="store_true", help="train INN (the original flag; = --method inn)")
    model.add_argument("--nr_blocks", type=argtypes.non_negative_int, default=2, help="residual blocks")
    model.add_argument("--hidden_size", type=argtypes.positive_int, default=128, help="units per hidden layer")
    model.add_argument("--nr_epochs", type=argtypes.positive_int, default=100, help="training epochs")
    model.add_argument(
        "--batch_size", type=argtypes.batch_size, default=64, help="batch size (>= 2: batch norm needs two rows)"
    )
    model.add_argument("--learning_rate", type=argtypes.positive_float, default=0.01, help="peak learning rate of Adam")
    model.add_argument("--weight_decay", type=argtypes.non_negative_float, default=0.01, help="Adam's L2 weight decay")
    model.add_argument(
        "--weight_norm", type=argtypes.non_negative_float, default=0.1, help="L1 penalty on INN's generated weights"
    )
    model.add_argument(
        "--weight_norm_scale",
        choices=("none", "std"),
        default="none",
        help="L1 weight of each input column's generated weight: none (the paper: mean |W(x)|); std: times the "
        "column's training standard deviation (the paper's term on standardised inputs)",
    )
    model.add_argument(
        "--product_inputs",
        choices=("raw", "standardised"),
        default="raw",
        help="inputs of INN's per-example linear models: raw (the paper) or standardised with the training mean and "
        "std (the hypernetwork still reads the raw inputs)",
    )
    model.add_argument("--dropout", type=argtypes.dropout_rate, default=0.0, help="dropout in the residual blocks")
    model.add_argument(
        "--augmentation_probability", type=argtypes.probability, default=0.0, help="chance that a batch is augmented"
    )
    model.add_argument("--scheduler_t_mult", type=argtypes.at_least_one, default=2.0, help="cosine cycle growth (>= 1)")
    model.add_argument("--nr_restarts", type=argtypes.positive_int, default=3, help="cosine cycles = snapshots")
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
        type=argtypes.positive_int,
        default=None,
        help="CPU threads while training (default: 1 for batches up to 512x128, else torch's, OMP_NUM_THREADS)",
    )
    model.add_argument(
        "--compile", action="store_true", help="torch.compile the training forward pass (pays off for long runs)"
    )
    cli.add_method_flags(parser, [REGISTRY[method] for method in neural_methods()])
    cli.add_penalty_arguments(parser)
    cli.add_data_arguments(parser)
    cli.add_run_arguments(parser)
    tracking = parser.add_argument_group("tracking")
    tracking.add_argument("--wandb_project", default=None, help="log to Weights & Biases (off unless given)")
    return parser


def method_of(args: argparse.Namespace | dict[str, Any]) -> str:
    """The method id a command line asks for (``--interpretable`` is ``--method inn``).

    Raises:
        UserError: ``--interpretable`` together with another ``--method``.
    """
    from errors import UserError

    config = vars(args) if isinstance(args, argparse.Namespace) else args
    method, interpretable = config.get("method"), config.get("interpretable", False)
    if interpretable and method not in (None, "inn"):
        raise UserError(f"--interpretable means --method inn; it cannot be combined with --method {method}")
    return "inn" if interpretable else (method or DEFAULT_METHOD)


def run(config: dict[str, Any]) -> dict[str, Any]:
    """Run one neural method as ``config`` says (see ``experiments.runner.run``); returns the report."""
    from experiments import runner

    config = {**config, "method": method_of(config)}
    report = runner.run(config)
    if config.get("wandb_project"):
        _track(config, report)
    return report


def _track(config: dict[str, Any], report: dict[str, Any]) -> None:
    """Log a finished run to Weights & Biases; imported only when asked for."""
    from errors import MissingDependencyError

    try:
        import wandb
    except ImportError:
        raise MissingDependencyError("wandb", "--wandb_project") from None
    name = f"{report['run_id']}-{report['dataset_id']}-{report['seed']}"
    tracker = wandb.init(project=config["wandb_project"], name=name, config=dict(config))
    for epoch, loss in enumerate(report.get("epoch_losses", [])):
        tracker.log({"epoch": epoch, "train_loss": loss})
    tracker.summary.update({key: value for key, value in report.items() if key.startswith(("train_", "test_"))})
    tracker.finish()


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, skip a finished run unless ``--force``, and run; returns the exit code."""
    args = build_parser().parse_args(argv)
    config = vars(args) | {"progress": sys.stderr.isatty()}

    def work() -> None:
        if cli.start_run(args, method_of(config)):
            run(config)

    return cli.run_main(work)


if __name__ == "__main__":
    raise SystemExit(main())
