"""Decoy digits: DecoyMNIST (Ross et al. 2017; CDEP's DecoyMNIST) on scikit-learn's 8×8 digits.

Every image gets a 2×2 patch in one of its four corners (chosen at random per image) whose grey value encodes the
label in the training rows, ``16 − 1.6·label`` (DecoyMNIST: ``255 − 25·label`` on 28×28 images with 5×5 patches),
and is random in the test rows (the value of a random label), so a model that reads the patch is wrong at test time.
The 16 corner pixels (all four corners, as CDEP's blob) are the forbidden features; *blind* removes them (the
digits themselves rarely touch the corners). TabResNet, INN and SENN (identity concepts over the 64 pixels,
robustness loss off) run vanilla, blind and the penalties of ``common.PENALTY_GRID`` through ``sweep.py``, one file
per seed (the patch is drawn from that seed's split), and the script writes ``decoy_digits.{csv,md}`` (test
accuracy, flip rate, explanation share per method × penalty × λ, mean ± sd over seeds), ``decoy_digits_runs.csv``
and ``decoy_digits_claimed_vs_behaviour.png``.

Usage::

    nice -n 10 python -m studies.cdep.decoy_digits --seeds 0 1 2
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from studies.cdep import common

SIDE, PATCH = 8, 2
#: The four corners' top-left pixels (row, column).
CORNERS: tuple[tuple[int, int], ...] = ((0, 0), (0, SIDE - PATCH), (SIDE - PATCH, 0), (SIDE - PATCH, SIDE - PATCH))
#: Every pixel of the four corner patches: the forbidden features.
PATCH_PIXELS: tuple[str, ...] = tuple(
    f"pixel_{row + dr}_{column + dc}" for row, column in CORNERS for dr in range(PATCH) for dc in range(PATCH)
)


def grey(label: np.ndarray) -> np.ndarray:
    """The patch's grey value for a digit (16 for 0 down to 1.6 for 9; the digits' pixels run from 0 to 16)."""
    return 16.0 - 1.6 * np.asarray(label, dtype=np.float64)


def add_patch(raw: Any, split: Any, seed: int) -> Any:
    """``raw`` with a corner patch per image: the label's grey in the training rows, a random label's elsewhere."""
    rng = common.seeded_rng("decoy_digits", seed)
    codes = common.label_codes(raw, split)
    labels = np.asarray([int(split.classes[code]) for code in codes])  # the digit itself, not its code
    training = np.isin(np.arange(len(labels)), split.train_index)
    shown = np.where(training, labels, rng.integers(0, 10, size=len(labels)))
    corner = rng.integers(0, len(CORNERS), size=len(labels))
    X = raw.X.copy()
    for index, (row, column) in enumerate(CORNERS):  # a loop over the four corners, not over images
        rows = corner == index
        for dr in range(PATCH):
            for dc in range(PATCH):
                X.loc[rows, f"pixel_{row + dr}_{column + dc}"] = grey(shown[rows])
    return common.replace_raw(raw, X=X)


def tables(results_dir: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from plots.reliance import claimed_vs_behaviour_figure

    runs = common.collect(results_dir, base_of=lambda name: "digits")
    if runs.empty:
        print(f"no finished runs under {results_dir}")
        return
    out.mkdir(parents=True, exist_ok=True)
    runs.to_csv(out / "decoy_digits_runs.csv", index=False)
    columns = ["test_accuracy", "test_auroc", "test_flip_rate", "explanation_share"]
    summary = common.summarise(runs, ["method", "penalty", "strength"], columns)
    print(common.write_table(common.mean_sd_table(summary, columns), out, "decoy_digits"))
    figure = claimed_vs_behaviour_figure(runs, [m for m in common.METHODS if m in set(runs["method"])])
    figure.savefig(out / "decoy_digits_claimed_vs_behaviour.png", dpi=150, bbox_inches="tight")
    plt.close(figure)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_grid_arguments(parser, seeds=[0, 1, 2], results_dir="results/cdep/decoy_digits")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.tables_only:
        from data.named import load_digits_dataset

        paths = common.write_seed_files(load_digits_dataset(), args.seeds, args.results_dir / "data", add_patch,
                                        name="digits_decoy")  # fmt: skip
        grid = {name: tuple(args.strengths or common.PENALTY_GRID[name]) for name in args.penalties}
        common.run_grid([paths[seed] for seed in args.seeds], args.seeds, common.variants(grid, args.methods),
                        list(PATCH_PIXELS), args.results_dir, workers=args.workers)  # fmt: skip
    tables(args.results_dir, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
