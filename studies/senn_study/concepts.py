"""Concepts on digits (``concepts``): DiSENN and SENN-autoencoder's accuracy, prototypes, DiSENN's traversals and
one explanation, and DiSENN's concepts on credit-g (:func:`tabular_concept_figure`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from studies.senn_study.common import (
    METRICS,
    RELEVANCE_METRICS,
    _row,
    run_cell,
    summarise,
    with_relevance_stability,
    write_table,
)


def concept_study(args: argparse.Namespace) -> None:
    """DiSENN and SENN-autoencoder on digits: accuracy over seeds, prototypes, traversals, one explanation."""
    rows = []
    runs = {"disenn": ["--method", "disenn"], "senn-autoencoder": ["--method", "senn", "--conceptizer", "autoencoder"]}
    for name, method in runs.items():
        # DiSENN's accuracy over 3 seeds; SENN-autoencoder's run is there for its prototypes (one seed).
        for seed in args.seeds[: 3 if name == "disenn" else 1]:
            variant = [] if name == "disenn" else ["--variant", "autoencoder"]
            report = run_cell([*method, "--dataset", "digits", "--seed", str(seed), *variant], args.results_dir)
            report = with_relevance_stability(report, args.results_dir)
            rows.append(_row(report, dataset="digits", model=name, seed=seed))
    frame = pd.DataFrame(rows)
    columns = [*METRICS, *RELEVANCE_METRICS, "train_time"]
    write_table(frame, summarise(frame, ["dataset", "model"], columns), columns, args.out, "senn_digits")
    concept_figures(args.out)


def _pixel_units(split) -> tuple[np.ndarray, np.ndarray]:
    """Per input column the training mean and scale of the raw pixels (the standardisation to undo)."""
    raw = split.frame_train.loc[:, split.input_names].to_numpy(dtype=np.float64)
    return raw.mean(axis=0), raw.std(axis=0)


def concept_figures(out: Path, seed: int = 0) -> None:
    """The prototype, traversal and explanation figures of DiSENN (and SENN-autoencoder's prototypes), seed 0.

    The models are refitted in-process with the run's settings; fits are deterministic, so they are the models
    of the ``concepts`` runs of that seed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from data import prepare_split
    from data.named import load_digits_dataset
    from methods import get_method
    from models.senn import concept_prototypes, latent_traversal
    from plots.senn import draw_concept_explanation, draw_prototypes, draw_traversals, image_layout

    raw = load_digits_dataset()
    for method, params, label in (("disenn", {}, "disenn"), ("senn", {"conceptizer": "autoencoder"}, "autoencoder")):
        spec = get_method(method)
        split = prepare_split(raw, mode="classification", seed=seed, encoding_type=spec.encoding)
        model = spec.build(split, seed=seed, device="cpu", params=params)
        model.fit(split.X_train, split.y_train)
        pixels = split.frame_train.loc[:, split.input_names].to_numpy(dtype=np.float64)
        top = concept_prototypes(model.concepts(split.X_train), 10)
        k = top.shape[0]
        figure, axes = plt.subplots(k, 10, figsize=(7, 0.75 * k + 0.4))
        draw_prototypes(axes, pixels[top], split.input_names)
        figure.suptitle(f"{spec.label} on digits: the 10 training images that activate each concept most", fontsize=9)
        figure.savefig(out / f"senn_{label}_prototypes.png", dpi=150, bbox_inches="tight")
        plt.close(figure)
        if method != "disenn":
            continue
        mean, scale = _pixel_units(split)
        example = 0
        values, decoded = latent_traversal(model, split.X_test[example], n_steps=10)
        figure, axes = plt.subplots(k, 10, figsize=(7, 0.75 * k + 0.6))
        draw_traversals(axes, decoded * scale + mean, values, split.input_names)
        figure.suptitle("DiSENN: decoded traversal of each latent (others at the posterior mean of a test image)",
                        fontsize=9)  # fmt: skip
        figure.savefig(out / "senn_disenn_traversals.png", dpi=150, bbox_inches="tight")
        plt.close(figure)
        attribution = model.explain(split.X_test[:1])
        predicted = int(attribution.output[0].argmax())
        figure, axes = plt.subplots(1, 4, figsize=(11, 2.6), gridspec_kw={"width_ratios": [0.8, 1, 1, 1.4]})
        layout = image_layout(split.input_names)
        axes[0].imshow(np.ma.masked_invalid(layout.images(split.frame_test.loc[:, split.input_names].to_numpy(
            dtype=np.float64)[example])), cmap="gray_r")  # fmt: skip
        axes[0].set_title(f"test image (label {split.classes[split.y_test[example]]})", fontsize=9)
        axes[0].set_xticks([])
        axes[0].set_yticks([])
        draw_concept_explanation(axes[1:], attribution, row=0, output=predicted)
        figure.suptitle(f"DiSENN's explanation of its logit for class {split.classes[predicted]} (predicted); grey "
                        "ticks: the reference's activations", fontsize=9)  # fmt: skip
        figure.tight_layout()
        figure.savefig(out / "senn_disenn_explanation.png", dpi=150, bbox_inches="tight")
        plt.close(figure)
    tabular_concept_figure(out / "senn_disenn_credit_g.png", seed=seed)


def tabular_concept_figure(path: Path, seed: int = 0):
    """DiSENN on credit-g: each latent's prototypes and decoded traversal as heatmaps over the input columns.

    Returns the figure's model (fitted in-process at DiSENN's defaults) and its split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from data import load_dataset, prepare_split
    from methods import get_method
    from models.senn import concept_prototypes, latent_traversal
    from plots.senn import draw_prototypes, draw_traversals

    spec = get_method("disenn")
    split = prepare_split(load_dataset(dataset_id=31), mode="classification", seed=seed, encoding_type=spec.encoding)
    model = spec.build(split, seed=seed, device="cpu").fit(split.X_train, split.y_train)
    k = model.num_concepts
    top = concept_prototypes(model.concepts(split.X_train), 8)
    values, decoded = latent_traversal(model, split.X_test[0], n_steps=7)
    figure, axes = plt.subplots(k, 2, figsize=(11, 2.0 * k))
    draw_prototypes(axes[:, 0], split.X_train[top], split.input_names)
    draw_traversals(axes[:, 1], decoded, values, split.input_names)
    figure.suptitle("DiSENN on credit-g: standardised inputs of each concept's most activating training rows "
                    "(left) and the decoded change along each latent (right)", fontsize=9)  # fmt: skip
    figure.tight_layout()
    figure.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(figure)
    return model, split
