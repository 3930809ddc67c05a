"""The results schema and the results tree: the one definition that writers and readers share.

A run writes ``<output_dir>/<run_id>/<dataset_id>/<seed>/`` as one unit (:func:`write_run_atomically`): every
file of the run appears together with its ``output_info.json`` or not at all, so the report's existence means
the run is complete. ``run_id`` is the method id, or ``<method>-<variant>`` for a named variant (a penalty
strength, an ablation). Readers (plots, sweeps) validate with :func:`read_report`, which also accepts the
reports of schema version 1 (no ``schema_version`` key). ``explanations.npz`` has its writer and reader here too
(:func:`explanation_arrays`, :func:`read_explanations`). Metric directions come from :data:`METRIC_DIRECTIONS`.
:func:`load_runs` reads a whole tree into one tidy DataFrame (one row per run) for the plots.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import platform
import shutil
import stat
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np

from errors import UserError
from methods import baseline_methods, method_ids, neural_methods, parse_run_id, run_id

if TYPE_CHECKING:  # pandas is imported by load_runs only: the experiment scripts do not need it
    import pandas as pd

RESULTS_FILENAME = "output_info.json"
ERROR_FILENAME = "error.json"
EXPLANATIONS_FILENAME = "explanations.npz"
MODEL_FILENAME = "model.pt"
#: The version of ``output_info.json`` and ``explanations.npz`` this code writes (1: no ``schema_version`` key).
SCHEMA_VERSION = 2
#: What a report describes: one trained model on one dataset and seed.
RUN_KIND = "run"

NEURAL_METHODS = neural_methods()
BASELINE_METHODS = baseline_methods()
METHODS = method_ids()

Task = Literal["binary", "multiclass", "regression"]
Direction = Literal["max", "min"]

#: Direction of every metric, by its name without the ``train_``/``test_``/``valid_`` prefix (or a suffix rule
#: below). The one table that rankings, tables and the HPO objective read.
METRIC_DIRECTIONS: dict[str, Direction] = {
    "auroc": "max",
    "accuracy": "max",
    "mse": "min",
    "time": "min",
    # interpretability metrics (XAI benchmark, SENN's metrics, reliance)
    "faithfulness": "max",
    "monotonicity": "max",
    "infidelity": "min",
    "roar_faithfulness": "max",
    "roar_monotonicity": "max",
    "shapley_mse": "min",
    "shapley_corr": "max",
    "shapley_mse_interventional": "min",
    "shapley_corr_interventional": "max",
    "local_fidelity": "min",
    "lipschitz": "min",
    "lipschitz_discrete": "min",
    "lipschitz_continuous": "min",
    "stability": "min",
    "removal_faithfulness": "max",
    "sensitivity_rank_correlation": "max",
    "flip_rate": "min",
    "mean_abs_delta_logit": "min",
    "auroc_drop": "min",
}
_METRIC_PREFIXES = ("train_", "test_", "valid_")
_METRIC_SUFFIX_RULES: tuple[tuple[str, Direction], ...] = (("_time", "min"), ("_mse", "min"), ("_auroc", "max"))


def metric_direction(metric: str) -> Direction:
    """``max`` or ``min``: whether a larger value of ``metric`` is better.

    Raises:
        KeyError: the metric is in no table (add it to :data:`METRIC_DIRECTIONS`, never guess).
    """
    name = metric
    for prefix in _METRIC_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    if name in METRIC_DIRECTIONS:
        return METRIC_DIRECTIONS[name]
    for suffix, direction in _METRIC_SUFFIX_RULES:
        if name.endswith(suffix):
            return direction
    raise KeyError(f"no direction known for metric {metric!r}; add it to experiments.results.METRIC_DIRECTIONS")


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better (see :func:`metric_direction`)."""
    return metric_direction(metric) == "max"


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


def run_dir(output_dir: str | Path, method: str, dataset_id: int | str, seed: int, variant: str | None = None) -> Path:
    """The directory of one run in the results tree (``method`` may already be a run id ``<method>-<variant>``)."""
    return Path(output_dir) / run_id(method, variant) / str(dataset_id) / str(seed)


def results_path(
    output_dir: str | Path, method: str, dataset_id: int | str, seed: int, variant: str | None = None
) -> Path:
    """The path of one run's ``output_info.json``."""
    return run_dir(output_dir, method, dataset_id, seed, variant) / RESULTS_FILENAME


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries a result depends on (those importable here)."""
    from importlib import metadata

    versions = {"python": platform.python_version()}
    packages = ("torch", "numpy", "pandas", "scikit-learn", "openml", "catboost", "pytorch-tabnet", "interpret-core")
    for package in packages:
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
    variant: str | None = None,
) -> dict[str, Any]:
    """Assemble a complete report; raises ``ValueError`` if a required metric is missing."""
    missing = [key for key in metric_keys(task) if key not in metrics]
    if missing:
        raise ValueError(f"metrics missing for a {task} report: {missing}")
    feature_importances = normalised_importances(feature_names, importances)
    ranked = sorted(feature_importances.items(), key=lambda item: item[1], reverse=True)[:10]
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": RUN_KIND,
        "run_id": run_id(method, variant),
        "variant": variant,
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
    atomic_write_bytes(path, json_bytes(obj))


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
    """Read and validate one ``output_info.json`` (schema version 1 or 2).

    A version-1 report (written before ``schema_version`` existed) is returned with ``schema_version`` 1,
    ``kind`` ``run``, ``variant`` None and ``run_id`` = its method, so readers see one shape.

    Raises:
        ValueError: the file cannot be parsed, is of an unknown schema version or kind, or misses required keys
            (the message names the file).
    """
    path = Path(path)
    try:
        report = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: unreadable results file ({error})") from None
    if not isinstance(report, dict):
        raise ValueError(f"{path}: not a JSON object")
    version = report.get("schema_version", 1)
    if version not in (1, SCHEMA_VERSION):
        raise ValueError(f"{path}: results schema version {version!r}; this code reads versions 1 and {SCHEMA_VERSION}")
    if report.get("kind", RUN_KIND) != RUN_KIND:
        raise ValueError(f"{path}: a {report.get('kind')!r} file, not the report of a run")
    missing = missing_keys(report)
    if missing:
        raise ValueError(f"{path}: incomplete results file, missing {missing}")
    if version == 1:
        report = {"schema_version": 1, "kind": RUN_KIND, "variant": None, "run_id": report["method"], **report}
    return report


def is_complete(path: str | Path) -> bool:
    """Whether ``path`` holds a complete, readable report (a finished run)."""
    try:
        read_report(path)
    except ValueError:
        return False
    return True


def iter_result_files(results_dir: str | Path) -> Iterator[tuple[str, str, str, Path]]:
    """Yield ``(run_id, dataset_id, seed, path)`` for every ``output_info.json`` in a results tree.

    ``run_id`` is the first directory level: a method id, or ``<method>-<variant>`` (see
    ``methods.parse_run_id``). Hidden directories (sweep state, temporaries of runs being written) are skipped.
    """
    for path in sorted(Path(results_dir).glob(f"*/*/*/{RESULTS_FILENAME}")):
        seed_dir = path.parent
        parts = (seed_dir.parent.parent.name, seed_dir.parent.name, seed_dir.name)
        if any(part.startswith(".") for part in parts):
            continue
        yield parts[0], parts[1], parts[2], path


# ----------------------------------------------------------------------------------------------------------
# Names and paths read from files: one rule
#
# A results folder may come from a stranger. Every name read from one of its files that becomes part of a path
# must be one plain path component (:func:`plain_component`); every path the project writes is resolved and must
# lie under the output location it was given (:func:`resolve_inside`); a symlink in a results folder that leaves
# the folder is refused before anything in the folder is read (:func:`check_symlinks_inside`).

#: The longest file name most file systems accept (bytes).
_MAX_NAME_BYTES = 255


def plain_component(value: Any, field: str) -> str:
    """``value`` as one plain path component, the only way a name read from a file may become part of a path.

    A plain component is a non-empty ``str`` or an ``int`` in ``[0, 2**63)`` (never a bool) whose text has no ``/``,
    ``\\``, NUL or control character, is not ``.`` or ``..``, does not start with ``.`` (hidden names are
    bookkeeping: ``.sweep/``, ``.staging-*``) and is at most 255 bytes.

    Args:
        value: the name as read (from JSON: a string or an integer such as a seed or an OpenML id).
        field: what the value is, for the message (``output_info.json: run_id``).

    Raises:
        UserError: the value is not one plain path component (the message names the field and the reason).
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise UserError(f"{field}: {type(value).__name__} {_shown(value)} is not a name (a string or an integer)")
    if isinstance(value, int) and not 0 <= value < 2**63:
        raise UserError(f"{field}: {_shown(value)} is negative or beyond 64 bits, not a name")
    text = str(value)
    reason = None
    if not text:
        reason = "is empty"
    elif text in (".", ".."):
        reason = "is a relative folder reference"
    elif any(char in text for char in "/\\\x00"):
        reason = "holds a path separator or NUL: it is a path, not one name"
    elif text.startswith("."):
        reason = "starts with '.' (hidden names are bookkeeping)"
    elif any(ord(char) < 32 or ord(char) == 127 for char in text):
        reason = "holds a control character"
    elif len(text.encode("utf-8", "surrogatepass")) > _MAX_NAME_BYTES:
        reason = f"is longer than {_MAX_NAME_BYTES} bytes"
    if reason is not None:
        raise UserError(f"{field}: {_shown(text)} {reason}; a name read from a file must be one plain path component")
    return text


def _shown(value: Any) -> str:
    """``repr(value)``, shortened for a one-line message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def resolve_inside(path: str | Path, root: str | Path, *, what: str = "output") -> Path:
    """``path`` resolved (symlinks followed, ``..`` removed), proven to lie in ``root`` (resolved too) or be it.

    Call it on every path the project is about to write, with ``root`` the output location it was given, and on
    every file of a results folder before it is read, with ``root`` the folder.

    Args:
        path: the path to write or read (absolute, or relative to the current directory).
        root: the location it must lie in.
        what: what ``path`` is, for the message.

    Returns:
        The resolved path.

    Raises:
        UserError: the resolved path lies outside ``root`` (nothing has been written or read).
    """
    resolved, base = Path(path).resolve(), Path(root).resolve()
    if resolved != base and base not in resolved.parents:
        raise UserError(f"{what} {path} resolves to {resolved}, outside {base}; refused")
    return resolved


def check_symlinks_inside(folder: str | Path) -> None:
    """Refuse a results folder in which a symlink leads outside the folder, or which holds a special file (a FIFO,
    socket or device, whose reading could block or never end); checked before any file is read.

    Only the entries themselves are inspected (``os.scandir`` and ``stat``, which read no content), so nothing outside
    is read. Links that stay inside the folder are allowed.

    Raises:
        UserError: a symlink in ``folder`` (at any depth) resolves outside it or loops, or an entry is neither a
            regular file nor a folder.
    """
    base = Path(folder).resolve()
    pending = [base]
    while pending:
        current = pending.pop()
        with os.scandir(current) as entries:
            for entry in entries:
                path = Path(entry.path)
                if entry.is_symlink():
                    try:
                        target = path.resolve(strict=False)
                    except (OSError, RuntimeError):  # a symlink loop
                        raise UserError(f"{path}: refused: a symlink that loops") from None
                    if target != base and base not in target.parents:
                        raise UserError(
                            f"{path}: refused: a symlink to {target}, outside the results folder {base} "
                            "(a results folder's files must lie in it)"
                        )
                elif entry.is_dir(follow_symlinks=False):
                    pending.append(path)
                try:
                    mode = entry.stat(follow_symlinks=True).st_mode
                except OSError:  # a link to nothing inside the folder: a missing file, reported when it is needed
                    continue
                if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    raise UserError(f"{path}: refused: not a regular file or folder (a FIFO, socket or device)")


# ----------------------------------------------------------------------------------------------------------
# A run folder as one unit

#: Prefixes of the temporary siblings of a run folder (a run being written, an old run being replaced).
_STAGING_PREFIX = ".staging-"
_RETIRED_PREFIX = ".retired-"


def write_run_atomically(directory: str | Path, files: Mapping[str, bytes]) -> None:
    """Write a run's files so that ``directory`` holds either the old complete run or the new one.

    The files are written and synced into a hidden sibling folder; then the old folder (if any) is renamed aside
    and the new one renamed into place, both atomic renames on one file system; then the old one is deleted.
    A crash leaves the old run, the new run, or no folder (the run is pending and reruns); leftover hidden
    siblings are removed by :func:`remove_stale_siblings` on the next write.

    Args:
        directory: the run folder (``<output_dir>/<run_id>/<dataset>/<seed>``).
        files: file name -> content; must include ``output_info.json``.
    """
    directory = Path(directory)
    if RESULTS_FILENAME not in files:
        raise ValueError(f"a run's files must include {RESULTS_FILENAME}")
    parent = directory.parent
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(directory)
    token = uuid.uuid4().hex[:12]
    staging = parent / f"{_STAGING_PREFIX}{directory.name}.{token}"
    retired = parent / f"{_RETIRED_PREFIX}{directory.name}.{token}"
    try:
        staging.mkdir()
        os.chmod(staging, 0o777 & ~_UMASK)
        for name, data in files.items():
            _write_synced(staging / name, data)
        _fsync_directory(staging)
        if directory.exists():
            os.replace(directory, retired)
        os.replace(staging, directory)
        _fsync_directory(parent)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if retired.exists() and not directory.exists():
            os.replace(retired, directory)  # put the old run back
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise UserError(
                f"no space left on the disk of {directory} while writing the run; nothing was written"
            ) from None
        raise
    shutil.rmtree(retired, ignore_errors=True)


def remove_stale_siblings(directory: str | Path) -> None:
    """Delete the hidden staging/retired siblings that an interrupted :func:`write_run_atomically` left."""
    directory = Path(directory)
    if not directory.parent.is_dir():
        return
    for prefix in (_STAGING_PREFIX, _RETIRED_PREFIX):
        for stale in directory.parent.glob(f"{prefix}{directory.name}.*"):
            shutil.rmtree(stale, ignore_errors=True)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, 0o666 & ~_UMASK)


def _fsync_directory(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def json_bytes(obj: Mapping[str, Any]) -> bytes:
    """``obj`` as the bytes of a JSON file (NaN becomes null), as :func:`write_json_atomic` writes it."""
    text = json.dumps(_replace_nan(obj), indent=2, default=_json_default, allow_nan=False)
    return (text + "\n").encode()


# ----------------------------------------------------------------------------------------------------------
# explanations.npz: writer and reader

#: Arrays of ``explanations.npz`` (schema 2). Text arrays are unicode, so reading never unpickles anything.
EXPLANATION_KEYS = (
    "schema_version",
    "explainer",
    "exact",
    "signed",
    "reference_name",
    "output_name",
    "feature_names",
    "input_names",
    "input_to_feature",
    "values",
    "rest",
    "output",
    "reference",
    "y_true",
    "classes",
)
#: Keys of the version-1 files (INN only) and their schema-2 names.
_LEGACY_EXPLANATION_KEYS = {"contributions": "values", "bias": "rest", "logits": "output"}


def explanation_arrays(attribution: Any, split: Any) -> dict[str, np.ndarray]:
    """The arrays of ``explanations.npz`` for an attribution of ``split``'s test rows (over original features).

    The explainer's extras (INN's ``weights``, EBM's ``pair_values``/``pair_names``) are stored beside the
    schema's keys under ``extra_<name>``.
    """
    classes = split.classes if split.classes is not None else []
    reference = attribution.reference
    arrays: dict[str, np.ndarray] = {
        "schema_version": np.asarray(SCHEMA_VERSION),
        "explainer": np.asarray(attribution.explainer),
        "exact": np.asarray(bool(attribution.exact)),
        "signed": np.asarray(bool(attribution.signed)),
        "reference_name": np.asarray(attribution.reference_name),
        "output_name": np.asarray(attribution.output_name),
        "feature_names": np.asarray(attribution.feature_names, dtype=str),
        "input_names": np.asarray(split.input_names, dtype=str),
        "input_to_feature": np.asarray(split.input_to_feature, dtype=np.int64),
        "values": np.asarray(attribution.values, dtype=np.float32),
        "rest": np.asarray(attribution.rest, dtype=np.float32),
        "output": np.asarray(attribution.output, dtype=np.float32),
        "reference": np.asarray([] if reference is None else reference, dtype=np.float64),
        "y_true": np.asarray(split.y_test),
        "classes": np.asarray(classes, dtype=str),
    }
    for name, value in attribution.extras.items():
        value = np.asarray(value)
        arrays[f"extra_{name}"] = value.astype(str) if value.dtype.kind in "OUS" else value
    return arrays


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """The bytes of a compressed ``.npz`` holding ``arrays``."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def read_explanations(path: str | Path) -> dict[str, Any]:
    """Read ``explanations.npz`` (schema 1 or 2) into one shape: the keys of :data:`EXPLANATION_KEYS`.

    Schema-1 files (INN's, before schema 2) are mapped: ``contributions`` -> ``values``, ``bias`` -> ``rest``,
    ``logits`` -> ``output``, explainer ``inn``, exact, reference ``zero``; their ``weights`` become
    ``extra_weights``. Scalars come back as Python values. Nothing is unpickled.

    Raises:
        ValueError: unreadable, truncated or incomplete file (the message names the file).
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, KeyError) as error:
        raise ValueError(f"{path}: unreadable explanations file ({error})") from None
    except Exception as error:  # zipfile.BadZipFile and zlib errors of a truncated file
        raise ValueError(f"{path}: unreadable explanations file ({type(error).__name__}: {error})") from None
    if "schema_version" not in arrays:
        for old, new in _LEGACY_EXPLANATION_KEYS.items():
            if old in arrays:
                arrays[new] = arrays.pop(old)
        if "weights" in arrays:
            arrays["extra_weights"] = arrays.pop("weights")
        arrays.update(
            schema_version=np.asarray(1),
            explainer=np.asarray("inn"),
            exact=np.asarray(True),
            signed=np.asarray(True),
            reference_name=np.asarray("zero"),
            output_name=np.asarray("logit"),
            reference=np.asarray([], dtype=np.float64),
        )
    missing = [key for key in EXPLANATION_KEYS if key not in arrays]
    if missing:
        raise ValueError(f"{path}: incomplete explanations file, missing {missing}")
    out: dict[str, Any] = dict(arrays)
    for key in ("schema_version", "explainer", "exact", "signed", "reference_name", "output_name"):
        out[key] = arrays[key].item()
    values = arrays["values"]
    if values.ndim != 3 or arrays["rest"].shape != (values.shape[0], values.shape[2]):
        raise ValueError(f"{path}: explanations of inconsistent shapes {values.shape} and {arrays['rest'].shape}")
    return out


# ----------------------------------------------------------------------------------------------------------
# A results tree as one tidy table

#: Report keys that are per-feature lists or dicts: kept out of the tidy frame (one column per run field);
#: ``feature_importances`` goes to :attr:`LoadedRuns.importances` instead.
_NON_TABULAR_KEYS = (
    "feature_names",
    "feature_importances",
    "feature_importances_signed",
    "top_10_features",
    "top_10_features_weights",
)


class SkippedRun(NamedTuple):
    """A results file that :func:`load_runs` left out, and why.

    Attributes:
        run_id, dataset_id, seed: the folder names of the run.
        path: its ``output_info.json``.
        reason: one line that names the file.
        kind: ``unreadable`` (cannot be parsed, unknown schema, incomplete) or ``mismatch`` (the folder names
            disagree with the report, e.g. a run folder copied to another seed or dataset).
    """

    run_id: str
    dataset_id: str
    seed: str
    path: Path
    reason: str
    kind: Literal["unreadable", "mismatch"]


@dataclass
class LoadedRuns:
    """The usable runs of a results tree, their feature importances and the files left out.

    Attributes:
        runs: one row per usable ``output_info.json``. ``method`` and ``run_id`` are the run id (the first folder
            level, ``<method>`` or ``<method>-<variant>``, so variants compare as methods), ``base_method`` and
            ``variant`` its parts, ``dataset_id`` and ``seed`` the folder names (strings), ``path`` the file;
            nested dicts such as ``config`` are flattened (``config.lr``).
        importances: one row per run and feature: ``method`` (the run id), ``dataset_id``, ``seed``,
            ``feature``, ``position`` (the feature's index in the report) and ``importance`` (the report's
            ``feature_importances``, normalised per run to sum 1).
        skipped: the files left out (unreadable ones and folder/report mismatches).
    """

    runs: pd.DataFrame
    importances: pd.DataFrame
    skipped: list[SkippedRun] = field(default_factory=list)


def folder_mismatch(report: Mapping[str, Any], run_id_: str, dataset_id: str, seed: str) -> str | None:
    """How the folder names ``<run_id>/<dataset_id>/<seed>`` disagree with ``report``, or ``None`` if they agree."""
    said = {"run_id": str(report.get("run_id", report.get("method"))), "dataset_id": str(report.get("dataset_id"))}
    said["seed"] = str(report.get("seed"))
    found = {"run_id": run_id_, "dataset_id": dataset_id, "seed": seed}
    wrong = [f"{key} {found[key]!r} but the report says {said[key]!r}" for key in found if found[key] != said[key]]
    return "; ".join(wrong) or None


def load_runs(results_dir: str | Path) -> LoadedRuns:
    """Read every ``<run_id>/<dataset_id>/<seed>/output_info.json`` under ``results_dir`` into one tidy frame.

    Unreadable and incomplete files, and runs whose folder names disagree with their report (a copied folder
    would otherwise count as an extra seed or dataset), are left out and listed in :attr:`LoadedRuns.skipped`,
    never guessed.

    Raises:
        UserError: the directory does not exist, holds no results file, or none of them is usable.
    """
    import pandas as pd

    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise UserError(f"results directory {results_dir} does not exist")
    records: list[dict[str, Any]] = []
    importances: list[tuple[str, str, str, str, int, float]] = []
    skipped: list[SkippedRun] = []
    n_files = 0
    for name, dataset_id, seed, path in iter_result_files(results_dir):
        n_files += 1
        try:
            report = read_report(path)
        except ValueError as error:
            skipped.append(SkippedRun(name, dataset_id, seed, path, str(error), "unreadable"))
            continue
        mismatch = folder_mismatch(report, name, dataset_id, seed)
        if mismatch:
            reason = f"{path}: the folder names disagree with the report (a copied run?): {mismatch}"
            skipped.append(SkippedRun(name, dataset_id, seed, path, reason, "mismatch"))
            continue
        record = {key: value for key, value in report.items() if key not in _NON_TABULAR_KEYS}
        base_method, variant = parse_run_id(name)
        # The folder names are the identity of a run (the sweep and the resume logic use them too).
        record.update(method=name, run_id=name, base_method=base_method, variant=variant)
        record.update(dataset_id=dataset_id, seed=seed, path=str(path))
        records.append(record)
        shares = report["feature_importances"]
        if isinstance(shares, Mapping) and shares:
            values = np.abs(np.asarray([np.nan if v is None else v for v in shares.values()], dtype=np.float64))
            total = np.nansum(values)
            values = values / total if total > 0 else np.full(len(values), 1.0 / len(values))
            for position, (feature, value) in enumerate(zip(shares, values, strict=True)):
                importances.append((name, dataset_id, seed, str(feature), position, float(value)))
    if n_files == 0:
        raise UserError(f"no <method>/<dataset_id>/<seed>/output_info.json under {results_dir}: nothing to compare")
    if not records:
        raise UserError(f"none of the {n_files} results files under {results_dir} is usable: {skipped[0].reason}")
    runs = pd.json_normalize(records)
    for column in ("method", "run_id", "base_method", "dataset_id", "seed", "dataset_name"):
        runs[column] = runs[column].astype(str)
    columns = ["method", "dataset_id", "seed", "feature", "position", "importance"]
    return LoadedRuns(runs=runs, importances=pd.DataFrame(importances, columns=columns), skipped=skipped)
