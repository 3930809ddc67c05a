"""Hyperparameter optimisation as in the NeurIPS version of the paper: Optuna TPE on a 60/20/20 split.

The protocol: split the data 60/20/20 (train/valid/test, stratified for classification; the test rows are the
same as without HPO), let Optuna's TPE sampler (seeded by the run's seed) propose configurations, score each by
its validation AUROC (regression: validation MSE, minimised), run ``n_trials`` trials or until ``timeout``
seconds have passed, then refit the best configuration on train+valid (the ordinary 80 % training part) and test
it once. For INN and TabResNet the default configuration is the first trial. A trial that raises is marked
failed and the study goes on; every trial is kept for ``trials.csv``.

The search spaces are data (:data:`SEARCH_SPACES`), keyed by the estimators' parameter names; the experiment
scripts own how a configuration is fitted and scored and pass that in as ``evaluate``.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from errors import UserError
from experiments.config import RunConfig
from experiments.results import atomic_write_bytes
from methods import REGISTRY, MethodSpec, Mode, Space, split_inputs
from models.metrics import auroc, regression_metrics

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from data import PreparedSplit, RawDataset

Direction = Literal["maximize", "minimize"]

TRIALS_FILENAME = "trials.csv"
#: Fraction of ALL rows held out for validation during HPO: with a 0.2 test part this is the 60/20/20 split.
VALIDATION_SIZE = 0.2


# ----------------------------------------------------------------------------------------------------------
# Search spaces: data in the method registry

#: Method -> classification search space (the paper's NeurIPS version), by estimator parameter name.
SEARCH_SPACES: dict[str, Space] = {
    method: dict(spec.search_space["classification"]) for method, spec in REGISTRY.items()
}


def search_space(method: str, mode: Mode = "classification") -> Space:
    """The search space of ``method`` for ``mode`` (a fresh dict, safe to edit)."""
    if method not in REGISTRY:
        raise ValueError(f"no search space for {method!r}; known: {sorted(REGISTRY)}")
    return dict(REGISTRY[method].search_space[mode])


def to_model_params(method: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Translate sampled values into estimator parameters (only ``penalty`` needs it)."""
    params = dict(params)
    penalty = params.pop("penalty", None) if method == "logistic_regression" else None
    if penalty == "none":
        params["C"] = math.inf
    return params


# ----------------------------------------------------------------------------------------------------------
# Scoring


def direction(mode: Mode) -> Direction:
    """Validation AUROC is maximised; regression's validation MSE is minimised."""
    return "minimize" if mode == "regression" else "maximize"


def validation_score(y_true: np.ndarray, output: np.ndarray, *, task: str, n_classes: int | None) -> float:
    """The objective of one trial: AUROC from probabilities ``(N, C)``, or MSE from predictions ``(N,)``."""
    if task == "regression":
        return regression_metrics(y_true, output, "valid")["valid_mse"]
    return auroc(y_true, output, int(n_classes or 2))


# ----------------------------------------------------------------------------------------------------------
# The study


@dataclass
class TuningResult:
    """What a study found, for the report and for ``trials.csv``.

    Attributes:
        method: the tuned method.
        best_params: the best trial's configuration (sampled names, e.g. ``penalty``).
        best_model_params: the same as estimator parameters (see :func:`to_model_params`).
        best_value: its validation score.
        metric: ``valid_auroc`` or ``valid_mse``.
        direction: ``maximize`` or ``minimize``.
        n_trials_run: trials started (complete and failed).
        n_trials_failed: trials that raised or scored NaN.
        not_tuned: parameters of the paper's space the estimator does not have (left at their defaults).
        time: seconds spent in the study.
        trials: one row per trial (``optuna.Study.trials_dataframe``).
    """

    method: str
    best_params: dict[str, Any]
    best_model_params: dict[str, Any]
    best_value: float
    metric: str
    direction: Direction
    n_trials_run: int
    n_trials_failed: int
    not_tuned: list[str]
    time: float
    trials: pd.DataFrame = field(repr=False)

    def summary(self, *, n_trials: int, timeout: float | None, seed: int) -> dict[str, Any]:
        """The ``hpo`` entry of the report's config."""
        return {
            "sampler": "TPE",
            "seed": seed,
            "n_trials": n_trials,
            "timeout": timeout,
            "validation_size": VALIDATION_SIZE,
            "metric": self.metric,
            "direction": self.direction,
            "n_trials_run": self.n_trials_run,
            "n_trials_failed": self.n_trials_failed,
            "best_params": self.best_params,
            "best_value": self.best_value,
            "not_tuned": self.not_tuned,
            "time": self.time,
        }

    def write_trials(self, directory: str | Path) -> Path:
        """Write ``trials.csv`` into ``directory`` atomically; returns its path."""
        path = Path(directory) / TRIALS_FILENAME
        atomic_write_bytes(path, self.trials.to_csv(index=False).encode())
        return path


def tune(
    method: str,
    evaluate: Callable[[dict[str, Any]], float],
    *,
    mode: Mode,
    seed: int,
    n_trials: int,
    timeout: float | None,
    default_params: Mapping[str, Any] | None = None,
    space: Space | None = None,
    accepted: Collection[str] | None = None,
    log: Callable[[str], None] | None = print,
) -> TuningResult:
    """Run the study: TPE seeded by ``seed``, ``n_trials`` trials or ``timeout`` seconds, whichever comes first.

    Args:
        method: the method id (picks the search space).
        evaluate: fits estimator parameters on the HPO training part and returns the validation score
            (see :func:`validation_score`). An exception fails that trial only; a
            :class:`~errors.UserError` (a missing package, bad data) ends the study.
        mode: ``classification`` (maximise AUROC) or ``regression`` (minimise MSE).
        seed: seed of the TPE sampler.
        n_trials: the most trials to run.
        timeout: the time limit in seconds (checked between trials), or None.
        default_params: the default configuration, enqueued as the first trial (values for the space's
            parameters are taken from it; others are sampled).
        space: the search space (default :func:`search_space`).
        accepted: estimator parameter names; parameters outside it are not tuned (recorded in ``not_tuned``).
        log: receives one line per trial (None: silent).

    Raises:
        UserError: ``evaluate`` raised one, or every trial failed (the message quotes the first error).
    """
    import optuna

    space = dict(space if space is not None else search_space(method, mode))
    not_tuned: list[str] = []
    if accepted is not None:
        not_tuned = sorted(name for name in space if name not in accepted)
        space = {name: param for name, param in space.items() if name not in not_tuned}
    goal = direction(mode)
    metric = "valid_mse" if mode == "regression" else "valid_auroc"

    # Optuna logs every trial at INFO and a full traceback per failed trial at WARNING; one line is enough.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction=goal, sampler=optuna.samplers.TPESampler(seed=seed))
    if default_params is not None:
        defaults = {name: default_params[name] for name in space if name in default_params}
        study.enqueue_trial(defaults, user_attrs={"default_configuration": True})
    fatal: list[UserError] = []

    def objective(trial: optuna.Trial) -> float:
        params = {name: param.suggest(trial, name) for name, param in space.items()}
        try:
            value = float(evaluate(to_model_params(method, params)))
        except UserError as error:
            fatal.append(error)
            trial.study.stop()
            raise
        except Exception as error:
            trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:500])
            raise
        if not math.isfinite(value):
            trial.set_user_attr("error", f"non-finite validation score {value}")
            raise ValueError(f"non-finite validation score {value}")
        return value

    def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if log is None:
            return
        if trial.state == optuna.trial.TrialState.COMPLETE:
            outcome = f"{metric} {trial.value:.5f}"
        else:
            outcome = f"failed ({trial.user_attrs.get('error', trial.state.name)})"
        best = _best_trial(study)
        best_text = f", best {best.value:.5f} (trial {best.number})" if best is not None else ""
        log(f"hpo {method} trial {trial.number + 1}/{n_trials}: {outcome}{best_text}")

    start = time.perf_counter()
    with warnings.catch_warnings():
        # A default outside the paper's range (e.g. --nr_epochs 5) is still the default: run it as given.
        warnings.filterwarnings("ignore", message="Fixed parameter .* is out of range")
        study.optimize(objective, n_trials=n_trials, timeout=timeout, catch=(Exception,), callbacks=[report])
    elapsed = time.perf_counter() - start
    if fatal:
        raise fatal[0]
    best = _best_trial(study)
    failed = [trial for trial in study.trials if trial.state == optuna.trial.TrialState.FAIL]
    if best is None:
        first = failed[0].user_attrs.get("error", "unknown error") if failed else "no trial ran"
        raise UserError(f"hyperparameter optimisation of {method}: all {len(study.trials)} trials failed; {first}")
    return TuningResult(
        method=method,
        best_params=dict(best.params),
        best_model_params=to_model_params(method, best.params),
        best_value=float(best.value),
        metric=metric,
        direction=goal,
        n_trials_run=len(study.trials),
        n_trials_failed=len(failed),
        not_tuned=not_tuned,
        time=elapsed,
        trials=study.trials_dataframe(
            attrs=(
                "number",
                "state",
                "value",
                "datetime_start",
                "datetime_complete",
                "duration",
                "params",
                "user_attrs",
            )
        ),
    )


def _best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    import optuna

    complete = [trial for trial in study.trials if trial.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        return None
    pick = min if study.direction == optuna.study.StudyDirection.MINIMIZE else max
    return pick(complete, key=lambda trial: trial.value)


# ----------------------------------------------------------------------------------------------------------
# The two experiment scripts' entry points


def hpo_split(raw: RawDataset, config: RunConfig, encoding_type: str) -> PreparedSplit:
    """The 60/20/20 split of the protocol: the run's test rows, and a validation part of 20 % of all rows."""
    return config.data.split(raw, encoding_type=encoding_type, validation_size=VALIDATION_SIZE)


def _score(model: Any, X_valid: Any, split: PreparedSplit) -> float:
    if split.task == "regression":
        output = np.asarray(model.predict(X_valid), dtype=np.float64).reshape(-1)
    else:
        output = np.asarray(model.predict_proba(X_valid), dtype=np.float64)
    return validation_score(split.y_valid, output, task=split.task, n_classes=split.n_classes)


def tune_method(
    spec: MethodSpec,
    raw: RawDataset,
    config: RunConfig,
    *,
    params: Mapping[str, Any],
    device: Any,
    encoding: str,
) -> tuple[dict[str, Any], TuningResult]:
    """HPO of any registered method for ``experiments.runner.run``; returns the parameters to refit and the study.

    Neural methods: the run's configuration (``params`` over the method's defaults) is the first trial, and
    every parameter of the space is tuned (the paper's protocol). Baselines: parameters set explicitly by flags
    (``params``, e.g. ``--catboost_iterations``) are held fixed and not tuned. Parameters of the paper's space
    that a method's estimator does not have (TabNet's wrapper) are not tuned and listed in ``not_tuned``.
    """
    mode: Mode = config.mode
    neural = spec.kind == "neural"
    fixed = {} if neural else dict(params)
    space = {name: param for name, param in search_space(spec.id, mode).items() if name not in fixed}
    accepted = set(spec.defaults(mode)) if spec.closed_parameters else None
    split = hpo_split(raw, config, encoding)
    X_train, _ = split_inputs(split, spec.input_kind)
    _, X_valid = split_inputs(
        dataclasses.replace(split, X_test=split.X_valid, frame_test=split.frame_valid), spec.input_kind
    )

    def evaluate(sampled: dict[str, Any]) -> float:
        trial_params = {**params, **sampled}
        model = spec.build(split, seed=config.seed, device=device, n_jobs=config.n_jobs, params=trial_params)
        model.fit(X_train, split.y_train)
        return _score(model, X_valid, split)

    result = tune(
        spec.id,
        evaluate,
        mode=mode,
        seed=config.seed,
        n_trials=config.n_trials,
        timeout=config.hpo_timeout,
        default_params={**spec.defaults(mode), **params} if neural else None,
        space=space,
        accepted=accepted,
    )
    return {**params, **result.best_model_params}, result
