"""What separates BF-SHAP's faithfulness on the benchmark's TabResNet from the IMN paper's K. SHAP.

The paper-size ρ = 0 run scores BF-SHAP (100 background rows) at 0.915 faithfulness on the non-linear additive
target, the IMN paper's Table 3 gives K. SHAP 0.970 (XAI-Bench's ``brutekernelshap``: the first 1 000 training rows
as background) and SHAP 0.926 (``shap.Explainer``, which subsamples the background to 100 rows). This script
refits one benchmark unit (the same data, seed, TabResNet and faithfulness draws as ``xai_benchmark.py`` at the
paper profile) and scores, by the benchmark's faithfulness, a grid of explanations against a grid of removal
changes ``Δ_j = |f(x) − E[f | all but x_j]|``:

* explanations: interventional Shapley values of the fitted TabResNet and of the true (noise-free, standardised)
  target function, over 100 background rows (the benchmark; ``--background_seeds`` other draws of them too),
  over all 1 000 training rows (XAI-Bench's K. SHAP, also in its no-intercept form) and over
  ``--exact_background`` fresh draws of ``N(0, Σ)`` (exact up to Monte Carlo error);
* removal changes: of the TabResNet and of the true function, from the benchmark's own draws (100 per row and
  feature, the unit's random stream), from ``--repeats`` other streams of 100 draws, and from ``--exact_draws``
  draws (noise-free up to Monte Carlo error).

Each explanation's score against each Δ is printed as a Markdown table (mean over the test rows of the per-row
Pearson correlation of ``|φ|`` with ``Δ``; the "other draws" column gives mean ± sample sd over the streams),
with the TabResNet's test MSE against the noisy and the noise-free targets. One seed per call::

    python -m benchmarks.xai_shap_gap --seed 0
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import numpy as np

Function = Callable[[np.ndarray], np.ndarray]


def build_parser() -> argparse.ArgumentParser:
    from argtypes import positive_int
    from data.synthetic import TARGETS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="gaussianNonLinearAdditive", choices=TARGETS, help="a synthetic target")
    parser.add_argument("--seed", type=int, default=0, help="the benchmark unit's seed")
    parser.add_argument("--model", default="tabresnet", help="the explained method, at its registry defaults")
    parser.add_argument("--background_seeds", type=positive_int, default=5, help="other 100-row background draws")
    parser.add_argument("--repeats", type=positive_int, default=5, help="other streams of the metric's draws")
    parser.add_argument("--exact_draws", type=positive_int, default=5000, help="draws of the noise-free Δ")
    parser.add_argument("--exact_background", type=positive_int, default=5000, help="rows of the exact SHAP")
    parser.add_argument("--nr_epochs", type=positive_int, default=None, help="default: the registry's")
    parser.add_argument("--n_train", type=positive_int, default=None, help="default: the paper profile's")
    parser.add_argument("--n_test", type=positive_int, default=None, help="default: the paper profile's")
    return parser


def faithfulness_score(phi: np.ndarray, deltas: np.ndarray) -> float:
    """The benchmark's faithfulness of attributions ``phi`` against removal changes ``deltas`` (both ``(N, d)``)."""
    from xai.metrics import row_correlation

    return float(row_correlation(np.abs(phi), deltas).mean())


def measure(args: argparse.Namespace) -> dict:
    """The fitted unit's MSEs, the explanations, the removal changes and every score."""
    from explainers.bruteforce_shap import BruteForceShap
    from studies.xai_bench import Unit, fit_model, make_config
    from studies.xai_bench.scoring import random_stream
    from xai.metrics import faithfulness

    overrides = {key: value for key in ("n_train", "n_test") if (value := getattr(args, key)) is not None}
    params = {args.model: {"nr_epochs": args.nr_epochs}} if args.nr_epochs is not None else {}
    config = make_config("paper", models=(args.model,), model_params=params, **overrides)
    unit = Unit(args.dataset, 0.0, args.seed, args.model)
    start = time.process_time()
    fitted = fit_model(config, unit)
    data = fitted.data
    X = data.X_test
    functions: dict[str, Function] = {"model": fitted.predict, "truth": data.target}
    report: dict = {
        "test_mse": fitted.test_mse,
        "mse_to_truth": float(np.mean((fitted.predict(X) - data.target(X)) ** 2)),
        "truth_test_mse": float(np.mean((data.target(X) - data.y_test) ** 2)),
    }

    def deltas(function: Function, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        result = faithfulness(function, X, np.zeros_like(X), distribution=data.distribution, n_samples=n_samples,
                              rng=rng)  # fmt: skip
        return result.extras["deltas"]

    removal: dict[tuple[str, str], list[np.ndarray]] = {}
    for name, function in functions.items():
        benchmark_stream = random_stream(unit.seed, unit.dataset, unit.rho, "faithfulness")
        removal[(name, "benchmark draws")] = [deltas(function, config.faithfulness_samples, benchmark_stream)]
        removal[(name, "other draws")] = [
            deltas(function, config.faithfulness_samples, np.random.default_rng([args.seed, 1, r]))
            for r in range(args.repeats)
        ]
        removal[(name, "noise-free")] = [deltas(function, args.exact_draws, np.random.default_rng([args.seed, 2]))]

    exact_rows = data.distribution.sample(args.exact_background, np.random.default_rng([args.seed, 3]))
    explanations: dict[tuple[str, str], list[np.ndarray]] = {}
    for name, function in functions.items():

        def shap(background: np.ndarray, size: int | None, seed: int, compat: bool = False) -> np.ndarray:
            explainer = BruteForceShap(function, background, background_size=size, seed=seed, compat=compat)  # noqa: B023
            return np.asarray(explainer.explain(X).values, dtype=np.float64)[:, :, 0]

        small, everything = f"{config.background_size} rows", f"{data.X_train.shape[0]} rows"
        explanations[(name, f"{small} (benchmark)")] = [shap(data.X_train, config.background_size, args.seed)]
        explanations[(name, f"{small}, other draws")] = [
            shap(data.X_train, config.background_size, 1000 + s) for s in range(args.background_seeds)
        ]
        explanations[(name, everything)] = [shap(data.X_train, None, args.seed)]
        explanations[(name, f"{everything}, no intercept (XAI-Bench)")] = [shap(data.X_train, None, args.seed, True)]
        explanations[(name, f"exact ({args.exact_background} draws)")] = [shap(exact_rows, None, args.seed)]

    scores = {}
    for explanation_key, phis in explanations.items():
        for removal_key, delta_list in removal.items():
            values = [faithfulness_score(phi, delta) for phi in phis for delta in delta_list]
            scores[(explanation_key, removal_key)] = (float(np.mean(values)), float(np.std(values, ddof=1)) if
                                                      len(values) > 1 else None)  # fmt: skip
    report.update(explanations=list(explanations), removal=list(removal), scores=scores,
                  cpu_seconds=time.process_time() - start)  # fmt: skip
    return report


def markdown(report: dict, args: argparse.Namespace) -> str:
    """The scores as a Markdown table, explanations by rows, removal changes by columns."""
    names = {"model": args.model, "truth": "true function"}
    columns = report["removal"]
    lines = [
        f"{args.dataset}, ρ = 0, seed {args.seed}: {args.model} test MSE {report['test_mse']:.4f} (noisy targets), "
        f"{report['mse_to_truth']:.4f} (noise-free target); the noise-free target's own test MSE "
        f"{report['truth_test_mse']:.2e}; {report['cpu_seconds']:.0f} CPU s",
        "",
        "| SHAP of | background | " + " | ".join(f"Δ of {names[f]}: {kind}" for f, kind in columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for function, background in report["explanations"]:
        cells = []
        for column in columns:
            mean, sd = report["scores"][((function, background), column)]
            cells.append(f"{mean:.3f}" + (f" ± {sd:.3f}" if sd is not None else ""))
        lines.append(f"| {names[function]} | {background} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Mean over the 100 test rows of the per-row faithfulness; ± sample sd over the repeated draws.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    torch.set_num_threads(1)
    print(markdown(measure(args), args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
