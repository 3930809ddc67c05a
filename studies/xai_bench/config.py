"""The benchmark's settings: the metrics it reports, :class:`BenchmarkConfig`, the named :data:`PROFILES` and
:func:`make_config`, and the hash that ties a unit's rows to the settings that produced them (the checks made
before any work are ``planning.validate``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from data.synthetic import TARGETS
from xai.metrics import METRICS

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


def metric_direction(metric: str) -> str:
    """``higher`` or ``lower``: which values of a benchmark metric are better."""
    return METRICS[BENCHMARK_METRICS[metric]].direction


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


def unit_metrics(config: BenchmarkConfig) -> list[str]:
    """The metrics a unit scores, in table order."""
    return [metric for metric in BENCHMARK_METRICS if metric in config.metrics]
