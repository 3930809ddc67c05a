"""CDEP at the paper's setting: a CNN on decoy digits over the paper's λ range, λ chosen on selection seeds.

The CDEP paper (Rieger et al. 2020) trains a LeNet-style CNN on DecoyMNIST (a 5×5 patch in a random corner whose
grey value codes the label in the training images and is random in the test images) and reports test accuracy
rising from 60.1 % (vanilla) to 97.2 % (CDEP) (:data:`PAPER`); its code runs λ ∈ {1, 10, 100, 1000, 10000}, 5 seeds.
Here the same construction on scikit-learn's 8×8 digits (``decoy_digits.add_patch``: a 2×2 patch, the 5×5 patch on
28×28 scaled to 8×8, grey ``16 − 1.6·label``, DecoyMNIST's ``255 − 25·label`` on the digits' 0..16 scale), the
project's CNN (``models.cnn``: two blocks Conv2d 3×3 → ReLU → MaxPool2d 2, 16 and 32 filters, a dense layer of 64,
the budget of the other CDEP studies, ``common.TRAINING``), every penalty with a CD or a behaviour
(``cdep``, ``cd_logit``, ``cd_strict``, ``counterfactual``, ``rrr``; ``weights`` needs generated weights) at the
paper's λ grid, vanilla and blind (the 16 patch pixels removed from the input; the CNN keeps them as zeros). The MLP
TabResNet runs beside it for ``cdep`` (its earlier result was λ ∈ {1, 10} only).

Selection and report (issue 24): every cell runs on the selection seeds (``experiments/suites.json``,
``selection.digits_seeds``: 100–102) and on the report seeds (``report.digits_seeds``: 0–4). λ is chosen per method
and penalty on the selection seeds only (:func:`choose_strengths`: the highest mean test accuracy, ties to the
smaller λ), and the headline table reports the report seeds at that λ (mean ± sample sd), the flip rate when the
patch is resampled, each penalty's own quantity on the test rows over vanilla's and a verdict as
``docs/cdep.md``'s decoy feature (:func:`verdict`). The digits are one dataset, so the halves are different splits
and decoys of the same 1,797 images, not different images.

Outputs (``--out``): ``cnn_digits.{csv,md}`` (the headline table), ``cnn_digits_grid.{csv,md}`` (every λ on both
halves), ``cnn_digits_runs.csv`` (one row per run, with every penalty's quantity), ``cnn_digits_streams.{csv,md}``
(how ``cdep`` is met: the CD streams of the patch on the CNN's raw logits, report seeds) and
``cnn_digits_lambda.png``.

Usage::

    OMP_NUM_THREADS=1 nice -n 10 python -m studies.cdep.cnn_digits --workers 2
    python -m studies.cdep.cnn_digits --tables_only
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from studies.cdep import common, decoy_digits
from studies.cdep.decoy_feature import GAMED_FLIPS, GAMED_SHARE

#: The λ grid of the CDEP code's DecoyMNIST runs (``mnist/DecoyMNIST``: 1 … 10⁴, 5 seeds per λ).
PAPER_STRENGTHS: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0, 10000.0)
#: The penalties each method runs at every λ of the grid.
PENALTIES: dict[str, tuple[str, ...]] = {
    "cnn": ("cdep", "cd_logit", "cd_strict", "counterfactual", "rrr"),
    "tabresnet": ("cdep",),
}
METHODS: tuple[str, ...] = tuple(PENALTIES)
#: The paper's DecoyMNIST test accuracies in % (Table 2 of Rieger et al. 2020, mean ± sd over their runs), as cited
#: in docs/cdep.md; the issue's "≈ 60 % → ≈ 97 %". Not re-read from the PDF here (see the doc).
PAPER: dict[str, tuple[float, float]] = {"vanilla": (60.1, 5.1), "cdep": (97.2, 0.8), "rrr": (99.0, 1.0)}
#: The training of every cell: ``project`` is the other CDEP studies' budget (``common.TRAINING``: 30 epochs, Adam at
#: 0.01 with warm-up and 3 cosine cycles, a 3-snapshot ensemble, weight decay 0.01); ``paper`` is closer to the CDEP
#: code's DecoyMNIST run (Adam at its default 0.001, weight decay 1e-4, a few epochs, one network): 10 epochs of
#: which the first 5 warm up, one cycle, one snapshot.
TRAININGS: dict[str, tuple[str, ...]] = {
    "project": common.TRAINING,
    "paper": (
        "--nr_epochs", "10", "--nr_restarts", "1", "--learning_rate", "0.001", "--weight_decay", "0.0001",
        "--hidden_size", "64", "--nr_blocks", "2", "--batch_size", "64", "--explanation_metrics", "off",
        "--device", "cpu",
    ),
}  # fmt: skip
#: A flip rate at most this fraction of vanilla's: the reliance is removed.
REMOVED_FLIPS = 0.25


def suite_seeds() -> tuple[list[int], list[int]]:
    """The digits' selection and report seeds, stated once in ``experiments/suites.json``."""
    from experiments.sweep import load_suites

    suites = load_suites()
    return list(suites["selection"]["digits_seeds"]), list(suites["report"]["digits_seeds"])


def variants(
    methods: Sequence[str], strengths: Sequence[float], penalties: Sequence[str] | None = None
) -> list[common.Variant]:
    """Vanilla and blind for every method, then each penalty (of ``penalties``, default all) at each λ for the
    methods that run it."""
    out = [
        common.Variant("vanilla", methods=tuple(methods)),
        common.Variant("blind", blind=True, methods=tuple(methods)),
    ]
    for penalty in dict.fromkeys(name for method in methods for name in PENALTIES[method]):
        if penalties is not None and penalty not in penalties:
            continue
        runs = tuple(method for method in methods if penalty in PENALTIES[method])
        out += [common.Variant(f"{penalty}-{value:g}", penalty, value, methods=runs) for value in strengths]
    return out


def choose_strengths(runs: pd.DataFrame) -> dict[tuple[str, str], float]:
    """λ per (method, penalty): the highest mean test accuracy over the given runs' seeds (ties: the smaller λ)."""
    penalised = runs[~runs["penalty"].isin(["vanilla", "blind"])]
    means = penalised.groupby(["method", "penalty", "strength"])["test_accuracy"].mean().reset_index()
    means = means.sort_values(["method", "penalty", "test_accuracy", "strength"], ascending=[True, True, False, True])
    return {
        (row.method, row.penalty): float(row.strength)
        for row in means.drop_duplicates(["method", "penalty"]).itertuples()
    }


def verdict(claim_ratio: float, flip_ratio: float) -> str:
    """docs/cdep.md's reading of a penalty: *removed* (flip rate ≤ 25 % of vanilla's), *gamed* (own quantity ≤ 25 %
    of vanilla's while the flip rate stays ≥ 75 %), *partly removed* (flip rate below 75 %), else *not removed*."""
    if flip_ratio <= REMOVED_FLIPS:
        return "removed"
    if np.isfinite(claim_ratio) and claim_ratio <= GAMED_SHARE and flip_ratio >= GAMED_FLIPS:
        return "gamed"
    return "partly removed" if flip_ratio < GAMED_FLIPS else "not removed"


def _mean_sd(values: pd.Series, digits: int = 3) -> str:
    values = values.dropna()
    if values.empty:
        return ""
    return f"{values.mean():.{digits}f}" + (f" ± {values.std():.{digits}f}" if len(values) > 1 else "")


def headline(runs: pd.DataFrame, selection: Sequence[int], report: Sequence[int]) -> pd.DataFrame:
    """Vanilla, blind and each penalty at the λ chosen on the ``selection`` seeds, on the ``report`` seeds."""
    chosen = choose_strengths(runs[runs["seed"].isin(selection)])
    hindsight = choose_strengths(runs[runs["seed"].isin(report)])
    reported = runs[runs["seed"].isin(report)]
    rows = []
    for method in [m for m in METHODS if m in set(runs["method"])]:
        own = reported[reported["method"] == method]
        vanilla = own[own["penalty"] == "vanilla"]
        blind = own[own["penalty"] == "blind"]
        gap = blind["test_accuracy"].mean() - vanilla["test_accuracy"].mean()
        cells = [("vanilla", np.nan, vanilla), ("blind", np.nan, blind)]
        for penalty in PENALTIES[method]:
            if (method, penalty) in chosen:
                strength = chosen[method, penalty]
                cells.append((penalty, strength, own[(own["penalty"] == penalty) & (own["strength"] == strength)]))
        for penalty, strength, part in cells:
            if part.empty:
                continue
            claim = f"claim_{penalty}"
            claim_ratio = part[claim].mean() / vanilla[claim].mean() if claim in part and len(part) else np.nan
            flip_ratio = part["test_flip_rate"].mean() / vanilla["test_flip_rate"].mean()
            penalised = penalty not in ("vanilla", "blind")
            rows.append({
                "method": method,
                "variant": penalty,
                "λ (selection seeds)": "" if not penalised else f"{strength:g}",
                "λ the report seeds would pick": f"{hindsight.get((method, penalty), np.nan):g}" if penalised else "",
                "seeds": part["seed"].nunique(),
                "test accuracy": _mean_sd(part["test_accuracy"]),
                "flip rate": _mean_sd(part["test_flip_rate"]),
                "recovery": f"{(part['test_accuracy'].mean() - vanilla['test_accuracy'].mean()) / gap:.2f}"
                if penalised else "",
                "own quantity / vanilla's": f"{claim_ratio:.2g}" if penalised and np.isfinite(claim_ratio) else "",
                "flip rate / vanilla's": f"{flip_ratio:.2f}" if penalised else "",
                "verdict": verdict(claim_ratio, flip_ratio) if penalised else "",
            })  # fmt: skip
    return pd.DataFrame(rows)


def failed_cells(results_dir: Path) -> pd.DataFrame:
    """The cells that ended without a run (the sweep's ``error.json``: e.g. training diverged), one row each."""
    from methods import parse_run_id

    rows = []
    for path in sorted(Path(results_dir).glob("*/*/*/error.json")):
        if (path.parent / "output_info.json").is_file():
            continue  # a later attempt finished
        method, variant = parse_run_id(path.parts[-4])
        penalty, _, strength = (variant or "").rpartition("-")
        tail = json.loads(path.read_text()).get("stderr_tail") or [""]
        reason = str(tail[-1]).removeprefix("error: ")
        rows.append({"method": method, "penalty": penalty, "strength": float(strength), "seed": int(path.parts[-2]),
                     "reason": reason})  # fmt: skip
    return pd.DataFrame(rows, columns=["method", "penalty", "strength", "seed", "reason"])


def grid_table(runs: pd.DataFrame, selection: Sequence[int], failed: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every (method, penalty, λ) on each half: accuracy, flip rate, the penalties' own quantities, and the number
    of cells that ended without a run (``failed``, :func:`failed_cells`; their group has a row even when no seed
    finished)."""
    keys = ["half", "method", "penalty", "strength"]
    frame = runs.assign(half=np.where(runs["seed"].isin(selection), "selection", "report"))
    columns = ["test_accuracy", "test_flip_rate", "explanation_share", "claim_cdep", "claim_cd_logit"]
    columns = [*columns, "claim_cd_strict"]
    summary = common.summarise(frame, keys, [c for c in columns if c in frame])
    failed = failed if failed is not None else pd.DataFrame(columns=["method", "penalty", "strength", "seed"])
    counts = (
        failed.assign(half=np.where(failed["seed"].isin(selection), "selection", "report"))
        .groupby(keys)
        .size()
        .rename("failed")
        .reset_index()
    )
    summary = summary.merge(counts, on=keys, how="outer")
    summary["seeds"] = summary["seeds"].fillna(0).astype(int)
    summary["failed"] = summary["failed"].fillna(0).astype(int)
    order = {name: index for index, name in enumerate(["vanilla", "blind", *PENALTIES["cnn"]])}
    summary = summary.sort_values(
        ["half", "method", "penalty", "strength"],
        key=lambda column: column.map(order) if column.name == "penalty" else column,
        ascending=[False, True, True, True],
        kind="stable",
    )
    return common.mean_sd_table(summary, [c for c in columns if f"{c}_mean" in summary])


def stream_table(results_dir: Path, seeds: Sequence[int], method: str = "cnn") -> pd.DataFrame:
    """How ``cdep`` is met: per run of vanilla and ``cdep`` on ``seeds``, the means over test rows and classes of the
    raw logit, the CD streams of the patch alone on the raw logits (``rel``, ``irrel``: CDEP's inputs) and the
    patch's class-differential CD score ``|rel_c − mean_c rel|`` (what could move a prediction), then mean ± sd.

    A share ``sigmoid(rel − irrel)`` can fall by a common offset in every logit that the irrelevant stream carries,
    with the class-differential score unchanged.
    """
    import torch

    from experiments.config import DataConfig
    from experiments.saved_run import load_run
    from methods import parse_run_id
    from models.decomposition import split_input
    from models.penalties import decompose_logits

    rows, splits = [], {}
    for folder in sorted(Path(results_dir).glob(f"{method}-*/*/*")):
        variant = parse_run_id(folder.parts[-3])[1] or ""
        if not (variant == "vanilla" or variant.startswith("cdep-")) or int(folder.name) not in seeds:
            continue
        if not (folder / "output_info.json").is_file():
            continue
        run = load_run(folder)
        config = {"dataset_path": None, "target": None, "openml_cache_dir": None, **run.report["config"]}
        if config["dataset_path"] not in splits:
            data = DataConfig.from_mapping(config)
            splits[config["dataset_path"]] = data.split(data.load(), encoding_type=config["encoding_type"])
        split = splits[config["dataset_path"]]
        x = torch.as_tensor(split.X_test)
        columns = torch.as_tensor(np.isin(split.input_names, decoy_digits.PATCH_PIXELS))[None, :]
        inputs = split_input(x, columns, torch.as_tensor(run.model.reference_, dtype=x.dtype))
        with torch.no_grad():
            parts = [decompose_logits(member, *inputs, centred=False) for member in run.model.model_.members]
            rel = torch.stack([part[0][:, 0] for part in parts]).mean(0)
            total = torch.stack([part[1][:, 0] for part in parts]).mean(0)
        rows.append({
            "variant": variant, "seed": int(folder.name), "mean logit": float(total.mean()),
            "mean rel": float(rel.mean()), "mean irrel": float((total - rel).mean()),
            "mean abs(rel − class mean)": float((rel - rel.mean(1, keepdim=True)).abs().mean()),
            "CDEP share": float(torch.sigmoid(2 * rel - total).mean()),
        })  # fmt: skip
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["λ"] = frame["variant"].map(lambda name: float(name.split("-")[1]) if "-" in name else 0.0)
    columns = ["mean logit", "mean rel", "mean irrel", "mean abs(rel − class mean)", "CDEP share"]
    summary = common.summarise(frame.sort_values("λ"), ["variant"], columns)
    return common.mean_sd_table(summary, columns, digits=2)


def lambda_figure(runs: pd.DataFrame, selection: Sequence[int], path: Path, failed: pd.DataFrame | None = None) -> None:
    """Test accuracy and flip rate against λ per penalty (report seeds solid with ± sd bars, selection seeds
    dashed), vanilla and blind as horizontal lines, the paper's DecoyMNIST accuracies as dotted lines, and a note
    at each λ whose cells ended without a run (``failed``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from plots.reliance import penalty_style
    from plots.style import method_label

    methods = [m for m in METHODS if m in set(runs["method"])]
    figure, axes = plt.subplots(2, len(methods), figsize=(5.2 * len(methods), 6.6), squeeze=False, sharex=True)
    legend: dict[str, Any] = {}
    for column, method in enumerate(methods):
        own = runs[runs["method"] == method]
        for row, metric in enumerate(("test_accuracy", "test_flip_rate")):
            ax = axes[row, column]
            for half, style in (("report", "-"), ("selection", "--")):
                part = own[own["seed"].isin(selection) == (half == "selection")]
                for reference in ("vanilla", "blind"):
                    color, _ = penalty_style(reference)
                    line = ax.axhline(part.loc[part["penalty"] == reference, metric].mean(), color=color,
                                      linestyle=style, linewidth=1)  # fmt: skip
                    legend.setdefault(reference, line)
                for penalty in PENALTIES[method]:
                    means = part[part["penalty"] == penalty].groupby("strength")[metric].agg(["mean", "std"])
                    if means.empty:
                        continue
                    color, marker = penalty_style(penalty)
                    spread = means["std"] if half == "report" else None
                    drawn = ax.errorbar(means.index, means["mean"], yerr=spread, color=color, marker=marker,
                                        linestyle=style, markersize=5, capsize=2)  # fmt: skip
                    legend.setdefault(penalty, drawn)
            if metric == "test_accuracy":
                for name, (value, _) in PAPER.items():
                    line = ax.axhline(value / 100, color=penalty_style(name)[0], linestyle=":", linewidth=1.2)
                    legend.setdefault(f"paper, DecoyMNIST: {name} {value:g} %", line)
                lost = pd.DataFrame() if failed is None else failed[failed["method"] == method]
                for (penalty, strength), part in lost.groupby(["penalty", "strength"]):
                    ax.annotate(f"{penalty}: {len(part)} runs\ndiverged", (strength, 0.5), ha="right", fontsize=7,
                                xycoords=("data", "axes fraction"), color=penalty_style(penalty)[0])  # fmt: skip
            else:
                ax.set_ylim(bottom=0)
            ax.set_xscale("log")
            ax.set_ylabel("test accuracy" if metric == "test_accuracy" else "flip rate (patch resampled)")
            ax.set_title(f"{method_label(method)}: {'accuracy' if row == 0 else 'reliance on the patch'}")
            if row == 1:
                ax.set_xlabel("λ")
    legend["report seeds 0–4 (± sd)"] = Line2D([], [], color="#444444", linestyle="-")
    legend["selection seeds 100–102"] = Line2D([], [], color="#444444", linestyle="--")
    figure.legend(legend.values(), legend.keys(), loc="lower center", ncol=4, fontsize=7, frameon=False,
                  bbox_to_anchor=(0.5, -0.01))  # fmt: skip
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    figure.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(figure)


def tables(
    results_dir: Path, out: Path, selection: Sequence[int], report: Sequence[int], *, name: str = "cnn_digits"
) -> None:
    """Read the runs back and write ``<name>.{csv,md}``, ``<name>_grid.{csv,md}``, ``<name>_runs.csv`` and
    ``<name>_lambda.png`` to ``out``."""
    runs = common.collect(results_dir, base_of=lambda _: "digits")
    if runs.empty:
        print(f"no finished runs under {results_dir}")
        return
    out.mkdir(parents=True, exist_ok=True)
    runs.sort_values(["method", "penalty", "strength", "seed"]).to_csv(out / f"{name}_runs.csv", index=False)
    failed = failed_cells(results_dir)
    print(common.write_table(grid_table(runs, selection, failed), out, f"{name}_grid"))
    print(common.write_table(headline(runs, selection, report), out, name))
    print(common.write_table(stream_table(results_dir, report), out, f"{name}_streams"))
    lambda_figure(runs, selection, out / f"{name}_lambda.png", failed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--penalties", nargs="+", default=None, choices=PENALTIES["cnn"], help="default: all")
    parser.add_argument("--strengths", type=float, nargs="+", default=list(PAPER_STRENGTHS), help="λ grid")
    parser.add_argument("--training", default="project", choices=list(TRAININGS),
                        help="the cells' training (TRAININGS); 'paper' names its runs and outputs "
                        "cnn_digits_paper_training")  # fmt: skip
    parser.add_argument("--halves", nargs="+", default=["selection", "report"], choices=["selection", "report"],
                        help="which seeds to run (experiments/suites.json)")  # fmt: skip
    parser.add_argument("--results_dir", type=Path, default=None, help="default: results/cdep/<name>")
    parser.add_argument("--out", type=Path, default=Path("docs/figures/cdep"), help="tables and figures")
    parser.add_argument("--workers", type=int, default=1, help="parallel cells of the sweep")
    parser.add_argument("--tables_only", action="store_true", help="only read the runs and write the outputs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    selection, report = suite_seeds()
    name = "cnn_digits" if args.training == "project" else f"cnn_digits_{args.training}_training"
    results_dir = args.results_dir or Path("results/cdep") / name
    if not args.tables_only:
        from data.named import load_digits_dataset

        seeds: Mapping[str, list[int]] = {"selection": selection, "report": report}
        for half in args.halves:
            paths = common.write_seed_files(load_digits_dataset(), seeds[half], results_dir / "data",
                                            decoy_digits.add_patch, name="digits_decoy")  # fmt: skip
            grid = variants(args.methods, args.strengths, args.penalties)
            common.run_grid([paths[seed] for seed in seeds[half]], seeds[half], grid, list(decoy_digits.PATCH_PIXELS),
                            results_dir, workers=args.workers, training=TRAININGS[args.training])  # fmt: skip
    tables(results_dir, args.out, selection, report, name=name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
