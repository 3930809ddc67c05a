"""The interpretability benchmark on XAI-Bench's synthetic data: INN's own explanations against post-hoc explainers.

Usage:
    python xai_benchmark.py --profile smoke --output_dir results/xai_smoke       # about a minute
    python xai_benchmark.py --rho 0 --seeds 0 1 2 --output_dir results/xai       # the paper's table at rho = 0
    python xai_benchmark.py --output_dir results/xai                             # all rho (resumes the above)
    python xai_benchmark.py --compat --output_dir results/xai_compat             # the public code's defects

Data: ``X ~ N(0, Σ(ρ))`` equicorrelated, ``d`` features, the targets gaussianLinear, gaussianNonLinearAdditive and
gaussianPiecewiseConstant (noise 0.01, standardised), 1000 training and 100 test rows, exact Gaussian conditionals
(``data.synthetic``). Models: INN (and SENN, EBM) explain themselves; the post-hoc explainers (SHAP, KernelSHAP,
brute-force SHAP, LIME, MAPLE, BreakDown, integrated gradients, gradient × input, CD, Random) explain a TabResNet
trained on the same data. Metrics (``xai.metrics``): faithfulness, monotonicity, infidelity, ROAR faithfulness and
monotonicity, and MSE and correlation with ground-truth Shapley values (observational and interventional).

Outputs under ``--output_dir``: ``units/<dataset>/rho<ρ>/seed<s>/<model>.csv`` (one per trained model, written
atomically; a rerun skips finished units), ``results.csv`` (the tidy table of all of them), ``table_rho0.{md,tex,csv}``
(the paper's layout) and ``figures/<dataset>.png`` (every metric against ρ). See docs/xai_benchmark.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import argtypes
from experiments import cli


def _split_list(values: list[str] | None) -> list[str] | None:
    """``a b``, ``a,b`` and ``a, b`` all mean ``[a, b]``."""
    if values is None:
        return None
    return [part for value in values for part in value.replace(",", " ").split()]


def _param(text: str) -> tuple[str, str, Any]:
    """argparse type of ``--param METHOD.NAME=VALUE`` (VALUE as JSON when it parses, else text)."""
    name, sep, value = text.partition("=")
    method, dot, parameter = name.partition(".")
    if not sep or not dot or not method or not parameter:
        raise argparse.ArgumentTypeError(f"expected METHOD.NAME=VALUE (e.g. inn.nr_epochs=50), got {text!r}")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return method, parameter, parsed


def _samples(text: str) -> int | str:
    """argparse type of ``--kernel_shap_samples``: ``auto`` or a positive count."""
    return text if text == "auto" else argtypes.positive_int(text)


def build_parser() -> argparse.ArgumentParser:
    """The command line; settings left unset take the ``--profile``'s values."""
    from data.synthetic import TARGETS
    from explainers import POSTHOC_EXPLAINERS
    from methods import REGISTRY
    from studies.xai_bench import BENCHMARK_METRICS, DEFAULT_MODELS, DEFAULT_POSTHOC_MODELS, DEFAULT_RHOS

    parser = argparse.ArgumentParser(
        description="XAI-Bench synthetic benchmark: INN's own explanations against post-hoc explainers. "
        "Settings left unset take the --profile's values (the defaults below are the paper profile's).",
    )
    parser.add_argument(
        "--profile",
        choices=("paper", "smoke"),
        default="paper",
        help="default settings: paper (XAI-Bench's sizes) or smoke (a one-minute check; default paper)",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--datasets", nargs="+", default=None, help=f"targets (default all: {' '.join(TARGETS)})")
    data.add_argument(
        "--rho",
        nargs="+",
        default=None,
        help=f"feature correlations in [0, 1) (default {' '.join(map(str, DEFAULT_RHOS))})",
    )
    data.add_argument("--seeds", nargs="+", default=None, help="seeds of data, models and metrics (default 0 1 2)")
    data.add_argument("--d", type=argtypes.positive_int, default=None, help="features (default 5)")
    data.add_argument("--n_train", type=argtypes.positive_int, default=None, help="training rows (default 1000)")
    data.add_argument("--n_test", type=argtypes.positive_int, default=None, help="explained test rows (default 100)")
    data.add_argument("--noise", type=argtypes.non_negative_float, default=None, help="target noise sd (default 0.01)")
    models = parser.add_argument_group("models and explainers")
    registered = [model for model in DEFAULT_MODELS if model in REGISTRY]
    models.add_argument(
        "--models", nargs="+", default=None, help=f"registered methods to train (default {' '.join(registered)})"
    )
    models.add_argument(
        "--posthoc_models",
        nargs="+",
        default=None,
        help=f"models the post-hoc explainers explain (default {' '.join(DEFAULT_POSTHOC_MODELS)})",
    )
    models.add_argument(
        "--explainers",
        nargs="+",
        default=None,
        help=f"post-hoc explainers (default: every available one of {' '.join(POSTHOC_EXPLAINERS)})",
    )
    models.add_argument(
        "--param",
        type=_param,
        action="append",
        default=[],
        help="a model parameter, METHOD.NAME=VALUE (repeatable; e.g. inn.nr_epochs=50)",
    )
    models.add_argument(
        "--reference", choices=("mean", "zero"), default=None, help="reference point of explanations (default mean)"
    )
    metrics = parser.add_argument_group("metrics and their costs")
    metrics.add_argument("--metrics", nargs="+", default=None, help=f"default all: {' '.join(BENCHMARK_METRICS)}")
    metrics.add_argument(
        "--gt_samples",
        type=argtypes.positive_int,
        default=None,
        help="observational ground truth: draws (default 20000)",
    )
    metrics.add_argument(
        "--gt_background",
        type=argtypes.positive_int,
        default=None,
        help="interventional ground truth: draws (default 1000)",
    )
    metrics.add_argument(
        "--faithfulness_samples", type=argtypes.positive_int, default=None, help="(monotonicity too; default 100)"
    )
    metrics.add_argument("--infidelity_perturbations", type=argtypes.positive_int, default=None, help="(default 1000)")
    metrics.add_argument(
        "--background_size",
        type=argtypes.positive_int,
        default=None,
        help="SHAP/BreakDown background rows (default 100)",
    )
    metrics.add_argument(
        "--lime_samples", type=argtypes.positive_int, default=None, help="LIME samples per row (default 5000)"
    )
    metrics.add_argument(
        "--lime_kernel_width",
        type=argtypes.positive_float,
        default=None,
        help="LIME kernel width / sqrt(d) (default 0.5)",
    )
    metrics.add_argument(
        "--ig_steps", type=argtypes.positive_int, default=None, help="integrated gradients steps (default 50)"
    )
    metrics.add_argument(
        "--kernel_shap_samples", type=_samples, default=None, help="KernelSHAP coalitions per row (default auto)"
    )
    run = parser.add_argument_group("run")
    run.add_argument(
        "--compat", action="store_true", help="reproduce the public XAI-Bench code's defects that change numbers"
    )
    run.add_argument(
        "--output_dir",
        type=Path,
        default=Path("results/xai_benchmark"),
        help="where results go (results/xai_benchmark)",
    )
    run.add_argument("--force", action="store_true", help="recompute finished units (and units of other settings)")
    run.add_argument(
        "--report_only", action="store_true", help="rebuild results.csv, tables and figures from finished units"
    )
    return parser


def make_config(args: argparse.Namespace | dict[str, Any]) -> Any:
    """The benchmark configuration of a command line (profile values where a flag is unset).

    Raises:
        UserError: a malformed value (one line).
    """
    from errors import UserError
    from methods import REGISTRY
    from studies import xai_bench as benchmark

    options = vars(args) if isinstance(args, argparse.Namespace) else dict(args)

    def numbers(name: str, kind: type) -> tuple | None:
        values = _split_list(options.get(name))
        if values is None:
            return None
        try:
            return tuple(kind(value) for value in values)
        except ValueError:
            raise UserError(f"--{name} takes {kind.__name__} values, got {' '.join(values)}") from None

    params: dict[str, dict[str, Any]] = {}
    for method, parameter, value in options.get("param") or []:
        params.setdefault(method, {})[parameter] = value
    models = _split_list(options.get("models"))
    explainers = _split_list(options.get("explainers"))
    overrides = {
        "datasets": tuple(_split_list(options.get("datasets")) or ()) or None,
        "rhos": numbers("rho", float),
        "seeds": numbers("seeds", int),
        "models": tuple(models) if models else tuple(m for m in benchmark.DEFAULT_MODELS if m in REGISTRY),
        "posthoc_models": tuple(_split_list(options.get("posthoc_models")) or ()) or None,
        "explainers": tuple(explainers) if explainers else benchmark.available_explainers(),
        "metrics": tuple(_split_list(options.get("metrics")) or ()) or None,
        "compat": bool(options.get("compat")) or None,
        "model_params": params,
    }
    for name in (
        "d",
        "n_train",
        "n_test",
        "noise",
        "reference",
        "gt_samples",
        "gt_background",
        "faithfulness_samples",
        "infidelity_perturbations",
        "background_size",
        "lime_samples",
        "lime_kernel_width",
        "ig_steps",
        "kernel_shap_samples",
    ):
        overrides[name] = options.get(name)
    unknown = sorted(set(params) - set(REGISTRY))
    if unknown:
        raise UserError(f"--param names unknown methods {unknown}; registered: {', '.join(REGISTRY)}")
    config = benchmark.make_config(options.get("profile", "paper"), **overrides)
    benchmark.validate(config)
    return config


def run(config: dict[str, Any]) -> dict[str, Any]:
    """Run the benchmark as a command line's options say; returns the summary (units, seconds, files)."""
    from studies import xai_bench as benchmark

    settings = make_config(config)
    output_dir = Path(config.get("output_dir") or "results/xai_benchmark")
    if config.get("report_only"):
        return benchmark.report_only(settings, output_dir, log=lambda line: print(line, file=sys.stderr))
    summary = benchmark.run_benchmark(
        settings, output_dir, force=bool(config.get("force")), log=lambda line: print(line, file=sys.stderr)
    )
    print(
        f"xai benchmark ({settings.profile}): {summary['computed']} unit(s) computed, {summary['skipped']} skipped, "
        f"{summary['seconds']:.1f}s -> {output_dir}"
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run; a bad input is one ``error:`` line and exit code 2, before any work."""
    args = build_parser().parse_args(argv)
    return cli.run_main(lambda: run(vars(args)))


if __name__ == "__main__":
    raise SystemExit(main())
