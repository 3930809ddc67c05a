"""How much Monte Carlo noise the XAI benchmark's observational ground truth carries at a given sample count.

``xai_benchmark.py`` estimates each coalition value ``E[f(X) | X_S = x_S]`` from ``--gt_samples`` conditional
draws. This script fits one model of one benchmark unit (same data, seed and settings as the benchmark), computes
the observational ground-truth Shapley values twice per sample count from independent random streams, and reports
per count:

* ``noise_var``: the variance of one estimate's error per Shapley value, ``mean((g₁ − g₂)²) / 2``. It is what the
  noise adds to every explainer's Shapley MSE alike (``E[(φ − g − ε)²] = E[(φ − g)²] + E[ε²]`` for noise ``ε``
  independent of the explanation), so it is the floor below which MSE differences are not resolved;
* ``corr``: the mean per-row Pearson correlation of the two estimates (the ceiling of a Shapley correlation);
* ``noise_var × samples``: constant if the noise falls as ``1 / samples`` (the check that extrapolation to other
  counts, such as the paper profile's 20 000, is sound).

::

    python -m benchmarks.xai_ground_truth_noise --dataset gaussianNonLinearAdditive --samples 500 2000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np


def build_parser() -> argparse.ArgumentParser:
    from argtypes import positive_int
    from data.synthetic import TARGETS
    from methods import REGISTRY

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="gaussianNonLinearAdditive", choices=TARGETS, help="a synthetic target")
    parser.add_argument("--model", default="inn", choices=sorted(REGISTRY), help="a method, at its registry defaults")
    parser.add_argument("--rho", type=float, default=0.0, help="feature correlation, in [0, 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=positive_int, nargs="+", default=[500, 2000], help="ground-truth draws")
    parser.add_argument("--nr_epochs", type=positive_int, default=None, help="default: the registry's")
    parser.add_argument("--n_train", type=positive_int, default=None)
    parser.add_argument("--n_test", type=positive_int, default=None)
    return parser


def measure(args: argparse.Namespace) -> list[dict[str, float]]:
    """One row per sample count: noise variance, correlation of two estimates, seconds per estimate."""
    from data.synthetic import make_synthetic
    from methods import REGISTRY
    from studies.xai_bench import TrainedModels, make_config, synthetic_split
    from xai.metrics import row_correlation
    from xai.shapley import ground_truth_shapley

    overrides = {key: value for key in ("n_train", "n_test") if (value := getattr(args, key)) is not None}
    params = {args.model: {"nr_epochs": args.nr_epochs}} if args.nr_epochs is not None else {}
    config = make_config("paper", models=(args.model,), model_params=params, **overrides)
    data = make_synthetic(args.dataset, d=config.d, rho=args.rho, n_train=config.n_train, n_test=config.n_test,
                          noise=config.noise, seed=args.seed)  # fmt: skip
    trained = TrainedModels(REGISTRY[args.model], synthetic_split(data, args.dataset), config.params_for(args.model),
                             args.seed)  # fmt: skip
    predict = trained.predictor(trained.fit_model(data.X_train, data.y_train))
    rows = []
    for samples in args.samples:
        estimates, seconds = [], []
        for stream in (1, 2):
            start = time.process_time()
            truth = ground_truth_shapley(predict, data.X_test, distribution=data.distribution, n_samples=samples,
                                         rng=np.random.default_rng([args.seed, samples, stream]))  # fmt: skip
            seconds.append(time.process_time() - start)
            estimates.append(truth.values)
        difference = estimates[0] - estimates[1]
        noise_var = float(np.mean(difference**2) / 2)
        corr = float(np.nanmean(row_correlation(estimates[0], estimates[1])))
        rows.append({"samples": samples, "noise_var": noise_var, "noise_var_x_samples": noise_var * samples,
                     "corr": corr, "cpu_s_per_estimate": float(np.mean(seconds)),
                     "shapley_var": float(np.var(estimates[0]))})  # fmt: skip
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0 <= args.rho < 1:
        parser.error(f"--rho must be in [0, 1), got {args.rho}")
    from methods import REGISTRY

    if args.nr_epochs is not None and REGISTRY[args.model].kind != "neural":
        parser.error(f"--nr_epochs applies to the networks only, not to {args.model}")
    import torch

    torch.set_num_threads(1)
    rows = measure(args)
    print(f"{args.model} on {args.dataset}, rho {args.rho}, seed {args.seed}")
    print(
        "| samples | noise variance per value | × samples | corr. of two estimates | CPU s per estimate | var. of the values |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['samples']} | {row['noise_var']:.2e} | {row['noise_var_x_samples']:.3f} | {row['corr']:.5f} | "
              f"{row['cpu_s_per_estimate']:.1f} | {row['shapley_var']:.3f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
