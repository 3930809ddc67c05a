"""Fit times of INN and TabResNet in two checkouts of the project, side by side in one run, taking turns.

A refactoring must not slow training down. This script starts one long-lived worker process per checkout (each
imports its own ``models/`` and ``data/``, once), loads every dataset in both, then fits INN and TabResNet with
the same seed and settings, alternating between the checkouts within every round, so that a slow spell of the
machine hits both alike. It reports, per dataset and method, the minimum CPU seconds of a fit in each checkout and
the median over rounds of the per-round ratio (new / old), and whether the two checkouts' test predictions are
identical (same seed: same results).

Usage:
    git worktree add /tmp/inn_before d141d93          # the code before the change
    python benchmarks/compare_revisions.py --before /tmp/inn_before --datasets 31 37 1464 \
        --openml_cache_dir /work/shared/openml_cache --rounds 7
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

#: The worker: reads one JSON command per line, answers one JSON line. It runs in the checkout under test.
WORKER = textwrap.dedent(
    """
    import json, sys, time, hashlib
    sys.path.insert(0, sys.argv[1])
    import numpy as np
    import torch
    torch.set_num_threads(1)
    from data import load_dataset, prepare_split
    from models.estimators import INNClassifier, TabResNetClassifier

    splits = {}
    for line in sys.stdin:
        command = json.loads(line)
        key = (command["dataset"], command["seed"])
        if key not in splits:
            raw = load_dataset(command["dataset"], openml_cache_dir=command["cache"])
            splits[key] = prepare_split(raw, mode="classification", seed=command["seed"])
        split = splits[key]
        estimator_type = INNClassifier if command["method"] == "inn" else TabResNetClassifier
        estimator = estimator_type(nr_epochs=command["epochs"], seed=command["seed"], device="cpu")
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        estimator.fit(split.X_train, split.y_train)
        cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start_wall
        digest = hashlib.sha256(estimator.predict_proba(split.X_test).tobytes()).hexdigest()
        print(json.dumps({"cpu": cpu, "wall": wall, "digest": digest}), flush=True)
    """
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="checkout of the old code")
    parser.add_argument("--after", type=Path, default=REPO_ROOT, help="checkout of the new code (default: this one)")
    parser.add_argument("--datasets", type=int, nargs="+", default=[31])
    parser.add_argument("--openml_cache_dir", default=None)
    parser.add_argument("--methods", nargs="+", default=["inn", "tabresnet"], choices=("inn", "tabresnet"))
    parser.add_argument("--rounds", type=int, default=5, help="fits per checkout, dataset and method")
    parser.add_argument("--nr_epochs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    return parser


class Worker:
    """A worker process in one checkout."""

    def __init__(self, root: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=root,
        )

    def fit(self, **command) -> dict:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("a worker died; run it by hand to see why")
        return json.loads(line)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    workers = {"before": Worker(args.before.resolve()), "after": Worker(args.after.resolve())}
    rows = []
    try:
        for dataset in args.datasets:
            for method in args.methods:
                command = dict(
                    dataset=dataset, seed=args.seed, method=method, epochs=args.nr_epochs, cache=args.openml_cache_dir
                )
                for name in workers:  # warm-up: loads the data and pays first-use costs outside the timing
                    workers[name].fit(**command)
                results: dict[str, list[dict]] = {"before": [], "after": []}
                for round_index in range(args.rounds):
                    order = ("before", "after") if round_index % 2 == 0 else ("after", "before")
                    for name in order:
                        results[name].append(workers[name].fit(**command))
                ratios = [a["cpu"] / b["cpu"] for a, b in zip(results["after"], results["before"], strict=True)]
                same = {r["digest"] for r in results["before"] + results["after"]}
                rows.append(
                    (
                        dataset,
                        method,
                        min(r["cpu"] for r in results["before"]),
                        min(r["cpu"] for r in results["after"]),
                        statistics.median(ratios),
                        min(ratios),
                        max(ratios),
                        len(same) == 1,
                    )
                )
                print(f"done: dataset {dataset}, {method}", file=sys.stderr, flush=True)
    finally:
        for worker in workers.values():
            worker.close()
    print(f"{args.rounds} rounds per case, {args.nr_epochs} epochs, seed {args.seed}, one thread per worker\n")
    print("| dataset | method | before: CPU s (min) | after: CPU s (min) | after / before (median of rounds) "
          "| range of the per-round ratio | identical predictions |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for dataset, method, before, after, ratio, low, high, same in rows:
        print(f"| {dataset} | {method} | {before:.2f} | {after:.2f} | {ratio:.3f} | {low:.3f}–{high:.3f} | {same} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
