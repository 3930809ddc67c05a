"""What the registry knows about a method: :class:`MethodSpec`, search spaces as data, method-specific flags.

A spec is data plus three small callables (build the estimator, feed it, explain it). Importing this module
imports no machine-learning library: estimators and explainers are imported when a spec is used, so the plots
and the sweep can read labels, colours and method lists without loading torch.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

if TYPE_CHECKING:
    import optuna

    from data import PreparedSplit
    from models.attribution import Attribution

Mode = Literal["classification", "regression"]
MODES: tuple[Mode, ...] = ("classification", "regression")
Kind = Literal["neural", "baseline"]
Encoding = Literal["paper", "onehot", "target", "ordinal"]
InputKind = Literal["matrix", "frame"]
Explains = Literal["features", "concepts", "model"]
#: How a run folder keeps a fitted model (``experiments.saved_run`` writes and reads each): ``network`` (``model.pt``:
#: state dicts and the estimator's parameters, ``torch.load(weights_only=True)``), ``catboost`` (``model.cbm``,
#: CatBoost's own format), ``sklearn_arrays`` (``model.npz``: a linear model's or trees' fitted state as plain
#: arrays) or ``none`` (no format that loads without unpickling; ``MethodSpec.model_not_saved`` says why).
ModelFormat = Literal["network", "catboost", "sklearn_arrays", "none"]
MODEL_FORMATS: tuple[ModelFormat, ...] = get_args(ModelFormat)
#: What a native explanation is: ``exact`` (adds up to the explained output and vanishes at the reference),
#: ``exact_centred`` (adds up to the explained output with one constant rest, the mean training output: relative to
#: the training distribution, not to a point), ``approximate`` (signed, not additive) or ``unsigned``
#: (attention-like magnitudes, no direction).
ExplanationKind = Literal["exact", "exact_centred", "approximate", "unsigned"]
EXPLANATION_KINDS: tuple[ExplanationKind, ...] = get_args(ExplanationKind)


# ----------------------------------------------------------------------------------------------------------
# Search spaces as data


@dataclass(frozen=True)
class FloatRange:
    """A real parameter in ``[low, high]``, sampled on a log scale when ``log``."""

    low: float
    high: float
    log: bool = False

    def suggest(self, trial: optuna.Trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log)


@dataclass(frozen=True)
class IntRange:
    """An integer parameter in ``[low, high]`` (both included)."""

    low: int
    high: int
    log: bool = False

    def suggest(self, trial: optuna.Trial, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log)


@dataclass(frozen=True)
class Choice:
    """A categorical parameter."""

    choices: tuple[Any, ...]

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        return trial.suggest_categorical(name, self.choices)


Param = FloatRange | IntRange | Choice
Space = dict[str, Param]


# ----------------------------------------------------------------------------------------------------------
# Method-specific command-line flags


@dataclass(frozen=True)
class Flag:
    """A command-line flag of one method that sets one of its estimator parameters.

    Attributes:
        name: the flag without dashes (``catboost_iterations``).
        parameter: the estimator parameter it sets (``iterations``).
        type: argparse type (a callable that parses the text, raising ``argparse.ArgumentTypeError``).
        help: one line; the method's default is appended.
        choices: allowed values, if a closed set.
    """

    name: str
    parameter: str
    type: Callable[[str], Any] = str
    help: str = ""
    choices: tuple[Any, ...] | None = None

    def add_to(self, group: argparse._ArgumentGroup, default_text: str) -> None:
        """Add the flag to an argparse group; when it is not given, the method's own default applies (the
        parsed namespace then has no such attribute)."""
        group.add_argument(
            f"--{self.name}",
            type=self.type,
            default=argparse.SUPPRESS,
            choices=self.choices,
            help=f"{self.help} (default {default_text})",
        )


# ----------------------------------------------------------------------------------------------------------
# The spec


@dataclass(frozen=True)
class MethodSpec:
    """Everything the project knows about one method, in one place.

    Attributes:
        id: the method id: a results-tree directory name, frozen once released.
        kind: ``neural`` (``main_experiment.py``) or ``baseline`` (``baseline_experiment.py``).
        label: the human label of plots and tables.
        color: its colour in every figure (hex).
        summary: one line for the README's methods table.
        encoding: the ``encoding_type`` of ``data.prepare_split`` the model wants by default.
        input_kind: ``matrix`` (the float32 encoded matrix) or ``frame`` (the unencoded frame: native categoricals).
        defaults: ``defaults(mode) -> dict`` of default estimator parameters (the keys flags and HPO may set).
        factory: ``factory(split, *, seed, device, n_jobs, params) -> unfitted estimator``.
        search_space: per mode, the HPO search space over estimator parameters.
        model_format: how a run folder keeps the fitted model (:data:`ModelFormat`); ``none`` needs
            ``model_not_saved``.
        explanation_kind: what the native explanation is (:data:`ExplanationKind`); the registry-wide tests check
            it (additivity and zero at the reference for ``exact``, signs for ``approximate``, no sign for
            ``unsigned``).
        explainer: where its native explainer class is, ``"module:Class"`` (``"explainers.inn:INNExplainer"``),
            imported when used; :attr:`explainer_id` is that class's ``id`` (what its explanations are recorded as).
        imports: the modules a fit and native explanation import on first use (the estimator's module, the
            libraries imported inside functions); a process that runs many fits imports them ahead (the sweep's
            fork workers). A speed hint only: whatever is missing is imported when used.
        explanation: what its explanation is, in words (recorded in every report).
        flags: method-specific command-line flags.
        uses_device: whether the model can run on a GPU (otherwise it always runs on the CPU).
        smoke_params: small settings that make a fit take a second (tests, smoke runs); a test fails without them.
        closed_parameters: the estimator takes exactly the parameters of ``defaults`` (the project's own
            estimators); otherwise any parameter of the library's estimator may be set (HPO, overrides).
        explains: what the native explanation is over: ``features`` (input columns, summed to the original
            features), ``concepts`` (concepts the model learned, which no mapping turns into features: left as they
            are) or ``model`` (the fitted model says which: ``model.explanation_space()``, for a method whose concepts
            are an option, such as SENN's conceptizer).
        model_not_saved: why a method of model format ``none`` saves no model (``explain.py`` says it); empty
            otherwise.
        image_inputs: the method needs image-shaped data (pixel columns, ``data.images.pixel_layout``: the CNN);
            its factory refuses any other data with a one-line ``UserError``.
    """

    id: str
    kind: Kind
    label: str
    color: str
    summary: str
    encoding: Encoding
    input_kind: InputKind
    defaults: Callable[[Mode], dict[str, Any]] = field(repr=False)
    factory: Callable[..., Any] = field(repr=False)
    search_space: Mapping[Mode, Space] = field(repr=False)
    model_format: ModelFormat
    explanation_kind: ExplanationKind
    explainer: str = ""
    imports: tuple[str, ...] = ()
    explanation: str = ""
    flags: tuple[Flag, ...] = ()
    uses_device: bool = False
    smoke_params: Mapping[str, Any] = field(default_factory=dict)
    closed_parameters: bool = False
    explains: Explains = "features"
    model_not_saved: str = ""
    image_inputs: bool = False

    def __post_init__(self) -> None:
        if self.model_format not in MODEL_FORMATS:
            raise ValueError(f"{self.id}: model_format must be one of {MODEL_FORMATS}, got {self.model_format!r}")
        if (self.model_format == "none") != bool(self.model_not_saved):
            raise ValueError(f"{self.id}: model_format 'none' needs model_not_saved (why), and only it has one")
        if self.explanation_kind not in EXPLANATION_KINDS:
            raise ValueError(
                f"{self.id}: explanation_kind must be one of {EXPLANATION_KINDS}, got {self.explanation_kind!r}"
            )

    @property
    def script(self) -> str:
        """The experiment script that runs this method."""
        return "main_experiment.py" if self.kind == "neural" else "baseline_experiment.py"

    def resolve_params(self, mode: Mode, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The default parameters of ``mode`` updated with ``overrides``.

        Raises:
            ValueError: an override names a parameter this method does not have (closed parameter sets only).
        """
        params = dict(self.defaults(mode))
        unknown = sorted(set(overrides or {}) - set(params))
        if unknown and self.closed_parameters:
            raise ValueError(f"{self.id} ({mode}) has no parameters {unknown}; known: {sorted(params)}")
        params.update(overrides or {})
        return params

    def build(
        self,
        split: PreparedSplit,
        *,
        seed: int,
        device: Any = "cpu",
        n_jobs: int = 1,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """An unfitted classifier or regressor (by ``split.task``) configured for ``split``."""
        from models.device import resolve_device

        resolved = self.resolve_params(_mode(split), params)
        return self.factory(split, seed=seed, device=resolve_device(device), n_jobs=n_jobs, params=resolved)

    def inputs(self, split: PreparedSplit) -> tuple[Any, Any]:
        """The model inputs ``(train, test)`` of ``split``: matrices, or frames for native categoricals."""
        return split_inputs(split, self.input_kind)

    def explains_concepts(self, model: Any) -> bool:
        """Whether the native explanation of the fitted ``model`` is over learned concepts, not features."""
        if self.explains == "model":
            return model.explanation_space() == "concepts"
        return self.explains == "concepts"

    def explain(self, model: Any, split: PreparedSplit, X: Any, *, reference: str = "mean") -> Attribution:
        """The native explanation of ``X`` (the model's inputs) over the ORIGINAL features of ``split``.

        ``reference``: ``mean`` (the training mean of every input column; for native categoricals the most
        frequent category) or ``zero``; explainers that are not relative to a point ignore it. An explanation
        over learned concepts (:meth:`explains_concepts`) stays over its concepts.
        """
        explainer = self.native_explainer()()
        train, _ = self.inputs(split)
        if self.kind == "neural":
            attribution = explainer.explain(model, X, reference=reference)
        else:
            point, name = reference_inputs(train, reference)
            names = list(train.columns) if self.input_kind == "frame" else list(split.input_names)
            attribution = explainer.explain(model, X, reference=point, reference_name=name, feature_names=names)
        if self.input_kind == "frame" or self.explains_concepts(model):
            return attribution  # frame columns are the original features; concepts map to no feature
        return attribution.aggregate(split.input_to_feature, split.feature_names)

    def output(self, model: Any, X: Any) -> np.ndarray:
        """The output the native explanation explains, ``(N, C)``, computed without explaining (logits for
        networks, logistic regression, CatBoost and EBM; probabilities for scikit-learn trees)."""
        return self.native_explainer().output(model, X)

    def native_explainer(self) -> type:
        """The class of the native explainer (:attr:`explainer`), its module imported now."""
        import importlib

        module, _, name = self.explainer.partition(":")
        return getattr(importlib.import_module(module), name)

    @property
    def explainer_id(self) -> str:
        """The id of the native explainer (``inn``, ``tree_shap``, ...): its explanations' ``explainer``."""
        return self.native_explainer().id


def _mode(split: PreparedSplit) -> Mode:
    return "regression" if split.task == "regression" else "classification"


def split_inputs(split: PreparedSplit, input_kind: InputKind) -> tuple[Any, Any]:
    """``(train, test)`` model inputs: the encoded matrices, or the unencoded frames in feature order."""
    if input_kind == "frame":
        columns = list(split.feature_names)
        return split.frame_train.loc[:, columns], split.frame_test.loc[:, columns]
    return split.X_train, split.X_test


def reference_inputs(train: Any, reference: str) -> tuple[Any, str]:
    """The reference input of a baseline: a row ``(D,)`` for matrices, a one-row frame for frames.

    ``mean``: the training mean of every column (a categorical column of a frame: its most frequent category);
    ``zero``: the origin (a categorical column of a frame: still its most frequent category).
    """
    import pandas as pd

    if reference not in ("mean", "zero"):
        raise ValueError(f"reference must be 'mean' or 'zero', got {reference!r}")
    name = "training mean" if reference == "mean" else "zero"
    if isinstance(train, pd.DataFrame):
        row = {}
        for column in train.columns:
            values = train[column]
            if pd.api.types.is_numeric_dtype(values):
                row[column] = [float(values.mean()) if reference == "mean" else 0.0]
            else:
                row[column] = [values.mode(dropna=True).iloc[0]]
        frame = pd.DataFrame(row, columns=train.columns).astype(train.dtypes.to_dict())
        if any(not pd.api.types.is_numeric_dtype(train[column]) for column in train.columns):
            name += " (categorical features: their most frequent category)"
        return frame, name
    matrix = np.asarray(train, dtype=np.float64)
    return (matrix.mean(axis=0) if reference == "mean" else np.zeros(matrix.shape[1])), name
