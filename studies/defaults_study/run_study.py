"""The defaults study (issue 15, points 2 and 3): candidate configurations of INN and TabResNet, through the sweep.

Point 2 runs INN and TabResNet under each candidate of :data:`CANDIDATES` as a sweep *variant*
(``<output>/grid/<method>-<candidate>/<dataset>/<seed>/``) with the sensitivity audit on (``--audit_sensitivity``:
Spearman's ρ between the explanation's global importance and the model's measured sensitivity, the study's
faithfulness measure). Every flag that defines a candidate is passed explicitly, so the results do not depend on
the defaults of the day. Cells that would repeat another cell bit for bit are not run:

* ``v1``, ``l1std`` and ``product`` change only INN's L1 term or its linear models, which TabResNet does not have:
  TabResNet runs ``current`` only for them (:data:`INN_ONLY`);
* ``scaled``, ``l1std`` and ``product`` change only what the encoded categorical columns look like (their scaling;
  their weight in the L1 term; their scaling in INN's linear models): on a dataset without such columns every
  input is already standardised and they are ``current`` exactly (the same input matrix; L1 weights of exactly 1;
  no rescaling, see ``models.estimators.STD_TOLERANCE``). They run on :data:`CATEGORICAL_DATASETS` only;
  ``tabulate.py`` checks the identity and reuses ``current`` elsewhere.

The plan (:data:`PLAN`) runs in the order of what the decision needs per CPU hour: the dev datasets (and ilpd,
the cheapest other dataset with a categorical column) for the 100-epoch candidates, the baselines of point 3, the
500-epoch NeurIPS candidate on the same datasets, kr-vs-kp, then the rest of the cache. The sweep skips finished
cells, so rerunning the same command resumes the study; every sweep call is timed into
``<output>/study_log.jsonl``::

    nice -n 10 python -m studies.defaults_study.run_study --output /work/results/defaults_study \
        --openml_cache_dir /work/shared/openml_cache --seeds 0-4

Issue 24 splits the cache once into a selection half and a report half (``experiments/suites.json``). The stages of
:data:`HALF_STAGES` take their datasets and seeds from there (``--seeds`` does not apply to them): ``selection``
and ``selection-neurips`` run the candidates on the selection half; ``halves.choose`` picks the defaults there by
a rule fixed before the runs (AUROC first, then ρ); ``report`` runs INN and TabResNet with the chosen candidates
and the baselines on the report half, where the study says where INN stands::

    nice -n 19 python -m studies.defaults_study.run_study --output /work/results/defaults24 \
        --openml_cache_dir ../shared/openml_cache --stages selection selection-neurips report

``--report_seeds 0-2`` runs the report stage on some of the report half's seeds only (what docs/defaults.md
reports: the five seeds would have cost about 1.4 h at one cell at a time, EBM's fits most of it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

#: What every candidate shares: the project's protocol outside the candidates' own settings, written out.
COMMON_FLAGS: tuple[str, ...] = (
    "--batch_size", "64", "--learning_rate", "0.01", "--weight_decay", "0.01", "--nr_blocks", "2",
    "--hidden_size", "128", "--scheduler_t_mult", "2", "--nr_restarts", "3", "--class_balance", "weight",
    "--encoding_type", "paper", "--augmentation_probability", "0",
)  # fmt: skip

#: The candidates: name -> the flags that define it (on top of :data:`COMMON_FLAGS`).
CANDIDATES: dict[str, tuple[str, ...]] = {
    # The project's defaults before the study (the v1 README's example): L1 strength 0.1.
    "current": ("--nr_epochs", "100", "--weight_norm", "0.1", "--dropout", "0"),
    # Every encoded input column standardised (target-encoded class frequencies and one-hot columns too).
    "scaled": ("--nr_epochs", "100", "--weight_norm", "0.1", "--dropout", "0", "--scale_inputs", "all"),
    # INN's L1 term on each column's weight times the column's training std (the standardised inputs' penalty).
    "l1std": ("--nr_epochs", "100", "--weight_norm", "0.1", "--dropout", "0", "--weight_norm_scale", "std"),
    # INN's linear models on standardised inputs (x − mean) / std, the hypernetwork on the raw ones.
    "product": ("--nr_epochs", "100", "--weight_norm", "0.1", "--dropout", "0", "--product_inputs", "standardised"),
    # The v1 command line: 100 epochs, L1 strength 1, no dropout.
    "v1": ("--nr_epochs", "100", "--weight_norm", "1", "--dropout", "0"),
    # The NeurIPS version: 500 epochs, L1 strength 0.1, dropout 0.25.
    "neurips": ("--nr_epochs", "500", "--weight_norm", "0.1", "--dropout", "0.25"),
}
#: Candidates that differ from ``current`` only in INN's L1 term: TabResNet would run ``current`` again.
INN_ONLY: frozenset[str] = frozenset({"v1", "l1std", "product"})
#: Candidates that change only encoded categorical columns: ``current`` itself on datasets without them.
CATEGORICAL_ONLY: frozenset[str] = frozenset({"scaled", "l1std", "product"})

#: The eight small dev datasets of the issues.
DEV_DATASETS: tuple[int, ...] = (31, 37, 1464, 54, 11, 29, 50, 1063)
#: The datasets of the cache with encoded categorical columns (every other one is all numerical, no missing value).
CATEGORICAL_DATASETS: tuple[int, ...] = (3, 29, 31, 50, 1480)
#: The other datasets of the cache, cheapest first (training steps per epoch at batch 64).
SMALL_DATASETS: tuple[int, ...] = (1510, 40994, 1068, 1462, 1049, 1050, 40984, 1487)
MEDIUM_DATASETS: tuple[int, ...] = (44, 40983, 1489)
LARGE_DATASETS: tuple[int, ...] = (32, 6)
#: Every dataset of the cache.
ALL_DATASETS: tuple[int, ...] = (*DEV_DATASETS, 1480, 3, *SMALL_DATASETS, *MEDIUM_DATASETS, *LARGE_DATASETS)

#: The baselines of point 3 (INN and TabResNet come from the grid: the chosen candidate's runs).
BASELINES: tuple[str, ...] = ("catboost", "random_forest", "logistic_regression", "decision_tree", "tabnet", "ebm")

#: The dev datasets and ilpd cheapest first: a NeurIPS stage stopped early is complete on its first datasets.
NEURIPS_ORDER: tuple[int, ...] = (1063, 11, 1480, 29, 37, 1464, 54, 50, 31)

#: The study, in the order it runs: ``(stage, datasets, candidates)``; the stage ``point3`` runs :data:`BASELINES`.
PLAN: tuple[tuple[str, tuple[int, ...], tuple[str, ...]], ...] = (
    ("dev", (*DEV_DATASETS, 1480), ("current", "scaled", "l1std", "v1", "product")),
    ("point3", DEV_DATASETS, ()),
    ("dev-neurips", NEURIPS_ORDER, ("neurips",)),
    ("kr-vs-kp", (3,), ("current", "scaled", "l1std", "v1", "product")),
    ("small", SMALL_DATASETS, ("current", "v1")),
    ("medium", MEDIUM_DATASETS, ("current", "v1")),
    ("large", LARGE_DATASETS, ("current", "v1")),
    ("rest-neurips", (3, *SMALL_DATASETS, *MEDIUM_DATASETS, *LARGE_DATASETS), ("neurips",)),
)

#: Issue 24's stages: ``(stage, half, candidates)``, the half a suite of ``experiments/suites.json`` whose datasets
#: and seeds the stage runs; ``report`` runs the candidates chosen on the selection half, and the baselines.
HALF_STAGES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("selection", "selection", ("current", "scaled", "l1std", "v1", "product")),
    ("selection-neurips", "selection", ("neurips",)),
    ("report", "report", ()),
)
#: Datasets a half stage leaves out for its cost on the shared 2-core machine: 500 epochs on letter and pendigits
#: (16,000 and 8,800 training rows) would cost about 1.2 CPU hours, more than the rest of the selection grid.
HALF_SKIPPED: dict[str, tuple[int, ...]] = {"selection-neurips": LARGE_DATASETS}

#: Baselines the report stage runs after every other method: EBM's fits take 3-4 minutes each on the report half's
#: larger datasets (44, 1489), more than every other method's cells of the dataset together, so a report stage stopped
#: early has every other method complete.
LAST_BASELINES: tuple[str, ...] = ("ebm",)

#: Run flags of every cell: the faithfulness measure on, SENN's metrics off (not judged here; they cost time).
AUDIT_FLAGS: tuple[str, ...] = ("--audit_sensitivity", "--explanation_metrics", "off")


def sweep_command(
    methods: Sequence[str],
    datasets: Sequence[int],
    *,
    seeds: str,
    output_dir: Path,
    cache: Path,
    workers: int,
    variant: str | None = None,
    flags: Sequence[str] = (),
) -> list[str]:
    """The ``sweep.py`` command line of one block of the study."""
    command = [sys.executable, str(REPO_ROOT / "sweep.py"), "--methods", *methods]
    command += ["--datasets", *map(str, datasets), "--seeds", seeds, "--workers", str(workers), "--no_progress"]
    command += ["--output_dir", str(output_dir), "--openml_cache_dir", str(cache)]
    if variant is not None:
        command += ["--variant", variant]
    return command + list(flags)


Block = tuple[str, str, tuple[str, ...], tuple[int, ...], tuple[int, ...] | None]


def half(name: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The datasets and seeds of a half (``selection`` or ``report``) as ``experiments/suites.json`` states them."""
    from experiments.sweep import load_suites

    suite = load_suites()[name]
    return tuple(suite["dataset_ids"]), tuple(suite["seeds"])


def candidate_blocks(stage: str, name: str, datasets: Sequence[int], seeds: tuple[int, ...] | None) -> list[Block]:
    """The block of one candidate: INN (and TabResNet unless the candidate is INN's only), on the datasets where
    it is not ``current`` bit for bit."""
    methods = ("inn",) if name in INN_ONLY else ("inn", "tabresnet")
    chosen = tuple(d for d in datasets if d in CATEGORICAL_DATASETS) if name in CATEGORICAL_ONLY else tuple(datasets)
    return [(stage, name, methods, chosen, seeds)] if chosen else []


def grid_blocks(
    stages: Sequence[str], chosen: tuple[str, str] | None = None, report_seeds: Sequence[int] | None = None
) -> list[Block]:
    """``(stage, candidate, methods, datasets, seeds)`` in the order the study runs them (baselines: candidate "").

    ``seeds`` is ``None`` for the stages of :data:`PLAN` (the command's ``--seeds``) and the half's seeds for those
    of :data:`HALF_STAGES`. ``chosen``: INN's and TabResNet's candidates for the ``report`` stage. ``report_seeds``:
    the ``report`` stage runs these of the report half's seeds only (a stage cut to the machine's time). The report
    stage's baselines run in two sweeps, :data:`LAST_BASELINES` last.

    Raises:
        ValueError: the ``report`` stage is asked for without ``chosen``, or with seeds not of the report half.
    """
    blocks: list[Block] = []
    for stage, datasets, candidates in PLAN:
        if stage not in stages:
            continue
        if stage == "point3":
            blocks.append((stage, "", BASELINES, datasets, None))
        for name in candidates:
            blocks += candidate_blocks(stage, name, datasets, None)
    for stage, suite, candidates in HALF_STAGES:
        if stage not in stages:
            continue
        datasets, seeds = half(suite)
        datasets = tuple(d for d in datasets if d not in HALF_SKIPPED.get(stage, ()))
        if stage == "report" and report_seeds is not None:
            if not set(report_seeds) <= set(seeds):
                raise ValueError(f"--report_seeds {list(report_seeds)}: the report half's seeds are {list(seeds)}")
            seeds = tuple(s for s in seeds if s in set(report_seeds))
        for name in candidates:
            blocks += candidate_blocks(stage, name, datasets, seeds)
        if stage == "report":
            if chosen is None:
                raise ValueError("the report stage runs the candidates chosen on the selection half: none given")
            inn, tabresnet = chosen
            if inn == tabresnet:
                blocks.append((stage, inn, ("inn", "tabresnet"), datasets, seeds))
            else:
                blocks += [(stage, inn, ("inn",), datasets, seeds), (stage, tabresnet, ("tabresnet",), datasets, seeds)]
            first = tuple(m for m in BASELINES if m not in LAST_BASELINES)
            blocks += [(stage, "", first, datasets, seeds), (stage, "", LAST_BASELINES, datasets, seeds)]
    return blocks


def block_flags(name: str, methods: Sequence[str]) -> tuple[str, ...]:
    """The flags of one block: :data:`COMMON_FLAGS`, the candidate's own and :data:`AUDIT_FLAGS` (baselines, whose
    candidate is "": the audit's only). A model flag that sets no parameter of any method of the block is left out:
    the sweep refuses it (``--weight_norm`` in a block of TabResNet alone), and it would change nothing."""
    if not name:
        return AUDIT_FLAGS
    from experiments.config import flag_parameter, model_flag_names
    from experiments.sweep import group_flags
    from methods import get_method

    model_flags = model_flag_names()
    kept: list[str] = []
    for flag, tokens in group_flags((*COMMON_FLAGS, *CANDIDATES[name])):
        key = flag.removeprefix("--")
        if key in model_flags and all(flag_parameter(get_method(method), key) is None for method in methods):
            continue
        kept += tokens
    return (*kept, *AUDIT_FLAGS)


def run_block(command: list[str], log: Path, label: dict[str, str]) -> int:
    """Run one sweep; append its command, exit code and wall time to ``log``."""
    started = time.time()
    print(f"[{datetime.now():%H:%M:%S}] {' '.join(label.values())}: {' '.join(command[1:])}", flush=True)
    code = subprocess.call(command, cwd=REPO_ROOT)
    record = {
        **label,
        "command": command[1:],
        "exit_code": code,
        "start": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.time() - started, 1),
    }
    with log.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="root of the study's results (outside the repo)")
    parser.add_argument("--openml_cache_dir", type=Path, required=True)
    parser.add_argument("--seeds", default="0-4", help="sweep seeds, e.g. 0-4 or 5-9")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--report_seeds",
        default=None,
        help="the report stage runs only these of the report half's seeds (e.g. 0-2): a stage cut to the time there is",
    )
    stages = [stage for stage, _, _ in PLAN]
    halves = [stage for stage, _, _ in HALF_STAGES]
    parser.add_argument(
        "--stages",
        nargs="+",
        choices=[*stages, *halves],
        default=stages,
        help="stages of PLAN (default: all of them) or of HALF_STAGES (issue 24's halves) to run",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    log = args.output / "study_log.jsonl"
    failed = 0
    common = {"cache": args.openml_cache_dir, "workers": args.workers}
    order = [stage for stage, _, _ in (*PLAN, *HALF_STAGES)]
    report_seeds = None
    if args.report_seeds is not None:
        from experiments.sweep import parse_seeds

        report_seeds = tuple(parse_seeds([args.report_seeds]))
    for stage in sorted(set(args.stages), key=order.index):  # the report stage reads what selection ran
        chosen = None
        if stage == "report":
            from studies.defaults_study.halves import selection_choice

            choice = selection_choice(args.output, args.openml_cache_dir)
            chosen = (choice.inn, choice.tabresnet)
            print(f"chosen on the selection half: INN {choice.inn}, TabResNet {choice.tabresnet}", flush=True)
        for _, name, methods, datasets, seeds in grid_blocks([stage], chosen, report_seeds):
            output, variant = (args.output / "grid", name) if name else (args.output / "point3", None)
            flags = block_flags(name, methods)
            seed_text = args.seeds if seeds is None else ",".join(map(str, seeds))
            command = sweep_command(
                methods, datasets, seeds=seed_text, output_dir=output, variant=variant, flags=flags, **common
            )
            failed += run_block(command, log, {"stage": stage, "candidate": name or "defaults"}) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
