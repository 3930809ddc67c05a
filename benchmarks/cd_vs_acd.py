"""Our CD against the reference implementation, the ``acd`` package (``pip install acd``), on plain ReLU MLPs.

``acd.cd`` handles Linear and ReLU layers (it skips batch norm 1d and GELU, so it cannot serve the project's
networks); on random ``Linear -> ReLU -> ... -> Linear`` networks both must give the same relevant and irrelevant
parts. Prints one Markdown row per network and exits with 1 if any difference exceeds ``--tolerance``
(2 if ``acd`` is not installed).

    python -m benchmarks.cd_vs_acd --networks 10
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn

from models.decomposition import contextual_decomposition


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=5, help="random MLPs to compare on")
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--groups", type=int, default=8, help="random groups besides every single input")
    parser.add_argument("--tolerance", type=float, default=1e-6)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def random_mlp(generator: np.random.Generator) -> nn.Sequential:
    """``Linear -> ReLU`` repeated 1-3 times with random widths, then a linear output layer."""
    widths = [int(generator.integers(3, 12))] + [
        int(generator.integers(4, 32)) for _ in range(generator.integers(1, 4))
    ]
    layers: list[nn.Module] = []
    for before, after in zip(widths, widths[1:], strict=False):
        layers += [nn.Linear(before, after), nn.ReLU()]
    layers.append(nn.Linear(widths[-1], int(generator.integers(1, 4))))
    return nn.Sequential(*layers).double()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import acd
    except ImportError:
        print("the acd package is not installed: pip install acd")
        return 2
    generator = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    worst = 0.0
    print("| network | inputs | groups | max |ours − acd| (relevant) | (irrelevant) |")
    print("|---|---|---|---|---|")
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # acd builds its zero inputs in the default type
    try:
        for _ in range(args.networks):
            model = random_mlp(generator)
            n_inputs = model[0].in_features
            x = torch.as_tensor(generator.normal(size=(args.rows, n_inputs)))
            masks = np.concatenate([np.eye(n_inputs, dtype=bool), generator.random((args.groups, n_inputs)) < 0.5])
            ours_rel, ours_irrel = contextual_decomposition(model, x, masks)
            gaps = np.zeros(2)
            for group, mask in enumerate(masks):
                rel, irrel = acd.cd(x, model, mask=mask.astype(np.float64), device="cpu")
                gaps = np.maximum(
                    gaps,
                    [
                        np.abs(ours_rel[:, group] - rel.detach().numpy()).max(),
                        np.abs(ours_irrel[:, group] - irrel.detach().numpy()).max(),
                    ],
                )
            worst = max(worst, float(gaps.max()))
            layout = "-".join(str(layer.out_features) for layer in model if isinstance(layer, nn.Linear))
            print(f"| {n_inputs}-{layout} | {n_inputs} | {len(masks)} | {gaps[0]:.1e} | {gaps[1]:.1e} |")
    finally:
        torch.set_default_dtype(default)
    print(f"\nlargest difference {worst:.1e} (tolerance {args.tolerance:g})")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    raise SystemExit(main())
