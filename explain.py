"""Explain a saved run: predictions and per-feature contributions for rows of its test set or of a new file.

Usage:
    python explain.py --run results/inn/31/0                          # every test row, the method's own explanation
    python explain.py --run results/inn/31/0 --rows 0 5 17 --explainer acd
    python explain.py --run results/tabresnet/31/0 --data new.csv --explainer cd --cd_rule shapley
    python explain.py --run results/catboost/31/0 --data new.csv --predict_only

A thin shell: ``experiments.explaining`` loads the run (executing nothing in its folder), chooses the rows,
predicts, explains and builds the CSV files and ``explain.json``; ``plots.explanations`` draws the figures; then
everything is written as one unit into ``--out`` (default ``explanations/<run_id>/<dataset_id>/<seed>/<test |
file name-hash>/``, never inside the run folder). Bad input is one line ``error: ...`` and exit code 2, with
nothing written. Formats and flags: ``docs/explain.md``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import argtypes
from experiments import cli
from experiments.explaining import EXPLAINERS


def build_parser() -> argparse.ArgumentParser:
    """The command line: the run, the rows, the explainer and the output folder."""
    parser = argparse.ArgumentParser(
        description="Predict and explain rows with a saved run: its test rows or a CSV/Parquet file with the "
        "dataset's original columns.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--run", type=Path, required=True, help="a run folder, e.g. results/inn/31/0")
    rows = parser.add_argument_group("rows")
    rows.add_argument(
        "--rows",
        type=argtypes.non_negative_int,
        nargs="+",
        default=None,
        metavar="ROW",
        help="rows to explain: test-set rows of the run, or rows of --data (from 0); default all",
    )
    rows.add_argument("--data", type=Path, default=None, help="a CSV/TSV or Parquet file with the original columns")
    explaining = parser.add_argument_group("explanation")
    explaining.add_argument(
        "--explainer",
        choices=EXPLAINERS,
        default="native",
        help="native: the method's own explanation; gradient, cd, acd: for networks; the others: post-hoc "
        "explainers (explainers.POSTHOC_EXPLAINERS)",
    )
    cli.add_reference_argument(
        explaining, "reference point of the explanation: the training mean of every model input, or zero"
    )
    explaining.add_argument(
        "--cd_rule",
        choices=("relevant_first", "shapley"),
        default="relevant_first",
        help="cd/acd: how activations split between a group and the rest (see docs/explain.md)",
    )
    explaining.add_argument("--seed", type=argtypes.non_negative_int, default=0, help="seed of sampling explainers")
    explaining.add_argument("--predict_only", action="store_true", help="write the predictions only")
    output = parser.add_argument_group("output")
    output.add_argument("--out", type=Path, default=None, help="output folder (default: see the module docstring)")
    output.add_argument(
        "--figures", type=argtypes.non_negative_int, default=5, help="figures for this many of the first rows"
    )
    output.add_argument("--top_k", type=argtypes.positive_int, default=10, help="features shown in a waterfall")
    return parser


def run(config: Mapping[str, Any]) -> dict[str, Any]:
    """Predict (and explain) the chosen rows of a saved run, draw the figures and write everything as one unit;
    returns ``explain.json``'s content.

    Raises:
        UserError: bad flags, an unusable run folder, missing columns or unparsable values, an explainer that does
            not fit the run's model (nothing is written then).
    """
    from experiments.explaining import explain_run, write_explained
    from plots.explanations import explanation_figures

    result = explain_run(config)
    figures = explanation_figures(result, n_figures=int(config.get("figures", 5)), top_k=int(config.get("top_k", 10)))
    sidecar = write_explained(result, figures)
    explanation = sidecar["explanation"]
    what = "predictions" if explanation is None else f"predictions and {explanation['explainer']}"
    print(f"{what} of {len(result.rows.labels)} row(s) ({result.rows.source}) of {result.saved.run_id} -> {result.out}")
    return sidecar


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and explain; returns the exit code (2 with one ``error:`` line for bad input)."""
    args = build_parser().parse_args(argv)
    return cli.run_main(lambda: run(vars(args)))


if __name__ == "__main__":
    sys.exit(main())
