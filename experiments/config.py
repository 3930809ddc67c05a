"""The configuration of one run, typed, with every default in one place.

:class:`DataConfig` says which rows a run uses (the dataset and the protocol's split); :class:`RunConfig` says
everything else (the method and its parameters, where the results go, HPO, explanation penalties and audits). The
experiment scripts' flags take their defaults from these classes, and a report's ``config`` entry is
:meth:`RunConfig.report_config`, so a saved run's data can be rebuilt with :meth:`DataConfig.from_mapping`.

Model parameters are the flags that set an estimator parameter of the chosen method (the neural methods' shared
flags such as ``--nr_epochs``, and each method's own flags such as ``--num_concepts``). They are recorded only when
given, so the method's own defaults (its estimator's, ``methods.MethodSpec.defaults``) apply otherwise, and a flag
that sets no parameter of the chosen method is an error, never silently ignored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from errors import UserError
from methods import REGISTRY, MethodSpec, Mode, get_method

#: The dataset when no dataset flag is given: credit-g, embedded in the repository.
DEFAULT_DATASET_ID = 31
Reference = Literal["mean", "zero"]
ExplanationMetrics = Literal["auto", "on", "off"]


@dataclass(frozen=True)
class DataConfig:
    """Which rows a run uses: one dataset source and the protocol's split of it.

    Attributes:
        dataset_id: an OpenML dataset id (None: :data:`DEFAULT_DATASET_ID` unless another source is named).
        dataset_path: a CSV, Parquet or ARFF file instead.
        dataset: a dataset by name (``data.named``: digits, COMPAS), which may read ``dataset_path``.
        target: the target column (None: OpenML's default target, or a file's last column).
        openml_cache_dir: an OpenML cache to read datasets from (read-only).
        mode: the task, ``classification`` or ``regression``.
        seed: the seed of the split (and of training).
        test_split_size: the test fraction.
        scale_inputs: ``numerical`` (the paper: standardise numerical columns) or ``all`` encoded columns.
    """

    dataset_id: int | None = None
    dataset_path: Path | None = None
    dataset: str | None = None
    target: str | None = None
    openml_cache_dir: Path | None = None
    mode: Mode = "classification"
    seed: int = 0
    test_split_size: float = 0.2
    scale_inputs: Literal["numerical", "all"] = "numerical"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> DataConfig:
        """The data fields of a flat mapping (a parsed command line, a report's ``config``); other keys are ignored.

        Raises:
            UserError: a field of the wrong type (a report from elsewhere is not trusted).
        """
        known = {item.name for item in dataclasses.fields(cls)}
        given = {name: values[name] for name in known if values.get(name) is not None}
        for name in ("dataset_path", "openml_cache_dir"):
            if name in given:
                value = given[name]
                given[name] = value if isinstance(value, Path) else Path(_text(value, name))
        for name in ("dataset", "target"):
            if name in given:
                given[name] = _text(given[name], name)
        if "dataset_id" in given:
            given["dataset_id"] = _integer(given["dataset_id"], "dataset_id", low=1)
        if "seed" in given:
            given["seed"] = _integer(given["seed"], "seed", low=0)
        if "mode" in given and given["mode"] not in ("classification", "regression"):
            raise UserError(f"config: mode must be classification or regression, got {given['mode']!r}")
        if "scale_inputs" in given and given["scale_inputs"] not in ("numerical", "all"):
            raise UserError(f"config: scale_inputs must be numerical or all, got {given['scale_inputs']!r}")
        if "test_split_size" in given:
            size = given["test_split_size"]
            if isinstance(size, bool) or not isinstance(size, int | float) or not 0 < size < 1:
                raise UserError(f"config: test_split_size must be a number in (0, 1), got {size!r}")
        return cls(**given)

    def check_sources(self) -> None:
        """One source of data: ``dataset_id``, ``dataset_path`` or ``dataset`` (which may take a path).

        Raises:
            UserError: two of them together, or ``target`` with a named dataset (whose target is fixed).
        """
        given = [name for name in ("dataset_id", "dataset_path", "dataset") if getattr(self, name) is not None]
        if "dataset" in given and "dataset_path" in given:
            given.remove("dataset_path")  # a named dataset may read its data from --dataset_path
        if len(given) > 1:
            raise UserError(f"give one dataset: {' and '.join('--' + name for name in given)} were both given")
        if self.dataset and self.target:
            raise UserError(f"--dataset {self.dataset} has a fixed target; --target does not apply")

    @property
    def key(self) -> str:
        """The ``<dataset_id>`` directory name of the runs on this data: a name, a file's stem or the OpenML id."""
        if self.dataset:
            return self.dataset
        if self.dataset_path is not None:
            from data.loading import file_dataset_key

            return file_dataset_key(self.dataset_path)
        return str(self.dataset_id if self.dataset_id is not None else DEFAULT_DATASET_ID)

    def load(self):
        """The raw dataset (``data.RawDataset``) these fields name, through :data:`dataset_loader`."""
        return dataset_loader(self)

    def split(self, raw, *, encoding_type: str, validation_size: float = 0.0):
        """The protocol's split of ``raw`` (``data.PreparedSplit``): the same rows for every method."""
        from data import prepare_split

        return prepare_split(
            raw,
            mode=self.mode,
            seed=self.seed,
            test_split_size=self.test_split_size,
            encoding_type=encoding_type,
            validation_size=validation_size,
            scale_all_inputs=self.scale_inputs == "all",
        )


def load_raw_dataset(data: DataConfig):
    """Load the dataset ``data`` names: a named dataset, a file, or an OpenML id (default credit-g, embedded)."""
    from data import load_dataset

    data.check_sources()
    if data.dataset:
        from data.named import load_named_dataset

        return load_named_dataset(data.dataset, path=data.dataset_path)
    return load_dataset(
        dataset_id=None if data.dataset_path else (data.dataset_id or DEFAULT_DATASET_ID),
        dataset_path=data.dataset_path,
        target=data.target,
        openml_cache_dir=data.openml_cache_dir,
    )


#: What :meth:`DataConfig.load` calls: :func:`load_raw_dataset`, or a sweep worker's cache in front of it
#: (``experiments.sweep``), set for that worker process and the cells it forks.
dataset_loader: Callable[[DataConfig], Any] = load_raw_dataset


@dataclass(frozen=True)
class RunConfig:
    """One run of one registered method.

    Attributes:
        method: the method id (``methods.REGISTRY``).
        data: which rows (:class:`DataConfig`).
        model_params: the estimator parameters given explicitly (flags); the method's defaults fill in the rest.
        variant: a variant name: results go to ``<method>-<variant>/``.
        output_dir: the root of the results tree.
        force: rerun even when the run's results exist.
        device: ``auto``, ``cpu`` or ``cuda``.
        n_jobs: CPU threads of a baseline's model.
        encoding_type: the categorical encoding (None: the method's own, ``MethodSpec.encoding``).
        reference: the reference point of the explanations.
        explanation_metrics: SENN's stability and removal faithfulness (``auto``: the neural methods).
        audit_sensitivity: measure the explanation against the model's sensitivity.
        audit_features: original features whose reliance to measure.
        penalize_features, penalty, penalty_strength, blind: explanation penalties (neural methods) or removal.
        hpo_tuning, n_trials, hpo_timeout: Optuna HPO on a 60/20/20 split.
        progress: show a progress bar while training.
        wandb_project: log to Weights & Biases (``main_experiment.py`` only).
    """

    method: str
    data: DataConfig = field(default_factory=DataConfig)
    model_params: Mapping[str, Any] = field(default_factory=dict)
    variant: str | None = None
    output_dir: Path = Path("results")
    force: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    n_jobs: int = 1
    encoding_type: str | None = None
    reference: Reference = "mean"
    explanation_metrics: ExplanationMetrics = "auto"
    audit_sensitivity: bool = False
    audit_features: tuple[str, ...] = ()
    penalize_features: tuple[str, ...] = ()
    penalty: str | None = None
    penalty_strength: float | None = None
    blind: bool = False
    hpo_tuning: bool = False
    n_trials: int = 100
    hpo_timeout: float = 3600.0
    progress: bool = False
    wandb_project: str | None = None

    @property
    def spec(self) -> MethodSpec:
        return get_method(self.method)

    @property
    def seed(self) -> int:
        return self.data.seed

    @property
    def mode(self) -> Mode:
        return self.data.mode

    @property
    def encoding(self) -> str:
        """The encoding the run uses: the flag's, or the method's own."""
        return self.encoding_type or self.spec.encoding

    @classmethod
    def from_flags(cls, method: str, flags: Mapping[str, Any]) -> RunConfig:
        """The configuration a parsed command line (``vars(args)``) asks for, for ``method``.

        Model flags (see :func:`model_flag_names`) present in ``flags`` were given on the command line (the
        parsers add them without a default); each must set a parameter of ``method``.

        Raises:
            UserError: a model flag that sets no parameter of ``method``, or ``--penalty_strength`` without
                ``--penalty``.
        """
        spec = get_method(method)
        data = DataConfig.from_mapping(flags)
        mode = data.mode
        model_params: dict[str, Any] = {}
        for name in sorted(model_flag_names() & set(flags)):
            if flags[name] is None:
                continue
            parameter = flag_parameter(spec, name, mode)
            if parameter is None:
                users = [other.id for other in REGISTRY.values() if flag_parameter(other, name, mode) is not None]
                raise UserError(f"--{name} does not apply to {spec.id}: it sets a parameter of {', '.join(users)} only")
            model_params[parameter] = flags[name]
        if flags.get("penalty_strength") is not None and not flags.get("penalty"):
            raise UserError("--penalty_strength needs --penalty (the penalty whose weight it is)")
        run_fields = {item.name for item in dataclasses.fields(cls)} - {"method", "data", "model_params"}
        values = {name: flags[name] for name in run_fields if flags.get(name) is not None}
        for name in ("audit_features", "penalize_features"):
            if name in values:
                values[name] = tuple(values[name])
        if "output_dir" in values:
            values["output_dir"] = Path(values["output_dir"])
        return cls(method=spec.id, data=data, model_params=model_params, **values)

    def report_config(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The flat form recorded as a report's ``config``: ``method``, every run and data field (paths as text)
        and every model flag of the method under its flag name: its value in ``params`` (the parameters the model
        was fit with) or, without them, as given.
        """
        flat: dict[str, Any] = {"method": self.method}
        for item in dataclasses.fields(self.data):
            flat[item.name] = getattr(self.data, item.name)
        for item in dataclasses.fields(self):
            if item.name not in ("method", "data", "model_params"):
                flat[item.name] = getattr(self, item.name)
        values = {**self.model_params, **(params or {})}
        for name, parameter in _flag_parameters(self.spec, self.mode).items():
            if parameter in values:
                flat[name] = values[parameter]
        if params is not None and self.penalty is not None:
            flat["penalty_strength"] = params.get("penalty_strength", self.penalty_strength)
        for name in ("audit_features", "penalize_features"):
            flat[name] = list(flat[name]) or None
        return {name: str(value) if isinstance(value, Path) else value for name, value in flat.items()}


#: The neural methods' shared model flags: each sets the estimator parameter of its name.
NEURAL_FLAGS = (
    "nr_blocks",
    "hidden_size",
    "nr_epochs",
    "batch_size",
    "learning_rate",
    "weight_decay",
    "weight_norm",
    "weight_norm_scale",
    "product_inputs",
    "dropout",
    "augmentation_probability",
    "scheduler_t_mult",
    "nr_restarts",
    "class_balance",
    "threads",
    "compile",
)


def _flag_parameters(spec: MethodSpec, mode: Mode) -> dict[str, str]:
    """``flag name -> estimator parameter`` of every model flag that sets a parameter of ``spec``."""
    mapping = {flag.name: flag.parameter for flag in spec.flags}
    if spec.kind == "neural":
        known = spec.defaults(mode)
        mapping.update({name: name for name in NEURAL_FLAGS if name in known})
    return mapping


def flag_parameter(spec: MethodSpec, flag_name: str, mode: Mode = "classification") -> str | None:
    """The estimator parameter of ``spec`` that the model flag ``--flag_name`` sets, or None (it does not apply)."""
    return _flag_parameters(spec, mode).get(flag_name)


def model_flag_names() -> set[str]:
    """Every model flag of any registered method (without dashes)."""
    return set(NEURAL_FLAGS) | {flag.name for spec in REGISTRY.values() for flag in spec.flags}


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value or "\x00" in value:
        raise UserError(f"config: {name} must be non-empty text, got {value!r}")
    return value


def _integer(value: Any, name: str, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or value > 2**63 - 1:
        raise UserError(f"config: {name} must be an integer >= {low}, got {value!r}")
    return value
