"""The SENN study of docs/senn.md: accuracy against λ, SENN against INN, behaviour against explanation, concepts.

Its stages run as ``python -m studies.senn_study <stage>``; the stages, what each writes and their commands are in
the docstring of ``cli`` (the command line). The modules, one per stage or two: ``common`` (the λ grid, datasets
and metrics, :func:`run_cell` and the run tables every stage shares), ``accuracy`` (``lambda``, ``dev``),
``paper`` (``paper``: the SENN paper's COMPAS setting), ``sensitivity`` (``sensitivity``: behaviour against
explanation), ``selection`` (``select``, ``report``: SENN's default λ), ``concepts`` (``concepts``: digits and
credit-g pictures), ``disenn`` (``disenn``: DiSENN's recipes and :data:`DISENN_RULE`), ``tables`` (``docs``: the
tables of docs/senn.md) and ``cli``.
"""

from studies.senn_study.accuracy import dev_study, lambda_figure, lambda_study
from studies.senn_study.cli import build_parser, main
from studies.senn_study.common import (
    DEV_DATASETS,
    LAMBDAS,
    METRICS,
    RELEVANCE_METRICS,
    SENSITIVITY_DATASETS,
    lambda_name,
    markdown,
    run_cell,
    summarise,
    with_relevance_stability,
    write_table,
)
from studies.senn_study.concepts import concept_figures, concept_study, tabular_concept_figure
from studies.senn_study.disenn import (
    ACTIVE_MEAN_VARIANCE,
    ACTIVE_VARIANCE,
    DISENN_RULE,
    DISENN_SETTINGS,
    VISIBLE_CHANGE,
    disenn_choice,
    disenn_figures,
    disenn_study,
    traversal_change,
)
from studies.senn_study.paper import (
    PAPER_ACCURACY,
    PAPER_CELLS,
    PAPER_DROP,
    PAPER_MODEL,
    PAPER_TRAINING,
    REPRODUCTION_ACCURACY,
    paper_figure,
    paper_study,
    senn_compas_rows,
)
from studies.senn_study.selection import (
    LAMBDA_RULE,
    REPORT_DATASETS,
    SELECT_LAMBDAS,
    SELECTION_DATASETS,
    lambda_choice,
    report_study,
    select_study,
)
from studies.senn_study.sensitivity import sensitivity_fits, sensitivity_study, sensitivity_tables
from studies.senn_study.tables import doc_tables, docs_study, update_doc

__all__ = [
    "ACTIVE_MEAN_VARIANCE",
    "ACTIVE_VARIANCE",
    "DEV_DATASETS",
    "DISENN_RULE",
    "DISENN_SETTINGS",
    "LAMBDAS",
    "LAMBDA_RULE",
    "METRICS",
    "PAPER_ACCURACY",
    "PAPER_CELLS",
    "PAPER_DROP",
    "PAPER_MODEL",
    "PAPER_TRAINING",
    "RELEVANCE_METRICS",
    "REPORT_DATASETS",
    "REPRODUCTION_ACCURACY",
    "SELECTION_DATASETS",
    "SELECT_LAMBDAS",
    "SENSITIVITY_DATASETS",
    "VISIBLE_CHANGE",
    "build_parser",
    "concept_figures",
    "concept_study",
    "dev_study",
    "disenn_choice",
    "disenn_figures",
    "disenn_study",
    "doc_tables",
    "docs_study",
    "lambda_choice",
    "lambda_figure",
    "lambda_name",
    "lambda_study",
    "main",
    "markdown",
    "paper_figure",
    "paper_study",
    "report_study",
    "run_cell",
    "select_study",
    "senn_compas_rows",
    "sensitivity_fits",
    "sensitivity_study",
    "sensitivity_tables",
    "summarise",
    "tabular_concept_figure",
    "traversal_change",
    "update_doc",
    "with_relevance_stability",
    "write_table",
]
