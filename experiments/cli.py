"""Command-line pieces shared by the experiment scripts: common flags, value checks and the error shell.

Each script builds its parser from :func:`add_data_arguments` and :func:`add_run_arguments` plus its own
model flags, and wraps its work in :func:`run_main`, which turns a :class:`~errors.UserError`
into one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from argtypes import non_negative_float, non_negative_int, open_fraction, positive_float, positive_int
from errors import UserError
from experiments.results import is_complete, results_path
from methods import VARIANT_PATTERN, MethodSpec


def add_reference_argument(group: Any, help_text: str) -> None:
    """``--reference {mean,zero}`` (default ``mean``): the reference point of exact explanations."""
    group.add_argument("--reference", choices=("mean", "zero"), default="mean", help=help_text)


def variant_name(text: str) -> str:
    """argparse type: a variant name (part of a directory name)."""
    if not VARIANT_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"a variant is letters, digits, '_', '.', '=' and '-' (not first), got {text!r}"
        )
    return text


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags that choose the dataset, the task and the split (identical in every experiment script)."""
    group = parser.add_argument_group("data")
    group.add_argument(
        "--dataset_id",
        type=positive_int,
        default=None,
        help="OpenML dataset id (default 31 = credit-g, embedded in the repo, when no other dataset is named)",
    )
    group.add_argument("--dataset_path", type=Path, default=None, help="a CSV, Parquet or ARFF file instead of OpenML")
    group.add_argument(
        "--dataset",
        default=None,
        metavar="NAME",
        # The names are checked when loading (data.named.NAMED_DATASETS): importing the data package here would
        # load pandas and scikit-learn into every script that only parses flags.
        help="a dataset by name instead of an OpenML id: digits (scikit-learn's 8x8 digits, offline), "
        "compas_recidivism or compas_score (COMPAS; --dataset_path is then ProPublica's compas-scores-two-years.csv)",
    )
    group.add_argument(
        "--target", default=None, help="target column (None: OpenML's default target, or the last column of a file)"
    )
    group.add_argument(
        "--openml_cache_dir", type=Path, default=None, help="read datasets from this OpenML cache (read-only)"
    )
    group.add_argument("--mode", choices=("classification", "regression"), default="classification", help="task")
    group.add_argument("--test_split_size", type=open_fraction, default=0.2, help="test fraction")
    group.add_argument(
        "--scale_inputs",
        choices=("numerical", "all"),
        default="numerical",
        help="numerical: standardise the numerical columns (the paper's protocol); all: every encoded input column, "
        "the one-hot and target-encoded ones too (ordinal codes stay codes)",
    )
    group.add_argument("--seed", type=non_negative_int, default=0, help="seed of the split and of training")


def add_method_flags(parser: argparse.ArgumentParser, specs: list[MethodSpec]) -> None:
    """The method-specific flags of the registry (``--catboost_iterations`` ...), one group per method.

    A flag that several methods declare (SENN's and DiSENN's ``--num_concepts``) is added once, in the group of
    the first, and its help lists every method's default. Its default is None: each method's own default applies.
    """
    added: set[str] = set()
    for spec in specs:
        flags = [flag for flag in spec.flags if flag.name not in added]
        if not flags:
            continue
        group = parser.add_argument_group(f"{spec.label} ({spec.id})")
        for flag in flags:
            users = [other for other in specs if any(f.name == flag.name for f in other.flags)]
            defaults = [
                f"{other.id}: {other.defaults('classification').get(_parameter(other, flag.name), 'the library default')}"
                for other in users
            ]
            flag.add_to(group, "; ".join(defaults) if len(users) > 1 else defaults[0].split(": ", 1)[1])
            added.add(flag.name)


def _parameter(spec: MethodSpec, flag_name: str) -> str:
    return next(flag.parameter for flag in spec.flags if flag.name == flag_name)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags that control where and how a run happens (identical in every experiment script)."""
    group = parser.add_argument_group("run")
    group.add_argument("--output_dir", type=Path, default=Path("results"), help="root of the results tree")
    group.add_argument(
        "--variant",
        type=variant_name,
        default=None,
        help="name of a variant of the method (e.g. a penalty strength): results go to <method>-<variant>/",
    )
    add_reference_argument(
        group, "reference point of the explanations: the training mean of every input column, or zero"
    )
    group.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA when available")
    group.add_argument(
        "--explanation_metrics",
        choices=("auto", "on", "off"),
        default="auto",
        help="SENN's stability (local Lipschitz) and removal faithfulness of the explanation in output_info.json "
        "(auto: neural methods; baselines' explainers are slower)",
    )
    group.add_argument(
        "--audit_sensitivity",
        action="store_true",
        help="measure the model's sensitivity to each feature (resampled from the training rows) on the test rows "
        "and its Spearman rank correlation with the explanation's global importance "
        "(sensitivity_rank_correlation in output_info.json)",
    )
    group.add_argument(
        "--audit_features",
        nargs="+",
        metavar="NAME",
        default=None,
        help="original features whose reliance to measure: flip rate and mean |Δ logit| when they are resampled from "
        "the training rows, AUROC drop when they are permuted, and the explanation's share of them (output_info.json)",
    )
    group.add_argument("--force", action="store_true", help="rerun even if the run's output_info.json exists")
    hpo = parser.add_argument_group("hyperparameter optimisation")
    hpo.add_argument("--hpo_tuning", action="store_true", help="tune with Optuna TPE on a 60/20/20 split")
    hpo.add_argument("--n_trials", type=positive_int, default=100, help="HPO trials")
    hpo.add_argument("--hpo_timeout", type=positive_float, default=3600.0, help="HPO time limit in seconds")


def add_penalty_arguments(parser: argparse.ArgumentParser) -> None:
    """Explanation penalties of the neural methods (``models.penalties``) and the blind reference model.

    The flags' defaults equal the estimators' (``penalty_strength`` 1.0, no penalty); ``--penalize_features`` takes
    original feature names, which the runner maps to all their input columns.
    """
    from models.penalties import PENALTIES  # the neural script's parser imports the estimators anyway

    group = parser.add_argument_group("explanation penalties (TabResNet, INN, SENN)")
    group.add_argument(
        "--penalize_features",
        nargs="+",
        metavar="NAME",
        default=None,
        help="original features the model must not rely on (a one-hot feature: all its columns); their reliance is "
        "measured too",
    )
    group.add_argument(
        "--penalty",
        choices=PENALTIES,
        default=None,
        help="the penalty on them: cdep (CDEP's softmax share), cd_logit (|CD score| on logit differences), "
        "cd_strict (CD with the allowed features relevant: S and its interactions), weights (INN/SENN's own "
        "|W_S(x)·x_S|), counterfactual (|Δ logit| when x_S is resampled), rrr (input gradients)",
    )
    group.add_argument(
        "--penalty_strength", type=non_negative_float, default=1.0, help="λ, the weight of the penalty in the loss"
    )
    group.add_argument(
        "--blind",
        action="store_true",
        help="remove the --penalize_features from the input instead (the reference a penalty tries to reach)",
    )


#: Free space a run needs on the disk of its output directory, checked before any work.
MIN_FREE_BYTES = 64 * 2**20
#: The dataset when no dataset flag is given: credit-g, embedded in the repository.
DEFAULT_DATASET_ID = 31


def check_output_dir(path: str | Path, *, flag: str = "--output_dir", min_free_bytes: int = MIN_FREE_BYTES) -> None:
    """Fail before any work unless results can be written under ``path``.

    ``path`` must be a directory or not exist yet, its nearest existing folder must accept a new file (tried with
    an anonymous temporary file, which leaves nothing behind; permission bits alone say nothing for root or on a
    read-only mount), and its disk must have ``min_free_bytes`` free. Nothing is created.

    Raises:
        UserError: a file, a path below a file, a folder that cannot be written, or a full disk.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path} is a file, not a directory")
    absolute = path.absolute()
    existing = next(folder for folder in (absolute, *absolute.parents) if folder.exists())
    if not existing.is_dir():
        raise UserError(f"{flag} {path} lies below the file {existing}")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise UserError(f"{flag} {path} cannot be written: {existing}: {error.strerror or error}") from None
    free = shutil.disk_usage(existing).free
    if free < min_free_bytes:
        raise UserError(
            f"{flag} {path}: only {free / 2**20:.0f} MB free on its disk, a run needs at least "
            f"{min_free_bytes / 2**20:.0f} MB"
        )


def check_data_flags(config: Mapping[str, Any]) -> None:
    """One source of data per run: ``--dataset_id``, ``--dataset_path`` or ``--dataset`` (which may take a path).

    Raises:
        UserError: two of them together.
    """
    given = [flag for flag in ("dataset_id", "dataset_path", "dataset") if config.get(flag) is not None]
    if "dataset" in given and "dataset_path" in given:
        given.remove("dataset_path")  # a named dataset may read its data from --dataset_path
    if len(given) > 1:
        raise UserError(f"give one dataset: {' and '.join('--' + flag for flag in given)} were both given")


def dataset_key(args: argparse.Namespace) -> str:
    """The ``<dataset_id>`` directory name of a run: the OpenML id, or the file's name without suffixes."""
    if getattr(args, "dataset", None):
        return args.dataset
    if args.dataset_path is not None:
        from data.loading import file_dataset_key

        return file_dataset_key(args.dataset_path)
    return str(args.dataset_id if args.dataset_id is not None else DEFAULT_DATASET_ID)


def load_raw_dataset(config: Mapping[str, Any]):
    """Load the dataset that the data flags of ``config`` name (an OpenML id, a file or a dataset name)."""
    from data import load_dataset

    if config.get("dataset"):
        from data.named import load_named_dataset

        if config.get("target"):
            raise UserError(f"--dataset {config['dataset']} has a fixed target; --target does not apply")
        return load_named_dataset(config["dataset"], path=config.get("dataset_path"))

    dataset_id = config.get("dataset_id")
    return load_dataset(
        dataset_id=None if config["dataset_path"] else (DEFAULT_DATASET_ID if dataset_id is None else dataset_id),
        dataset_path=config["dataset_path"],
        target=config["target"],
        openml_cache_dir=config["openml_cache_dir"],
    )


def split_dataset(raw, config: Mapping[str, Any], *, encoding_type: str, validation_size: float = 0.0):
    """The protocol's split of ``raw`` for the seed, mode, test size and input scaling (``scale_inputs``) of
    ``config`` (the same rows for every method)."""
    from data import prepare_split

    return prepare_split(
        raw,
        mode=config["mode"],
        seed=config["seed"],
        test_split_size=config["test_split_size"],
        encoding_type=encoding_type,
        validation_size=validation_size,
        scale_all_inputs=config.get("scale_inputs", "numerical") == "all",
    )


def already_done(args: argparse.Namespace, method: str) -> bool:
    """True (and says so) when this run's results exist and ``--force`` was not given."""
    path = results_path(args.output_dir, method, dataset_key(args), args.seed, getattr(args, "variant", None))
    if not args.force and is_complete(path):
        print(f"already done: {path} (use --force to rerun)")
        return True
    return False


def start_run(args: argparse.Namespace, method: str) -> bool:
    """The checks before a run's work, in order: one dataset, a writable output directory, not already done.

    Returns:
        Whether to run (False: finished before and no ``--force``; it says so).

    Raises:
        UserError: see :func:`check_data_flags` and :func:`check_output_dir`.
    """
    check_data_flags(vars(args))
    check_output_dir(args.output_dir)
    return not already_done(args, method)


def run_main(work: Callable[[], object]) -> int:
    """Run ``work``; a user error becomes ``error: <message>`` on stderr and exit code 2."""
    try:
        work()
    except UserError as error:
        message = " ".join(str(error).split())
        print(f"error: {message}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0
