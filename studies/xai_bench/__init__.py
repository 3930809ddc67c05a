"""The interpretability benchmark (XAI-Bench protocol): train, explain, score and tabulate, unit by unit.

A *unit* is one (dataset, ρ, seed, model): draw the synthetic data (``data.synthetic.make_synthetic``), build and
train the model through the method registry (``methods.REGISTRY``: INN, TabResNet, EBM, SENN, TabNet, ...),
compute its ground-truth Shapley values (``xai.shapley``, observational and interventional), explain its test and
training rows with every explainer that applies, and score each explanation with every metric (``xai.metrics``).
The model's own explanation (its registry's native explainer: INN's generated weights, EBM's terms, TabNet's
masks) is one explainer; the post-hoc explainers (``explainers.POSTHOC_EXPLAINERS``) explain the models of
``posthoc_models`` (the paper's protocol: a TabResNet trained on the same data). Every explainer of a unit
explains the same trained model, and the model's test error is reported beside its explanations.

What is shared within a unit, and why that is fair: the random numbers of every metric are the same for every
explainer (common random numbers), so differences between explainers are not sampling noise; faithfulness's
removal changes do not depend on the explanation and are computed once; ROAR retrains are cached by their
training data (explainers with the same rankings, and the no-removal and all-removed steps, share them).

Results: every unit's rows go to their own file (``units/<dataset>/rho<ρ>/seed<s>/<model>.csv``, written
atomically, with the hash of the settings that produced them), so an interrupted run resumes where it stopped;
:func:`combine` gathers the units into one tidy table (dataset × ρ × seed × model × explainer × metric, with the
model's test error and the seconds spent), :func:`paper_table` lays ρ = 0 out as the paper does (rows metric ×
dataset, columns explainers, a wins row), :func:`table_markdown`/:func:`table_latex` format it.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data.synthetic import TARGETS, SyntheticData, make_synthetic
from plots.tables import mean_sd_text, number_text
from xai.metrics import (
    METRICS,
    MetricResult,
    faithfulness,
    infidelity,
    monotonicity,
    roar_faithfulness,
    roar_monotonicity,
    row_correlation,
    shapley_corr,
    shapley_mse,
)
from xai.shapley import ShapleyValues, ground_truth_shapley

__all__ = [
    "BENCHMARK_METRICS",
    "DEFAULT_MODELS",
    "DEFAULT_POSTHOC_MODELS",
    "DEFAULT_RHOS",
    "PAPER_METRICS",
    "PROFILES",
    "BenchmarkConfig",
    "Entry",
    "Unit",
    "combine",
    "entries_of",
    "metric_direction",
    "paper_table",
    "run_unit",
    "settings_hash",
    "synthetic_split",
    "table_latex",
    "table_markdown",
    "unit_path",
]

#: The metrics the benchmark reports, in table order, with the ground truth they compare with (if any).
#: ``shapley_*`` compare with observational ground truth (XAI-Bench's), ``*_interventional`` with interventional.
BENCHMARK_METRICS: dict[str, str] = {
    "faithfulness": "faithfulness",
    "monotonicity": "monotonicity",
    "infidelity": "infidelity",
    "roar_faithfulness": "roar_faithfulness",
    "roar_monotonicity": "roar_monotonicity",
    "shapley_mse": "shapley_mse",
    "shapley_corr": "shapley_corr",
    "shapley_mse_interventional": "shapley_mse",
    "shapley_corr_interventional": "shapley_corr",
}
#: The five metrics of the IMN paper's XAI-Bench table.
PAPER_METRICS = ("faithfulness", "roar_faithfulness", "infidelity", "roar_monotonicity", "shapley_corr")
DEFAULT_RHOS = (0.0, 0.25, 0.5, 0.75, 0.99)
#: The models explained by the post-hoc explainers (the paper's protocol).
DEFAULT_POSTHOC_MODELS = ("tabresnet",)
#: Models trained by default, when registered: INN and SENN explain themselves, TabResNet is explained post hoc,
#: EBM explains itself.
DEFAULT_MODELS = ("inn", "senn", "tabresnet", "ebm")
UNITS_DIRNAME = "units"


def metric_direction(metric: str) -> str:
    """``higher`` or ``lower``: which values of a benchmark metric are better."""
    return METRICS[BENCHMARK_METRICS[metric]].direction


# ----------------------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class BenchmarkConfig:
    """Everything a benchmark run depends on.

    Attributes:
        datasets: XAI-Bench targets (``data.synthetic.TARGETS``).
        rhos: feature correlations.
        seeds: seeds (data, model, explainers and metrics of a unit all derive from it).
        models: registered methods to train (each explains itself with its native explainer).
        posthoc_models: models the post-hoc explainers explain (each must be in ``models``).
        explainers: post-hoc explainer ids (``explainers.POSTHOC_EXPLAINERS``).
        metrics: metric names (:data:`BENCHMARK_METRICS`).
        d: number of features.
        n_train: training rows.
        n_test: test rows (the explained and scored rows).
        noise: target noise before standardisation.
        compat: reproduce the public XAI-Bench code's defects (data, metrics, ground truth, explainers).
        reference: reference point of reference-based explanations (``mean`` or ``zero``).
        gt_samples: Monte Carlo draws per (row, coalition) of the observational ground truth.
        gt_background: background draws of the interventional ground truth.
        faithfulness_samples: conditional draws per (row, feature) of faithfulness and monotonicity.
        infidelity_perturbations: perturbations per row of infidelity.
        background_size: background rows of the interventional explainers (SHAP, KernelSHAP, BF-SHAP, BreakDown).
        lime_samples: LIME's perturbations per row.
        lime_kernel_width: LIME's kernel width as a multiple of ``√d`` (XAI-Bench: 0.5).
        kernel_shap_samples: KernelSHAP's coalitions per row (``auto``: shap's rule).
        ig_steps: integration points of integrated gradients.
        model_params: estimator parameters per model (override the registry defaults).
        profile: the name of the profile the settings came from.
    """

    datasets: tuple[str, ...] = TARGETS
    rhos: tuple[float, ...] = DEFAULT_RHOS
    seeds: tuple[int, ...] = (0, 1, 2)
    models: tuple[str, ...] = ("inn", "tabresnet", "ebm")
    posthoc_models: tuple[str, ...] = DEFAULT_POSTHOC_MODELS
    explainers: tuple[str, ...] = ()
    metrics: tuple[str, ...] = tuple(BENCHMARK_METRICS)
    d: int = 5
    n_train: int = 1000
    n_test: int = 100
    noise: float = 0.01
    compat: bool = False
    reference: str = "mean"
    gt_samples: int = 20_000
    gt_background: int = 1000
    faithfulness_samples: int = 100
    infidelity_perturbations: int = 1000
    background_size: int = 100
    lime_samples: int = 5000
    lime_kernel_width: float = 0.5
    kernel_shap_samples: int | str = "auto"
    ig_steps: int = 50
    model_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    profile: str = "paper"

    def params_for(self, model: str) -> dict[str, Any]:
        """The estimator parameters a model is built with beyond the registry's defaults."""
        return dict(self.model_params.get(model, {}))

    def unit_settings(self, model: str) -> dict[str, Any]:
        """The settings that determine a unit's numbers (not which units exist).

        Model parameters count as given (``model_params``), not as resolved against the registry: a parameter that
        another method adds later with a neutral default does not invalidate finished units, as in the sweep (a
        changed registry default needs ``--force``). ``config.json`` records the resolved parameters.
        """
        settings = {
            key: value
            for key, value in asdict(self).items()
            if key not in ("datasets", "rhos", "seeds", "models", "posthoc_models", "model_params", "profile")
        }
        settings["model"] = model
        settings["model_params"] = self.params_for(model)
        if model not in self.posthoc_models:
            settings["explainers"] = []
        return settings


#: Named settings. ``paper``: XAI-Bench's sizes (1000/100 rows, 20 000 ground-truth samples, 5 000 LIME samples,
#: the registry's model defaults). ``smoke``: a one-minute end-to-end check of every model, explainer and metric
#: (one dataset, one ρ, one seed, tiny data, models and samples; ``smoke_models``: every model starts from its
#: registry ``smoke_params``, ``model_params`` are applied over them).
PROFILES: dict[str, dict[str, Any]] = {
    "paper": {},
    "smoke": {
        "datasets": ("gaussianNonLinearAdditive",),
        "rhos": (0.5,),
        "seeds": (0,),
        "n_train": 200,
        "n_test": 20,
        "gt_samples": 200,
        "gt_background": 50,
        "faithfulness_samples": 20,
        "infidelity_perturbations": 100,
        "background_size": 20,
        "lime_samples": 100,
        "ig_steps": 16,
        "smoke_models": True,
        "model_params": {"ebm": {"outer_bags": 1, "max_rounds": 100, "interactions": 0}},
    },
}


def settings_hash(settings: Mapping[str, Any]) -> str:
    """A short, stable hash of a unit's settings (stored with its rows; a changed setting invalidates them)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Unit:
    """One (dataset, ρ, seed, model): trained once, explained by all its explainers."""

    dataset: str
    rho: float
    seed: int
    model: str


def unit_path(output_dir: str | Path, unit: Unit) -> Path:
    """The file of a unit's rows."""
    return (
        Path(output_dir) / UNITS_DIRNAME / unit.dataset / f"rho{unit.rho:g}" / f"seed{unit.seed}" / f"{unit.model}.csv"
    )


def _stream(*parts: Any) -> np.random.Generator:
    """A generator that depends only on ``parts`` (the same for every explainer: common random numbers)."""
    return np.random.default_rng([zlib.crc32(repr(part).encode()) for part in parts])


# ----------------------------------------------------------------------------------------------------------
# Explainers of a model


@dataclass(frozen=True)
class Entry:
    """One explanation of one model: a column of the paper's table and a line of the figures.

    Attributes:
        id: ``<model>`` for a model's own explanation, ``<explainer>`` for a post-hoc explainer of the default
            post-hoc model (TabResNet), ``<explainer>@<model>`` for one of another model.
        explainer: the explainer id (native id, or post-hoc id).
        model: the explained model.
        native: whether it is the model's own explanation.
    """

    id: str
    explainer: str
    model: str
    native: bool

    @property
    def label(self) -> str:
        """The entry's human label (method labels from the registry, explainer labels from ``explainers``)."""
        from explainers import POSTHOC_LABELS
        from methods import REGISTRY

        model_label = REGISTRY[self.model].label if self.model in REGISTRY else self.model
        if self.native:
            return model_label
        label = POSTHOC_LABELS.get(self.explainer, self.explainer)
        return label if self.model in DEFAULT_POSTHOC_MODELS else f"{label} ({model_label})"


def entries_of(config: BenchmarkConfig, model: str) -> list[Entry]:
    """The explanations of ``model`` in a run: its own (unless it is a post-hoc explainer), then the post-hoc ones."""
    from explainers import POSTHOC_EXPLAINERS
    from methods import REGISTRY

    spec = REGISTRY[model]
    entries = []
    # A model whose registry explanation is itself a post-hoc explainer (TabResNet: gradient × input) gets it as
    # a post-hoc entry when it is explained post hoc, and as its own explanation otherwise.
    covered = model in config.posthoc_models and spec.explainer in config.explainers
    if spec.explainer not in POSTHOC_EXPLAINERS or not covered:
        entries.append(Entry(model, spec.explainer, model, True))
    if model in config.posthoc_models:
        for explainer in config.explainers:
            entry_id = explainer if model in DEFAULT_POSTHOC_MODELS else f"{explainer}@{model}"
            entries.append(Entry(entry_id, explainer, model, False))
    return entries


# ----------------------------------------------------------------------------------------------------------
# Data and models


def synthetic_split(data: SyntheticData, dataset_id: str) -> Any:
    """A ``data.PreparedSplit`` of synthetic data, so that registry methods build and explain as usual.

    The model inputs are the features themselves (no scaling: the Gaussian conditionals of the metrics are in
    these units), one column per feature; the frames hold the same values for frame-input methods (EBM).
    """
    from data import PreparedSplit

    names = list(data.feature_names)
    frame_train = pd.DataFrame(data.X_train, columns=names)
    frame_test = pd.DataFrame(data.X_test, columns=names)
    return PreparedSplit(
        dataset_name=dataset_id,
        dataset_id=dataset_id,
        mode="regression",
        seed=0,
        test_split_size=data.X_test.shape[0] / (data.X_train.shape[0] + data.X_test.shape[0]),
        validation_size=0.0,
        X_train=data.X_train.astype(np.float32),
        X_test=data.X_test.astype(np.float32),
        X_valid=None,
        y_train=data.y_train,
        y_test=data.y_test,
        y_valid=None,
        classes=None,
        feature_names=names,
        input_names=names,
        input_to_feature=np.arange(data.d),
        categorical_features=[False] * data.d,
        dropped_columns={},
        train_index=np.arange(data.X_train.shape[0]),
        test_index=np.arange(data.X_test.shape[0]),
        valid_index=None,
        frame_train=frame_train,
        frame_test=frame_test,
        frame_valid=None,
        categorical_input_indices=None,
        categorical_cardinalities=None,
        encoder=None,
        label_encoder=None,
        task="regression",
        n_classes=None,
        encoding_type="target",
        notes=["synthetic data: the inputs are the features, unscaled"],
    )


def _model_input(spec: Any, names: Sequence[str]) -> Callable[[np.ndarray], Any]:
    """Converts numpy rows of features into what the method's estimator takes."""
    if spec.input_kind == "frame":
        return lambda rows: pd.DataFrame(np.asarray(rows, dtype=np.float64), columns=list(names))
    return lambda rows: np.asarray(rows, dtype=np.float32)


class _TrainedModels:
    """Fits a method on given training rows, caching fits by their data (ROAR retrains repeat many of them)."""

    def __init__(self, spec: Any, split: Any, params: Mapping[str, Any], seed: int) -> None:
        self.spec, self.split, self.params, self.seed = spec, split, dict(params), seed
        self.to_input = _model_input(spec, split.feature_names)
        self.cache: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
        self.fits = 0
        self.hits = 0

    @staticmethod
    def key(X: np.ndarray, y: np.ndarray) -> str:
        digest = hashlib.sha1(np.ascontiguousarray(X, dtype=np.float64).tobytes())
        digest.update(np.ascontiguousarray(y, dtype=np.float64).tobytes())
        return digest.hexdigest()

    def predictor(self, model: Any) -> Callable[[np.ndarray], np.ndarray]:
        to_input = self.to_input
        return lambda rows: np.asarray(model.predict(to_input(rows)), dtype=np.float64).reshape(-1)

    def fit_model(self, X: np.ndarray, y: np.ndarray) -> Any:
        """A fresh model fitted on ``(X, y)`` (not cached)."""
        from errors import UserError

        model = self.spec.build(self.split, seed=self.seed, device="cpu", n_jobs=1, params=self.params)
        try:
            model.fit(self.to_input(X), y)
        except FloatingPointError as error:
            raise UserError(str(error)) from None
        return model

    def remember(self, X: np.ndarray, y: np.ndarray, model: Any) -> None:
        self.cache[self.key(X, y)] = self.predictor(model)

    def fit(self, X: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """``xai.metrics.Fit``: the predict function of a model fitted on ``(X, y)``."""
        key = self.key(X, y)
        if key in self.cache:
            self.hits += 1
            return self.cache[key]
        self.fits += 1
        predict = self.predictor(self.fit_model(X, y))
        self.cache[key] = predict
        return predict


def _posthoc_options(config: BenchmarkConfig, explainer: str) -> dict[str, Any]:
    """The benchmark's settings of one post-hoc explainer."""
    if explainer in ("exact_shap", "bruteforce_shap", "breakdown", "kernel_shap"):
        options: dict[str, Any] = {"background_size": config.background_size}
        if explainer in ("bruteforce_shap", "breakdown"):
            options["compat"] = config.compat
        if explainer == "kernel_shap":
            options["n_samples"] = config.kernel_shap_samples
        return options
    if explainer == "lime":
        return {"n_samples": config.lime_samples, "kernel_width": config.lime_kernel_width * math.sqrt(config.d)}
    if explainer == "integrated_gradients":
        return {"n_steps": config.ig_steps}
    return {}


def applicable(explainer: str, spec: Any) -> bool:
    """Whether a post-hoc explainer can explain a method's models (gradients and CD need a network)."""
    from explainers import POSTHOC_EXPLAINERS

    requires = getattr(POSTHOC_EXPLAINERS[explainer], "requires", "predict")
    return requires == "predict" or (spec.kind == "neural" and spec.input_kind == "matrix")


# ----------------------------------------------------------------------------------------------------------
# One unit


def _values(attribution: Any) -> np.ndarray:
    """The ``(N, F)`` attributions of the single output."""
    return np.asarray(attribution.values, dtype=np.float64)[:, :, 0]


def _timed(function: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def run_unit(config: BenchmarkConfig, unit: Unit, *, log: Callable[[str], None] = lambda _: None) -> pd.DataFrame:
    """Train, explain and score one unit; returns its tidy rows (one per explainer and metric).

    Args:
        config: the run's settings.
        unit: the (dataset, ρ, seed, model).
        log: receives one line per finished step (progress).
    """
    from explainers import POSTHOC_EXPLAINERS
    from explainers.posthoc import target_from_estimator
    from methods import REGISTRY

    spec = REGISTRY[unit.model]
    data = make_synthetic(
        unit.dataset,
        d=config.d,
        rho=unit.rho,
        n_train=config.n_train,
        n_test=config.n_test,
        noise=config.noise,
        seed=unit.seed,
        compat=config.compat,
    )
    split = synthetic_split(data, unit.dataset)
    trained = _TrainedModels(spec, split, config.params_for(unit.model), unit.seed)
    model, fit_seconds = _timed(lambda: trained.fit_model(data.X_train, data.y_train))
    trained.remember(data.X_train, data.y_train, model)
    predict = trained.predictor(model)
    test_mse = float(np.mean((predict(data.X_test) - data.y_test) ** 2))
    train_mse = float(np.mean((predict(data.X_train) - data.y_train) ** 2))
    log(f"{unit}: fitted in {fit_seconds:.1f}s, test MSE {test_mse:.4f}")

    metrics = [metric for metric in BENCHMARK_METRICS if metric in config.metrics]
    truth: dict[str, tuple[ShapleyValues, float]] = {}
    if any(metric.startswith("shapley") and not metric.endswith("interventional") for metric in metrics):
        truth["observational"] = _timed(
            lambda: ground_truth_shapley(
                predict,
                data.X_test,
                distribution=data.distribution,
                n_samples=config.gt_samples,
                rng=_stream(unit.seed, unit.dataset, unit.rho, "ground truth"),
                compat=config.compat,
            )
        )
    if any(metric.endswith("interventional") for metric in metrics):
        truth["interventional"] = _timed(
            lambda: ground_truth_shapley(
                predict,
                data.X_test,
                value_function="interventional",
                distribution=data.distribution,
                n_samples=config.gt_background,
                rng=_stream(unit.seed, unit.dataset, unit.rho, "interventional ground truth"),
                compat=config.compat,
            )
        )
    for name, (_, seconds) in truth.items():
        log(f"{unit}: {name} ground truth in {seconds:.1f}s")

    # Faithfulness's removal changes |f(x) − v(all but j)| do not depend on the explanation: computed once.
    deltas, deltas_seconds = None, 0.0
    if "faithfulness" in metrics:
        result, deltas_seconds = _timed(
            lambda: faithfulness(
                predict,
                data.X_test,
                np.zeros_like(data.X_test),
                distribution=data.distribution,
                n_samples=config.faithfulness_samples,
                rng=_stream(unit.seed, unit.dataset, unit.rho, "faithfulness"),
                compat=config.compat,
            )
        )
        deltas = result.extras["deltas"]

    target = None
    rows: list[dict[str, Any]] = []
    to_input = trained.to_input
    for entry in entries_of(config, unit.model):
        if entry.native:

            def explain(X: np.ndarray) -> np.ndarray:
                return _values(spec.explain(model, split, to_input(X), reference=config.reference))

        else:
            if not applicable(entry.explainer, spec):
                log(f"{unit}: {entry.explainer} does not apply to {unit.model}; skipped")
                continue
            if target is None:
                target = target_from_estimator(
                    model,
                    data.X_train,
                    feature_names=data.feature_names,
                    reference=config.reference,
                    to_model_input=to_input,
                )
            explainer = POSTHOC_EXPLAINERS[entry.explainer].from_target(
                target, seed=unit.seed, **_posthoc_options(config, entry.explainer)
            )

            def explain(X: np.ndarray, explainer: Any = explainer) -> np.ndarray:
                return _values(explainer.explain(X))

        phi, explain_seconds = _timed(lambda explain=explain: explain(data.X_test))
        phi_train, explain_train_seconds = None, 0.0
        if any(metric.startswith("roar") for metric in metrics):
            phi_train, explain_train_seconds = _timed(lambda explain=explain: explain(data.X_train))
        for metric in metrics:
            fits_before, hits_before = trained.fits, trained.hits
            result, seconds = _timed(
                lambda metric=metric, phi=phi, phi_train=phi_train: _score(
                    metric, config, unit, data, predict, trained.fit, phi, phi_train, deltas, truth
                )
            )
            if metric == "faithfulness":
                seconds += deltas_seconds / max(1, len(entries_of(config, unit.model)))
            low, high = result.confidence_interval()
            ground_truth = "interventional" if metric.endswith("interventional") else "observational"
            rows.append(
                {
                    "dataset": unit.dataset,
                    "rho": unit.rho,
                    "seed": unit.seed,
                    "model": unit.model,
                    "entry": entry.id,
                    "entry_label": entry.label,
                    "explainer": entry.explainer,
                    "native": entry.native,
                    "metric": metric,
                    "value": result.value,
                    "ci_low": low,
                    "ci_high": high,
                    "direction": metric_direction(metric),
                    "model_test_mse": test_mse,
                    "model_train_mse": train_mse,
                    "fit_seconds": fit_seconds,
                    "explain_seconds": explain_seconds,
                    "explain_train_seconds": explain_train_seconds,
                    "metric_seconds": seconds,
                    "ground_truth_seconds": truth[ground_truth][1] if metric.startswith("shapley") else 0.0,
                    "roar_fits": trained.fits - fits_before,
                    "roar_cached_fits": trained.hits - hits_before,
                    "n_train": config.n_train,
                    "n_test": config.n_test,
                    "d": config.d,
                    "compat": config.compat,
                    "profile": config.profile,
                }
            )
        log(f"{unit}: {entry.id} explained in {explain_seconds:.1f}s (+{explain_train_seconds:.1f}s training rows)")
    frame = pd.DataFrame(rows)
    frame["settings_hash"] = settings_hash(config.unit_settings(unit.model))
    return frame


def _score(
    metric: str,
    config: BenchmarkConfig,
    unit: Unit,
    data: SyntheticData,
    predict: Callable[[np.ndarray], np.ndarray],
    fit: Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]],
    phi: np.ndarray,
    phi_train: np.ndarray | None,
    deltas: np.ndarray | None,
    truth: Mapping[str, tuple[ShapleyValues, float]],
) -> MetricResult:
    """One metric of one explanation (the random streams depend on the unit and the metric only)."""
    stream = _stream(unit.seed, unit.dataset, unit.rho, metric)
    if metric == "faithfulness":  # xai.metrics.faithfulness with the unit's shared removal changes
        per_row = row_correlation(np.abs(phi), deltas)
        return MetricResult("faithfulness", float(per_row.mean()), per_row, {"deltas": deltas})
    if metric == "monotonicity":
        return monotonicity(
            predict,
            data.X_test,
            phi,
            distribution=data.distribution,
            n_samples=config.faithfulness_samples,
            rng=stream,
            compat=config.compat,
        )
    if metric == "infidelity":
        return infidelity(
            predict, data.X_test, phi, n_perturbations=config.infidelity_perturbations, rng=stream, compat=config.compat
        )
    if metric == "roar_faithfulness":
        return roar_faithfulness(
            fit,
            predict,
            data.X_train,
            data.y_train,
            phi_train,
            data.X_test,
            phi,
            distribution=data.distribution,
            compat=config.compat,
        )
    if metric == "roar_monotonicity":
        return roar_monotonicity(
            fit, data.X_train, data.y_train, phi_train, data.X_test, phi, distribution=data.distribution
        )
    ground_truth = truth["interventional" if metric.endswith("interventional") else "observational"][0].values
    return (shapley_mse if BENCHMARK_METRICS[metric] == "shapley_mse" else shapley_corr)(phi, ground_truth)


# ----------------------------------------------------------------------------------------------------------
# Tables


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """A frame as CSV bytes (full float precision)."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format="%.10g")
    return buffer.getvalue().encode()


def combine(
    output_dir: str | Path,
    *,
    config: BenchmarkConfig | None = None,
    datasets: Iterable[str] | None = None,
    models: Iterable[str] | None = None,
) -> pd.DataFrame:
    """The tidy table of every unit file under ``output_dir`` (optionally only those of ``config``'s settings).

    Returns:
        One row per (dataset, ρ, seed, model, entry, metric), sorted.
    """
    paths = sorted((Path(output_dir) / UNITS_DIRNAME).glob("*/rho*/seed*/*.csv"))
    frames = [pd.read_csv(path) for path in paths]
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return pd.DataFrame()
    frame = pd.concat(frames, ignore_index=True)
    if config is not None:
        expected = {model: settings_hash(config.unit_settings(model)) for model in frame["model"].unique()}
        frame = frame[frame["settings_hash"] == frame["model"].map(expected)]
    if datasets is not None:
        frame = frame[frame["dataset"].isin(list(datasets))]
    if models is not None:
        frame = frame[frame["model"].isin(list(models))]
    return frame.sort_values(["dataset", "rho", "seed", "model", "entry", "metric"]).reset_index(drop=True)


def entry_order(frame: pd.DataFrame) -> list[str]:
    """Entries in table order: models' own explanations (registry order), then post-hoc ones (table order), Random
    last."""
    from explainers import POSTHOC_EXPLAINERS
    from methods import REGISTRY

    methods = list(REGISTRY)
    posthoc = list(POSTHOC_EXPLAINERS)
    entries = frame[["entry", "explainer", "model", "native"]].drop_duplicates("entry")

    def key(row: Any) -> tuple[int, int, int, str]:
        if bool(row.native):
            return (0, methods.index(row.model) if row.model in methods else len(methods), 0, row.entry)
        last = 1 if row.explainer == "random" else 0
        model_rank = methods.index(row.model) if row.model in methods else len(methods)
        explainer_rank = posthoc.index(row.explainer) if row.explainer in posthoc else len(posthoc)
        return (1 + last, model_rank, explainer_rank, row.entry)

    return [row.entry for row in sorted(entries.itertuples(), key=key)]


def paper_table(frame: pd.DataFrame, rho: float = 0.0, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """The paper's layout at one ρ: one row per (metric, dataset) with every entry's mean and sd over seeds.

    Returns:
        Long format: ``metric, dataset, entry, entry_label, mean, std, n_seeds, best, model_test_mse`` where
        ``best`` marks the best mean of its row (ties all win) by the metric's direction.
    """
    at = frame[np.isclose(frame["rho"], rho)]
    if at.empty:
        raise ValueError(f"no results at rho={rho:g}")
    wanted = [metric for metric in BENCHMARK_METRICS if metrics is None or metric in metrics]
    at = at[at["metric"].isin(wanted)]
    grouped = (
        at.groupby(["metric", "dataset", "entry"], sort=False)
        .agg(
            entry_label=("entry_label", "first"),
            mean=("value", "mean"),
            std=("value", "std"),
            n_seeds=("seed", "nunique"),
            model_test_mse=("model_test_mse", "mean"),
        )
        .reset_index()
    )
    grouped["std"] = grouped["std"].fillna(0.0)
    sign = np.where(grouped["metric"].map(metric_direction) == "higher", 1.0, -1.0)
    score = grouped["mean"] * sign  # larger is better for every metric
    top = score.groupby([grouped["metric"], grouped["dataset"]]).transform("max")
    grouped["best"] = np.isfinite(score) & np.isclose(score, top, rtol=1e-6, atol=1e-12)  # float-level ties all win
    order = {entry: position for position, entry in enumerate(entry_order(at))}
    grouped["_metric"] = grouped["metric"].map({metric: i for i, metric in enumerate(BENCHMARK_METRICS)})
    grouped["_dataset"] = grouped["dataset"].map({dataset: i for i, dataset in enumerate(TARGETS)})
    grouped["_entry"] = grouped["entry"].map(order)
    return (
        grouped.sort_values(["_metric", "_dataset", "_entry"])
        .drop(columns=["_metric", "_dataset", "_entry"])
        .reset_index(drop=True)
    )


_DATASET_LABELS = {
    "gaussianLinear": "Gaussian Linear",
    "gaussianNonLinearAdditive": "Gaussian Non-Linear Additive",
    "gaussianPiecewiseConstant": "Gaussian Piecewise Constant",
}
_METRIC_LABELS = {
    "faithfulness": "Faithfulness",
    "monotonicity": "Monotonicity",
    "infidelity": "Infidelity",
    "roar_faithfulness": "Faithfulness (ROAR)",
    "roar_monotonicity": "Monotonicity (ROAR)",
    "shapley_mse": "Shapley MSE",
    "shapley_corr": "Shapley corr.",
    "shapley_mse_interventional": "Shapley MSE (interv.)",
    "shapley_corr_interventional": "Shapley corr. (interv.)",
}


def dataset_label(dataset: str) -> str:
    return _DATASET_LABELS.get(dataset, dataset)


def metric_label(metric: str, *, arrow: bool = True) -> str:
    """A metric's label, with ↑ (higher is better) or ↓."""
    label = _METRIC_LABELS.get(metric, metric)
    if not arrow:
        return label
    return f"{label} {'↑' if metric_direction(metric) == 'higher' else '↓'}"


def _wide(table: pd.DataFrame) -> tuple[list[str], list[str], list[tuple[str, str, dict[str, Any]]]]:
    entries = list(dict.fromkeys(table["entry"]))
    labels = [table.loc[table["entry"] == entry, "entry_label"].iloc[0] for entry in entries]
    rows = []
    for (metric, dataset), group in table.groupby(["metric", "dataset"], sort=False):
        rows.append((metric, dataset, {row.entry: row for row in group.itertuples()}))
    return entries, labels, rows


def _wins(table: pd.DataFrame, entries: Sequence[str]) -> list[int]:
    return [int(table.loc[table["entry"] == entry, "best"].sum()) for entry in entries]


def _test_errors(table: pd.DataFrame, entries: Sequence[str]) -> list[tuple[str, list[float]]]:
    """Per dataset, the mean test MSE of the model each entry explains."""
    out = []
    for dataset in dict.fromkeys(table["dataset"]):
        rows = table[table["dataset"] == dataset].drop_duplicates("entry").set_index("entry")
        out.append((dataset, [float(rows["model_test_mse"].get(entry, np.nan)) for entry in entries]))
    return out


def _cell(mean: float, std: float, n_seeds: int, digits: int, bold: Callable[[str], str]) -> str:
    """``mean ± sd`` with the sd in the mean's notation (fixed decimals, or scientific like the mean)."""
    return mean_sd_text(mean, std if n_seeds >= 2 else math.nan, digits, bold)


def table_markdown(table: pd.DataFrame, *, digits: int = 3, rho: float = 0.0) -> str:
    """The paper-layout table as Markdown: ``mean ± sd`` over seeds, the best of each row in bold, a wins row and
    the explained model's test MSE per dataset."""
    entries, labels, rows = _wide(table)
    header = "| Metric | Dataset | " + " | ".join(labels) + " |"
    lines = [header, "|" + "---|" * (len(entries) + 2)]
    for metric, dataset, cells in rows:
        texts = []
        for entry in entries:
            row = cells.get(entry)
            if row is None:
                texts.append("")
                continue
            texts.append(_cell(row.mean, row.std, row.n_seeds, digits, lambda t, b=row.best: f"**{t}**" if b else t))
        lines.append(f"| {metric_label(metric)} | {dataset_label(dataset)} | " + " | ".join(texts) + " |")
    lines.append("| **Wins** | | " + " | ".join(str(wins) for wins in _wins(table, entries)) + " |")
    for dataset, errors in _test_errors(table, entries):
        values = " | ".join(number_text(error, digits) for error in errors)
        lines.append(f"| model test MSE | {dataset_label(dataset)} | {values} |")
    seeds = int(table["n_seeds"].max()) if len(table) else 0
    caption = (
        f"ρ = {rho:g}; mean ± sd over {seeds} seed(s); bold: best of the row (↑ higher, ↓ lower is better); "
        "Wins: rows an explainer is best in; the last rows give the test MSE of the model each column explains."
    )
    return "\n".join(lines) + "\n\n" + caption + "\n"


def _latex_escape(text: str) -> str:
    for old, new in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#")):
        text = text.replace(old, new)
    return text.replace("↑", r"$\uparrow$").replace("↓", r"$\downarrow$").replace("×", r"$\times$")


def table_latex(table: pd.DataFrame, *, digits: int = 3, rho: float = 0.0) -> str:
    """The paper-layout table as a LaTeX ``tabular`` (booktabs), formatted like :func:`table_markdown`."""
    entries, labels, rows = _wide(table)
    lines = [
        r"\begin{tabular}{ll" + "c" * len(entries) + "}",
        r"\toprule",
        "Metric & Dataset & " + " & ".join(_latex_escape(label) for label in labels) + r" \\",
        r"\midrule",
    ]
    for metric, dataset, cells in rows:
        texts = []
        for entry in entries:
            row = cells.get(entry)
            if row is None:
                texts.append("")
                continue
            cell = _cell(row.mean, row.std, row.n_seeds, digits, lambda t, b=row.best: rf"\textbf{{{t}}}" if b else t)
            texts.append(cell.replace("±", r"$\pm$"))
        lines.append(
            f"{_latex_escape(metric_label(metric))} & {_latex_escape(dataset_label(dataset))} & "
            + " & ".join(texts)
            + r" \\"
        )
    lines.append(r"\midrule")
    lines.append(r"Wins & & " + " & ".join(str(wins) for wins in _wins(table, entries)) + r" \\")
    for dataset, errors in _test_errors(table, entries):
        lines.append(
            f"model test MSE & {_latex_escape(dataset_label(dataset))} & "
            + " & ".join(number_text(error, digits) for error in errors)
            + r" \\"
        )
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------------------
# A run: configuration, the output directory, the units, the reports


def make_config(profile: str = "paper", **overrides: Any) -> BenchmarkConfig:
    """The settings of a profile, with explicit ``overrides`` (``None`` values keep the profile's).

    ``model_params`` overrides are merged over the profile's per model (the smoke profile starts from every
    method's registry ``smoke_params``).

    Raises:
        ValueError: an unknown profile or setting.
    """
    from methods import REGISTRY

    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    profile_settings = PROFILES[profile]
    settings = {key: value for key, value in profile_settings.items() if key not in ("smoke_models", "model_params")}
    settings.update({key: value for key, value in overrides.items() if value is not None and key != "model_params"})
    models = tuple(settings.get("models", BenchmarkConfig.models))
    if "posthoc_models" not in settings:  # the default post-hoc model, when it is trained at all
        settings["posthoc_models"] = tuple(model for model in DEFAULT_POSTHOC_MODELS if model in models)
    params: dict[str, dict[str, Any]] = {}
    if profile_settings.get("smoke_models"):
        params = {model: dict(REGISTRY[model].smoke_params) for model in models if model in REGISTRY}
    for layer in (profile_settings.get("model_params") or {}, overrides.get("model_params") or {}):
        for model, values in layer.items():
            if model in models:
                params.setdefault(model, {}).update(values)
    unknown = sorted(set(settings) - {f for f in BenchmarkConfig.__dataclass_fields__})
    if unknown:
        raise ValueError(f"unknown settings {unknown}")
    return BenchmarkConfig(**settings, model_params=params, profile=profile)


def validate(config: BenchmarkConfig) -> None:
    """Check a configuration before any work.

    Raises:
        UserError: a setting out of range, an unknown or unavailable model, explainer or metric (one line).
    """
    from errors import UserError
    from explainers import POSTHOC_EXPLAINERS
    from methods import REGISTRY
    from xai.shapley import MAX_SHAPLEY_FEATURES

    def fail(message: str) -> None:
        raise UserError(message)

    if not 2 <= config.d <= min(12, MAX_SHAPLEY_FEATURES):
        fail(f"--d must be between 2 and 12 (ground truth enumerates 2^d coalitions), got {config.d}")
    for rho in config.rhos:
        if not 0.0 <= rho < 1.0:
            fail(f"--rho values must lie in [0, 1), got {rho:g}")
    if len(set(config.rhos)) != len(config.rhos) or len(set(config.seeds)) != len(config.seeds):
        fail("--rho and --seeds must not repeat values")
    if any(seed < 0 for seed in config.seeds):
        fail("--seeds must be non-negative")
    for dataset in config.datasets:
        if dataset not in TARGETS:
            fail(f"unknown dataset {dataset!r}; choose from {', '.join(TARGETS)}")
    if config.n_train < 10 or config.n_test < 2:
        fail(f"need --n_train >= 10 and --n_test >= 2, got {config.n_train} and {config.n_test}")
    if config.noise < 0:
        fail(f"--noise must be >= 0, got {config.noise:g}")
    for model in config.models:
        if model not in REGISTRY:
            fail(f"unknown model {model!r}; registered methods: {', '.join(REGISTRY)}")
    for model in config.posthoc_models:
        if model not in config.models:
            fail(f"--posthoc_models {model} must also be one of --models ({' '.join(config.models)})")
    for explainer in config.explainers:
        if explainer not in POSTHOC_EXPLAINERS:
            fail(f"unknown explainer {explainer!r}; choose from {', '.join(POSTHOC_EXPLAINERS)}")
        try:
            POSTHOC_EXPLAINERS[explainer]
        except ImportError as error:
            fail(f"explainer {explainer} is not available here ({error})")
    for metric in config.metrics:
        if metric not in BENCHMARK_METRICS:
            fail(f"unknown metric {metric!r}; choose from {', '.join(BENCHMARK_METRICS)}")
    counts = {
        "gt_samples": config.gt_samples,
        "gt_background": config.gt_background,
        "faithfulness_samples": config.faithfulness_samples,
        "infidelity_perturbations": config.infidelity_perturbations,
        "background_size": config.background_size,
        "lime_samples": config.lime_samples,
        "ig_steps": config.ig_steps,
    }
    for name, value in counts.items():
        if value < 1 or (name == "lime_samples" and value < 2):
            fail(f"--{name} must be a positive count, got {value}")
    if not config.lime_kernel_width > 0:
        fail(f"--lime_kernel_width must be > 0, got {config.lime_kernel_width:g}")
    for model, params in config.model_params.items():
        if model in REGISTRY:
            try:
                REGISTRY[model].resolve_params("regression", params)
            except ValueError as error:
                fail(str(error))


def available_explainers() -> tuple[str, ...]:
    """The post-hoc explainers whose modules import here (``cd`` needs ``explainers.cd``, SHAP needs shap ...)."""
    from explainers import POSTHOC_EXPLAINERS

    available = []
    for explainer in POSTHOC_EXPLAINERS:
        try:
            cls = POSTHOC_EXPLAINERS[explainer]
            if explainer == "cd":
                import explainers.cd  # noqa: F401 - the adapter imports it lazily
            elif explainer in ("exact_shap", "kernel_shap"):
                import shap  # noqa: F401
            elif explainer == "lime":
                import lime  # noqa: F401
            elif explainer == "integrated_gradients":
                import captum  # noqa: F401
            del cls
        except ImportError:
            continue
        available.append(explainer)
    return tuple(available)


def plan(config: BenchmarkConfig, output_dir: str | Path, *, force: bool = False) -> tuple[list[Unit], list[Unit]]:
    """The units to compute and the finished ones, after checking the output directory (before any work).

    A unit is finished when its file exists and holds rows of the same settings. A file of other settings is an
    error (``force``: recompute it), so results of two configurations never mix.

    Raises:
        UserError: the output directory is a file or not writable, or holds units of other settings.
    """
    import os

    from errors import UserError

    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise UserError(f"--output_dir {output_dir} is a file, not a directory")
    existing = output_dir
    while not existing.exists():
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"--output_dir {output_dir}: cannot write in {existing}")
    todo, done, conflicts = [], [], []
    hashes = {model: settings_hash(config.unit_settings(model)) for model in config.models}
    for dataset in config.datasets:
        for rho in config.rhos:
            for seed in config.seeds:
                for model in config.models:
                    unit = Unit(dataset, float(rho), int(seed), model)
                    path = unit_path(output_dir, unit)
                    if not path.exists():
                        todo.append(unit)
                        continue
                    try:
                        stored = pd.read_csv(path, usecols=["settings_hash"], nrows=1)["settings_hash"]
                        same = len(stored) == 1 and str(stored.iloc[0]) == hashes[model]
                    except (ValueError, OSError, pd.errors.ParserError):
                        same = False
                    if same and not force:
                        done.append(unit)
                    elif same or force:
                        todo.append(unit)
                    else:
                        conflicts.append(path)
    if conflicts:
        raise UserError(
            f"{output_dir} holds {len(conflicts)} unit(s) computed with other settings (e.g. {conflicts[0]}); "
            "use another --output_dir, or --force to recompute them"
        )
    return todo, done


def run_benchmark(
    config: BenchmarkConfig,
    output_dir: str | Path,
    *,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Compute every unfinished unit (each written atomically when done), then the combined table and reports.

    Returns:
        A summary: units computed and skipped, seconds per computed unit, the written files.
    """
    from experiments.results import atomic_write_bytes

    validate(config)
    todo, done = plan(config, output_dir, force=force)
    log(f"{len(todo)} unit(s) to compute, {len(done)} already done in {output_dir}")
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    for unit in todo:
        cpu = time.process_time()
        frame, elapsed = _timed(lambda unit=unit: run_unit(config, unit, log=log))
        frame["unit_seconds"] = elapsed
        # CPU seconds of this process: on a shared machine the wall time also counts other people's jobs.
        frame["unit_cpu_seconds"] = time.process_time() - cpu
        atomic_write_bytes(unit_path(output_dir, unit), csv_bytes(frame))
        seconds[f"{unit.dataset}/rho{unit.rho:g}/seed{unit.seed}/{unit.model}"] = elapsed
        log(f"{unit}: done in {elapsed:.1f}s")
    files = write_reports(config, output_dir)
    summary = {
        "profile": config.profile,
        "computed": len(todo),
        "skipped": len(done),
        "seconds": time.perf_counter() - start,
        "unit_seconds": seconds,
        "files": [str(path) for path in files],
    }
    return summary


def write_reports(config: BenchmarkConfig, output_dir: str | Path) -> list[Path]:
    """The combined table, the paper-layout tables and the figures of every finished unit of ``config``.

    Every file is written atomically: ``results.csv`` (tidy), ``table_rho<ρ>.{md,tex,csv}`` (at ρ = 0, or the
    smallest ρ present) and ``figures/<dataset>.png`` (every metric against ρ), and ``config.json``.
    """
    from experiments.results import atomic_write_bytes, json_bytes, library_versions

    output_dir = Path(output_dir)
    frame = combine(output_dir, config=config, datasets=config.datasets, models=config.models)
    written: list[Path] = []

    def write(name: str, data: bytes) -> None:
        path = output_dir / name
        atomic_write_bytes(path, data)
        written.append(path)

    from methods import REGISTRY

    settings = {model: config.unit_settings(model) for model in config.models}
    resolved = {
        model: REGISTRY[model].resolve_params("regression", config.params_for(model)) for model in config.models
    }
    write(
        "config.json",
        json_bytes(
            {
                "config": asdict(config),
                "unit_settings": settings,
                "resolved_model_params": resolved,
                "versions": library_versions(),
                "created": time.ctime(),
            }
        ),
    )
    if frame.empty:
        return written
    write("results.csv", csv_bytes(frame))
    rho = 0.0 if np.isclose(frame["rho"], 0.0).any() else float(frame["rho"].min())
    table = paper_table(frame, rho=rho)
    stem = f"table_rho{rho:g}"
    write(f"{stem}.md", table_markdown(table, rho=rho).encode())
    write(f"{stem}.tex", table_latex(table, rho=rho).encode())
    write(f"{stem}.csv", csv_bytes(table))
    from studies.xai_bench.figures import figure_bytes, metric_vs_rho_figure

    for dataset in dict.fromkeys(frame["dataset"]):
        figure = metric_vs_rho_figure(frame, dataset)
        write(f"figures/{dataset}.png", figure_bytes(figure))
    return written
