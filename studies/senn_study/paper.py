"""The SENN paper's COMPAS setting (``paper``): the SENN code's rows, model and training, accuracy and SENN's
Lipschitz estimate of θ per λ, and cells that each change one thing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from studies.senn_study.common import (
    LAMBDAS,
    METRICS,
    RELEVANCE_METRICS,
    _lambda_tick,
    _row,
    lambda_name,
    run_cell,
    summarise,
    write_table,
)

#: The SENN code's COMPAS model and training (``dmelis/SENN`` ``scripts/main_compas.py``): identity concepts with a
#: constant concept, ``dfc_parametrizer`` 11 -> 10 -> 10 -> 5 -> 12 (tanh), its grad3 robustness loss on the
#: sigmoid output (``--robust_form senn``), Adam at 1e-3 without weight decay, batches of 64, 10 epochs, 90/10
#: split, no class weighting. Left as ours: one cosine cycle after a warm-up (the original keeps Adam's rate and the
#: best validation epoch), and standardised inputs.
PAPER_MODEL = ("--method", "senn", "--parameterizer", "mlp", "--parameterizer_sizes", "10,10,5")
PAPER_TRAINING = ("--nr_epochs", "10", "--batch_size", "64", "--learning_rate", "1e-3", "--weight_decay", "0",
                  "--nr_restarts", "1", "--class_balance", "none", "--test_split_size", "0.1")  # fmt: skip
#: The cells of the ``paper`` stage: name -> (what changes from the paper's setting, its flags). ``paper`` is the
#: SENN code's setting; each other cell changes one thing, to see which of them moves the accuracy cost of λ.
PAPER_CELLS: dict[str, tuple[str, tuple[str, ...]]] = {
    "paper": ("the SENN code's setting", ("--robust_form", "senn")),
    "logits": ("our loss (logits, no intercept row, mean of squared norms)", ("--robust_form", "logits")),
    "batch": ("logits, no intercept row, the code's unsquared batch norm", ("--robust_form", "batch")),
    "senn_logits": ("the code's loss on the logits", ("--robust_form", "senn_logits")),
    "senn_no_intercept": ("the code's loss without the intercept's row", ("--robust_form", "senn_no_intercept")),
    "resnet": ("INN's residual parameterizer (128 wide, 2 blocks)", ("--robust_form", "senn", "--parameterizer", "resnet")),
    "all_rows": ("ProPublica's rows without the SENN code's pruning, raw prior count", ("--robust_form", "senn")),
}  # fmt: skip
#: The SENN papers' COMPAS accuracies: the paper's ≈ 82 % and ≈ 4 points lost over λ (as the seed reproduction
#: reads them), and the seed reproduction's best validation accuracy per λ, mean of seeds 111/333/555 (its
#: ``results/compas_lambda*/accuracies_losses_valid.csv``; ../shared/docs/related/senn_acd_cdep.md, 1.7).
PAPER_ACCURACY = 0.82
PAPER_DROP = 0.04
REPRODUCTION_ACCURACY = {1e-4: (0.800, 0.810, 0.775), 1e-3: (0.795, 0.788, 0.768), 1e-2: (0.788, 0.765, 0.740),
                         1e-1: (0.688, 0.673, 0.695), 1.0: (0.663, 0.615, 0.638)}  # fmt: skip


def senn_compas_rows(source: Path, path: Path) -> Path:
    """The SENN code's COMPAS rows (``main_compas.py``'s ``load_compas_data``) as a filtered COMPAS file at ``path``.

    On fairml's 11 features (``data.compas`` task ``score``) with the prior count as ``√n / √38``: rows whose
    feature vector occurs more than once are grouped; a group whose mean label is within 0.2 of 0.5 is kept whole,
    otherwise only its rows with the majority label; rows whose feature vector is unique are dropped (the code's
    ``find_conflicting`` only forms groups from duplicated rows). The file keeps ``data.compas.COLUMNS`` with
    ``priors_count`` replaced by ``√n / √38``, so ``--dataset compas_score --dataset_path`` reads these rows.
    """
    from data.compas import COLUMNS, compas_task, read_compas

    frame = read_compas(source)
    frame["priors_count"] = np.sqrt(frame["priors_count"].astype(float)) / np.sqrt(38.0)
    raw = compas_task(frame, "score")
    labels = raw.y.to_numpy()
    key = pd.Series(pd.util.hash_pandas_object(raw.X, index=False).to_numpy())
    groups = pd.Series(labels).groupby(key.to_numpy())
    size, mean = key.map(groups.size()).to_numpy(), key.map(groups.mean()).to_numpy()
    keep = (size >= 2) & ((np.abs(mean - 0.5) < 0.2) | (labels == np.round(mean)))
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.loc[keep, list(COLUMNS)].to_csv(path, index=False)
    return path


def paper_study(args: argparse.Namespace) -> None:
    """SENN on COMPAS at the SENN code's setting, accuracy and stability per λ, and one-change ablations."""
    rows_file = senn_compas_rows(args.compas_path, args.results_dir / "compas_senn_rows.csv")
    cells = args.cells or list(PAPER_CELLS)
    rows = []
    for cell in cells:
        change, flags = PAPER_CELLS[cell]
        path = args.compas_path if cell == "all_rows" else rows_file
        data = ["--dataset", "compas_score", "--dataset_path", str(path)]
        model = list(PAPER_MODEL)
        if "--parameterizer" in flags:  # the cell's parameterizer replaces the paper's (and its sizes)
            model = ["--method", "senn"]
        seeds = args.seeds if cell == "paper" else args.seeds[: args.ablation_seeds]
        for value in LAMBDAS:
            # λ = 0 trains no robustness loss: the loss's form does not matter, one run serves every form.
            shares = value == 0 and cell in ("logits", "batch", "senn_logits", "senn_no_intercept")
            name = "paper" if shares else cell
            for seed in seeds:
                argv = [*model, *(PAPER_CELLS[name][1] if shares else flags), *data, *PAPER_TRAINING,
                        "--robust_reg", str(value), "--seed", str(seed)]  # fmt: skip
                report = run_cell([*argv, "--variant", f"paper-{name}-{lambda_name(value)}"], args.results_dir)
                rows.append(_row(report, cell=cell, change=change, robust_reg=value, seed=seed))
    frame = pd.DataFrame(rows)
    columns = [*METRICS, *RELEVANCE_METRICS]
    summary = summarise(frame, ["cell", "change", "robust_reg"], [*columns, "train_time"])
    write_table(frame, summary, columns, args.out, "senn_paper")
    paper_figure(summary, args.out / "senn_paper.png")


def paper_figure(summary: pd.DataFrame, path: Path) -> None:
    """Test accuracy (left) and SENN's Lipschitz estimate of θ (right) against λ, one line per cell, beside the
    paper's claim and the seed reproduction's curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10.5, 4.0))
    lambdas = sorted(summary["robust_reg"].unique())
    position = {value: index for index, value in enumerate(lambdas)}
    styles = {"paper": ("#AA3377", "o", "-"), "logits": ("#4477AA", "s", "--"), "batch": ("#66CCEE", "v", "--"),
              "senn_logits": ("#228833", "^", ":"), "senn_no_intercept": ("#CCBB44", "D", ":"),
              "resnet": ("#EE6677", "P", "-."), "all_rows": ("#BBBBBB", "X", "-.")}  # fmt: skip
    for cell, part in summary.groupby("cell", sort=False):
        color, marker, line = styles.get(str(cell), ("#000000", "o", "-"))
        x = [position[value] for value in part["robust_reg"]]
        left.errorbar(x, part["test_accuracy_mean"], part["test_accuracy_sd"], color=color, marker=marker,
                      linestyle=line, capsize=2, label=f"{cell} ({int(part['seeds'].max())} seeds)")  # fmt: skip
        right.plot(x, part["test_relevance_lipschitz_mean"], color=color, marker=marker, linestyle=line, label=cell)
    reproduction = [(position[value], np.mean(accuracies)) for value, accuracies in REPRODUCTION_ACCURACY.items()
                    if value in position]  # fmt: skip
    left.plot(*zip(*reproduction, strict=True), color="black", marker="x", linestyle="-", linewidth=1,
              label="seed reproduction (best validation, 3 seeds)")  # fmt: skip
    first, last = position[min(v for v in lambdas if v > 0)], position[max(lambdas)]
    left.plot([first, last], [PAPER_ACCURACY, PAPER_ACCURACY - PAPER_DROP], color="black", linestyle=":",
              linewidth=1.5, label="paper: ≈ 82 %, ≈ 4 points lost")  # fmt: skip
    for ax in (left, right):
        ax.set_xticks(range(len(lambdas)), [_lambda_tick(value) for value in lambdas])
        ax.set_xlabel("λ (robust_reg)")
    left.set_ylabel("test accuracy (mean ± sd over seeds)")
    left.set_title("COMPAS (SENN rows): accuracy", fontsize=10)
    right.set_yscale("log")
    right.set_ylabel("max ‖θ(x) − θ(z)‖ / ‖x − z‖ (mean over rows)")
    right.set_title("SENN's local Lipschitz estimate of θ (lower: more stable)", fontsize=10)
    left.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.16), ncol=2, frameon=False)
    right.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.16), ncol=3, frameon=False)
    figure.tight_layout()
    figure.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(figure)
