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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import argtypes
from argtypes import non_negative_float, non_negative_int, open_fraction, positive_float, positive_int
from errors import UserError
from experiments.config import NEURAL_FLAGS, DataConfig, RunConfig
from experiments.results import is_complete, results_path
from methods import REGISTRY, VARIANT_PATTERN, MethodSpec, baseline_methods, neural_methods


def add_reference_argument(group: Any, help_text: str) -> None:
    """``--reference {mean,zero}`` (default ``mean``): the reference point of exact explanations."""
    group.add_argument("--reference", choices=("mean", "zero"), default=RunConfig.reference, help=help_text)


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
    group.add_argument("--mode", choices=("classification", "regression"), default=DataConfig.mode, help="task")
    group.add_argument(
        "--test_split_size", type=open_fraction, default=DataConfig.test_split_size, help="test fraction"
    )
    group.add_argument(
        "--scale_inputs",
        choices=("numerical", "all"),
        default=DataConfig.scale_inputs,
        help="numerical: standardise the numerical columns (the paper's protocol); all: every encoded input column, "
        "the one-hot and target-encoded ones too (ordinal codes stay codes)",
    )
    group.add_argument(
        "--seed", type=non_negative_int, default=DataConfig.seed, help="seed of the split and of training"
    )


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
    group.add_argument("--output_dir", type=Path, default=RunConfig.output_dir, help="root of the results tree")
    group.add_argument(
        "--variant",
        type=variant_name,
        default=None,
        help="name of a variant of the method (e.g. a penalty strength): results go to <method>-<variant>/",
    )
    add_reference_argument(
        group, "reference point of the explanations: the training mean of every input column, or zero"
    )
    group.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default=RunConfig.device, help="auto: CUDA when available"
    )
    group.add_argument(
        "--explanation_metrics",
        choices=("auto", "on", "off"),
        default=RunConfig.explanation_metrics,
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
    hpo.add_argument("--n_trials", type=positive_int, default=RunConfig.n_trials, help="HPO trials")
    hpo.add_argument(
        "--hpo_timeout", type=positive_float, default=RunConfig.hpo_timeout, help="HPO time limit in seconds"
    )


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
        "--penalty_strength",
        type=non_negative_float,
        default=None,
        help="λ, the weight of the penalty in the loss (default: the estimators', 1.0)",
    )
    group.add_argument(
        "--blind",
        action="store_true",
        help="remove the --penalize_features from the input instead (the reference a penalty tries to reach)",
    )


#: The neural methods' shared model flags (``experiments.config.NEURAL_FLAGS``): argparse type or choices, and help.
_NEURAL_FLAG_HELP: dict[str, tuple[Any, str]] = {
    "nr_blocks": (argtypes.non_negative_int, "residual blocks"),
    "hidden_size": (argtypes.positive_int, "units per hidden layer"),
    "nr_epochs": (argtypes.positive_int, "training epochs"),
    "batch_size": (argtypes.batch_size, "batch size (>= 2: batch norm needs two rows)"),
    "learning_rate": (argtypes.positive_float, "peak learning rate of Adam"),
    "weight_decay": (argtypes.non_negative_float, "Adam's L2 weight decay"),
    "weight_norm": (argtypes.non_negative_float, "L1 penalty on INN's generated weights"),
    "weight_norm_scale": (
        ("none", "std"),
        "L1 weight of each input column's generated weight: none (the paper: mean |W(x)|); std: times the column's "
        "training standard deviation (the paper's term on standardised inputs)",
    ),
    "product_inputs": (
        ("raw", "standardised"),
        "inputs of INN's per-example linear models: raw (the paper) or standardised with the training mean and std "
        "(the hypernetwork still reads the raw inputs)",
    ),
    "dropout": (argtypes.dropout_rate, "dropout in the residual blocks"),
    "augmentation_probability": (argtypes.probability, "chance that a batch is augmented"),
    "scheduler_t_mult": (argtypes.at_least_one, "cosine cycle growth (>= 1)"),
    "nr_restarts": (argtypes.positive_int, "cosine cycles = snapshots"),
    "class_balance": (
        ("weight", "oversample", "none"),
        "weight: balanced class weights in the loss (the baselines' class_weight='balanced', same number of steps); "
        "oversample: repeat minority rows (the original code); none",
    ),
    "threads": (
        argtypes.positive_int,
        "CPU threads while training (default: 1 for batches up to 512x128, else torch's, OMP_NUM_THREADS)",
    ),
    "compile": (None, "torch.compile the training forward pass (pays off for long runs)"),
}

#: The default method of ``main_experiment.py`` when neither --method nor --interpretable is given (the original
#: script's default).
DEFAULT_NEURAL_METHOD = "tabresnet"


def _neural_default(name: str) -> str:
    """A shared flag's default as help text: the estimators' value (per method where they differ)."""
    values = {
        method: REGISTRY[method].defaults("classification")[name]
        for method in neural_methods()
        if name in REGISTRY[method].defaults("classification")
    }
    if len(set(map(repr, values.values()))) == 1:
        return repr(next(iter(values.values()))) + (
            "" if len(values) == len(neural_methods()) else f" ({', '.join(values)})"
        )
    return "; ".join(f"{method}: {value!r}" for method, value in values.items())


def add_neural_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The neural methods' shared model flags. None has an argparse default: a flag sets its estimator parameter
    only when given, and the method's own default (its estimator's) applies otherwise."""
    model = parser.add_argument_group("model and training (the estimators' defaults apply unless given)")
    for name in NEURAL_FLAGS:
        kind, text = _NEURAL_FLAG_HELP[name]
        help_text = f"{text} (default {_neural_default(name)})"
        if kind is None:
            model.add_argument(f"--{name}", action="store_true", default=argparse.SUPPRESS, help=help_text)
        elif isinstance(kind, tuple):
            model.add_argument(f"--{name}", choices=kind, default=argparse.SUPPRESS, help=help_text)
        else:
            model.add_argument(f"--{name}", type=kind, default=argparse.SUPPRESS, help=help_text)


def neural_parser() -> argparse.ArgumentParser:
    """The command line of ``main_experiment.py``: the original INN flags plus data, run and HPO flags."""
    parser = argparse.ArgumentParser(
        prog="main_experiment.py",
        description="Train INN, TabResNet or another neural method on an OpenML dataset or your own file.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    methods = parser.add_argument_group("method")
    methods.add_argument(
        "--method",
        choices=neural_methods(),
        default=None,
        help=f"the neural method (default {DEFAULT_NEURAL_METHOD}; --interpretable means inn)",
    )
    methods.add_argument("--interpretable", action="store_true", help="train INN (the original flag; = --method inn)")
    methods.add_argument(
        "--encoding_type",
        choices=("paper", "onehot", "target", "ordinal"),
        default=None,
        help="categorical encoding (default: the method's, paper: target encoding for binary/regression, one-hot "
        "for multiclass)",
    )
    add_neural_model_arguments(parser)
    add_method_flags(parser, [REGISTRY[method] for method in neural_methods()])
    add_penalty_arguments(parser)
    add_data_arguments(parser)
    add_run_arguments(parser)
    tracking = parser.add_argument_group("tracking")
    tracking.add_argument("--wandb_project", default=None, help="log to Weights & Biases (off unless given)")
    return parser


def baseline_parser() -> argparse.ArgumentParser:
    """The command line of ``baseline_experiment.py``: the baseline, its own flags, and the data and run flags."""
    parser = argparse.ArgumentParser(
        prog="baseline_experiment.py",
        description="Train a baseline: " + ", ".join(REGISTRY[method].label for method in baseline_methods()) + ".",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    model = parser.add_argument_group("model")
    model.add_argument("--model_name", choices=baseline_methods(), required=True, help="the baseline to train")
    model.add_argument(
        "--n_jobs", type=argtypes.positive_int, default=RunConfig.n_jobs, help="CPU threads of the model"
    )
    add_method_flags(parser, [REGISTRY[method] for method in baseline_methods()])
    add_data_arguments(parser)
    add_run_arguments(parser)
    return parser


def neural_method(flags: Mapping[str, Any]) -> str:
    """The method id a neural command line asks for (``--interpretable`` is ``--method inn``).

    Raises:
        UserError: ``--interpretable`` together with another ``--method``.
    """
    method, interpretable = flags.get("method"), flags.get("interpretable", False)
    if interpretable and method not in (None, "inn"):
        raise UserError(f"--interpretable means --method inn; it cannot be combined with --method {method}")
    return "inn" if interpretable else (method or DEFAULT_NEURAL_METHOD)


def neural_config(argv: Sequence[str] | None = None, **overrides: Any) -> RunConfig:
    """The :class:`RunConfig` of a ``main_experiment.py`` command line (``overrides`` replace parsed flags)."""
    flags = vars(neural_parser().parse_args(argv)) | overrides
    return RunConfig.from_flags(neural_method(flags), flags)


def baseline_config(argv: Sequence[str] | None = None, **overrides: Any) -> RunConfig:
    """The :class:`RunConfig` of a ``baseline_experiment.py`` command line (``overrides`` replace parsed flags)."""
    flags = vars(baseline_parser().parse_args(argv)) | overrides
    return RunConfig.from_flags(flags["model_name"], flags)


#: Free space a run needs on the disk of its output directory, checked before any work.
MIN_FREE_BYTES = 64 * 2**20


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


def already_done(config: RunConfig) -> bool:
    """True (and says so) when this run's results exist and ``--force`` was not given."""
    path = results_path(config.output_dir, config.method, config.data.key, config.seed, config.variant)
    if not config.force and is_complete(path):
        print(f"already done: {path} (use --force to rerun)")
        return True
    return False


def start_run(config: RunConfig) -> bool:
    """The checks before a run's work, in order: one dataset, a writable output directory, not already done.

    Returns:
        Whether to run (False: finished before and no ``--force``; it says so).

    Raises:
        UserError: see :meth:`DataConfig.check_sources` and :func:`check_output_dir`.
    """
    config.data.check_sources()
    check_output_dir(config.output_dir)
    return not already_done(config)


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
