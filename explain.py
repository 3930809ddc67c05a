"""Explain a saved run: predictions and per-feature contributions for rows of its test set or of a new file.

Usage:
    python explain.py --run results/inn/31/0                          # every test row, the method's own explanation
    python explain.py --run results/inn/31/0 --rows 0 5 17 --explainer acd
    python explain.py --run results/tabresnet/31/0 --data new.csv --explainer cd --cd_rule shapley
    python explain.py --run results/catboost/31/0 --data new.csv --predict_only

The run folder is read without executing anything in it (``experiments.saved_run``): its preprocessing turns the
raw rows (the dataset's original columns) into model inputs exactly as in training, and its model is rebuilt from
plain weights. ``--rows`` numbers rows of the run's test set (reloaded from the dataset its report names) or, with
``--data``, rows of the file (from 0). Outputs, in ``--out`` (default
``explanations/<run_id>/<dataset_id>/<seed>/<test | file name-hash>/``, never inside the run folder):

* ``predictions.csv``: one row per example: ``row``, ``dataset_row`` (test rows), ``y_true`` (when known), the
  predicted class and one ``probability_<class>`` column per class (regression: the prediction);
* ``contributions.csv``: one row per example: ``row``, ``explained_output`` (which output, e.g. the logit of the
  predicted class), one column per original feature, ``rest`` and ``output`` (``output`` = the sum of the feature
  columns + ``rest`` for exact explainers);
* ``waterfall_row<k>.png``/``.pdf`` for the first ``--figures`` rows, and for ``--explainer acd``
  ``acd_row<k>.png``/``.pdf`` and every row's hierarchy in ``acd_trees.json``;
* ``explain.json``: what the values are (explainer, exact or not, reference, explained output, what ``rest``
  is), the rows, the warnings and the files; written last.

Bad input (a missing column, a value that is not a number, an incomplete run folder or one of an unknown schema)
is one line ``error: ...`` and exit code 2, with nothing written. An unseen category is treated as the missing
category, with a warning that names it. See ``docs/explain.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import argtypes
from errors import UserError
from experiments import cli
from explainers import POSTHOC_EXPLAINERS, POSTHOC_LABELS

if TYPE_CHECKING:
    import numpy as np

    from experiments.saved_run import Rows, SavedRun
    from models.attribution import Attribution

#: The network explainers of this script; every post-hoc explainer of the registry follows (its ``cd`` adapter is
#: the same CD as ``cd`` here).
NETWORK_EXPLAINERS = ("gradient", "cd", "acd")
EXPLAINERS = ("native", *NETWORK_EXPLAINERS, *(name for name in POSTHOC_EXPLAINERS if name not in NETWORK_EXPLAINERS))
SIDECAR = "explain.json"
#: The report fields that name the default output folder, in order.
_NAMED_BY = ("run_id", "dataset_id", "seed")
#: The names this script writes into an output folder (an earlier output's files of these names are replaced).
_OUTPUT_NAME = re.compile(r"(predictions|contributions)\.csv|acd_trees\.json|(waterfall|acd)_row\d+\.(png|pdf)")


def build_parser() -> argparse.ArgumentParser:
    """The command line: the run, the rows, the explainer and the output folder."""
    parser = argparse.ArgumentParser(
        description="Predict and explain rows with a saved run: its test rows or a CSV/Parquet file with the "
        "dataset's original columns.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--run", type=Path, required=True, help="a run folder, e.g. results/inn/31/0")
    rows = parser.add_argument_group("rows")
    rows.add_argument(
        "--rows",
        type=argtypes.non_negative_int,
        nargs="+",
        default=None,
        metavar="ROW",
        help="rows to explain: test-set rows of the run, or rows of --data (from 0); default all",
    )
    rows.add_argument("--data", type=Path, default=None, help="a CSV/TSV or Parquet file with the original columns")
    explaining = parser.add_argument_group("explanation")
    explaining.add_argument(
        "--explainer",
        choices=EXPLAINERS,
        default="native",
        help="native: the method's own explanation; gradient, cd, acd: for networks; the others: post-hoc "
        "explainers (explainers.POSTHOC_EXPLAINERS)",
    )
    cli.add_reference_argument(
        explaining, "reference point of the explanation: the training mean of every model input, or zero"
    )
    explaining.add_argument(
        "--cd_rule",
        choices=("relevant_first", "shapley"),
        default="relevant_first",
        help="cd/acd: how activations split between a group and the rest (see docs/explain.md)",
    )
    explaining.add_argument("--seed", type=argtypes.non_negative_int, default=0, help="seed of sampling explainers")
    explaining.add_argument("--predict_only", action="store_true", help="write the predictions only")
    output = parser.add_argument_group("output")
    output.add_argument("--out", type=Path, default=None, help="output folder (default: see the module docstring)")
    output.add_argument(
        "--figures", type=argtypes.non_negative_int, default=5, help="figures for this many of the first rows"
    )
    output.add_argument("--top_k", type=argtypes.positive_int, default=10, help="features shown in a waterfall")
    return parser


# ----------------------------------------------------------------------------------------------------------
# The work


def run(config: Mapping[str, Any]) -> dict[str, Any]:
    """Predict (and explain) the chosen rows of a saved run and write the outputs; returns ``explain.json``'s content.

    Raises:
        UserError: bad flags, an unusable run folder, missing columns or unparsable values, an explainer that does
            not fit the run's model (nothing is written then).
    """
    from experiments.results import json_bytes, resolve_inside
    from experiments.saved_run import file_rows, load_run, prepare_rows, test_set_rows

    run_path = Path(config["run"])
    if config.get("out") is not None:
        check_out(Path(config["out"]), run_path)
    saved = load_run(run_path)
    data = config.get("data")
    rows = file_rows(saved, data, config.get("rows")) if data is not None else test_set_rows(saved, config.get("rows"))
    if config.get("out") is not None:
        out = Path(config["out"])
    else:  # built from names read from the run's files: each must be one plain name, the whole under here
        out = default_out(saved, data)
        resolve_inside(out, Path.cwd(), what="the default output folder")
    check_out(out, run_path)
    frame, warnings = prepare_rows(saved, rows)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    inputs = saved.model_inputs(frame)
    predicted, probabilities = saved.predict(inputs)

    files: dict[str, bytes] = {"predictions.csv": predictions_csv(saved, rows, predicted, probabilities)}
    sidecar: dict[str, Any] = {
        "run": str(run_path),
        "run_id": saved.run_id,
        "method": saved.spec.id,
        "dataset_id": saved.report["dataset_id"],
        "dataset_name": saved.report["dataset_name"],
        "seed": saved.report["seed"],
        "source": rows.source,
        "rows": [int(label) for label in rows.labels],
        "prediction": "the class of highest probability; probability_<class>: the model's class probabilities"
        if saved.task != "regression"
        else "the model's prediction in target units",
        "warnings": warnings,
        "explanation": None,
    }
    if not config.get("predict_only"):
        explainer = config.get("explainer", "native")
        attribution, trees = explain(
            saved,
            inputs,
            explainer=explainer,
            reference=config.get("reference", "mean"),
            rule=config.get("cd_rule", "relevant_first"),
            seed=int(config.get("seed", 0)),
        )
        columns, names = explained_outputs(attribution, saved.classes)
        files["contributions.csv"] = contributions_csv(rows, attribution, columns, names)
        sidecar["explanation"] = describe_explanation(saved, attribution, explainer, config)
        n_figures = min(int(config.get("figures", 5)), len(rows.labels))
        files.update(waterfall_figures(saved, rows, attribution, names, n_figures, int(config.get("top_k", 10))))
        if trees is not None:
            trees = [dataclasses.replace(tree, output_name=name) for tree, name in zip(trees, names, strict=True)]
            files["acd_trees.json"] = json_bytes(
                {"trees": [{"row": int(r), **t.to_dict()} for r, t in zip(rows.labels, trees, strict=True)]}
            )
            files.update(acd_figures(saved, rows, trees, n_figures))
    sidecar["files"] = sorted([*files, SIDECAR])
    sidecar["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    files[SIDECAR] = json_bytes(sidecar)
    write_files(out, files)
    what = "predictions" if config.get("predict_only") else f"predictions and {sidecar['explanation']['explainer']}"
    print(f"{what} of {len(rows.labels)} row(s) ({rows.source}) of {saved.run_id} -> {out}")
    return sidecar


def check_out(out: Path, run_path: Path) -> None:
    """``--out`` must be writable and outside the run folder (a run folder is one unit, never added to).

    Raises:
        UserError: see :func:`experiments.cli.check_output_dir`, or ``out`` lies in the run folder.
    """
    cli.check_output_dir(out, flag="--out")
    resolved, folder = out.resolve(), run_path.resolve()
    if resolved == folder or folder in resolved.parents:
        raise UserError(f"--out {out} lies inside the run folder {run_path}; a run folder is never written to")


def default_out(saved: SavedRun, data: Path | None) -> Path:
    """``explanations/<run_id>/<dataset_id>/<seed>/<test | the file's name-hash>``.

    The run id, dataset id and seed are read from the run's ``output_info.json``: each must be one plain path
    component (``experiments.results.plain_component``), so no value in a results folder moves the write.

    Raises:
        UserError: one of them is not a plain path component.
    """
    from data import file_dataset_key
    from experiments.results import RESULTS_FILENAME, plain_component

    report = saved.report
    names = [plain_component(report.get(key), f"{saved.path / RESULTS_FILENAME}: {key}") for key in _NAMED_BY]
    source = "test" if data is None else plain_component(file_dataset_key(data), f"--data {data}")
    return Path("explanations").joinpath(*names, source)


def explain(
    saved: SavedRun, inputs: Any, *, explainer: str, reference: str, rule: str, seed: int
) -> tuple[Attribution, list | None]:
    """The attribution of ``inputs`` over the original features (concepts for learned-concept models), and for
    ``acd`` every row's hierarchy.

    Raises:
        UserError: the explainer does not fit the run's model.
    """
    import numpy as np

    from experiments.runner import name_the_classes

    spec, model = saved.spec, saved.model
    trees = None
    if explainer == "native":
        attribution = spec.explain(model, saved.split_view(inputs), inputs, reference=reference)
    elif explainer in NETWORK_EXPLAINERS:
        if spec.kind != "neural":
            raise UserError(
                f"--explainer {explainer} explains the project's networks; {spec.label} is not one "
                "(use native or a post-hoc explainer)"
            )
        attribution, trees = _network_explanation(saved, inputs, explainer, reference, rule)
    else:
        attribution = _posthoc_explanation(saved, inputs, explainer, reference, seed)
    attribution = name_the_classes(attribution, saved.split_view(inputs))
    classes = saved.classes or []
    if len(classes) == 2 and attribution.output_name in ("logit", "probability") and attribution.n_outputs == 1:
        attribution = dataclasses.replace(attribution, output_name=f"{attribution.output_name} of class '{classes[1]}'")
    if not (np.isfinite(attribution.values).all() and np.isfinite(attribution.output).all()):
        raise UserError(f"--explainer {explainer} gave non-finite values for these rows")
    return attribution, trees


def _network_explanation(
    saved: SavedRun, inputs: np.ndarray, explainer: str, reference: str, rule: str
) -> tuple[Attribution, list | None]:
    from explainers.acd import ACDExplainer
    from explainers.cd import CDExplainer
    from explainers.gradient import NetworkGradientExplainer

    model = saved.model
    if explainer == "gradient":
        attribution = NetworkGradientExplainer().explain(model, inputs, reference=reference)
        return attribution.aggregate(saved.input_to_feature, saved.feature_names), None
    options = {"reference": reference, "rule": rule}
    cd = (ACDExplainer if explainer == "acd" else CDExplainer)(saved.feature_names, saved.input_to_feature, **options)
    try:
        attribution = cd.explain(model, inputs)
        trees = cd.hierarchies(model, inputs) if explainer == "acd" else None
    except TypeError as error:  # a layer without a CD rule (e.g. SENN's learned concepts)
        raise UserError(f"--explainer {explainer} cannot decompose this {saved.spec.label} model: {error}") from None
    return attribution, trees


def _posthoc_explanation(saved: SavedRun, inputs: Any, explainer: str, reference: str, seed: int) -> Attribution:
    from explainers.posthoc import target_from_estimator
    from models.attribution import reference_point

    spec = saved.spec
    if spec.input_kind == "frame":
        raise UserError(
            f"--explainer {explainer} explains models of the encoded input matrix; {spec.label} takes the unencoded "
            "frame (use --explainer native)"
        )
    point, name = reference_point(reference, saved.input_mean)
    target = target_from_estimator(
        saved.model,
        saved.background,
        feature_names=saved.feature_names,
        input_to_feature=saved.input_to_feature,
        reference=point,
    )
    target = dataclasses.replace(target, reference_name=name)
    explainer_class = POSTHOC_EXPLAINERS[explainer]
    if explainer_class.requires == "forward" and target.forward is None:
        raise UserError(f"--explainer {explainer} needs gradients; {spec.label} has none (use a model-agnostic one)")
    if explainer_class.requires == "model" and spec.kind != "neural":
        raise UserError(f"--explainer {explainer} explains the project's networks; {spec.label} is not one")
    return explainer_class.from_target(target, seed=seed).explain(inputs)


def explained_outputs(attribution: Attribution, classes: Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
    """Per row, the output column shown (one output: it; several: the largest, i.e. the predicted class) and its name.

    Shape:
        attribution ``(N, F, C)`` -> columns ``(N,)``, ``N`` names
    """
    import numpy as np

    n = attribution.n_examples
    if attribution.n_outputs == 1:
        return np.zeros(n, dtype=np.int64), [attribution.output_name] * n
    columns = attribution.output.argmax(axis=1)
    base = attribution.output_name.removesuffix(" (one per class)")
    labels = list(classes) if classes is not None and len(classes) == attribution.n_outputs else None
    names = [f"{base} of class '{labels[c] if labels else c}'" for c in columns]
    return columns, names


# ----------------------------------------------------------------------------------------------------------
# The tables


def _meta_names(wanted: Sequence[str], taken: Sequence[str]) -> list[str]:
    """``wanted`` column names, each prefixed with ``_`` until it differs from every name in ``taken``."""
    taken = set(taken)
    names = []
    for name in wanted:
        while name in taken:
            name = "_" + name
        names.append(name)
    return names


def _id_columns(rows: Rows) -> dict[str, Any]:
    columns: dict[str, Any] = {"row": rows.labels}
    if rows.dataset_rows is not None:
        columns["dataset_row"] = rows.dataset_rows
    return columns


def predictions_csv(saved: SavedRun, rows: Rows, predicted: np.ndarray, probabilities: np.ndarray | None) -> bytes:
    """``predictions.csv``: row ids, the true target when known, the prediction and the class probabilities."""
    import pandas as pd

    table = _id_columns(rows)
    if rows.y_true is not None:
        table["y_true"] = rows.y_true
    table["prediction"] = predicted
    if probabilities is not None:
        for index, name in enumerate(saved.classes or []):
            table[f"probability_{name}"] = probabilities[:, index]
    return pd.DataFrame(table).to_csv(index=False).encode()


def contributions_csv(rows: Rows, attribution: Attribution, columns: np.ndarray, names: list[str]) -> bytes:
    """``contributions.csv``: one row per example, one column per feature, ``rest`` and ``output`` of the shown output.

    Columns named like a feature get a leading ``_`` (``_output`` when a feature is called ``output``).
    """
    import numpy as np
    import pandas as pd

    features = list(attribution.feature_names)
    ids = _id_columns(rows)
    id_names = _meta_names([*ids, "explained_output"], features)
    rest_name, output_name = _meta_names(["rest", "output"], features)
    picked = np.arange(attribution.n_examples)
    values = attribution.values[picked, :, columns]  # (N, F)
    table = pd.DataFrame(dict(zip(id_names, [*ids.values(), names], strict=True)))
    table = pd.concat([table, pd.DataFrame(values, columns=features)], axis=1)
    table[rest_name] = attribution.rest[picked, columns]
    table[output_name] = attribution.output[picked, columns]
    return table.to_csv(index=False).encode()


def describe_explanation(
    saved: SavedRun, attribution: Attribution, explainer: str, config: Mapping[str, Any]
) -> dict[str, Any]:
    """``explain.json``'s ``explanation`` block: what the contribution columns are."""

    descriptions = {
        "native": saved.spec.explanation,
        "gradient": "approximate: gradient × (input − reference) of the logits, summed over a feature's columns",
        "cd": "contextual decomposition: the CD score of each feature alone (not additive: interactions and shared "
        "biases stay in rest)",
        "acd": "level 0 of the ACD hierarchy: the CD score of each feature alone; the hierarchies are in "
        "acd_trees.json",
    }
    exact = bool(attribution.exact)
    return {
        "explainer": attribution.explainer if explainer == "native" else explainer,
        "description": descriptions.get(explainer, f"post-hoc: {POSTHOC_LABELS.get(explainer, explainer)}"),
        "exact": exact,
        "signed": bool(attribution.signed),
        "reference": attribution.reference_name,
        "output": attribution.output_name,
        "features": "learned concepts"
        if explainer == "native" and saved.spec.explains_concepts(saved.model)
        else "original features",
        "values": "each column: the feature's contribution to the explained output of the row (explained_output)",
        "rest": "the base value: the bias plus the reference's share; features + rest = output"
        if exact
        else "what the features leave unexplained: output − Σ features",
        "additivity_error": attribution.additivity_error() if exact else None,
        "cd_rule": config.get("cd_rule", "relevant_first") if explainer in ("cd", "acd") else None,
    }


# ----------------------------------------------------------------------------------------------------------
# The figures


def _figure_files(stem: str, size: tuple[float, float], draw: Callable[[Any], Any]) -> dict[str, bytes]:
    """``<stem>.png`` (200 dpi) and ``<stem>.pdf`` of a figure ``draw`` fills, rendered in memory."""
    from plots.figures import new_figure

    files = {}
    with new_figure(*size) as figure:
        draw(figure)
        for suffix, options in (
            ("png", {"dpi": 200, "metadata": {"Software": None}}),
            ("pdf", {"metadata": {"CreationDate": None, "Creator": None, "Producer": None}}),
        ):
            buffer = io.BytesIO()
            figure.savefig(buffer, format=suffix, **options)
            files[f"{stem}.{suffix}"] = buffer.getvalue()
    return files


def waterfall_figures(
    saved: SavedRun, rows: Rows, attribution: Attribution, names: list[str], n_figures: int, top_k: int
) -> dict[str, bytes]:
    """A waterfall (magnitude bars for unsigned values) of each of the first ``n_figures`` rows."""
    import numpy as np

    from plots import explanations as ex

    stored = ex.StoredExplanation(attribution, tuple(saved.classes or ()), np.empty(0), Path(rows.source))
    files: dict[str, bytes] = {}
    for index in range(n_figures):
        label = int(rows.labels[index])
        height = 1.9 + 0.3 * (min(top_k, attribution.n_features) + 4)

        def draw(figure, index=index, label=label) -> None:
            ax = figure.subplots()
            if attribution.signed:
                steps = ex.waterfall_steps(stored, index, top_k)
                ex.plot_waterfall(steps, ax, output=attribution.output_name.split(" ")[0])
            else:
                ex.plot_magnitudes(ex.local_magnitudes(stored, index, top_k), ax)
            truth = "" if rows.y_true is None else f", true {rows.y_true[index]}"
            ax.set_title(f"{rows.source} row {label}{truth}: {names[index]}", fontsize=9)
            figure.suptitle(f"{saved.spec.label} ({saved.run_id}), {ex.describe(stored)}", fontsize=9)

        files.update(_figure_files(f"waterfall_row{label}", (7.5, height), draw))
    return files


def acd_figures(saved: SavedRun, rows: Rows, trees: list, n_figures: int) -> dict[str, bytes]:
    """The ACD hierarchy of each of the first ``n_figures`` rows (``plots.acd``), with a colour bar."""
    from plots.acd import plot_acd_hierarchy

    files: dict[str, bytes] = {}
    for index in range(n_figures):
        tree, label = trees[index], int(rows.labels[index])
        n = len(tree.feature_names)

        def draw(figure, tree=tree, label=label) -> None:
            ax = figure.subplots()
            mappable = plot_acd_hierarchy(tree, ax, title=False)
            figure.colorbar(mappable, ax=ax, label="CD score", shrink=0.6)
            ax.set_title(
                f"ACD, {saved.spec.label} ({saved.run_id}), {rows.source} row {label}: {tree.output_name} = "
                f"{tree.output_value:.3g}\nreference: {tree.reference_name}; rule: {tree.rule}",
                fontsize=9,
            )

        files.update(_figure_files(f"acd_row{label}", (max(6.5, 0.42 * n + 3.0), max(4.0, 0.34 * n + 2.6)), draw))
    return files


def write_files(directory: Path, files: Mapping[str, bytes]) -> None:
    """Write every file atomically, ``explain.json`` last; then delete what an earlier output of this script in the
    same folder wrote and this one did not (only names this script writes).

    Every path written or deleted is first proven to lie in ``directory`` (``experiments.results.resolve_inside``),
    before anything is written.
    """
    import json

    from experiments.results import atomic_write_bytes, resolve_inside

    previous: list[str] = []
    try:
        listed = json.loads((directory / SIDECAR).read_text()).get("files", [])
        previous = [str(name) for name in listed if _OUTPUT_NAME.fullmatch(str(name))]
    except (OSError, ValueError, AttributeError):
        previous = []
    stale = [name for name in previous if name not in files]
    for name in [*files, *stale]:
        resolve_inside(directory / name, directory)
    for name, data in files.items():
        if name != SIDECAR:
            atomic_write_bytes(directory / name, data)
    atomic_write_bytes(directory / SIDECAR, files[SIDECAR])
    for name in stale:
        (directory / name).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and explain; returns the exit code (2 with one ``error:`` line for bad input)."""
    args = build_parser().parse_args(argv)
    return cli.run_main(lambda: run(vars(args)))


if __name__ == "__main__":
    raise SystemExit(main())
