"""The interpretability benchmark (XAI-Bench protocol): train, explain, score and tabulate, unit by unit.

A *unit* is one (dataset, ρ, seed, model): draw the synthetic data (``data.synthetic.make_synthetic``), build and
train the model through the method registry (``methods.REGISTRY``: INN, TabResNet, EBM, SENN, TabNet, ...),
compute its ground-truth Shapley values (``xai.shapley``, observational and interventional), explain its test and
training rows with every explainer that applies, and score each explanation with every metric (``xai.metrics``).
The model's own explanation (its registry's native explainer: INN's generated weights, EBM's terms, TabNet's
masks) is one explainer; the post-hoc explainers (``explainers.POSTHOC_EXPLAINERS``) explain the models of
``posthoc_models`` (the paper's protocol: a TabResNet trained on the same data). Every explainer of a unit
explains the same trained model, and the model's test error is reported beside its explanations.

What is shared within a unit, and why that is fair: the random numbers of every metric are the same for every
explainer (common random numbers), so differences between explainers are not sampling noise; faithfulness's
removal changes do not depend on the explanation and are computed once; ROAR retrains are cached by their
training data (explainers with the same rankings, and the no-removal and all-removed steps, share them).

Results: every unit's rows go to their own file (``units/<dataset>/rho<ρ>/seed<s>/<model>.csv``, written
atomically, with the hash of the settings that produced them), so an interrupted run resumes where it stopped;
:func:`combine` gathers the units into one tidy table (dataset × ρ × seed × model × explainer × metric, with the
model's test error and the seconds spent), :func:`paper_table` lays ρ = 0 out as the paper does (rows metric ×
dataset, columns explainers, a wins row), :func:`table_markdown`/:func:`table_latex` format it.

The modules, in the order a run uses them: ``config`` (settings, profiles), ``unit_file`` (a unit, its file, its
row :class:`UnitRow`, the checks of a file read and of a path written), ``fitting`` (step 1: data and model),
``planning`` (the checks before any work, the explanations of a model, the units to compute, done or damaged),
``scoring`` (steps 2 and 4: ground truth, metrics), ``unit`` (step 3, explanations, and :func:`run_unit`),
``tables`` and ``reporting`` (the reports), ``runner`` (a whole run, or the reports only) and ``figures`` (metrics
against ρ).
"""

from studies.xai_bench.config import (
    BENCHMARK_METRICS,
    DEFAULT_MODELS,
    DEFAULT_POSTHOC_MODELS,
    DEFAULT_RHOS,
    PAPER_METRICS,
    PROFILES,
    BenchmarkConfig,
    make_config,
    metric_direction,
    settings_hash,
)
from studies.xai_bench.fitting import FittedModel, TrainedModels, fit_model, synthetic_split
from studies.xai_bench.planning import Entry, Plan, applicable, available_explainers, entries_of, plan, validate
from studies.xai_bench.reporting import combine, write_reports
from studies.xai_bench.runner import report_only, run_benchmark
from studies.xai_bench.tables import dataset_label, entry_order, metric_label, paper_table, table_latex, table_markdown
from studies.xai_bench.unit import run_unit
from studies.xai_bench.unit_file import (
    UNIT_COLUMNS,
    UNITS_DIRNAME,
    DamagedUnitFile,
    Unit,
    UnitRow,
    csv_bytes,
    read_unit,
    unit_path,
)

__all__ = [
    "BENCHMARK_METRICS",
    "DEFAULT_MODELS",
    "DEFAULT_POSTHOC_MODELS",
    "DEFAULT_RHOS",
    "PAPER_METRICS",
    "PROFILES",
    "UNITS_DIRNAME",
    "UNIT_COLUMNS",
    "BenchmarkConfig",
    "DamagedUnitFile",
    "Entry",
    "FittedModel",
    "Plan",
    "TrainedModels",
    "Unit",
    "UnitRow",
    "applicable",
    "available_explainers",
    "combine",
    "csv_bytes",
    "dataset_label",
    "entries_of",
    "entry_order",
    "fit_model",
    "make_config",
    "metric_direction",
    "metric_label",
    "paper_table",
    "plan",
    "read_unit",
    "report_only",
    "run_benchmark",
    "run_unit",
    "settings_hash",
    "synthetic_split",
    "table_latex",
    "table_markdown",
    "unit_path",
    "validate",
    "write_reports",
]
