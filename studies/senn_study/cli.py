"""The SENN study of docs/senn.md: accuracy against λ, SENN against INN, behaviour against explanation, concepts.

Four parts, each writing its tables (``.csv`` and ``.md``) and figures to ``--out`` (default ``docs/figures``);
the runs of the first three go through ``experiments.runner.run`` into the ordinary results tree under
``--results_dir`` (a finished run is read back, not rerun), so every number is also in an ``output_info.json``:

* ``lambda``: SENN's accuracy/AUROC and stability against the robustness weight λ ∈ {0, 1e-4, …, 1} (the SENN
  paper's trade-off), 30 epochs: identity concepts on COMPAS (recidivism: 5 seeds, score: 3 seeds; batches of
  200 as the reproduction's COMPAS configuration) with INN on the same budget beside it, learned concepts
  (``--conceptizer autoencoder``, Hutchinson's estimator over the 10 classes) on digits (3 seeds).
  ``senn_lambda.{csv,md,png}``.
* ``dev``: SENN with identity concepts against INN at both methods' defaults on the eight small dev datasets,
  mean test AUROC over seeds. ``senn_dev.{csv,md}``.
* ``sensitivity``: whether the explanation ranks features as the model uses them: Spearman's ρ between the
  global importance of the explanation and the model's behavioural sensitivity (``xai.sensitivity``: mean
  |Δ logit| when a feature is resampled from the training rows), for INN and SENN at every λ.
  ``senn_sensitivity.{csv,md}``.
* ``concepts``: DiSENN and SENN-autoencoder on digits: test accuracy over seeds, prototypes, DiSENN's latent
  traversals and one example's explanation. ``senn_digits.{csv,md}``, ``senn_{disenn,autoencoder}_prototypes.png``,
  ``senn_disenn_traversals.png``, ``senn_disenn_explanation.png``.

Issue 24's stages (``docs/senn.md``, Results; the selection/report split of ``experiments/suites.json``):

* ``paper``: SENN on COMPAS at the SENN code's setting (its rows, parameterizer, loss and training), accuracy and
  SENN's Lipschitz estimate of θ per λ, and cells that each change one thing (the loss's link, intercept row and
  norm, the parameterizer, the rows). ``senn_paper.{csv,md,png}``.
* ``disenn``: DiSENN's recipes on digits (:data:`DISENN_SETTINGS`): accuracy, active latents and how far their
  traversals move the decoded image; chosen on seeds 100-102 by :data:`DISENN_RULE`, reported on 0-2 (``--figures``).
* ``select`` / ``report``: SENN's λ chosen on the selection half (:data:`LAMBDA_RULE`, ``senn_select.*``), then
  INN against SENN at that λ on the report half (``senn_report.*``).
* ``docs``: docs/senn.md's tables rewritten from the CSVs (:func:`doc_tables`; a test checks they agree).

Everything runs in one process, one model at a time (``nice`` it on a shared machine)::

    nice -n 10 python -m studies.senn_study lambda --compas_path ../shared/datasets/compas/compas-two-years.csv
    nice -n 10 python -m studies.senn_study dev --openml_cache_dir ../shared/openml_cache
    nice -n 10 python -m studies.senn_study sensitivity --openml_cache_dir ../shared/openml_cache
    nice -n 10 python -m studies.senn_study concepts
    nice -n 10 python -m studies.senn_study paper --compas_path ../shared/datasets/compas/compas-two-years.csv
    nice -n 10 python -m studies.senn_study disenn --seeds 100 101 102 --name senn_disenn_selection
    nice -n 10 python -m studies.senn_study disenn --seeds 0 1 2 --settings reproduction sum+capacity --figures
    nice -n 10 python -m studies.senn_study select --openml_cache_dir ../shared/openml_cache
    nice -n 10 python -m studies.senn_study report --openml_cache_dir ../shared/openml_cache --lambdas 0.1
    python -m studies.senn_study docs
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from studies.senn_study.accuracy import dev_study, lambda_study
from studies.senn_study.common import DEV_DATASETS, SENSITIVITY_DATASETS
from studies.senn_study.concepts import concept_study
from studies.senn_study.disenn import DISENN_SETTINGS, disenn_study
from studies.senn_study.paper import PAPER_CELLS, paper_study
from studies.senn_study.selection import REPORT_DATASETS, SELECTION_DATASETS, report_study, select_study
from studies.senn_study.sensitivity import sensitivity_study
from studies.senn_study.tables import docs_study


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "study", choices=("lambda", "dev", "sensitivity", "concepts", "paper", "disenn", "select", "report", "docs")
    )
    parser.add_argument("--doc", type=Path, default=Path("docs/senn.md"), help="docs: the page whose tables to rewrite")
    parser.add_argument("--out", type=Path, default=Path("docs/figures"), help="tables and figures")
    parser.add_argument("--results_dir", type=Path, default=Path("results/senn_study"), help="the runs' results tree")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default: 0-4 (lambda), 0-2 (others)")
    parser.add_argument("--datasets", type=int, nargs="+", default=None, help="OpenML ids (dev, sensitivity)")
    parser.add_argument("--nr_epochs", type=int, default=None, help="lambda: 30; sensitivity: 100 (the default)")
    parser.add_argument("--compas_path", type=Path, default=None, help="compas-scores-two-years.csv (lambda)")
    parser.add_argument("--openml_cache_dir", type=Path, default=None, help="OpenML cache (dev, sensitivity)")
    parser.add_argument("--cells", nargs="+", choices=tuple(PAPER_CELLS), default=None, help="paper: default all")
    parser.add_argument("--ablation_seeds", type=int, default=5, help="paper: the first N seeds for the ablations")
    parser.add_argument("--settings", nargs="+", choices=tuple(DISENN_SETTINGS), default=None,
                        help="disenn: recipes (default all; the figures compare the first and the last)")  # fmt: skip
    parser.add_argument("--name", default=None, help="disenn: the tables' name (default senn_disenn)")
    parser.add_argument("--lambdas", type=float, nargs="+", default=None, help="report: SENN's λ (chosen, former)")
    parser.add_argument("--figures", action="store_true", help="disenn: draw the traversal/prototype figures")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.seeds = args.seeds or ([0, 1, 2, 3, 4] if args.study in ("lambda", "paper", "report") else [0, 1, 2])
    args.nr_epochs = args.nr_epochs or (30 if args.study == "lambda" else 100)
    if args.study == "dev":
        args.datasets = args.datasets or list(DEV_DATASETS)
    if args.study == "sensitivity":
        args.datasets = args.datasets or list(SENSITIVITY_DATASETS)
    if args.study == "select":
        args.datasets = args.datasets or list(SELECTION_DATASETS)
    if args.study == "report":
        args.datasets = args.datasets or list(REPORT_DATASETS)
        if not args.lambdas:
            raise SystemExit("report: give --lambdas (the λ chosen by the select stage, and the former default)")
    args.out.mkdir(parents=True, exist_ok=True)
    studies = {"lambda": lambda_study, "dev": dev_study, "sensitivity": sensitivity_study, "concepts": concept_study,
               "paper": paper_study, "disenn": disenn_study, "select": select_study, "report": report_study, "docs": docs_study}  # fmt: skip
    studies[args.study](args)
    return 0
