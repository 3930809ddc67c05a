"""Mean test AUROC of INN and TabResNet over seeds, next to the original implementation's figures.

Each run is the paper protocol without HPO: ``prepare_split(seed)`` (stratified 80/20, paper encoding),
default hyperparameters (100 epochs, batch 64, weight_norm 0.1, no augmentation) and no oversampling
(``class_balance="none"``), as in the reference table of the speed issue.

Usage (from the repository root):
    python -m benchmarks.accuracy --datasets 31 37 1464 --openml_cache_dir /work/shared/openml_cache
    python -m benchmarks.accuracy --datasets 31 --seeds 0 1 --methods inn
    python -m benchmarks.accuracy --code_root /tmp/inn_before      # another checkout's code, in a child process
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]

#: Mean test AUROC over seeds 0-4 of the original implementation (no oversampling).
REFERENCE = {
    31: {"inn": 0.799, "tabresnet": 0.789},
    37: {"inn": 0.804, "tabresnet": 0.811},
    1464: {"inn": 0.735, "tabresnet": 0.735},
}
TOLERANCE = 0.01


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--datasets", type=int, nargs="+", default=[31, 37, 1464])
    parser.add_argument("--openml_cache_dir", default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--methods", nargs="+", choices=("inn", "tabresnet"), default=["inn", "tabresnet"])
    parser.add_argument("--class_balance", default="none", choices=("none", "weight", "oversample"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--code_root", type=Path, default=None, help="another checkout whose models/ and data/ to run (a child process)"
    )
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "benchmarks" / "out" / "accuracy.csv")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.code_root is not None:  # the same benchmark, in a child process that imports the other checkout
        from benchmarks.checkout import run_in_checkout, without_option

        return run_in_checkout(
            args.code_root, __file__, without_option(sys.argv[1:] if argv is None else argv, "--code_root")
        )
    from sklearn.metrics import roc_auc_score

    from data import load_dataset, prepare_split
    from models.estimators import INNClassifier, TabResNetClassifier

    estimators = {"inn": INNClassifier, "tabresnet": TabResNetClassifier}
    rows = []
    for dataset_id in args.datasets:
        raw = load_dataset(dataset_id=dataset_id, openml_cache_dir=args.openml_cache_dir)
        for seed in args.seeds:
            split = prepare_split(raw, mode="classification", seed=seed)
            for method in args.methods:
                estimator = estimators[method](class_balance=args.class_balance, device=args.device, seed=seed)
                start = time.perf_counter()
                estimator.fit(split.X_train, split.y_train)
                fit_time = time.perf_counter() - start
                probabilities = estimator.predict_proba(split.X_test)
                if probabilities.shape[1] == 2:
                    auroc = roc_auc_score(split.y_test, probabilities[:, 1])
                else:
                    auroc = roc_auc_score(split.y_test, probabilities, multi_class="ovo")
                rows.append({"dataset": dataset_id, "seed": seed, "method": method, "auroc": auroc, "fit_s": fit_time})
                print(f"{dataset_id} seed {seed} {method}: AUROC {auroc:.4f} (fit {fit_time:.2f}s)", flush=True)
    print()
    print("| dataset | method | mean AUROC | std | original | floor (original - 0.01) | ok |")
    print("|---|---|---|---|---|---|---|")
    all_ok = True
    for dataset_id in args.datasets:
        for method in args.methods:
            scores = [row["auroc"] for row in rows if row["dataset"] == dataset_id and row["method"] == method]
            mean = float(np.mean(scores))
            reference = REFERENCE.get(dataset_id, {}).get(method)
            ok = "" if reference is None else ("yes" if mean >= reference - TOLERANCE else "NO")
            all_ok &= ok != "NO"
            cells = ("", "") if reference is None else (f"{reference:.3f}", f"{reference - TOLERANCE:.3f}")
            print(f"| {dataset_id} | {method} | {mean:.3f} | {np.std(scores):.3f} | {cells[0]} | {cells[1]} | {ok} |")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"\nwrote {args.output}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
