"""Train a baseline (the paper's five, and EBM) on one dataset and seed; write the results like main_experiment.py.

Usage:
    python baseline_experiment.py --model_name catboost                 # embedded credit-g (OpenML 31), seed 0
    python baseline_experiment.py --model_name ebm --dataset_id 54 --seed 3 --openml_cache_dir ~/openml
    python baseline_experiment.py --model_name random_forest --mode regression --dataset_path data.csv

The data pipeline is main_experiment.py's (``data.load_dataset`` then ``data.prepare_split`` with the same
seed and test size), so every method is tested on the same rows. Results go to
``<output_dir>/<model_name>[-<variant>]/<dataset_id>/<seed>/``: ``output_info.json`` and
``explanations.npz`` (each baseline's native local explanation), written together as one unit.
"""

from __future__ import annotations

import argparse
from typing import Any

from experiments import cli
from experiments.config import RunConfig


def build_parser() -> argparse.ArgumentParser:
    """The command line: the baseline, its few settings, and the data and run flags of main_experiment.py."""
    return cli.baseline_parser()


def run(config: RunConfig) -> dict[str, Any]:
    """Run one baseline as ``config`` says (see ``experiments.runner.run``); returns the report."""
    from experiments import runner

    return runner.run(config)


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, skip a finished run unless ``--force``, and run; returns the exit code."""
    flags = vars(build_parser().parse_args(argv))

    def work() -> None:
        config = RunConfig.from_flags(flags["model_name"], flags)
        if cli.start_run(config):
            run(config)

    return cli.run_main(work)


if __name__ == "__main__":
    raise SystemExit(main())
