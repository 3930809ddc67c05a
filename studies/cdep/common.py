"""What the three CDEP experiments share: derived datasets per seed, the penalty grid as sweep variants, the sweep
calls, reading the runs back and the summary tables.

Derived datasets. A decoy (a noisy copy of the label, or a grey patch that encodes it) must be informative in the
training rows and independent of the label in the test rows of the *same* split that ``data.prepare_split`` makes
for a seed. The split depends only on the targets, the seed and the test size, so :func:`write_seed_files` makes
that split on the original data, builds the decoy from its ``train_index``/``test_index``, and writes one Parquet
file per seed (Parquet keeps the dtypes, so categorical columns stay categorical). It then loads every file back
and checks that the protocol splits it into the same rows; a file is therefore valid for its own seed only.

The sweep. Every (penalty, λ) is a *variant* of a method (``<method>-<variant>/`` in the results tree), run by
``sweep.py`` over the files × seeds × methods grid with ``--cells`` limited to the diagonal (the file of seed ``s``
with seed ``s``): ``index = (file × n_seeds + seed) × n_methods + method`` (``experiments.sweep``'s documented
order), so one sweep call per variant runs every dataset, seed and method of it, and a stopped experiment resumes
where it stopped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: The methods with explanation penalties.
METHODS: tuple[str, ...] = ("tabresnet", "inn", "senn")
#: The penalties and their λ grids (the penalties live on different scales: a share in [0, 1] for cdep, logit
#: units for cd_logit, cd_strict, weights and counterfactual, squared input gradients for rrr).
PENALTY_GRID: dict[str, tuple[float, ...]] = {
    "cdep": (1.0, 10.0),
    "cd_logit": (1.0, 10.0),
    "cd_strict": (1.0, 10.0),
    "weights": (1.0, 10.0),
    "counterfactual": (1.0, 10.0),
    "rrr": (1.0, 10.0),
}
#: The training budget of every cell (the same for every method and variant; for the CNN ``--nr_blocks`` counts
#: convolution blocks and ``--hidden_size`` is its dense layer).
TRAINING: tuple[str, ...] = (
    "--nr_epochs", "30", "--hidden_size", "64", "--nr_blocks", "2", "--batch_size", "64",
    "--explanation_metrics", "off", "--device", "cpu",
)  # fmt: skip
#: Flags of one method only (a model flag that sets no parameter of a method is an error, issue 23): SENN's
#: robustness loss is off, so that the penalty is the only regulariser that differs between the rows of a table.
METHOD_TRAINING: dict[str, tuple[str, ...]] = {"senn": ("--robust_reg", "0")}


@dataclass(frozen=True)
class Variant:
    """One column of the experiment: vanilla, blind, or a penalty at a strength.

    Attributes:
        name: the variant name (a results directory suffix): ``vanilla``, ``blind``, ``<penalty>-<λ>``.
        penalty: the penalty, or None (vanilla, blind).
        strength: λ, or None.
        blind: the features are removed from the input.
        methods: the methods this variant applies to (``weights`` needs generated weights: not TabResNet).
    """

    name: str
    penalty: str | None = None
    strength: float | None = None
    blind: bool = False
    methods: tuple[str, ...] = METHODS

    def flags(self, features: Sequence[str]) -> list[str]:
        """The experiment script's flags of this variant for the forbidden ``features``."""
        if self.blind:
            return ["--penalize_features", *features, "--blind"]
        if self.penalty is None:
            return ["--audit_features", *features]
        return ["--penalize_features", *features, "--penalty", self.penalty, "--penalty_strength", f"{self.strength:g}"]


def variants(grid: Mapping[str, Sequence[float]] = PENALTY_GRID, methods: Sequence[str] = METHODS) -> list[Variant]:
    """Vanilla, blind and every (penalty, λ) of ``grid``, for the ``methods`` each applies to."""
    out = [Variant("vanilla", methods=tuple(methods)), Variant("blind", blind=True, methods=tuple(methods))]
    for penalty, strengths in grid.items():
        applies = tuple(method for method in methods if not (penalty == "weights" and method == "tabresnet"))
        out += [Variant(f"{penalty}-{value:g}", penalty, value, methods=applies) for value in strengths]
    return out


# ----------------------------------------------------------------------------------------------------------
# Derived datasets


def save_raw(raw: Any, path: Path) -> Path:
    """Write a ``RawDataset`` as Parquet (features, then the target as the last column) atomically."""
    frame = raw.X.copy()
    frame[raw.target] = raw.y.to_numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.parquet")
    frame.to_parquet(temporary, index=False)
    if path.exists() and path.read_bytes() == temporary.read_bytes():
        temporary.unlink()  # unchanged: keep the file (its content hash names the runs' results folder)
    else:
        temporary.replace(path)
    return path


def write_seed_files(
    raw: Any,
    seeds: Sequence[int],
    folder: Path,
    build: Callable[[Any, Any, int], Any],
    *,
    name: str,
    encoding_type: str = "paper",
) -> dict[int, Path]:
    """One derived dataset per seed, ``build(raw, split, seed) -> RawDataset``, written and checked.

    ``split`` is ``data.prepare_split(raw, seed=seed)``: the protocol's split that the run of that seed will make
    (the file is loaded back and split again to check that the rows are the same).

    Returns:
        ``{seed: path}``.
    """
    from data import load_dataset, prepare_split

    paths = {}
    for seed in seeds:
        split = prepare_split(raw, mode="classification", seed=seed, encoding_type=encoding_type)
        derived = build(raw, split, seed)
        path = save_raw(derived, folder / f"{name}_s{seed}.parquet")
        again = prepare_split(load_dataset(dataset_path=path), mode="classification", seed=seed,
                              encoding_type=encoding_type)  # fmt: skip
        if not (np.array_equal(again.test_index, split.test_index) and np.array_equal(again.y_test, split.y_test)):
            raise RuntimeError(f"{path}: the protocol splits the derived file into other rows than the original")
        paths[seed] = path
    return paths


def replace_raw(raw: Any, **changes: Any) -> Any:
    """A copy of the (frozen) ``RawDataset`` ``raw`` with ``changes``."""
    return dataclasses.replace(raw, **changes)


def label_codes(raw: Any, split: Any) -> np.ndarray:
    """The label code (``split``'s label encoding) of every row of ``raw`` (-1 where the target is missing)."""
    codes = np.full(len(raw.X), -1, dtype=np.int64)
    codes[split.train_index] = split.y_train
    codes[split.test_index] = split.y_test
    return codes


def seeded_rng(*keys: object) -> np.random.Generator:
    """A generator seeded by a stable hash of ``keys`` (the same decoy for the same dataset and seed)."""
    digest = hashlib.sha256(repr(keys).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


# ----------------------------------------------------------------------------------------------------------
# Running the grid through the sweep


def diagonal_cells(n_files: int, n_seeds: int, n_methods: int) -> list[int]:
    """Sweep cell indices of (file ``p``, seed ``p mod n_seeds``, every method): each file with its own seed.

    Files are listed dataset by dataset, seed by seed, so file ``p`` belongs to seed position ``p mod n_seeds``.
    """
    return [
        (position * n_seeds + position % n_seeds) * n_methods + method
        for position in range(n_files)
        for method in range(n_methods)
    ]


def run_grid(
    files: Sequence[Path],
    seeds: Sequence[int],
    grid: Sequence[Variant],
    features: Sequence[str],
    output_dir: Path,
    *,
    extra: Sequence[str] = (),
    workers: int = 1,
    diagonal: bool = True,
    training: Sequence[str] = TRAINING,
) -> None:
    """One ``sweep.py`` call per variant (and per set of method-specific flags, :data:`METHOD_TRAINING`) over
    ``files`` × ``seeds`` × the variant's methods.

    ``diagonal``: the files are one per seed, dataset-major (:func:`write_seed_files`), and only the cells of each
    file with its own seed run; otherwise every file runs with every seed. ``training``: the training flags of
    every cell (default :data:`TRAINING`).
    """
    from experiments import sweep

    for variant in grid:
        groups: dict[tuple[str, ...], list[str]] = {}
        for method in variant.methods:  # methods that take the same flags share a sweep call
            groups.setdefault(METHOD_TRAINING.get(method, ()), []).append(method)
        for own, methods in groups.items():
            cells = diagonal_cells(len(files), len(seeds), len(methods)) if diagonal else []
            argv = [
                "--methods", *methods, "--datasets", *map(str, files), "--seeds", ",".join(map(str, seeds)),
                "--variant", variant.name, "--output_dir", str(output_dir), "--workers", str(workers),
                *(["--cells", *map(str, cells)] if cells else []), "--no_progress", *training, *own, *extra,
                *variant.flags(features),
            ]  # fmt: skip
            count = len(cells) or len(files) * len(seeds) * len(methods)
            print(f"== {variant.name} ({', '.join(methods)}): {count} cells", flush=True)
            code = sweep.main(argv)
            if code != 0:
                print(f"warning: the sweep of {variant.name} ended with exit code {code}", file=sys.stderr)


# ----------------------------------------------------------------------------------------------------------
# Reading the runs back

#: Per-run columns of the tables.
RUN_COLUMNS = (
    "test_auroc", "test_accuracy", "test_flip_rate", "test_mean_abs_delta_logit", "test_auroc_drop",
    "explanation_share", "train_time",
)  # fmt: skip


def add_grid_arguments(parser: Any, *, seeds: Sequence[int], results_dir: str, strengths: bool = True) -> None:
    """The command-line flags every CDEP experiment shares: seeds, methods, penalties (and their λ grid), where the
    runs and the outputs go, parallel cells and ``--tables_only``."""
    parser.add_argument("--seeds", type=int, nargs="+", default=list(seeds))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--penalties", nargs="+", default=list(PENALTY_GRID), choices=list(PENALTY_GRID))
    if strengths:
        parser.add_argument("--strengths", type=float, nargs="+", default=None, help="λ grid (default: PENALTY_GRID)")
    parser.add_argument("--results_dir", type=Path, default=Path(results_dir))
    parser.add_argument("--out", type=Path, default=Path("docs/figures/cdep"), help="tables and figures")
    parser.add_argument("--workers", type=int, default=1, help="parallel cells of the sweep")
    parser.add_argument("--tables_only", action="store_true", help="only read the runs and write the outputs")


#: The claims of the penalised quantities (``models.penalties.penalty_measures``) as columns of :func:`collect`.
CLAIM_COLUMNS = ("claim_cdep", "claim_cd_logit", "claim_cd_strict", "claim_weights", "claim_rrr")


#: The cache of the claims in a results tree (a run folder is never written after it is complete, so a claim keyed
#: by the folder and its report's timestamp stays valid).
CLAIMS_CACHE = ".cdep_claims.json"


class _Claims:
    """Each penalty's own quantity on a run's test rows (what the penalty claims), splits cached per dataset, the
    values cached in ``<results_dir>/.cdep_claims.json``."""

    def __init__(self, results_dir: Path) -> None:
        self._splits: dict[tuple, Any] = {}
        self._path = results_dir / CLAIMS_CACHE
        self._cache: dict[str, Any] = json.loads(self._path.read_text()) if self._path.is_file() else {}

    def save(self) -> None:
        from experiments.results import write_json_atomic

        write_json_atomic(self._path, self._cache)

    def __call__(self, folder: Path, report: Mapping[str, Any]) -> dict[str, float]:
        key = f"{folder.relative_to(self._path.parent)}@{report.get('created', '')}"
        if key not in self._cache:
            self._cache[key] = self._compute(folder, report)
        return {name: np.nan if value is None else value for name, value in self._cache[key].items()}

    def _compute(self, folder: Path, report: Mapping[str, Any]) -> dict[str, float | None]:
        from experiments.config import DataConfig
        from experiments.saved_run import load_run
        from models.penalties import MEASURES, penalty_measures

        config = {"dataset_path": None, "target": None, "openml_cache_dir": None, **report["config"]}
        if config.get("blind"):  # S is not an input: every quantity is 0 by construction
            return {f"claim_{name}": 0.0 for name in MEASURES}
        key = (str(config.get("dataset_path")), config.get("dataset"), report["seed"], config["encoding_type"])
        if key not in self._splits:
            data = DataConfig.from_mapping(config)
            self._splits[key] = data.split(data.load(), encoding_type=config["encoding_type"])
        split = self._splits[key]
        features = [split.feature_names.index(name) for name in report["reliance"]["features"]]
        columns = np.flatnonzero(np.isin(split.input_to_feature, features))
        model = load_run(folder).model
        measures = penalty_measures(model.model_, split.X_test, columns, model.reference_,
                                    objective="binary" if split.n_classes == 2 else "multiclass")  # fmt: skip
        return {f"claim_{name}": value for name, value in measures.items()}


def collect(output_dir: Path, base_of: Callable[[str], str] | None = None, *, claims: bool = True) -> pd.DataFrame:
    """One row per finished run under ``output_dir``: method, variant, penalty, λ, dataset, seed and metrics.

    ``base_of(dataset_name) -> str`` names the original dataset of a derived file (default: the name itself).
    ``claims``: also each penalty's own quantity on the run's test rows (:data:`CLAIM_COLUMNS`; the model is
    reloaded from its folder, ``experiments.saved_run``).
    """
    measure = _Claims(Path(output_dir)) if claims else None
    from experiments.results import iter_result_files, read_report
    from methods import parse_run_id

    rows = []
    for run_id, dataset_key, seed, path in iter_result_files(output_dir):
        report = read_report(path)
        method, variant = parse_run_id(run_id)
        config = report.get("config", {})
        reliance = report.get("reliance") or {}
        name = str(report["dataset_name"])
        rows.append({
            "dataset": base_of(name) if base_of else name,
            "dataset_key": dataset_key,
            "method": method,
            "variant": variant or "",
            "penalty": "blind" if config.get("blind") else (config.get("penalty") or "vanilla"),
            "strength": float(config["penalty_strength"]) if config.get("penalty") else np.nan,
            "seed": int(seed),
            **{column: report.get(column, np.nan) for column in RUN_COLUMNS if column != "explanation_share"},
            "explanation_share": reliance.get("explanation_share", np.nan),
            **(measure(path.parent, report) if measure is not None and reliance else {}),
        })  # fmt: skip
    if measure is not None:
        measure.save()
    frame = pd.DataFrame(rows)
    for column in (*RUN_COLUMNS, *CLAIM_COLUMNS):
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def summarise(frame: pd.DataFrame, by: Sequence[str], columns: Sequence[str] = RUN_COLUMNS) -> pd.DataFrame:
    """Mean and standard deviation over seeds, one row per ``by`` group in first-seen order."""
    grouped = frame.groupby(list(by), sort=False, dropna=False)[list(columns)]
    summary = grouped.mean().add_suffix("_mean").join(grouped.std().add_suffix("_sd"))
    summary.insert(0, "seeds", grouped.size())
    return summary.reset_index()


def mean_sd_table(summary: pd.DataFrame, columns: Sequence[str], digits: int = 3) -> pd.DataFrame:
    """``mean ± sd`` text cells for ``columns``, the other (key) columns as they are."""
    keys = [column for column in summary.columns if not column.endswith(("_mean", "_sd"))]
    out = summary[keys].copy()
    for column in columns:
        mean, sd = summary[f"{column}_mean"], summary.get(f"{column}_sd")
        out[column] = [
            ""
            if not np.isfinite(m)
            else f"{m:.{digits}f}" + ("" if s is None or not np.isfinite(s) else f" ± {s:.{digits}f}")
            for m, s in zip(mean, sd if sd is not None else np.full(len(mean), np.nan), strict=True)
        ]
    return out


def write_table(table: pd.DataFrame, out: Path, name: str) -> str:
    """``<name>.csv`` and ``<name>.md`` in ``out``; returns the Markdown."""
    from plots.tables import markdown_table

    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / f"{name}.csv", index=False)
    text = markdown_table(table)
    (out / f"{name}.md").write_text(text + "\n")
    return text
