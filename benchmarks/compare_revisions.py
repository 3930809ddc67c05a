"""Same predictions, same speed: every registered method fitted in two checkouts of the project, taking turns.

A restructuring must change neither results nor training speed. This script starts one long-lived worker process
per checkout (its working directory is the checkout, so it imports that checkout's packages, once:
:mod:`benchmarks.checkout`). The methods are the NEWER checkout's registry (``--after``) in registry order;
methods the older checkout's registry lacks are skipped, and the output says which. For every dataset and
method both workers fit the method through their own registry (``spec.build``, the same seed, one thread, the
same settings) once untimed (first-use costs: imports, data, caches) and then ``--rounds`` times in ABBA order
(round 0: before, after; round 1: after, before; ...), so that a slow spell of the machine hits both alike.

It reports per dataset and method whether the test-set predictions (``predict_proba`` and ``predict``) of the two
checkouts are identical (exact equality of the arrays, every fit), whether each checkout repeats itself, the
minimum CPU seconds of a fit per checkout and the median over rounds of the per-round ratio after / before; and
overall the median of all per-round ratios. Exit code 1 if any predictions differ, a fit failed, or that median
exceeds ``--max_ratio`` (the issue's acceptance check: identical predictions, median ratio <= 1.03).

Usage (from the repository root; the datasets must be classification tasks):
    git worktree add /tmp/rev_before 29bbce4          # the code before the change
    python -m benchmarks.compare_revisions --before /tmp/rev_before --datasets 31 37 1464 \\
        --openml_cache_dir /work/shared/openml_cache --rounds 6
    python -m benchmarks.compare_revisions --before /tmp/rev_before --settings smoke --rounds 4   # minutes
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
CHECKOUTS = ("before", "after")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--before", type=Path, required=True, help="checkout of the old code")
    parser.add_argument("--after", type=Path, default=REPO_ROOT, help="checkout of the new code (default: this one)")
    parser.add_argument("--datasets", type=int, nargs="+", default=[31, 37, 1464], help="classification datasets")
    parser.add_argument("--openml_cache_dir", default=None, help="read-only OpenML cache (31 is embedded)")
    parser.add_argument("--methods", nargs="+", default=None, help="default: every method of the newer registry")
    parser.add_argument("--settings", choices=("default", "smoke"), default="default",
                        help="the methods' default parameters, or the registry's smoke settings (a second a fit)")  # fmt: skip
    parser.add_argument("--nr_epochs", type=int, default=None, help="epochs of the neural methods (default: theirs)")
    parser.add_argument("--rounds", type=int, default=6, help="timed fits per checkout, dataset and method (even)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max_ratio", type=float, default=1.03, help="the largest acceptable median after / before")
    return parser


# ----------------------------------------------------------------------------------------------------------
# The worker: runs in one checkout


def encode(array: Any) -> str:
    """An array as base64 ``.npy`` bytes (exact: no float formatting on the way)."""
    import numpy as np

    array = np.asarray(array)
    if array.dtype == object:
        array = array.astype(str)
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode()


def decode(text: str) -> Any:
    import numpy as np

    return np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False)


def serve() -> int:
    """Answer one JSON line per command line on stdin: fit one method on one dataset, return times and predictions.

    Imports the project from the working directory (the checkout under test). Its first line names the checkout
    it imported and the methods of its registry. Answers go to the original standard output; everything else
    written there (libraries' progress lines) goes to standard error.
    """
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    import numpy as np
    import torch

    import methods
    from data import load_dataset, prepare_split
    from methods import REGISTRY

    torch.set_num_threads(1)
    root = Path(methods.__file__).resolve().parents[1]
    print(json.dumps({"root": str(root), "methods": list(REGISTRY)}), file=answers, flush=True)
    raws: dict[int, Any] = {}
    splits: dict[tuple[int, int, str], Any] = {}
    for line in sys.stdin:
        command = json.loads(line)
        try:
            spec = REGISTRY[command["method"]]
            dataset, seed = command["dataset"], command["seed"]
            if dataset not in raws:
                raws[dataset] = load_dataset(dataset_id=dataset, openml_cache_dir=command["cache"])
            key = (dataset, seed, spec.encoding)
            if key not in splits:
                splits[key] = prepare_split(
                    raws[dataset], mode="classification", seed=seed, encoding_type=spec.encoding
                )
            split = splits[key]
            params = dict(spec.smoke_params) if command["settings"] == "smoke" else {}
            if spec.kind == "neural" and command["nr_epochs"] is not None:
                params["nr_epochs"] = command["nr_epochs"]
            model = spec.build(split, seed=seed, device="cpu", n_jobs=1, params=params)
            train, test = spec.inputs(split)
            start_cpu, start_wall = time.process_time(), time.perf_counter()
            model.fit(train, split.y_train)
            cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start_wall
            answer = {
                "cpu": cpu,
                "wall": wall,
                "proba": encode(np.asarray(model.predict_proba(test))),
                "label": encode(np.asarray(model.predict(test))),
            }
        except Exception as error:  # reported per case; the worker goes on with the next command
            answer = {"error": f"{type(error).__name__}: {error}"}
        print(json.dumps(answer), file=answers, flush=True)
    return 0


# ----------------------------------------------------------------------------------------------------------
# The driver


class Worker:
    """A worker process in one checkout."""

    def __init__(self, root: Path) -> None:
        from benchmarks.checkout import call_command, checkout_environment, checkout_root

        self.root = checkout_root(root)
        self.process = subprocess.Popen(
            call_command(__file__, "serve"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=self.root,
            env=checkout_environment(),
        )
        hello = self._read()
        if Path(hello["root"]) != self.root:
            self.process.kill()
            raise SystemExit(f"error: the worker for {self.root} imported the project from {hello['root']}")
        self.methods: list[str] = hello["methods"]

    def _read(self) -> dict:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"error: the worker in {self.root} died; its error is above")
        return json.loads(line)

    def fit(self, **command: Any) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


@dataclass
class Case:
    """The fits of one dataset and method in both checkouts (the untimed first fit first)."""

    dataset: int
    method: str
    fits: dict[str, list[dict]] = field(default_factory=lambda: {name: [] for name in CHECKOUTS})

    @property
    def error(self) -> str | None:
        return next(
            (f"{name}: {fit['error']}" for name in CHECKOUTS for fit in self.fits[name] if "error" in fit), None
        )

    def predictions(self, name: str) -> list[tuple[Any, Any]]:
        """Every fit's ``(predict_proba, predict)`` arrays."""
        return [(decode(fit["proba"]), decode(fit["label"])) for fit in self.fits[name]]

    def ratios(self) -> list[float]:
        """Per timed round: after's CPU seconds over before's."""
        pairs = zip(self.fits["after"][1:], self.fits["before"][1:], strict=True)
        return [after["cpu"] / before["cpu"] for after, before in pairs]


def same(first: tuple[Any, Any], second: tuple[Any, Any]) -> bool:
    """Exact equality of two fits' ``(predict_proba, predict)`` arrays: shapes, dtypes and every value."""
    import numpy as np

    return all(
        a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(first, second, strict=True)
    )


def largest_difference(first: tuple[Any, Any], second: tuple[Any, Any]) -> float:
    import numpy as np

    if first[0].shape != second[0].shape:
        return float("nan")
    return float(np.max(np.abs(first[0].astype(np.float64) - second[0].astype(np.float64)), initial=0.0))


def run_case(workers: dict[str, Worker], case: Case, command: dict[str, Any], rounds: int) -> None:
    for name in CHECKOUTS:  # untimed: imports, data, first-use costs
        case.fits[name].append(workers[name].fit(**command))
    for round_index in range(rounds):
        if case.error:
            return
        order = CHECKOUTS if round_index % 2 == 0 else CHECKOUTS[::-1]
        for name in order:
            case.fits[name].append(workers[name].fit(**command))


@dataclass
class Summary:
    """What one case showed."""

    identical: bool  # every fit of both checkouts gave the first fit's predictions
    repeats: dict[str, bool]  # per checkout: all its fits gave the same predictions
    largest_difference: float  # max |Δ predict_proba| of the checkouts' first fits
    cpu: dict[str, float]  # per checkout: the minimum CPU seconds of a timed fit
    ratios: list[float]  # per timed round: after / before


def summarise(case: Case) -> Summary:
    fits = {name: case.predictions(name) for name in CHECKOUTS}
    first = fits["before"][0]
    return Summary(
        identical=all(same(first, fit) for name in CHECKOUTS for fit in fits[name]),
        repeats={name: all(same(fits[name][0], fit) for fit in fits[name][1:]) for name in CHECKOUTS},
        largest_difference=largest_difference(first, fits["after"][0]),
        cpu={name: min(fit["cpu"] for fit in case.fits[name][1:]) for name in CHECKOUTS},
        ratios=case.ratios(),
    )


def case_row(case: Case, summary: Summary | None) -> str:
    """The Markdown row of one case (``summary`` None: a fit failed)."""
    if summary is None:
        return f"| {case.dataset} | {case.method} | failed: {case.error} | | | | | |"
    identical = "yes" if summary.identical else f"**no** (max abs Δ proba {summary.largest_difference:.2e})"
    repeats = [f"{name}: no" for name, ok in summary.repeats.items() if not ok]
    ratios = summary.ratios
    return (
        f"| {case.dataset} | {case.method} | {identical} | {', '.join(repeats) or 'yes'} | "
        f"{summary.cpu['before']:.3f} | {summary.cpu['after']:.3f} | {statistics.median(ratios):.3f} | "
        f"{min(ratios):.3f}–{max(ratios):.3f} |"
    )


def select_methods(newer: list[str], older: list[str], requested: list[str] | None) -> tuple[list[str], list[str]]:
    """The methods to compare (``requested``, default: the newer registry's, in its order) and those skipped
    because the older registry lacks them.

    Raises:
        SystemExit: a requested method is not in the newer registry.
    """
    chosen = newer if requested is None else requested
    unknown = [method for method in chosen if method not in newer]
    if unknown:
        raise SystemExit(f"error: {unknown} not in the newer checkout's registry; choose from {newer}")
    return [method for method in chosen if method in older], [method for method in chosen if method not in older]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.rounds < 1:
        raise SystemExit("error: --rounds must be at least 1")
    workers: dict[str, Worker] = {}
    cases: list[Case] = []
    load_before = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else "?"
    try:
        for name in CHECKOUTS:
            workers[name] = Worker(getattr(args, name))
        methods, skipped = select_methods(workers["after"].methods, workers["before"].methods, args.methods)
        print(f"before: {workers['before'].root}\nafter:  {workers['after'].root}")
        print(f"methods (the newer registry): {', '.join(methods)}")
        print(f"skipped, not in the older registry: {', '.join(skipped) if skipped else 'none'}", flush=True)
        for dataset in args.datasets:
            for method in methods:
                command = dict(dataset=dataset, method=method, seed=args.seed, settings=args.settings,
                               nr_epochs=args.nr_epochs, cache=args.openml_cache_dir)  # fmt: skip
                case = Case(dataset, method)
                run_case(workers, case, command, args.rounds)
                cases.append(case)
                status = (
                    f"failed ({case.error})" if case.error else f"median ratio {statistics.median(case.ratios()):.3f}"
                )
                print(f"done: dataset {dataset}, {method}: {status}", file=sys.stderr, flush=True)
    finally:
        for worker in workers.values():
            worker.close()
    load_after = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else "?"
    epochs = f", {args.nr_epochs} epochs for the neural methods" if args.nr_epochs is not None else ""
    print(f"\nsettings: {args.settings}{epochs}; seed {args.seed}; {args.rounds} timed rounds per case in ABBA order "
          f"after one untimed fit; one thread per worker; load average before {load_before}, after {load_after}\n")  # fmt: skip
    print("| dataset | method | identical predictions (before = after, every fit) | each checkout repeats itself "
          "| before: CPU s (min) | after: CPU s (min) | after / before (median of rounds) | range of the ratio |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    summaries = [None if case.error else summarise(case) for case in cases]
    for case, summary in zip(cases, summaries, strict=True):
        print(case_row(case, summary))
    done = [summary for summary in summaries if summary is not None]
    failed, differ = len(cases) - len(done), sum(not summary.identical for summary in done)
    ratios = [ratio for summary in done for ratio in summary.ratios]
    overall = statistics.median(ratios) if ratios else float("nan")
    of_cases = statistics.median([statistics.median(summary.ratios) for summary in done]) if done else float("nan")
    print(f"\ncases: {len(cases)}; identical predictions: {len(done) - differ}; differ: {differ}; failed: {failed}")
    print(f"median after / before over all {len(ratios)} paired fits: {overall:.3f} (of the per-case medians: "
          f"{of_cases:.3f}); accepted up to {args.max_ratio}")  # fmt: skip
    return 0 if not failed and not differ and overall <= args.max_ratio else 1


if __name__ == "__main__":
    raise SystemExit(main())
