"""Explanation speed in the paper's Table 4 form: seconds to explain a whole test set, per model and explainer.

For each dataset the script fits INN, TabResNet, CatBoost and TabNet (defaults, seed 0, one CPU thread) and times
explaining the test rows in one batched call each:

- ``INN``: its native explanation (the generated linear models; one forward pass);
- ``TabResNet + KernelSHAP``, ``+ exact SHAP`` (only up to ``--exact_max_features`` features: it evaluates all
  ``2^F`` coalitions; above that an estimate from the model's measured throughput is shown instead),
  ``+ permutation SHAP`` and ``+ LIME`` (``explainers.POSTHOC_EXPLAINERS`` and ``shap.PermutationExplainer``);
- ``TabResNet + gradient × input`` (its native explanation, for scale);
- ``CatBoost + TreeSHAP`` and ``TabNet masks`` (their native explanations).

Every explanation is over the original features. The time of a call is the minimum over ``--repeats`` calls for
explainers faster than ``--repeat_below`` seconds and one call otherwise, after one untimed warm-up call on two
rows (imports, shap's numba compilation). Both the wall time and the process CPU time are recorded; on a shared
machine the CPU time is the steadier one, so per-example time = CPU time / rows and "× INN" = CPU time / INN's
CPU time.

Settings of the post-hoc explainers (all on TabResNet's logits, background rows drawn from the training rows with
the seed): KernelSHAP ``--background`` rows (default 100) and ``--kernel_samples`` coalitions per row (default
``auto`` = shap's ``2F + 2048``); exact SHAP the same background; permutation SHAP the same background and
``--permutation_evals`` model evaluations per row (default 500, shap's default; at least ``2F + 1``); LIME
``--lime_samples`` perturbations per row (default 5000, LIME's default), LIME's quartile discretisation, one
regression per row and output.

Usage (from the repository root):
    python -m benchmarks.explain_speed --openml_cache_dir /work/shared/openml_cache   # 31, 50, 54
    python -m benchmarks.explain_speed --datasets 31 --rows 20 --smoke                  # seconds
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]

#: credit-g and the two largest other dev datasets by rows: tic-tac-toe (958) and vehicle (846).
DEFAULT_DATASETS = (31, 50, 54)
#: The explainers (``--explainers``) and the method whose model each explains.
EXPLAINER_METHODS = {
    "inn": "inn",
    "kernel_shap": "tabresnet",
    "exact_shap": "tabresnet",
    "permutation_shap": "tabresnet",
    "lime": "tabresnet",
    "gradient_x_input": "tabresnet",
    "catboost_shap": "catboost",
    "tabnet_masks": "tabnet",
}
FIELDS = (
    "dataset_id",
    "dataset",
    "model",
    "explainer",
    "rows",
    "features",
    "total_s",
    "cpu_s",
    "per_example_ms",
    "ratio_to_inn",
    "measured",
    "calls",
    "settings",
)


def permutation_shap(target: Any, X: Any, *, background_size: int, max_evals: int, seed: int) -> Any:
    """Permutation SHAP values of an ``explainers.posthoc.ExplanationTarget``'s model (``shap.PermutationExplainer``
    with an ``Independent`` masker over ``background_size`` training rows), as an ``Attribution`` over features.

    A feature grouping goes through ``explainers.posthoc.TokenModel`` (a feature's columns move together).

    Shape:
        X ``(N, D)`` -> values ``(N, F, C)``
    """
    import numpy as np

    from explainers.exact_shap import import_shap, shap_array
    from explainers.posthoc import TokenModel, predict_outputs, sample_background
    from models.attribution import Attribution

    shap = import_shap()
    X = np.asarray(X, dtype=np.float64)
    grouping = target.grouping
    sample = sample_background(target.background, background_size, seed)
    output = predict_outputs(target.predict, X)
    if grouping.identity:
        model, rows, data = target.predict, X, sample
    else:
        tokens = TokenModel(target.predict, X, sample, grouping)
        model, rows, data = tokens, tokens.row_tokens, tokens.background_tokens

    def function(points: np.ndarray) -> np.ndarray:
        values = predict_outputs(model, np.asarray(points, dtype=np.float64))
        return values[:, 0] if output.shape[1] == 1 else values

    masker = shap.maskers.Independent(data, max_samples=data.shape[0])
    explanation = shap.PermutationExplainer(function, masker, seed=seed)(rows, max_evals=max_evals, silent=True)
    values = shap_array(explanation.values, X.shape[0], grouping.n_features)
    return Attribution(
        values=values,
        rest=output - values.sum(axis=1),
        output=output,
        feature_names=target.feature_names,
        explainer="permutation_shap",
        exact=False,
        reference_name=f"background sample ({sample.shape[0]} rows)",
        output_name=target.output_name,
    )


def timed(call: Callable[[Any], Any], rows: Any, *, repeats: int, repeat_below: float) -> tuple[float, float, int]:
    """Wall and process CPU seconds of ``call(rows)``: one untimed warm-up on two rows, then the minimum of each
    over ``repeats`` calls (one call when the first takes ``repeat_below`` seconds or more); also the number of
    timed calls."""
    call(rows.iloc[:2] if hasattr(rows, "iloc") else rows[:2])
    wall, cpu, calls = float("inf"), float("inf"), 0
    for _ in range(max(repeats, 1)):
        start, start_cpu = time.perf_counter(), time.process_time()
        call(rows)
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
        calls += 1
        if wall >= repeat_below:
            break
    return wall, cpu, calls


def model_throughput(predict: Callable[[Any], Any], rows: Any, n_rows: int = 20_000) -> float:
    """Rows per second of ``predict`` on ``n_rows`` rows (``rows`` tiled), best of two calls."""
    import numpy as np

    batch = np.resize(np.asarray(rows, dtype=np.float64), (n_rows, np.shape(rows)[1]))
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        predict(batch)
        best = min(best, time.perf_counter() - start)
    return n_rows / best


def explain_dataset(dataset_id: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Fit the four models on one dataset and time every explainer on its test rows; one record per explainer."""
    import numpy as np

    from data import load_dataset, prepare_split
    from explainers import POSTHOC_EXPLAINERS
    from explainers.posthoc import target_from_estimator
    from methods import REGISTRY

    raw = load_dataset(dataset_id, openml_cache_dir=args.openml_cache_dir)
    selected = {"inn", *args.explainers}
    needed = {"inn", "tabresnet"} | {EXPLAINER_METHODS[key] for key in selected}
    fitted: dict[str, tuple[Any, Any]] = {}
    for method in (name for name in ("inn", "tabresnet", "catboost", "tabnet") if name in needed):
        spec = REGISTRY[method]
        split = prepare_split(raw, mode="classification", seed=args.seed, encoding_type=spec.encoding)
        params = dict(spec.smoke_params) if args.smoke else None
        model = spec.build(split, seed=args.seed, device="cpu", n_jobs=1, params=params)
        train, _ = spec.inputs(split)
        model.fit(train, split.y_train)
        fitted[method] = (model, split)

    def test_rows(method: str) -> Any:
        _, test = REGISTRY[method].inputs(fitted[method][1])
        return test if args.rows is None else test.iloc[: args.rows] if hasattr(test, "iloc") else test[: args.rows]

    def native(method: str) -> Callable[[Any], Any] | None:
        if method not in fitted:
            return None
        model, split = fitted[method]
        return lambda rows: REGISTRY[method].explain(model, split, rows)

    model, split = fitted["tabresnet"]
    target = target_from_estimator(
        model, split.X_train, feature_names=split.feature_names, input_to_feature=split.input_to_feature
    )
    n_features = split.n_features

    def posthoc(name: str, **options: Any) -> Callable[[Any], Any]:
        explainer = POSTHOC_EXPLAINERS[name].from_target(target, seed=args.seed, **options)
        return explainer.explain

    evals = max(args.permutation_evals, 2 * n_features + 1)
    kernel_samples = args.kernel_samples if args.kernel_samples == "auto" else int(args.kernel_samples)
    cases: list[tuple[str, str, str, str, Callable[[Any], Any] | None, str]] = [
        ("inn", "INN", "native (generated weights)", "inn", native("inn"), "one forward pass"),
        (
            "kernel_shap",
            "TabResNet",
            "KernelSHAP",
            "tabresnet",
            posthoc("kernel_shap", background_size=args.background, n_samples=kernel_samples),
            f"background {args.background}, nsamples {args.kernel_samples}",
        ),
        (
            "exact_shap",
            "TabResNet",
            "exact SHAP",
            "tabresnet",
            posthoc("exact_shap", background_size=args.background) if n_features <= args.exact_max_features else None,
            f"background {args.background}, all 2^{n_features} coalitions",
        ),
        (
            "permutation_shap",
            "TabResNet",
            "permutation SHAP",
            "tabresnet",
            lambda rows: permutation_shap(
                target, rows, background_size=args.background, max_evals=evals, seed=args.seed
            ),
            f"background {args.background}, max_evals {evals}",
        ),
        (
            "lime",
            "TabResNet",
            "LIME",
            "tabresnet",
            posthoc("lime", n_samples=args.lime_samples),
            f"{args.lime_samples} samples, quartile discretisation",
        ),
        ("gradient_x_input", "TabResNet", "gradient × input (native)", "tabresnet", native("tabresnet"), "backward"),
        ("catboost_shap", "CatBoost", "TreeSHAP (native)", "catboost", native("catboost"), "CatBoost's ShapValues"),
        ("tabnet_masks", "TabNet", "masks (native)", "tabnet", native("tabnet"), "TabNet's explain"),
    ]
    records = []
    inn_total = None
    for key, model_name, explainer, method, call, settings in cases:
        if key not in selected:
            continue
        rows = test_rows(method)
        n_rows = len(rows)
        if call is None:
            # Not run: 2^F coalitions × background rows model evaluations per row, at the measured throughput.
            throughput = model_throughput(target.predict, np.asarray(rows))
            total = n_rows * (2.0**n_features) * args.background / throughput
            cpu, measured, calls = total, False, 0
        else:
            total, cpu, calls = timed(call, rows, repeats=args.repeats, repeat_below=args.repeat_below)
            measured = True
        if method == "inn":
            inn_total = cpu
        records.append(
            {
                "dataset_id": dataset_id,
                "dataset": raw.name,
                "model": model_name,
                "explainer": explainer,
                "rows": n_rows,
                "features": n_features,
                "total_s": total,
                "cpu_s": cpu,
                "per_example_ms": 1000.0 * cpu / max(n_rows, 1),
                "ratio_to_inn": cpu / inn_total if inn_total else float("nan"),
                "measured": measured,
                "calls": calls,
                "settings": settings,
            }
        )
        print(f"{raw.name}: {model_name} {explainer}: {total:.3f} s for {n_rows} rows", file=sys.stderr, flush=True)
    return records


def markdown(records: Sequence[dict[str, Any]]) -> str:
    """The Table 4 form: one row per dataset and explainer (per example and × INN from the CPU time)."""
    lines = [
        "| dataset | model | explainer | rows | wall (s) | CPU (s) | per example (ms) | × INN |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for record in records:
        mark = "" if record["measured"] else " (est.)"
        ratio = record["ratio_to_inn"]
        ratio_text = f"{ratio:,.0f}" if ratio >= 100 else f"{ratio:.3g}"
        lines.append(
            f"| {record['dataset']} | {record['model']} | {record['explainer']} | {record['rows']} | "
            f"{record['total_s']:.4g}{mark} | {record['cpu_s']:.4g}{mark} | {record['per_example_ms']:.3g}{mark} | "
            f"{ratio_text}{mark} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=int, nargs="+", default=list(DEFAULT_DATASETS))
    parser.add_argument("--openml_cache_dir", default=None, help="read-only OpenML cache (31 is embedded)")
    parser.add_argument(
        "--explainers",
        nargs="+",
        choices=sorted(EXPLAINER_METHODS),
        default=list(EXPLAINER_METHODS),
        help="explainers to time (INN's is always timed: the ratios refer to it)",
    )
    parser.add_argument("--rows", type=int, default=None, help="explain only the first ROWS test rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--background", type=int, default=100, help="background rows of the SHAP explainers")
    parser.add_argument("--kernel_samples", default="auto", help="KernelSHAP coalitions per row ('auto': 2F + 2048)")
    parser.add_argument("--permutation_evals", type=int, default=500, help="permutation SHAP evaluations per row")
    parser.add_argument("--lime_samples", type=int, default=5000, help="LIME perturbations per row")
    parser.add_argument("--exact_max_features", type=int, default=12, help="exact SHAP only up to this many")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls of the fast explainers (minimum)")
    parser.add_argument("--repeat_below", type=float, default=5.0, help="seconds above which one call suffices")
    parser.add_argument("--smoke", action="store_true", help="the methods' smoke settings (tests)")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "benchmarks" / "out" / "explain_speed.csv")
    args = parser.parse_args(argv)
    if args.kernel_samples != "auto" and not args.kernel_samples.isdigit():
        print(f"error: --kernel_samples must be 'auto' or a count, got {args.kernel_samples!r}", file=sys.stderr)
        return 2
    import torch

    from errors import UserError
    from experiments.results import atomic_write_bytes

    # shap warns when a tiny --kernel_samples leaves its regression singular (smoke runs); the values stay defined.
    warnings.filterwarnings("ignore", message="Linear regression equation is singular")
    torch.set_num_threads(1)  # every model and explainer on one thread: comparable, and fair to a shared machine
    print(f"load average before: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    records: list[dict[str, Any]] = []
    try:
        for dataset_id in args.datasets:
            records.extend(explain_dataset(dataset_id, args))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"load average after: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows(records)
    atomic_write_bytes(args.output, buffer.getvalue().encode())
    print(markdown(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
