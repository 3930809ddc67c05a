"""How long CD takes: the CD score of every single feature for many rows of credit-g, INN and TabResNet.

Fits each method on credit-g's training rows (the default architecture and snapshot ensemble, a few epochs: the
weights' values do not change the cost), draws ``--rows`` rows from the whole data set with replacement, and times
``CDExplainer.explain`` (every (row, feature) pair decomposed, plus one forward pass for the outputs). Prints one
Markdown table row per method × rule × dtype with the minimum wall and process CPU time over ``--repeats`` (the
CPU time is the less sensitive to other jobs on a shared machine; with two threads it can exceed the wall time)
and the largest completeness error ``|relevant + irrelevant − output|``.

    python -m benchmarks.cd_speed                      # 10,000 rows, INN and TabResNet, float64
    python -m benchmarks.cd_speed --dtype float64 float32 --rule relevant_first shapley
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from data import load_dataset, prepare_split
from explainers.cd import CDExplainer
from models.decomposition import CD_BATCH_SIZE, RULES
from models.estimators import INNClassifier, TabResNetClassifier

ESTIMATORS = {"inn": INNClassifier, "tabresnet": TabResNetClassifier}
DTYPES = {"float64": torch.float64, "float32": torch.float32}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset_id", type=int, default=31)
    parser.add_argument("--encoding_type", default="paper", help="prepare_split's encoding (onehot: more columns)")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--methods", nargs="+", choices=sorted(ESTIMATORS), default=["inn", "tabresnet"])
    parser.add_argument("--rule", nargs="+", choices=RULES, default=["relevant_first"])
    parser.add_argument("--dtype", nargs="+", choices=sorted(DTYPES), default=["float64"])
    parser.add_argument("--nr_epochs", type=int, default=3)
    parser.add_argument("--hidden_size", type=int, default=128)
    parser.add_argument("--nr_blocks", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--batch_size", type=int, default=CD_BATCH_SIZE, help="(row, feature) pairs per CD pass")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    raw = load_dataset(dataset_id=args.dataset_id)
    split = prepare_split(raw, mode="classification", seed=args.seed, encoding_type=args.encoding_type)
    pool = np.concatenate([split.X_train, split.X_test])
    rows = pool[np.random.default_rng(args.seed).integers(0, len(pool), size=args.rows)]
    n_features = len(split.feature_names)
    print(f"load average before: {os.getloadavg()[0]:.2f}; torch threads: {torch.get_num_threads()}")
    print(
        f"{raw.name}: {args.rows} rows, {n_features} features, {split.X_train.shape[1]} input columns "
        f"({args.rows * n_features} (row, feature) pairs)\n"
    )
    print("| method | snapshots | rule | dtype | wall s (min) | process CPU s (min) | rows/s | completeness error |")
    print("|---|---|---|---|---|---|---|---|")
    for method in args.methods:
        model = ESTIMATORS[method](
            nr_epochs=args.nr_epochs, hidden_size=args.hidden_size, nr_blocks=args.nr_blocks, seed=args.seed
        ).fit(split.X_train, split.y_train)
        for rule in args.rule:
            for dtype in args.dtype:
                explainer = CDExplainer(
                    split.feature_names,
                    split.input_to_feature,
                    rule=rule,
                    dtype=DTYPES[dtype],
                    batch_size=args.batch_size,
                )
                times, cpu_times = [], []
                for _ in range(args.repeats):
                    start, cpu_start = time.perf_counter(), time.process_time()
                    attribution = explainer.explain(model, rows)
                    times.append(time.perf_counter() - start)
                    cpu_times.append(time.process_time() - cpu_start)
                gap = attribution.values + attribution.extras["irrelevant"] - attribution.output[:, None, :]
                seconds = min(times)
                print(
                    f"| {method} | {len(model.model_.members)} | {rule} | {dtype} | {seconds:.2f} | "
                    f"{min(cpu_times):.2f} | {args.rows / seconds:.0f} | {np.abs(gap).max():.1e} |"
                )
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
