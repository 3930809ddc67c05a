"""The paper's comparison tables and figures, regenerated from a results tree: the command line and :func:`run`.

Every run leaves ``<results_dir>/<run_id>/<dataset_id>/<seed>/output_info.json``; a run id is a method or
``<method>-<variant>``, and variants compare as methods of their own. :func:`run` reads the tree
(:func:`experiments.results.load_runs`), computes the numbers (:mod:`plots.stats`), and writes the tables
(:mod:`plots.tables`), the figures (:mod:`plots.figures`), the feature rankings and the explanation figures
(:mod:`plots.explanations`). Everything that can fail does so before the first file is written, and every file
is written atomically, so a failed or killed comparison never leaves a half-written table or figure::

    python plots/comparison.py --results_dir results --out_dir figures

See ``docs/plots.md`` for the outputs and the options.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    import pandas as pd

if __name__ == "__main__":  # as a script: the repo root, not plots/ (its tables.py would shadow PyTables)
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from errors import UserError  # noqa: E402
from experiments.results import atomic_write_bytes, higher_is_better, load_runs  # noqa: E402
from plots import explanations as ex  # noqa: E402
from plots import stats, tables  # noqa: E402


@dataclass
class ComparisonOptions:
    """What :func:`run` compares and draws (the command-line flags).

    ``ranking_datasets``: ``None`` ranks the features of every dataset on which at least two compared methods
    recorded importances; an empty list ranks none.
    """

    methods: Sequence[str] | None = None
    metric: str = "test_auroc"
    alpha: float = stats.ALPHA
    reference: str = stats.REFERENCE_METHOD
    explain_dataset: str | None = None
    explain_seed: str | None = None
    explain_example: int = 0
    top_k: int = 10
    explanations: bool = True
    usetex: bool = False
    ranking_datasets: Sequence[str] | None = None
    ranking_correlation: stats.CorrelationKind = "spearman"
    ranking_top_k: int = 20


@dataclass
class Comparison:
    """Everything :func:`run` computed, wrote and warned about."""

    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    average_ranks: pd.DataFrame | None = None
    rank_test: stats.RankTest | None = None
    coverage: stats.Coverage | None = None
    rankings: list[stats.FeatureRanking] = field(default_factory=list)


def table_stem(metric: str) -> str:
    """The file stem of the per-dataset table: ``auroc_table`` for ``test_auroc``."""
    return metric.removeprefix("test_") + "_table"


def check_out_dir(out_dir: Path) -> None:
    """Fail early unless ``out_dir`` is a directory that exists or can be created, and can be written.

    Raises:
        UserError: it is a file, lies below a file, or its nearest existing folder is not writable.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out_dir {out_dir} is a file, not a directory")
    existing = next(path for path in (out_dir.absolute(), *out_dir.absolute().parents) if path.exists())
    if not existing.is_dir():
        raise UserError(f"--out_dir {out_dir} lies below the file {existing}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"--out_dir {out_dir} is not writable (no write permission on {existing})")


def run(
    results_dir: str | Path,
    out_dir: str | Path,
    options: ComparisonOptions | None = None,
    warn: Callable[[str], None] | None = None,
) -> Comparison:
    """Read the results tree, compute every table and figure and write them into ``out_dir``.

    Args:
        results_dir: root of the results tree.
        out_dir: created if needed; files in it with the same names are replaced.
        options: what to compare and draw.
        warn: called with each warning as it happens (the CLI prints them on stderr before any error line);
            the warnings are also collected in :attr:`Comparison.warnings`.

    Raises:
        UserError: a bad ``out_dir``, an empty or unreadable tree, an unknown metric, a requested method or
            dataset without runs, no run with the metric, no dataset with a run of every selected method, an
            ``explain_example`` beyond an explained file's rows, or ``usetex`` without LaTeX. Raised before any
            file is written.
    """
    options, out_dir, result = options or ComparisonOptions(), Path(out_dir), Comparison()

    def note(message: str) -> None:
        result.warnings.append(message)
        if warn is not None:
            warn(message)

    # 1. Read, check and compute: everything that can fail does so before anything is written.
    check_out_dir(out_dir)
    if options.usetex and shutil.which("latex") is None:
        raise UserError("--usetex needs a LaTeX installation (no 'latex' on PATH); leave it out to use mathtext")
    try:
        higher = higher_is_better(options.metric)
    except KeyError as error:
        raise UserError(f"--metric: {error.args[0]}") from None
    loaded = load_runs(results_dir)
    for skipped in loaded.skipped:
        note(f"skipping {skipped.reason}")
    runs, metric, usetex = loaded.runs, options.metric, options.usetex
    methods = stats.select_methods(runs, options.methods)
    cover = result.coverage = stats.coverage(runs, methods, metric, loaded.skipped)
    if not cover.datasets:
        raise UserError(f"no run of {', '.join(methods)} has a value of {metric}")
    if cover.no_metric:
        note(
            f"{len(cover.no_metric)} dataset(s) have no {metric} (e.g. regression), ignored: {', '.join(cover.no_metric)}"
        )
    for message in stats.missing_messages(cover):
        note(message)
    if not cover.complete:
        raise UserError(f"no dataset has a run of every selected method ({', '.join(methods)}); see the warnings above")
    analysis = stats.analyse(runs, methods, metric, cover, higher, options.alpha, options.reference)
    result.average_ranks, result.rank_test = analysis.mean_ranks, analysis.test
    result.rankings, notes = stats.feature_rankings(
        loaded.importances, methods, options.ranking_datasets, options.ranking_correlation, known=analysis.names
    )
    explained = []
    if options.explanations:
        explained, more = ex.load_targets(
            runs, methods, options.explain_dataset, options.explain_seed, options.explain_example
        )
        notes += more
    for message in [*stats.analysis_notes(analysis, options.alpha), *notes]:
        note(message)

    # 2. Files, each written atomically (rendered in memory, then renamed into place).
    from plots import figures as fig

    files = result.files

    def write(name: str, content: str) -> None:
        atomic_write_bytes(out_dir / name, content.encode("utf-8"))
        files.append(out_dir / name)

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, content in tables.analysis_texts(analysis, table_stem(metric)).items():
        write(name, content)
    files.extend(fig.render_analysis(analysis, out_dir, usetex))
    top_k = options.ranking_top_k
    for ranking in result.rankings:
        name = analysis.names.get(ranking.dataset_id, "")
        for file_name, content in tables.ranking_texts(ranking, name, top_k).items():
            write(file_name, content)
        files.extend(fig.render_ranking(ranking, out_dir, name, top_k, usetex))
    for row, stored in explained:
        files.extend(ex.render_explanation(out_dir, row, stored, options.explain_example, options.top_k, usetex))

    n_mismatched = sum(skipped.kind == "mismatch" for skipped in loaded.skipped)
    result.summary = tables.summary_lines(
        analysis, n_runs=len(runs), n_skipped=len(loaded.skipped), n_mismatched=n_mismatched, rankings=result.rankings
    )
    result.summary.append(f"files written: {len(files) + 1}")
    write("summary.txt", "\n".join(result.summary) + "\n")
    return result


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags of ``plots/comparison.py``."""
    import argparse

    from argtypes import non_negative_int, open_fraction, positive_int

    parser = argparse.ArgumentParser(
        prog="plots/comparison.py",
        description="Tables and figures comparing the methods of a results tree "
        "(<results_dir>/<run_id>/<dataset_id>/<seed>/output_info.json); see docs/plots.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--results_dir", type=Path, required=True, help="root of the results tree")
    parser.add_argument("--out_dir", type=Path, required=True, help="where the tables and figures go")
    parser.add_argument("--methods", nargs="+", default=None, help="run ids to compare (None: every one found)")
    parser.add_argument("--metric", default="test_auroc", help="report key to compare")
    parser.add_argument("--alpha", type=open_fraction, default=stats.ALPHA, help="significance level of the tests")
    parser.add_argument("--reference", default=stats.REFERENCE_METHOD, help="the gain plot's reference method")
    ranking = parser.add_argument_group("feature rankings (rank of each feature under each method's importance)")
    ranking.add_argument(
        "--ranking_dataset",
        dest="ranking_datasets",
        metavar="DATASET",
        nargs="+",
        default=None,
        help="dataset ids to rank, or 'none' (None: every dataset where two compared methods or more have importances)",
    )
    ranking.add_argument(
        "--ranking_correlation",
        choices=stats.CORRELATION_KINDS,
        default="spearman",
        help="between two methods' rankings",
    )
    ranking.add_argument("--ranking_top_k", type=positive_int, default=20, help="features in the tables and figure")
    explain = parser.add_argument_group("explanations (every method that saved an explanations.npz)")
    explain.add_argument(
        "--explain_dataset",
        default=None,
        help="dataset id of the explained runs, or 'all'; None: the first dataset with an explanations.npz",
    )
    explain.add_argument("--explain_seed", default=None, help="seed of the explained runs (None: the first found)")
    explain.add_argument("--explain_example", type=non_negative_int, default=0, help="test row explained locally")
    explain.add_argument("--top_k", type=positive_int, default=10, help="features shown in an explanation")
    explain.add_argument("--no_explanations", dest="explanations", action="store_false", help="no explanation figure")
    parser.add_argument("--usetex", action="store_true", help="typeset the figures with LaTeX (needs latex)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison from command-line arguments; returns the exit code (2 for a user error)."""
    from experiments.cli import run_main

    args = vars(build_parser().parse_args(argv))
    results_dir, out_dir = args.pop("results_dir"), args.pop("out_dir")
    if args["ranking_datasets"] is not None and [d.lower() for d in args["ranking_datasets"]] == ["none"]:
        args["ranking_datasets"] = []
    options = ComparisonOptions(**args)

    def work() -> None:
        result = run(results_dir, out_dir, options, warn=lambda message: print(f"warning: {message}", file=sys.stderr))
        print("\n".join(result.summary))
        print(f"outputs in {out_dir}")

    return run_main(work)


if __name__ == "__main__":
    raise SystemExit(main())
