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
import dataclasses
import sys
from typing import Any

from experiments import cli
from experiments.config import RunConfig


def build_parser() -> argparse.ArgumentParser:
    """The command line: the original INN flags plus data, run and HPO flags shared with the baselines."""
    return cli.neural_parser()


def run(config: RunConfig) -> dict[str, Any]:
    """Run one neural method as ``config`` says (see ``experiments.runner.run``); returns the report."""
    from experiments import runner

    report = runner.run(config)
    if config.wandb_project:
        _track(config, report)
    return report


def _track(config: RunConfig, report: dict[str, Any]) -> None:
    """Log a finished run to Weights & Biases; imported only when asked for."""
    from errors import MissingDependencyError

    try:
        import wandb
    except ImportError:
        raise MissingDependencyError("wandb", "--wandb_project") from None
    name = f"{report['run_id']}-{report['dataset_id']}-{report['seed']}"
    tracker = wandb.init(project=config.wandb_project, name=name, config=config.report_config())
    for epoch, loss in enumerate(report.get("epoch_losses", [])):
        tracker.log({"epoch": epoch, "train_loss": loss})
    tracker.summary.update({key: value for key, value in report.items() if key.startswith(("train_", "test_"))})
    tracker.finish()


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, skip a finished run unless ``--force``, and run; returns the exit code."""
    flags = vars(build_parser().parse_args(argv))

    def work() -> None:
        config = dataclasses.replace(
            RunConfig.from_flags(cli.neural_method(flags), flags), progress=sys.stderr.isatty()
        )
        if cli.start_run(config):
            run(config)

    return cli.run_main(work)


if __name__ == "__main__":
    raise SystemExit(main())
