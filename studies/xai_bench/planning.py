"""What a run will do, and whether it can: the checks made before any work, the explanations of each model, the
units to compute and those done.

:func:`validate` checks a configuration (settings, models, explainers, metrics, and every model parameter as its
registry flag and its estimator would check it); :func:`entries_of` lists the explanations of one model
(:class:`Entry`: its own, then the post-hoc explainers'); :func:`plan` walks the units of a configuration and
sorts them into those to compute, those finished and those whose file is damaged, after checking the output
directory, so that results of two configurations never mix.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data.synthetic import TARGETS, make_synthetic
from errors import UserError
from experiments.results import resolve_inside
from studies.xai_bench.config import (
    BENCHMARK_METRICS,
    DEFAULT_POSTHOC_MODELS,
    PROFILES,
    BenchmarkConfig,
    settings_hash,
    unit_metrics,
)
from studies.xai_bench.fitting import synthetic_split
from studies.xai_bench.unit_file import (
    UNITS_DIRNAME,
    DamagedUnitFile,
    Unit,
    read_unit,
    unit_path,
)


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
    covered = model in config.posthoc_models and spec.explainer_id in config.explainers
    if spec.explainer_id not in POSTHOC_EXPLAINERS or not covered:
        entries.append(Entry(model, spec.explainer_id, model, True))
    if model in config.posthoc_models:
        for explainer in config.explainers:
            entry_id = explainer if model in DEFAULT_POSTHOC_MODELS else f"{explainer}@{model}"
            entries.append(Entry(entry_id, explainer, model, False))
    return entries


def applicable(explainer: str, spec: Any) -> bool:
    """Whether a post-hoc explainer can explain a method's models (gradients and CD need a network)."""
    from explainers import POSTHOC_EXPLAINERS

    requires = getattr(POSTHOC_EXPLAINERS[explainer], "requires", "predict")
    return requires == "predict" or (spec.kind == "neural" and spec.input_kind == "matrix")


def expected_rows(config: BenchmarkConfig, model: str) -> set[tuple[str, str]]:
    """The (entry, metric) pairs of a finished unit of ``model`` (entries that apply, every metric)."""
    from methods import REGISTRY

    spec = REGISTRY[model]
    return {
        (entry.id, metric)
        for entry in entries_of(config, model)
        if entry.native or applicable(entry.explainer, spec)
        for metric in unit_metrics(config)
    }


def check_complete(config: BenchmarkConfig, model: str, frame: Any) -> None:
    """Check that a unit file of these settings holds every row of a finished unit.

    Raises:
        DamagedUnitFile: rows are missing or unexpected.
    """
    expected = expected_rows(config, model)
    stored = set(zip(frame["entry"], frame["metric"], strict=True))
    if stored != expected:
        raise DamagedUnitFile(f"holds {len(stored & expected)} of the {len(expected)} rows of a finished unit")


# ----------------------------------------------------------------------------------------------------------
# Checks before any work


def validate(config: BenchmarkConfig) -> None:
    """Check a configuration before any work.

    Raises:
        UserError: a setting out of range, an unknown or unavailable model, explainer or metric, a model
            parameter its method does not have or its estimator refuses (one line).
    """
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
    check_model_params(config)


def _probe_split(config: BenchmarkConfig) -> Any:
    """A tiny split of the configuration's shape, to build estimators on (nothing is trained)."""
    data = make_synthetic(TARGETS[0], d=config.d, rho=0.0, n_train=10, n_test=2, noise=config.noise, seed=0)
    return synthetic_split(data, TARGETS[0])


def check_model_params(config: BenchmarkConfig) -> None:
    """Check every model's parameters before any work: names (the registry's defaults), values of the parameters
    a registry flag sets (by the flag's type and choices), and all of them by the estimator's own checks (built
    on a tiny split, not trained).

    Raises:
        UserError: a parameter its method does not have, or a value its flag or estimator refuses (one line).
    """
    from methods import REGISTRY

    for model in config.models:
        params = config.params_for(model)
        if not params or model not in REGISTRY:
            continue
        spec = REGISTRY[model]
        try:
            spec.resolve_params("regression", params)
        except ValueError as error:
            raise UserError(str(error)) from None
        flags = {flag.parameter: flag for flag in spec.flags}
        for name, value in params.items():
            flag = flags.get(name)
            if flag is None:
                continue
            try:
                flag.type(str(value))
            except (argparse.ArgumentTypeError, ValueError, TypeError) as error:
                raise UserError(f"--param {model}.{name}={value!r}: {error}") from None
            if flag.choices is not None and value not in flag.choices:
                choices = ", ".join(map(str, flag.choices))
                raise UserError(f"--param {model}.{name}={value!r}: choose from {choices}")
        try:
            estimator = spec.build(_probe_split(config), seed=0, device="cpu", n_jobs=1, params=params)
            if hasattr(estimator, "_check_params"):  # the project's networks: the checks their fit starts with
                estimator._check_params()
            elif hasattr(type(estimator), "_parameter_constraints"):  # scikit-learn's declared constraints
                estimator._validate_params()
        except (ValueError, TypeError) as error:
            raise UserError(f"--param {model}: {' '.join(str(error).split())}") from None


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


# ----------------------------------------------------------------------------------------------------------
# Which units are done


@dataclass(frozen=True)
class Plan:
    """The units of a configuration, sorted.

    Attributes:
        todo: units to compute (missing, damaged, or finished but ``force``).
        done: finished units of these settings.
        damaged: unit files that fail :func:`unit_file.read_unit` or miss rows, with the reason (also in ``todo``
            unless reporting only).
    """

    todo: list[Unit] = field(default_factory=list)
    done: list[Unit] = field(default_factory=list)
    damaged: dict[Path, str] = field(default_factory=dict)


def plan(config: BenchmarkConfig, output_dir: str | Path, *, force: bool = False, report_only: bool = False) -> Plan:
    """The units to compute, the finished ones and the damaged files, after checking the output directory (before
    any work).

    A unit is finished when its file holds every row of a unit of the same settings. A file of other settings is
    an error (``force``: recompute it), so results of two configurations never mix; a damaged file (unreadable,
    truncated, edited) counts as not done.

    Args:
        config: the run's settings.
        output_dir: the output directory.
        force: recompute finished units and units of other settings.
        report_only: the run only reports (``force`` is ignored; nothing will be written under ``units/``).

    Raises:
        UserError: the output directory is a file or not writable, a unit's or a report's path resolves outside
            it (a symbolic link out of the folder), or it holds units of other settings.
    """
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise UserError(f"--output_dir {output_dir} is a file, not a directory")
    existing = output_dir
    while not existing.exists():
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"--output_dir {output_dir}: cannot write in {existing}")
    for name in ("config.json", "results.csv", "figures", UNITS_DIRNAME):
        resolve_inside(output_dir / name, output_dir, what="--output_dir file")
    force = force and not report_only
    result, conflicts = Plan(), []
    hashes = {model: settings_hash(config.unit_settings(model)) for model in config.models}
    for dataset in config.datasets:
        for rho in config.rhos:
            for seed in config.seeds:
                for model in config.models:
                    unit = Unit(dataset, float(rho), int(seed), model)
                    path = resolve_inside(
                        unit_path(output_dir, unit), output_dir, what="--output_dir file"
                    )  # a link out of the folder: refused
                    if not path.exists():
                        result.todo.append(unit)
                        continue
                    try:
                        frame = read_unit(path, unit)
                        same = frame["settings_hash"].iloc[0] == hashes[model]
                        if same:
                            check_complete(config, model, frame)
                    except DamagedUnitFile as reason:
                        result.damaged[path] = str(reason)
                        result.todo.append(unit)
                        continue
                    if same and not force:
                        result.done.append(unit)
                    elif same or force:
                        result.todo.append(unit)
                    else:
                        conflicts.append((path, frame["profile"].iloc[0]))
    if conflicts:
        raise UserError(_conflict_message(config, output_dir, conflicts, report_only=report_only))
    return result


def _conflict_message(
    config: BenchmarkConfig, output_dir: Path, conflicts: list[tuple[Path, str]], *, report_only: bool
) -> str:
    """Units of other settings: what they are, and the advice that keeps them (the profile they were run with)."""
    profiles = sorted({profile for _, profile in conflicts})
    message = f"{output_dir} holds {len(conflicts)} unit(s) computed with other settings (e.g. {conflicts[0][0]})"
    other = profiles[0] if len(profiles) == 1 and profiles[0] != config.profile and profiles[0] in PROFILES else None
    if report_only:
        if other is not None:
            return f"{message}: they were computed with --profile {other}; add --profile {other} to report them"
        return f"{message}; report them with the flags they were computed with"
    if other is not None:
        return (
            f"{message}: they were computed with --profile {other}; add --profile {other} to resume them, use "
            "another --output_dir, or --force to recompute them"
        )
    return f"{message}; use another --output_dir, or --force to recompute them"
