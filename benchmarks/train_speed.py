"""Speed and memory benchmark of INN and TabResNet: fit, predict and explain, one table row per case.

For every dataset, method and augmentation probability it fits the estimator ``--repeats`` times with the
same seed and reports the fit time (wall clock: minimum and median; CPU time of the process: minimum),
milliseconds per optimiser step, training rows per second, and the throughput and peak extra memory of
``predict_proba`` and of explaining ``--predict_rows`` rows (INN: ``explain``, TabResNet: gradient × input),
next to the size of the output arrays. Other jobs on the machine inflate wall times; the CPU time of a
one-threaded fit is far less sensitive to them, and the load average is printed with the table. The methods'
fits take turns, and a second table gives INN's fit time over TabResNet's as the median over the repeats of
the ratio of the two fits of one round.

Usage (from the repository root):
    python -m benchmarks.train_speed                                    # credit-g (embedded), INN and TabResNet
    python -m benchmarks.train_speed --datasets 31 37 1464 1489 --openml_cache_dir /work/shared/openml_cache
    python -m benchmarks.train_speed --augmentation_probability 0 0.5 --methods inn
    python -m benchmarks.train_speed --code_root /tmp/inn_before        # the same benchmark on another checkout

With ``--code_root`` the benchmark runs in a child process whose working directory is that checkout, so it times
that checkout's ``data/`` and ``models/`` (:mod:`benchmarks.checkout`).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
METHODS = ("inn", "tabresnet")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--datasets", type=int, nargs="+", default=[31], help="OpenML dataset ids")
    parser.add_argument("--openml_cache_dir", default=None, help="read-only OpenML cache (31 is embedded)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--augmentation_probability", type=float, nargs="+", default=[0.0])
    parser.add_argument("--repeats", type=int, default=3, help="fits per case (the table shows min and median)")
    parser.add_argument("--nr_epochs", type=int, default=100)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--hidden_size", type=int, default=128)
    parser.add_argument("--nr_blocks", type=int, default=2)
    parser.add_argument("--weight_norm", type=float, default=0.1)
    parser.add_argument("--class_balance", default="none", choices=("none", "weight", "oversample"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="estimator threads (default: its automatic rule)")
    parser.add_argument("--compile", action="store_true", help="fit with torch.compile")
    parser.add_argument("--predict_rows", type=int, default=100_000, help="rows for predict/explain (0: skip)")
    parser.add_argument("--code_root", type=Path, default=None, help="another checkout whose models/ and data/ to time")
    parser.add_argument("--label", default="", help="tag written into the CSV (e.g. before/after)")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "benchmarks" / "out" / "train_speed.csv")
    return parser


class PeakMemory:
    """Peak resident memory above the level at entry, sampled by a background thread (CPU), or CUDA's peak.

    Sampling every half millisecond can miss a very short peak, never overstate one.
    """

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.peak_bytes = 0

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> PeakMemory:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._start = torch.cuda.memory_allocated()
            return self
        _release_free_heap()
        self._start = self._rss()
        self._peak = self._start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._rss())
            time.sleep(0.0005)

    def __exit__(self, *exc_info) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            self.peak_bytes = torch.cuda.max_memory_allocated() - self._start
            return
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self._peak, self._rss()) - self._start


def _release_free_heap() -> None:
    """Return freed heap memory to the system (glibc ``malloc_trim``), so that the resident size at the
    start of a measurement holds live data only and a later peak is not hidden by reused free memory."""
    if sys.platform.startswith("linux"):
        import contextlib
        import ctypes

        with contextlib.suppress(OSError, AttributeError):  # not glibc
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def n_steps(n_rows: int, batch_size: int, nr_epochs: int) -> int:
    """Optimiser steps of a run: a trailing batch of one row joins the previous batch."""
    batches = math.ceil(n_rows / batch_size)
    if batches > 1 and n_rows % batch_size == 1:
        batches -= 1
    return batches * nr_epochs


def timed(function: Callable[[], Any], device: str) -> tuple[Any, float, float]:
    """Run ``function``; return its result, wall seconds and process CPU seconds (all threads)."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def output_bytes(value: Any) -> int:
    """Total bytes of the arrays in an estimator output or explanation dataclass."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    fields = getattr(value, "__dataclass_fields__", {})
    total = sum(getattr(value, name).nbytes for name in fields if isinstance(getattr(value, name), np.ndarray))
    extras = getattr(value, "extras", None) or {}  # an Attribution's extras (INN's generated weights)
    return total + sum(array.nbytes for array in extras.values() if isinstance(array, np.ndarray))


def make_estimator(args, method: str, probability: float):
    """A fresh estimator of ``method`` with the benchmark's settings."""
    from models.estimators import INNClassifier, TabResNetClassifier

    estimator_type = INNClassifier if method == "inn" else TabResNetClassifier
    params = dict(
        nr_epochs=args.nr_epochs,
        batch_size=args.batch_size,
        hidden_size=args.hidden_size,
        nr_blocks=args.nr_blocks,
        augmentation_probability=probability,
        class_balance=args.class_balance,
        device=args.device,
        seed=args.seed,
    )
    supported = estimator_type().get_params()
    if "weight_norm" in supported:  # INN's L1 term (TabResNet took and ignored it in older checkouts)
        params["weight_norm"] = args.weight_norm
    for name, value in (("threads", args.threads), ("compile", args.compile)):
        if name in supported:
            params[name] = value
        elif value not in (None, False):
            raise SystemExit(f"the code under test has no estimator parameter {name!r}")
    return estimator_type(**params)


Fits = dict[str, tuple[Any, list[float], list[float]]]


def time_fits(args, split, probability: float) -> Fits:
    """Fit every method ``--repeats`` times, the methods taking turns, so that a slow spell of the machine
    hits all of them alike. Returns, per method, the last fitted estimator and the wall and CPU seconds of
    every fit."""
    fits: Fits = {method: (None, [], []) for method in args.methods}
    for _ in range(args.repeats):
        for method in args.methods:
            estimator = make_estimator(args, method, probability)
            _, wall, cpu = timed(lambda estimator=estimator: estimator.fit(split.X_train, split.y_train), args.device)
            _, walls, cpus = fits[method]
            fits[method] = (estimator, [*walls, wall], [*cpus, cpu])
    return fits


def paired_ratio(fits: Fits) -> float | None:
    """Median over the repeats of INN's fit CPU time divided by that of the TabResNet fit of the same round."""
    if "inn" not in fits or "tabresnet" not in fits:
        return None
    return statistics.median(inn / tab for inn, tab in zip(fits["inn"][2], fits["tabresnet"][2], strict=True))


def benchmark_case(
    args, split, dataset_id: int, method: str, probability: float, fit: tuple[Any, list[float], list[float]]
) -> dict[str, Any]:
    """The table row of one method: its fit times (from :func:`time_fits`), test AUROC, predict and explain."""
    from sklearn.metrics import roc_auc_score

    estimator, walls, cpus = fit
    steps = n_steps(split.X_train.shape[0], args.batch_size, args.nr_epochs)
    probabilities = estimator.predict_proba(split.X_test)
    scores = probabilities[:, 1] if probabilities.shape[1] == 2 else probabilities
    auroc = roc_auc_score(split.y_test, scores, multi_class="ovo") if probabilities.shape[1] > 2 else None
    if auroc is None:
        auroc = roc_auc_score(split.y_test, scores)
    row: dict[str, Any] = {
        "label": args.label,
        "dataset": dataset_id,
        "method": method,
        "aug": probability,
        "n_train": split.X_train.shape[0],
        "steps": steps,
        "fit_s_min": min(walls),
        "fit_s_median": statistics.median(walls),
        "fit_cpu_s_min": min(cpus),
        "ms_per_step": 1e3 * min(walls) / steps,
        "cpu_ms_per_step": 1e3 * min(cpus) / steps,
        "train_rows_per_s": args.nr_epochs * split.X_train.shape[0] / min(walls),
        "test_auroc": auroc,
    }
    if args.predict_rows > 0:
        repeats = math.ceil(args.predict_rows / split.X_test.shape[0])
        x_big = np.tile(split.X_test, (repeats, 1))[: args.predict_rows]
        with PeakMemory(args.device) as memory:
            output, wall, _ = timed(lambda: estimator.predict_proba(x_big), args.device)
        row |= {
            "predict_rows_per_s": x_big.shape[0] / wall,
            "predict_peak_mb": memory.peak_bytes / 2**20,
            "predict_out_mb": output_bytes(output) / 2**20,
        }
        del output
        if method == "inn":
            explain = lambda: estimator.explain(x_big)  # noqa: E731
        else:
            try:
                from explainers.gradient import NetworkGradientExplainer

                explain = lambda: NetworkGradientExplainer().explain(estimator, x_big)  # noqa: E731
            except ImportError:  # --code_root of the first version, b637eb8 (the README's "before" column)
                from models.explainers import GradientTimesInput

                explain = lambda: GradientTimesInput().explain(estimator, x_big)  # noqa: E731
        with PeakMemory(args.device) as memory:
            output, wall, _ = timed(explain, args.device)
        row |= {
            "explain_rows_per_s": x_big.shape[0] / wall,
            "explain_peak_mb": memory.peak_bytes / 2**20,
            "explain_out_mb": output_bytes(output) / 2**20,
        }
        del output
    return row


COLUMNS = (
    ("dataset", "{}"),
    ("method", "{}"),
    ("aug", "{:.1f}"),
    ("n_train", "{}"),
    ("steps", "{}"),
    ("fit_s_min", "{:.2f}"),
    ("fit_s_median", "{:.2f}"),
    ("fit_cpu_s_min", "{:.2f}"),
    ("ms_per_step", "{:.2f}"),
    ("cpu_ms_per_step", "{:.2f}"),
    ("train_rows_per_s", "{:,.0f}"),
    ("test_auroc", "{:.4f}"),
    ("predict_rows_per_s", "{:,.0f}"),
    ("predict_peak_mb", "{:.1f}"),
    ("predict_out_mb", "{:.1f}"),
    ("explain_rows_per_s", "{:,.0f}"),
    ("explain_peak_mb", "{:.1f}"),
    ("explain_out_mb", "{:.1f}"),
)


def format_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of the benchmark rows."""
    columns = [(name, fmt) for name, fmt in COLUMNS if any(name in row for row in rows)]
    lines = ["| " + " | ".join(name for name, _ in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [fmt.format(row[name]) if row.get(name) is not None else "" for name, fmt in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.code_root is not None:  # the same benchmark, in a child process that imports the other checkout
        from benchmarks.checkout import run_in_checkout, without_option

        child_argv = without_option(sys.argv[1:] if argv is None else argv, "--code_root")
        return run_in_checkout(args.code_root, __file__, child_argv, environment=FIXED_MMAP_ENVIRONMENT)
    import torch

    import data
    from data import load_dataset, prepare_split

    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, code {Path(data.__file__).resolve().parents[1]}, "
        f"load average before {os.getloadavg()}",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    ratios: list[tuple[int, float, float, float]] = []
    for dataset_id in args.datasets:
        raw = load_dataset(dataset_id=dataset_id, openml_cache_dir=args.openml_cache_dir)
        split = prepare_split(raw, mode="classification", seed=args.seed)
        for probability in args.augmentation_probability:
            fits = time_fits(args, split, probability)
            for method in args.methods:
                row = benchmark_case(args, split, dataset_id, method, probability, fits[method])
                rows.append(row)
                print(
                    f"{dataset_id} {method} aug={probability}: fit {row['fit_s_min']:.2f}s "
                    f"({row['ms_per_step']:.2f} ms/step, cpu {row['cpu_ms_per_step']:.2f})",
                    flush=True,
                )
            paired = paired_ratio(fits)
            if paired is not None:
                minima = min(fits["inn"][2]) / min(fits["tabresnet"][2])
                ratios.append((dataset_id, probability, paired, minima))
    print(f"\nload average after {os.getloadavg()}\n")
    print(format_table(rows))
    if ratios:
        print("\n| dataset | aug | INN / TabResNet fit time (median of paired fits) | ratio of the minima |")
        print("|---|---|---|---|")
        for dataset_id, probability, paired, of_minima in ratios:
            print(f"| {dataset_id} | {probability:.1f} | {paired:.3f} | {of_minima:.3f} |")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=sorted({key for row in rows for key in row}))
        writer.writeheader()
        writer.writerows(rows)
    print(f"\nwrote {args.output}")
    return 0


#: glibc's mmap threshold fixed at 1 MiB, for honest peak memory. By default glibc raises the threshold after the
#: first large blocks are freed and then keeps freed blocks in the heap, so the resident size stops falling after a
#: call and every later peak would read as 0. With a fixed threshold every block of 1 MiB or more is returned to the
#: system when freed, and the resident size follows the live tensors; a training step's tensors are far smaller and
#: unaffected. A fixed mmap threshold would also pin the trim threshold at 128 KiB, and the heap would then be
#: shrunk and regrown (page faults) during training: trimming is left to the explicit malloc_trim calls.
FIXED_MMAP_ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": str(1 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


def _with_fixed_mmap_threshold() -> None:
    """Re-run this module (``python -m benchmarks.train_speed``) with :data:`FIXED_MMAP_ENVIRONMENT` (Linux)."""
    if sys.platform.startswith("linux") and "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        if __spec__ is None:
            raise SystemExit("error: run it from the repository root as python -m benchmarks.train_speed")
        command = [sys.executable, "-m", __spec__.name, *sys.argv[1:]]
        os.execve(sys.executable, command, {**os.environ, **FIXED_MMAP_ENVIRONMENT})


if __name__ == "__main__":
    _with_fixed_mmap_threshold()
    raise SystemExit(main())
