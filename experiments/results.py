"""The results schema and the results tree: the one definition that writers and readers share.

A run writes ``<output_dir>/<method>/<dataset_id>/<seed>/output_info.json`` last and atomically, so that
the file's existence means the run is complete. Readers (plots, sweeps) validate with :func:`read_report`.
"""

from __future__ import annotations

import json
import math
import os
import platform
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np

RESULTS_FILENAME = "output_info.json"
ERROR_FILENAME = "error.json"
EXPLANATIONS_FILENAME = "explanations.npz"
MODEL_FILENAME = "model.pt"

NEURAL_METHODS = ("inn", "tabresnet")
BASELINE_METHODS = ("catboost", "random_forest", "logistic_regression", "decision_tree", "tabnet")
METHODS = NEURAL_METHODS + BASELINE_METHODS

Task = Literal["binary", "multiclass", "regression"]

#: Keys every complete report has, whatever the task.
COMMON_KEYS = (
    "method",
    "dataset_id",
    "dataset_name",
    "seed",
    "task",
    "n_classes",
    "n_train",
    "n_test",
    "n_features",
    "n_inputs",
    "feature_names",
    "time",
    "train_time",
    "inference_time",
    "feature_importances",
    "top_10_features",
    "top_10_features_weights",
    "config",
    "versions",
    "created",
)
CLASSIFICATION_METRICS = ("train_auroc", "train_accuracy", "test_auroc", "test_accuracy")
REGRESSION_METRICS = ("train_mse", "test_mse")


def metric_keys(task: str) -> tuple[str, ...]:
    """The metric keys a report of ``task`` must hold."""
    return REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS


def run_dir(output_dir: str | Path, method: str, dataset_id: int | str, seed: int) -> Path:
    """The directory of one run in the results tree."""
    return Path(output_dir) / method / str(dataset_id) / str(seed)


def results_path(output_dir: str | Path, method: str, dataset_id: int | str, seed: int) -> Path:
    """The path of one run's ``output_info.json``."""
    return run_dir(output_dir, method, dataset_id, seed) / RESULTS_FILENAME


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries a result depends on (those importable here)."""
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for package in ("torch", "numpy", "pandas", "scikit-learn", "openml", "catboost", "pytorch-tabnet"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def normalised_importances(feature_names: Sequence[str], importances: Sequence[float]) -> dict[str, float]:
    """Map features to non-negative importances that sum to 1 (uniform if all are zero)."""
    values = np.abs(np.asarray(importances, dtype=np.float64))
    if values.shape != (len(feature_names),):
        raise ValueError(f"{len(feature_names)} feature names but importances of shape {values.shape}")
    total = values.sum()
    values = values / total if total > 0 else np.full(len(values), 1.0 / max(len(values), 1))
    return {str(name): float(value) for name, value in zip(feature_names, values, strict=True)}


def build_report(
    *,
    method: str,
    dataset_id: int | str,
    dataset_name: str,
    seed: int,
    task: Task,
    n_classes: int,
    n_train: int,
    n_test: int,
    feature_names: Sequence[str],
    n_inputs: int,
    metrics: Mapping[str, float],
    train_time: float,
    inference_time: float,
    importances: Sequence[float],
    config: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble a complete report; raises ``ValueError`` if a required metric is missing."""
    missing = [key for key in metric_keys(task) if key not in metrics]
    if missing:
        raise ValueError(f"metrics missing for a {task} report: {missing}")
    feature_importances = normalised_importances(feature_names, importances)
    ranked = sorted(feature_importances.items(), key=lambda item: item[1], reverse=True)[:10]
    report: dict[str, Any] = {
        "method": method,
        "dataset_id": dataset_id,
        "dataset_name": dataset_name,
        "seed": seed,
        "task": task,
        "n_classes": n_classes,
        "n_train": n_train,
        "n_test": n_test,
        "n_features": len(feature_names),
        "n_inputs": n_inputs,
        "feature_names": [str(name) for name in feature_names],
        **{key: float(value) for key, value in metrics.items()},
        "time": float(train_time),
        "train_time": float(train_time),
        "inference_time": float(inference_time),
        "feature_importances": feature_importances,
        "top_10_features": [name for name, _ in ranked],
        "top_10_features_weights": [weight for _, weight in ranked],
        "config": dict(config),
        "versions": library_versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if extra:
        report.update(extra)
    return report


def split_fields(split: Any) -> dict[str, Any]:
    """The report fields that describe the data of a run, from a ``data.PreparedSplit``."""
    return {
        "dataset_id": split.dataset_id,
        "dataset_name": split.dataset_name,
        "task": split.task,
        "n_classes": split.n_classes or 0,
        "n_train": split.n_train,
        "n_test": split.n_test,
        "feature_names": split.feature_names,
    }


def summary_line(report: Mapping[str, Any], path: str | Path) -> str:
    """One line for the terminal: the method, the dataset, the test scores, the fit time and where it went."""
    keys = ("test_mse",) if report["task"] == "regression" else ("test_auroc", "test_accuracy")
    scores = ", ".join(f"{key} {report[key]:.4f}" for key in keys if report.get(key) is not None)
    return (
        f"{report['method']} on {report['dataset_name']} (seed {report['seed']}): {scores}, "
        f"fit {report['train_time']:.2f}s -> {path}"
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either nothing or the whole file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp_name, 0o666 & ~_UMASK)  # mkstemp creates 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, obj: Mapping[str, Any]) -> None:
    """Serialise ``obj`` (NaN becomes null) and write it atomically."""
    text = json.dumps(_replace_nan(obj), indent=2, default=_json_default, allow_nan=False)
    atomic_write_bytes(path, (text + "\n").encode())


def _replace_nan(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _replace_nan(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_replace_nan(item) for item in value]
    return value


def missing_keys(report: Mapping[str, Any]) -> list[str]:
    """Required keys absent from ``report`` (empty when it is complete)."""
    required = COMMON_KEYS + metric_keys(str(report.get("task", "")))
    return [key for key in required if key not in report]


def read_report(path: str | Path) -> dict[str, Any]:
    """Read and validate one ``output_info.json``.

    Raises:
        ValueError: the file cannot be parsed or misses required keys (the message names the file).
    """
    path = Path(path)
    try:
        report = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: unreadable results file ({error})") from None
    if not isinstance(report, dict):
        raise ValueError(f"{path}: not a JSON object")
    missing = missing_keys(report)
    if missing:
        raise ValueError(f"{path}: incomplete results file, missing {missing}")
    return report


def is_complete(path: str | Path) -> bool:
    """Whether ``path`` holds a complete, readable report (a finished run)."""
    try:
        read_report(path)
    except ValueError:
        return False
    return True


def iter_result_files(results_dir: str | Path) -> Iterator[tuple[str, str, str, Path]]:
    """Yield ``(method, dataset_id, seed, path)`` for every ``output_info.json`` in a results tree."""
    for path in sorted(Path(results_dir).glob(f"*/*/*/{RESULTS_FILENAME}")):
        seed_dir = path.parent
        yield seed_dir.parent.parent.name, seed_dir.parent.name, seed_dir.name, path
