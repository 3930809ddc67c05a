"""Explaining a saved run: the library behind ``explain.py``.

:func:`explain_run` loads a run folder (``experiments.saved_run``, which executes nothing in it), chooses the rows
(test rows or a file's), predicts and explains them and builds every output but the figures: ``predictions.csv``,
``contributions.csv``, ``acd_trees.json`` and the content of ``explain.json``. Nothing is written until the caller
has drawn the figures (``plots.explanations.explanation_figures``, a layer above this one) and calls
:func:`write_explained`, which writes the whole output as one unit, ``explain.json`` last. The formats are in
``docs/explain.md``.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from errors import UserError
from explainers import POSTHOC_EXPLAINERS, POSTHOC_LABELS

if TYPE_CHECKING:
    import numpy as np

    from experiments.saved_run import Rows, SavedRun
    from models.attribution import Attribution

#: The explainers of the project's networks (beside ``native`` and the post-hoc ones), with what their values are.
#: The post-hoc ``cd`` adapter is the same CD as ``cd`` here.
NETWORK_EXPLAINERS: dict[str, str] = {
    "gradient": "approximate: gradient × (input − reference) of the logits, summed over a feature's columns",
    "cd": "contextual decomposition: the CD score of each feature alone (not additive: interactions and shared "
    "biases stay in rest)",
    "acd": "level 0 of the ACD hierarchy: the CD score of each feature alone; the hierarchies are in acd_trees.json",
}
EXPLAINERS = ("native", *NETWORK_EXPLAINERS, *(name for name in POSTHOC_EXPLAINERS if name not in NETWORK_EXPLAINERS))
SIDECAR = "explain.json"
#: The names ``explain.py`` writes into an output folder (an earlier output's files of these names are replaced).
OUTPUT_NAME = re.compile(r"(predictions|contributions)\.csv|acd_trees\.json|(waterfall|acd)_row\d+\.(png|pdf)")
#: The report fields that name the default output folder, in order.
_NAMED_BY = ("run_id", "dataset_id", "seed")


@dataclass(frozen=True)
class Explained:
    """Predictions and explanations of rows of a saved run, computed but not yet written.

    Attributes:
        saved: the run.
        rows: the rows, as given.
        out: the output folder (checked: writable, outside the run folder, under its output location).
        files: ``predictions.csv`` and, unless predictions only, ``contributions.csv`` (and ``acd_trees.json``).
        sidecar: ``explain.json``'s content but its ``files`` and ``created``.
        attribution: the explanation ``(N, F, C)`` over the original features, or None (predictions only).
        output_names: per row, the explained output in words (``logit of class 'good'``).
        trees: ``--explainer acd``: every row's hierarchy, else None.
        previous: the files an earlier ``explain.py`` output in ``out`` lists (its ``explain.json``, checked).
    """

    saved: SavedRun
    rows: Rows
    out: Path
    files: dict[str, bytes]
    sidecar: dict[str, Any]
    attribution: Attribution | None = None
    output_names: list[str] = dataclasses.field(default_factory=list)
    trees: list | None = None
    previous: list[str] = dataclasses.field(default_factory=list)


def explain_run(config: Mapping[str, Any]) -> Explained:
    """Predict (and explain) the chosen rows of a saved run; nothing is written.

    Args:
        config: ``explain.py``'s flags: ``run``, ``rows``, ``data``, ``explainer``, ``reference``, ``cd_rule``,
            ``seed``, ``predict_only``, ``out``.

    Raises:
        UserError: bad flags, an unusable run folder, missing columns or unparsable values, an explainer that does
            not fit the run's model, an output folder outside its location.
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
    previous = previous_outputs(out)
    frame, warnings = prepare_rows(saved, rows)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    inputs = saved.model_inputs(frame)
    predicted, probabilities = saved.predict(inputs)
    files = {"predictions.csv": predictions_csv(saved, rows, predicted, probabilities)}
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
    if config.get("predict_only"):
        return Explained(saved, rows, out, files, sidecar, previous=previous)
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
    if trees is not None:
        trees = [dataclasses.replace(tree, output_name=name) for tree, name in zip(trees, names, strict=True)]
        files["acd_trees.json"] = json_bytes(
            {"trees": [{"row": int(r), **t.to_dict()} for r, t in zip(rows.labels, trees, strict=True)]}
        )
    return Explained(saved, rows, out, files, sidecar, attribution, names, trees, previous)


def check_out(out: Path, run_path: Path) -> None:
    """``--out`` must be writable and outside the run folder (a run folder is one unit, never added to).

    Raises:
        UserError: see :func:`experiments.cli.check_output_dir`, or ``out`` lies in the run folder.
    """
    from experiments import cli

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


# ----------------------------------------------------------------------------------------------------------
# The explainers


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


def describe_explanation(
    saved: SavedRun, attribution: Attribution, explainer: str, config: Mapping[str, Any]
) -> dict[str, Any]:
    """``explain.json``'s ``explanation`` block: what the contribution columns are."""
    if explainer == "native":
        description = saved.spec.explanation
    else:
        description = NETWORK_EXPLAINERS.get(explainer, f"post-hoc: {POSTHOC_LABELS.get(explainer, explainer)}")
    exact = bool(attribution.exact)
    return {
        "explainer": attribution.explainer if explainer == "native" else explainer,
        "description": description,
        "exact": exact,
        "signed": bool(attribution.signed),
        "reference": attribution.reference_name,
        "output": attribution.output_name,
        "features": "learned concepts"
        if explainer == "native" and saved.spec.explains_concepts(saved.model)
        else "original features",
        "values": "each column: the feature's contribution to the explained output of the row (explained_output)",
        "renamed_columns": {
            name: column
            for name, column in zip(attribution.feature_names, feature_columns(attribution.feature_names), strict=True)
            if column != name
        },
        "rest": "the base value: the bias plus the reference's share; features + rest = output"
        if exact
        else "what the features leave unexplained: output − Σ features",
        "additivity_error": attribution.additivity_error() if exact else None,
        "cd_rule": config.get("cd_rule", "relevant_first") if explainer in ("cd", "acd") else None,
    }


# ----------------------------------------------------------------------------------------------------------
# The tables


#: The fixed columns of ``contributions.csv`` (whatever the features are called).
FIXED_COLUMNS = ("row", "dataset_row", "explained_output", "rest", "output")
#: The prefix of a feature column whose name is a fixed column's (or starts with the prefix itself).
FEATURE_PREFIX = "feature:"


def feature_columns(features: Sequence[str]) -> list[str]:
    """The column of each feature in ``contributions.csv``: its name, or ``feature:<name>`` when the name is a fixed
    column's (``rest``, ``row``, ...) or starts with ``feature:``, so the fixed columns keep their names and two
    features never share a column."""
    return [
        FEATURE_PREFIX + name if name in FIXED_COLUMNS or name.startswith(FEATURE_PREFIX) else name for name in features
    ]


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

    The fixed columns (:data:`FIXED_COLUMNS`) keep their names; a feature named like one is ``feature:<name>``
    (:func:`feature_columns`).
    """
    import numpy as np
    import pandas as pd

    picked = np.arange(attribution.n_examples)
    values = attribution.values[picked, :, columns]  # (N, F)
    table = pd.DataFrame({**_id_columns(rows), "explained_output": names})
    table = pd.concat([table, pd.DataFrame(values, columns=feature_columns(attribution.feature_names))], axis=1)
    table["rest"] = attribution.rest[picked, columns]
    table["output"] = attribution.output[picked, columns]
    return table.to_csv(index=False).encode()


# ----------------------------------------------------------------------------------------------------------
# Writing


def previous_outputs(directory: Path) -> list[str]:
    """The files an earlier ``explain.py`` wrote into ``directory``, as its ``explain.json`` lists them ([] if none).

    The listing is read like every file of a stranger's folder: ``explain.json`` must lie in ``directory``, parse
    without NaN, and list only names ``explain.py`` writes (:data:`OUTPUT_NAME`), so a crafted listing can never
    make a later output delete anything else.

    Raises:
        UserError: an ``explain.json`` that fails (the field and the reason): remove it or choose another ``--out``.
    """
    from experiments.results import resolve_inside
    from experiments.saved_run.safe import Fields, read_json

    file = directory / SIDECAR
    if not file.exists() and not file.is_symlink():
        return []
    resolve_inside(file, directory, what="the earlier output's listing")
    f = Fields(file)
    listed = f.texts(f.get(f.mapping(read_json(file), "(the document)"), "files"), "files", unique=True)
    for index, name in enumerate(listed):
        if name != SIDECAR and not OUTPUT_NAME.fullmatch(name):
            f.fail(
                f"files[{index}]", f"{name!r} is not a file explain.py writes; remove {file} or choose another --out"
            )
    return [name for name in listed if name != SIDECAR]


def write_explained(result: Explained, figures: Mapping[str, bytes]) -> dict[str, Any]:
    """Write ``result``'s files and ``figures`` into ``result.out`` as one unit; returns ``explain.json``'s content.

    Every file is written atomically, ``explain.json`` last (its presence means the output is whole); then what an
    earlier output of ``explain.py`` in the same folder wrote and this one did not is deleted (``result.previous``,
    checked by :func:`previous_outputs`). Every path written or deleted is first proven to lie in the output folder
    (``experiments.results.resolve_inside``), before anything is written.
    """
    from experiments.results import atomic_write_bytes, json_bytes, resolve_inside

    directory = result.out
    files = {**result.files, **figures}
    sidecar = {
        **result.sidecar,
        "files": sorted([*files, SIDECAR]),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    stale = [name for name in result.previous if name not in files]
    for name in [*files, SIDECAR, *stale]:
        resolve_inside(directory / name, directory)
    for name, data in files.items():
        atomic_write_bytes(directory / name, data)
    atomic_write_bytes(directory / SIDECAR, json_bytes(sidecar))
    for name in stale:
        (directory / name).unlink(missing_ok=True)
    return sidecar
