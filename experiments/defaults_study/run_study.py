"""The defaults study (issue 15, points 2 and 3): every candidate configuration of INN and TabResNet, through the sweep.

Point 2 runs INN and TabResNet under each candidate of :data:`CANDIDATES` as a sweep *variant*
(``<output>/grid/<method>-<candidate>/<dataset>/<seed>/``), on every dataset of the OpenML cache, with the
sensitivity audit on (``--audit_sensitivity``: Spearman's ρ between INN's global importance and its measured
sensitivity, the faithfulness measure of the study). Every flag that defines a candidate is passed explicitly, so
the results do not depend on the defaults of the day. A candidate that changes only INN's L1 term (``v1``'s
``weight_norm`` 1, ``l1std``) is the same configuration as ``current`` for TabResNet, which has no L1 term: it
is run for INN only (:data:`INN_ONLY`).

The grid runs tier by tier (:data:`TIERS`, cheapest datasets first: the eight dev datasets, then the other small
ones, the medium and the two large ones) and, inside a tier, candidate by candidate, the 500-epoch NeurIPS
candidate last, so a study stopped early is complete (every candidate, every seed) on its first tiers. The sweep
skips finished cells, so rerunning the same command resumes it. Point 3 (``--stage point3``) runs the methods of
the comparison with their defaults on the dev datasets (``<output>/point3/``). Each sweep call is timed into
``<output>/study_log.jsonl``.

    nice -n 10 python experiments/defaults_study/run_study.py --output /work/results/defaults_study \
        --openml_cache_dir /work/shared/openml_cache --seeds 0-4
    nice -n 10 python experiments/defaults_study/run_study.py --stage point3 --output /work/results/defaults_study \
        --openml_cache_dir /work/shared/openml_cache --seeds 0-4
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
    # The v1 command line: 100 epochs, L1 strength 1, no dropout.
    "v1": ("--nr_epochs", "100", "--weight_norm", "1", "--dropout", "0"),
    # The NeurIPS version: 500 epochs, L1 strength 0.1, dropout 0.25.
    "neurips": ("--nr_epochs", "500", "--weight_norm", "0.1", "--dropout", "0.25"),
}
#: Candidates that differ from ``current`` only in INN's L1 term: TabResNet would run ``current`` again.
INN_ONLY: frozenset[str] = frozenset({"v1", "l1std"})

#: Datasets of the cache in tiers of increasing cost (training steps per epoch at batch 64).
TIERS: dict[str, tuple[int, ...]] = {
    "dev": (31, 37, 1464, 54, 11, 29, 50, 1063),
    "small": (1510, 40994, 1480, 1068, 1462, 1049, 1050, 40984, 1487),
    "medium": (3, 44, 40983, 1489),
    "large": (32, 6),
}
#: The methods of point 3 (issue 15): the paper's comparison plus EBM.
POINT3_METHODS: tuple[str, ...] = (
    "inn", "tabresnet", "catboost", "random_forest", "logistic_regression", "decision_tree", "tabnet", "ebm",
)  # fmt: skip

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


def grid_blocks(tiers: Sequence[str], candidates: Sequence[str]) -> list[tuple[str, str, tuple[str, ...]]]:
    """``(tier, candidate, methods)`` in the order the study runs them."""
    ordered = sorted(candidates, key=lambda name: name == "neurips")  # the 500-epoch candidate last in a tier
    return [(tier, name, ("inn",) if name in INN_ONLY else ("inn", "tabresnet")) for tier in tiers for name in ordered]


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
    parser.add_argument("--stage", choices=("grid", "point3"), default="grid")
    parser.add_argument("--tiers", nargs="+", choices=tuple(TIERS), default=list(TIERS))
    parser.add_argument("--candidates", nargs="+", choices=tuple(CANDIDATES), default=list(CANDIDATES))
    parser.add_argument("--methods", nargs="+", default=list(POINT3_METHODS), help="point 3's methods")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    log = args.output / "study_log.jsonl"
    failed = 0
    common = {"seeds": args.seeds, "cache": args.openml_cache_dir, "workers": args.workers}
    if args.stage == "point3":
        command = sweep_command(args.methods, TIERS["dev"], output_dir=args.output / "point3", **common)
        command += list(AUDIT_FLAGS)
        return run_block(command, log, {"stage": "point3", "tier": "dev", "candidate": "defaults"})
    for tier, name, methods in grid_blocks(args.tiers, args.candidates):
        flags = (*COMMON_FLAGS, *CANDIDATES[name], *AUDIT_FLAGS)
        command = sweep_command(
            methods, TIERS[tier], output_dir=args.output / "grid", variant=name, flags=flags, **common
        )
        failed += run_block(command, log, {"stage": "grid", "tier": tier, "candidate": name}) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
