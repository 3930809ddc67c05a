"""One run of any registered method: load, split, (tune,) fit, evaluate, explain, write, as one function.

Both experiment scripts are thin shells over :func:`run`: ``main_experiment.py`` for the neural methods,
``baseline_experiment.py`` for the baselines. The method comes from the registry (``methods``), so a new
method needs no change here. Everything the run writes lands in its folder as one unit
(``experiments.results.write_run_atomically``): ``output_info.json``, ``explanations.npz`` (every method),
what makes the run reusable (``experiments.saved_run``: ``preprocessing.json``, ``background.npz`` and the model
file, e.g. ``model.pt`` for networks) and, with HPO, ``trials.csv``.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from errors import UserError
from experiments import saved_run
from experiments.config import RunConfig
from experiments.results import (
    EXPLANATIONS_FILENAME,
    RESULTS_FILENAME,
    build_report,
    explanation_arrays,
    json_bytes,
    npz_bytes,
    results_path,
    run_dir,
    split_fields,
    summary_line,
    write_run_atomically,
)
from methods import MethodSpec


def model_params(config: RunConfig) -> dict[str, Any]:
    """The estimator parameters a configuration sets explicitly (the method's defaults fill in the rest): its model
    flags, and for the neural methods the explanation penalty when one is given."""
    params = dict(config.model_params)
    if config.penalty is not None:
        params["penalty"] = config.penalty
    if config.penalty_strength is not None:
        params["penalty_strength"] = config.penalty_strength
    return params


def evaluate(model: Any, inputs: Mapping[str, Any], split: Any) -> tuple[dict[str, float], float]:
    """Train and test metrics of a fitted model, and the inference time on both parts."""
    from models.baselines import predict_output
    from models.metrics import classification_metrics, regression_metrics

    start = time.perf_counter()
    outputs = {part: predict_output(model, X, split.task) for part, X in inputs.items()}
    inference_time = time.perf_counter() - start
    metrics: dict[str, float] = {}
    for part, output in outputs.items():
        y_true = getattr(split, f"y_{part}")
        if split.task == "regression":
            metrics.update(regression_metrics(y_true, output, part))
        else:
            metrics.update(classification_metrics(y_true, output, split.n_classes, part))
    return metrics, inference_time


def explanation_metrics_enabled(spec: MethodSpec, config: RunConfig) -> bool:
    """Whether the run computes SENN's explanation metrics (``--explanation_metrics``; ``auto``: neural methods)."""
    return config.explanation_metrics == "on" or (config.explanation_metrics == "auto" and spec.kind == "neural")


def explanation_metrics(spec: MethodSpec, model: Any, split: Any, *, reference: str, seed: int) -> dict[str, Any]:
    """SENN's stability and removal faithfulness of the run's native explanation (``xai.stability``), timed."""
    from xai.stability import explanation_metrics as compute

    start = time.perf_counter()
    scores = compute(spec, model, split, reference=reference, seed=seed)
    scores["explanation_metrics"]["time"] = time.perf_counter() - start
    return scores


#: Resampling draws per test row and feature of the sensitivity audit (``--audit_sensitivity``).
SENSITIVITY_REPEATS = 5


def sensitivity_audit(spec: MethodSpec, model: Any, split: Any, attribution: Any, *, seed: int) -> dict[str, Any]:
    """The model's behavioural sensitivity to each feature against its explanation (``--audit_sensitivity``), timed.

    The sensitivity is :func:`xai.sensitivity.model_sensitivity` on the test rows (each feature resampled from the
    training rows, :data:`SENSITIVITY_REPEATS` draws per row, seeded by the run's seed); the explanation's global
    importance is the mean |attribution| of the run's own explanation on the same rows. The report gets Spearman's
    ρ between the two over features (``sensitivity_rank_correlation``, NaN when either is constant; None for an
    explanation over learned concepts, which names no feature) and, under ``sensitivity_audit``, both shares per
    feature and the features on which they disagree.
    """
    from xai.sensitivity import compare_with_explanation, model_sensitivity

    if spec.explains_concepts(model):
        return {"sensitivity_rank_correlation": None, "sensitivity_audit": None}
    start = time.perf_counter()
    sensitivity = model_sensitivity(spec, model, split, n_repeats=SENSITIVITY_REPEATS, seed=seed)
    comparison = compare_with_explanation(sensitivity, attribution.global_importance("mean_abs"), split.feature_names)
    names = list(comparison.feature_names)
    return {
        "sensitivity_rank_correlation": comparison.rank_correlation,
        "sensitivity_audit": {
            "sensitivity": dict(zip(names, comparison.sensitivity.tolist(), strict=True)),
            "sensitivity_share": dict(zip(names, comparison.sensitivity_share.tolist(), strict=True)),
            "explanation_share": dict(zip(names, comparison.explanation_share.tolist(), strict=True)),
            "flagged": list(comparison.flagged),
            "rows": "test",
            "n_repeats": SENSITIVITY_REPEATS,
            "time": time.perf_counter() - start,
        },
    }


def resolve_features(names: Sequence[str] | None, split: Any, flag: str) -> list[int]:
    """Indices into ``split.feature_names`` of the original features ``names`` (None or empty: none).

    Raises:
        UserError: a name that is not a feature of the dataset (one line, listing some of the features).
    """
    if not names:
        return []
    known = {str(name): index for index, name in enumerate(split.feature_names)}
    unknown = [name for name in names if name not in known]
    if unknown:
        shown = ", ".join(list(known)[:12]) + (", ..." if len(known) > 12 else "")
        raise UserError(
            f"{flag}: unknown feature(s) {', '.join(map(repr, unknown))}; the features of {split.dataset_name} are "
            f"{shown}"
        )
    return sorted({known[name] for name in names})


def penalty_plan(config: RunConfig, spec: MethodSpec, split: Any) -> tuple[list[int], list[int], bool]:
    """The features a run penalises (or removes, ``--blind``) and the features whose reliance it measures.

    Returns:
        ``(penalised, measured, blind)``: indices into ``split.feature_names``; ``measured`` is
        ``--audit_features`` when given, else the penalised (or removed) features.

    Raises:
        UserError: unknown names, or flags that do not go together (checked before any training).
    """
    penalised = resolve_features(config.penalize_features, split, "--penalize_features")
    audited = resolve_features(config.audit_features, split, "--audit_features")
    blind, penalty = config.blind, config.penalty
    if (penalised or penalty or blind) and spec.kind != "neural":
        raise UserError(f"explanation penalties and --blind are for the neural methods, not {spec.id}")
    if blind and not penalised:
        raise UserError("--blind needs --penalize_features: the features to remove from the input")
    if blind and penalty:
        raise UserError("--blind removes the features from the input; it takes no --penalty")
    if penalty and not penalised:
        raise UserError(f"--penalty {penalty} needs --penalize_features (the features the model must not use)")
    if penalised and not blind and not penalty:
        raise UserError("--penalize_features needs --penalty (or --blind, to remove the features instead)")
    if blind and len(penalised) == len(split.feature_names):
        raise UserError("--blind would remove every feature")
    return penalised, audited or penalised, blind


def blind_dataset(raw: Any, names: Sequence[str]) -> Any:
    """``raw`` without the feature columns ``names`` (the split of the rest is unchanged: rows depend on targets)."""
    drop = set(names)
    keep = [index for index, column in enumerate(raw.X.columns) if str(column) not in drop]
    return dataclasses.replace(raw, X=raw.X.iloc[:, keep], categorical=[raw.categorical[index] for index in keep])


def reliance_step(
    spec: MethodSpec,
    model: Any,
    split: Any,
    features: Sequence[int],
    *,
    model_split: Any,
    attribution: Any,
    seed: int,
) -> dict[str, Any]:
    """Behavioural reliance on ``features`` and the explanation's share of them (``xai.reliance``), timed."""
    from models.metrics import auroc
    from xai.reliance import reliance_metrics

    start = time.perf_counter()
    scores = reliance_metrics(
        spec,
        model,
        split,
        features,
        model_split=model_split,
        attribution=attribution,
        auroc=None if split.task == "regression" else (lambda y, proba: auroc(y, proba, split.n_classes)),
        seed=seed,
    )
    scores["reliance"]["time"] = time.perf_counter() - start
    return scores


def _report_concept_importances(report: dict[str, Any], attribution: Any) -> None:
    """An explanation over learned concepts maps to no feature: the per-feature fields stay empty and the concepts'
    mean |attribution| gets its own key (``explanations.npz`` holds the concept explanation itself)."""
    importance = attribution.global_importance("mean_abs")
    report["feature_importances"] = {}
    report["top_10_features"], report["top_10_features_weights"] = [], []
    report["concept_importances"] = dict(zip(attribution.feature_names, importance.tolist(), strict=True))
    report["importance_method"] = f"mean |local attribution| per concept ({attribution.explainer})"


#: A training run whose last epochs' loss is this many times its lowest (and above its first) has exploded.
EXPLODED_FACTOR = 10.0


def loss_warning(losses: Sequence[float]) -> str | None:
    """Why a finite training loss curve looks diverged, or None: the mean loss of the last tenth of the epochs is
    more than :data:`EXPLODED_FACTOR` times the lowest epoch loss and higher than the first epoch's.

    (A non-finite loss stops training with an error before this point.)
    """
    if len(losses) < 2:
        return None
    tail = float(np.mean(losses[-max(1, len(losses) // 10) :]))
    lowest, first = float(np.min(losses)), float(losses[0])
    if tail > EXPLODED_FACTOR * max(lowest, 1e-12) and tail > first:
        return (
            f"the training loss exploded: {tail:.4g} over the last epochs against {lowest:.4g} at its lowest "
            f"and {first:.4g} in the first epoch; lower learning_rate"
        )
    return None


def name_the_classes(attribution: Any, split: Any) -> Any:
    """The attribution with its output named by the dataset's class labels (estimators see integer codes)."""
    classes = split.classes
    name = attribution.output_name
    if classes is None or len(classes) != 2 or "(one per class)" in name:
        return attribution
    for prefix in ("logit of class ", "probability"):
        if name.startswith(prefix):
            kind = "logit" if prefix.startswith("logit") else "probability"
            return dataclasses.replace(attribution, output_name=f"{kind} of class '{classes[1]}'")
    return attribution


def run(config: RunConfig) -> dict[str, Any]:
    """Load, split, (tune,) fit, evaluate, explain and write one run of ``config.method``; returns the report.

    Raises:
        UserError: bad data, target, device, diverged training or a missing optional package (nothing is
            written then).
    """
    from models.device import resolve_device

    spec = config.spec
    method, variant, mode, seed = spec.id, config.variant, config.mode, config.seed
    device = resolve_device(config.device)  # a missing GPU is an error for every model
    if not spec.uses_device and spec.kind != "neural":
        device = resolve_device("cpu")  # scikit-learn and interpret have no GPU path
    encoding = config.encoding
    raw = config.data.load()
    split = config.data.split(raw, encoding_type=encoding)
    for note in split.notes:
        print(f"note: {note}", file=sys.stderr)
    penalised, measured, blind = penalty_plan(config, spec, split)
    full_split = split
    if blind:  # the reference a penalty tries to reach: the features are not in the input at all
        raw = blind_dataset(raw, [split.feature_names[feature] for feature in penalised])
        split = config.data.split(raw, encoding_type=encoding)
    params = model_params(config)
    if penalised:
        # Names on the command line, input columns for the estimator (a one-hot feature: all its columns).
        params["penalize_features"] = (
            None if blind else np.flatnonzero(np.isin(split.input_to_feature, penalised)).tolist()
        )

    files: dict[str, bytes] = {}
    hpo_summary = None
    if config.hpo_tuning:
        from experiments.hpo import TRIALS_FILENAME, tune_method

        # HPO (experiments/hpo.py): a 60/20/20 study on the run's training rows; the best configuration is refit.
        params, tuning = tune_method(spec, raw, config, params=params, device=device, encoding=encoding)
        files[TRIALS_FILENAME] = tuning.trials.to_csv(index=False).encode()
        hpo_summary = tuning.summary(n_trials=config.n_trials, timeout=config.hpo_timeout, seed=seed)

    model = spec.build(split, seed=seed, device=device, n_jobs=config.n_jobs, params=params)
    if config.progress and "progress" in model.get_params():
        model.set_params(progress=True)
    X_train, X_test = spec.inputs(split)
    start = time.perf_counter()
    try:
        model.fit(X_train, split.y_train)
    except FloatingPointError as error:
        raise UserError(str(error)) from None
    except ValueError as error:
        if penalised and not blind:  # a penalty this network cannot have (found before any training step)
            from models.penalties import PenaltyError

            if isinstance(error, PenaltyError):
                raise UserError(str(error)) from None
        raise
    train_time = time.perf_counter() - start
    metrics, inference_time = evaluate(model, {"train": X_train, "test": X_test}, split)
    start = time.perf_counter()
    attribution = name_the_classes(spec.explain(model, split, X_test, reference=config.reference), split)
    explain_time = time.perf_counter() - start
    warning = loss_warning(getattr(model, "epoch_losses_", []))
    if warning is not None:
        print(f"warning: {warning}", file=sys.stderr)

    fitted_params = spec.resolve_params(mode, params)
    resolved = config.report_config(fitted_params)
    resolved.update(
        device=str(getattr(model, "device_", device)), encoding_type=split.encoding_type, model_params=fitted_params
    )
    if hpo_summary is not None:
        resolved["hpo"] = hpo_summary
    concepts = spec.explains_concepts(model)
    extra: dict[str, Any] = {
        "explain_time": explain_time,
        "importance_method": f"mean |local attribution| per feature ({attribution.explainer})",
        "feature_importances_signed": {}
        if concepts
        else dict(zip(split.feature_names, attribution.global_importance("signed_mean").tolist(), strict=True)),
        "explanation": {
            "explainer": attribution.explainer,
            "exact": attribution.exact,
            "signed": attribution.signed,
            "reference": attribution.reference_name,
            "output": attribution.output_name,
            "description": spec.explanation,
            "additivity_error": attribution.additivity_error() if attribution.exact else None,
        },
        "dropped_columns": split.dropped_columns,
        "training_warning": warning,
    }
    if explanation_metrics_enabled(spec, config):
        extra.update(explanation_metrics(spec, model, split, reference=config.reference, seed=seed))
    if config.audit_sensitivity:
        extra.update(sensitivity_audit(spec, model, split, attribution, seed=seed))
    if measured:
        extra.update(
            reliance_step(
                spec,
                model,
                full_split,
                measured,
                model_split=split if blind else None,
                attribution=attribution,
                seed=seed,
            )
        )
    for name in ("epoch_losses_", "snapshot_steps_", "best_epoch_"):
        if hasattr(model, name):
            value = getattr(model, name)
            extra[name.rstrip("_")] = list(value) if isinstance(value, list | tuple) else value
    report = build_report(
        method=method,
        variant=variant,
        seed=seed,
        **split_fields(split),
        n_inputs=int(np.shape(X_train)[1]),
        metrics=metrics,
        train_time=train_time,
        inference_time=inference_time,
        importances=np.ones(len(split.feature_names)) if concepts else attribution.global_importance("mean_abs"),
        config=resolved,
        extra=extra,
    )
    if concepts:
        _report_concept_importances(report, attribution)
    files[EXPLANATIONS_FILENAME] = npz_bytes(explanation_arrays(attribution, split))
    # What makes the run reusable (experiments.saved_run): preprocessing.json, background.npz, the model file.
    files.update(saved_run.run_files(spec, model, split, target=raw.target, config=resolved))
    report["saved_files"] = sorted([*files, RESULTS_FILENAME])
    files[RESULTS_FILENAME] = json_bytes(report)
    directory = run_dir(config.output_dir, method, split.dataset_id, seed, variant)
    write_run_atomically(directory, files)
    print(summary_line(report, results_path(config.output_dir, method, split.dataset_id, seed, variant)))
    return report
