"""Load a tabular dataset, either from OpenML by dataset id or from a user's CSV, Parquet or ARFF file.

OpenML datasets are always read through the ``openml`` package, so the embedded cache, a user-supplied cache
and the live server all give the same DataFrame, dtypes and categorical indicator. A cache directory is never
handed to ``openml`` itself: ``openml`` deletes a dataset's folder when a network call fails and writes
pickles beside the ARFF, so the one dataset folder is copied into a temporary cache first. Lookup order:
``openml_cache_dir`` (if given), the embedded cache ``data/openml_cache`` (dataset 31, credit-g), then OpenML
over the network with the user's normal ``openml`` cache. Every failure a user can fix is a ``DataError``.
"""

from __future__ import annotations

import contextlib
import hashlib
import operator
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from errors import MissingDependencyError, UserError

EMBEDDED_CACHE_DIR = Path(__file__).resolve().parent / "openml_cache"
"""The OpenML cache shipped with the project (layout ``org/openml/www/datasets/<id>/``)."""

# OpenML's "unknown dataset" error code for ``data/<id>``.
_OPENML_UNKNOWN_DATASET_CODE = 111
# A single attempt: with the default policy openml sleeps and retries for minutes when offline.
_OPENML_N_RETRIES = 1
_SKIP_PARQUET = "OPENML_SKIP_PARQUET"  # read by openml.datasets.get_dataset
_FILE_READERS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet", ".arff": "arff"}
# openml's configuration is module-global; loads from several threads must not interleave.
_OPENML_LOCK = threading.Lock()


class DataError(UserError):
    """A dataset, file, target or task problem the user can fix (one-line message)."""


@dataclass(frozen=True, eq=False)
class RawDataset:
    """A dataset as loaded, before any column drop, split or encoding.

    Attributes:
        name: Human-readable name (OpenML name, or the file stem).
        dataset_id: OpenML dataset id, or ``file_dataset_key(path)`` for a user file (name and content hash).
        X: Feature columns in their original order and dtypes, with a ``RangeIndex``.
        y: Target column, aligned with ``X``; may contain missing values (dropped by ``prepare_split``).
        categorical: One flag per column of ``X``: ``True`` for categorical columns.
        target: Name of the target column.
        source: Where the data came from (cache directory, ``openml.org`` or the file path), for logs.
    """

    name: str
    dataset_id: int | str
    X: pd.DataFrame
    y: pd.Series
    categorical: list[bool]
    target: str
    source: str = ""

    def __post_init__(self) -> None:
        if len(self.categorical) != self.X.shape[1]:
            raise ValueError(f"{len(self.categorical)=} does not match {self.X.shape[1]=}")
        if len(self.y) != len(self.X):
            raise ValueError(f"{len(self.y)=} does not match {len(self.X)=}")

    @property
    def n_rows(self) -> int:
        """Number of rows (examples)."""
        return len(self.X)


def load_dataset(
    dataset_id: int | None = None,
    *,
    dataset_path: str | Path | None = None,
    target: str | None = None,
    openml_cache_dir: str | Path | None = None,
) -> RawDataset:
    """Load an OpenML dataset by dataset id, or a CSV / Parquet / ARFF file.

    Args:
        dataset_id: OpenML DATASET id (not a task id). Exactly one of ``dataset_id`` and ``dataset_path``.
        dataset_path: A ``.csv`` (or ``.tsv``), ``.parquet`` (``.pq``) or ``.arff`` file, chosen by suffix
            (``.gz``/``.zip``/... compressed CSV is fine). The first row of a CSV holds the column names.
        target: Target column. Default: OpenML's default target attribute, or the LAST column of a file.
        openml_cache_dir: An OpenML cache root (``<root>/org/openml/www/datasets/<id>/`` holding
            ``description.xml`` and ``dataset.arff``) searched before the embedded cache. It is only read.

    Returns:
        The dataset with the target split off and one categorical flag per feature column.

    Raises:
        DataError: Bad arguments, unreadable or unknown file, unknown target column, a dataset id that is in
            no cache while OpenML cannot be reached, or an id that OpenML does not know.
        MissingDependencyError: ``openml`` (or ``pyarrow`` for Parquet) is not installed.
    """
    if (dataset_id is None) == (dataset_path is None):
        raise DataError("give exactly one of a dataset id and a dataset file")
    if dataset_path is not None:
        return _load_file(Path(dataset_path), target)
    try:
        number = operator.index(dataset_id)  # int and numpy integers, not floats or strings
    except TypeError:
        number = 0
    if isinstance(dataset_id, bool) or number <= 0:
        raise DataError(f"an OpenML dataset id is a positive integer, got {dataset_id!r}")
    return _load_openml(number, target, None if openml_cache_dir is None else Path(openml_cache_dir))


# --------------------------------------------------------------------------------------------------------------
# OpenML


def _load_openml(dataset_id: int, target: str | None, cache_dir: Path | None) -> RawDataset:
    try:
        import openml
    except ImportError as exc:
        raise MissingDependencyError("openml", "loading an OpenML dataset") from exc

    roots: list[Path] = []
    if cache_dir is not None:
        if not cache_dir.is_dir():
            raise DataError(f"the OpenML cache directory {cache_dir} does not exist")
        roots.append(cache_dir)
    roots.append(EMBEDDED_CACHE_DIR)

    for root in roots:
        folder = _cached_dataset_folder(root, dataset_id)
        if folder is None:
            continue
        _check_description(folder / "description.xml", dataset_id)
        has_parquet = any(folder.glob("*.pq"))
        with (
            tempfile.TemporaryDirectory(prefix="openml_cache_") as tmp_root,
            _openml_settings(openml, cache_root=tmp_root, skip_parquet=not has_parquet),
        ):
            # The destination follows openml's own server-to-path rule, so a non-default server still works.
            destination = Path(openml.config.get_cache_directory()) / "datasets" / str(dataset_id)
            shutil.copytree(folder, destination)
            _make_writable(destination)  # the source may be read-only; openml writes pickles beside it
            try:
                dataset = _get_openml_dataset(openml, dataset_id)
                # get_data parses the copied files lazily: it must run before the temporary cache goes away.
                return _split_target(dataset, dataset_id, target, source=str(folder))
            except UserError:
                raise
            except Exception as exc:  # noqa: BLE001 - openml raises many unrelated types; all mean "unreadable"
                if _is_network_error(exc):  # openml fell back to the server: the cached files did not suffice
                    raise DataError(
                        f"dataset {dataset_id} in the OpenML cache {root} is incomplete or corrupt (openml tried "
                        f"to download it instead): {_short_reason(exc)}"
                    ) from exc
                raise DataError(
                    f"dataset {dataset_id} in the OpenML cache {root} could not be read: {_short_reason(exc)}"
                ) from exc

    searched = ", ".join(str(r) for r in roots)
    with _openml_settings(openml, cache_root=None, skip_parquet=False):
        try:
            dataset = _get_openml_dataset(openml, dataset_id)
        except Exception as exc:  # noqa: BLE001 - requests, urllib3, minio and openml errors all end here
            raise _network_error(openml, exc, dataset_id, searched) from exc
        try:
            return _split_target(dataset, dataset_id, target, source=openml.config.server)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - a corrupt download in the user's cache
            raise DataError(f"OpenML dataset {dataset_id} could not be read: {_short_reason(exc)}") from exc


def _check_description(path: Path, dataset_id: int) -> None:
    """A cached ``description.xml`` must be well-formed XML naming a data set, else the cache entry is corrupt."""
    import xml.etree.ElementTree as ElementTree

    try:
        root = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError) as exc:
        raise DataError(f"the cached description of dataset {dataset_id} ({path}) is corrupt: {exc}") from None
    if "data_set_description" not in root.tag:
        raise DataError(f"the cached description of dataset {dataset_id} ({path}) is corrupt: no data set description")


def _is_network_error(exc: BaseException) -> bool:
    """Whether an exception (or its cause) comes from a failed connection."""
    seen = 0
    while exc is not None and seen < 10:
        name = type(exc).__name__
        if isinstance(exc, ConnectionError | TimeoutError) or "Connection" in name or "NameResolution" in name:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _cached_dataset_folder(root: Path, dataset_id: int) -> Path | None:
    """The dataset's folder under a cache root, if it holds a description and a data file."""
    # Accept the cache root as documented, and also a path that already points at ``.../www``.
    for folder in (root / "org" / "openml" / "www" / "datasets" / str(dataset_id), root / "datasets" / str(dataset_id)):
        has_data = (folder / "dataset.arff").is_file() or any(folder.glob("*.pq"))
        if (folder / "description.xml").is_file() and has_data:
            return folder
    return None


def _make_writable(folder: Path) -> None:
    for path in (folder, *folder.rglob("*")):
        path.chmod(path.stat().st_mode | 0o200)


@contextlib.contextmanager
def _openml_settings(openml: Any, *, cache_root: str | None, skip_parquet: bool) -> Iterator[None]:
    """Point openml at a temporary cache (if given), fail fast when offline, and restore everything after."""
    with _OPENML_LOCK:
        config = openml.config
        previous_root = config._root_cache_directory  # no public getter for the root itself
        previous_policy, previous_retries = config.retry_policy, config.connection_n_retries
        previous_skip_parquet = os.environ.get(_SKIP_PARQUET)
        try:
            if cache_root is not None:
                config.set_root_cache_directory(cache_root)
            if skip_parquet:  # a cached ARFF without a Parquet file must not trigger a Parquet download
                os.environ[_SKIP_PARQUET] = "true"
            config.set_retry_policy("human", n_retries=_OPENML_N_RETRIES)
            yield
        finally:
            config.set_root_cache_directory(previous_root)
            config.set_retry_policy(previous_policy, n_retries=previous_retries)
            if previous_skip_parquet is None:
                os.environ.pop(_SKIP_PARQUET, None)
            else:
                os.environ[_SKIP_PARQUET] = previous_skip_parquet


def _get_openml_dataset(openml: Any, dataset_id: int) -> Any:
    # features and qualities need the network; the data and the description are enough.
    return openml.datasets.get_dataset(
        dataset_id, download_data=True, download_qualities=False, download_features_meta_data=False
    )


def _network_error(openml: Any, exc: Exception, dataset_id: int, searched: str) -> DataError:
    server_exception = openml.exceptions.OpenMLServerException
    if isinstance(exc, server_exception) and exc.code == _OPENML_UNKNOWN_DATASET_CODE:
        return DataError(f"OpenML has no dataset with id {dataset_id} (a dataset id, not a task id)")
    if isinstance(exc, openml.exceptions.OpenMLPrivateDatasetError):
        return DataError(f"OpenML dataset {dataset_id} is private: {_short_reason(exc)}")
    if isinstance(exc, server_exception):
        return DataError(f"OpenML refused dataset {dataset_id}: {_short_reason(exc)}")
    return DataError(
        f"dataset {dataset_id} is not in the OpenML cache (searched: {searched}) "
        f"and OpenML could not be reached: {_short_reason(exc)}"
    )


def _short_reason(exc: BaseException, limit: int = 160) -> str:
    """One line naming the exception; urllib3's nested messages are reduced to their root cause."""
    message = " ".join(str(exc).split())
    cause = re.search(r"Caused by (\w+)", message)
    if cause:
        host = re.search(r"host='([^']+)'", message)
        return f"{type(exc).__name__} ({cause.group(1)}{' for ' + host.group(1) if host else ''})"
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _split_target(dataset: Any, dataset_id: int, target: str | None, source: str) -> RawDataset:
    target_name = target if target is not None else dataset.default_target_attribute
    if not target_name:
        raise DataError(f"OpenML dataset {dataset_id} has no default target: give one with --target")
    if "," in target_name:  # OpenML allows several default targets; the paper uses one
        raise DataError(f"OpenML dataset {dataset_id} has several targets ({target_name}): pick one with --target")
    try:
        X, y, categorical, _ = dataset.get_data(target=target_name, dataset_format="dataframe")
    except Exception:  # noqa: BLE001 - openml signals an unknown target with KeyError/ValueError
        frame, *_ = dataset.get_data(dataset_format="dataframe")  # a parse error raises again: the caller reports it
        if target_name in frame.columns:
            raise
        raise DataError(_unknown_target_message(f"OpenML dataset {dataset_id}", target_name, frame.columns)) from None
    X = X.reset_index(drop=True)
    y = pd.Series(y, name=target_name).reset_index(drop=True)
    # A non-numeric column is categorical whatever the indicator says (e.g. an ARFF STRING attribute).
    flags = [bool(c) or not _is_numeric(X[col]) for c, col in zip(categorical, X.columns, strict=True)]
    return RawDataset(str(dataset.name), dataset_id, X, y, flags, target_name, source)


# --------------------------------------------------------------------------------------------------------------
# User files


def _file_kind(path: Path) -> tuple[str | None, str]:
    """The reader of a data file (``csv``, ``parquet``, ``arff`` or ``None``) and the dataset's name."""
    suffixes = [s.lower() for s in path.suffixes]
    kind = _FILE_READERS.get(suffixes[-1]) if suffixes else None
    if kind is None and len(suffixes) > 1 and suffixes[-2] in (".csv", ".tsv"):  # compressed: data.csv.gz
        return "csv", Path(path.stem).stem
    return kind, path.stem


def file_dataset_key(path: str | Path) -> str:
    """The dataset id of a user file in the results tree: ``<name without data suffixes>-<content hash>``.

    The first 8 hex digits of the file's SHA-256 make the key unique: a file named like an OpenML id
    (``31.csv``), or two files with one name in different folders, no longer share a results folder, and a file
    whose content changed is a new dataset. A missing file gets its bare name (it fails to load anyway).
    """
    path = Path(path)
    stem = _file_kind(path)[1]
    if not path.is_file():
        return stem
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"{stem}-{digest.hexdigest()[:8]}"


def _load_file(path: Path, target: str | None) -> RawDataset:
    suffixes = [s.lower() for s in path.suffixes]
    kind, stem = _file_kind(path)
    if kind is None:
        raise DataError(f"cannot read {path}: unknown file type (use .csv, .tsv, .parquet, .pq or .arff)")
    if not path.is_file():
        raise DataError(f"dataset file {path} does not exist")

    try:
        if kind == "csv":
            separator = "\t" if ".tsv" in suffixes else ","
            # pandas renames a repeated column "a" to "a.1"; the raw header shows the duplicate.
            header = pd.read_csv(path, sep=separator, header=None, nrows=1).iloc[0].astype(str)
            if header.duplicated().any():
                duplicated = sorted(set(header[header.duplicated()]))
                raise DataError(f"{path} has duplicated column names: {', '.join(duplicated[:5])}")
            frame = pd.read_csv(path, sep=separator)
        elif kind == "parquet":
            frame = _read_parquet(path)
        else:
            frame = _read_arff(path)
    except (UserError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - pandas/pyarrow/arff parse errors have no common base class
        raise DataError(f"cannot read {path}: {_short_reason(exc)}") from exc
    if frame.shape[1] < 2:
        raise DataError(f"{path} has {frame.shape[1]} column(s): it needs at least one feature and a target")

    frame.columns = [str(c) for c in frame.columns]
    if frame.columns.duplicated().any():
        duplicated = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise DataError(f"{path} has duplicated column names: {', '.join(duplicated[:5])}")
    target_name = frame.columns[-1] if target is None else target
    if target_name not in frame.columns:
        raise DataError(_unknown_target_message(str(path), target_name, frame.columns))

    frame = frame.reset_index(drop=True)
    y = frame[target_name]
    X = frame.drop(columns=target_name)
    categorical = [not _is_numeric(X[col]) for col in X.columns]
    return RawDataset(stem, file_dataset_key(path), X, y, categorical, target_name, str(path))


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("pyarrow", "reading a Parquet file") from exc
    return pd.read_parquet(path)


def _read_arff(path: Path) -> pd.DataFrame:
    """Read a dense ARFF file; nominal attributes become ``category`` columns with the declared levels."""
    try:
        import arff  # liac-arff, a dependency of openml
    except ImportError as exc:
        raise MissingDependencyError("liac-arff", "reading an ARFF file") from exc
    with path.open(encoding="utf8") as handle:
        content = arff.load(handle)
    names = [name for name, _ in content["attributes"]]
    frame = pd.DataFrame(content["data"], columns=names)
    for name, kind in content["attributes"]:
        if isinstance(kind, list):
            frame[name] = pd.Categorical(frame[name], categories=kind)
        elif str(kind).upper() in ("NUMERIC", "REAL", "INTEGER"):
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return frame


# --------------------------------------------------------------------------------------------------------------
# Helpers


def _is_numeric(column: pd.Series) -> bool:
    """Numeric for modelling purposes: numbers, but not booleans (those are categories)."""
    return pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype)


def _unknown_target_message(where: str, target: str, columns: pd.Index) -> str:
    shown = ", ".join(map(str, columns[:8])) + (", ..." if len(columns) > 8 else "")
    return f"target column {target!r} is not in {where} ({len(columns)} columns: {shown})"
