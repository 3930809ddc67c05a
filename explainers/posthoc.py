"""What post-hoc explainers share: the model as functions, feature groups, background rows and batched masking.

A post-hoc explainer explains any model through functions, in captum's convention: it is constructed with the
model's ``predict`` (numpy rows ``(M, D)`` to outputs ``(M,)`` or ``(M, C)``) or its differentiable ``forward``
(torch), plus background rows that stand for the data, and ``explain(X)`` returns an
:class:`~models.attribution.Attribution` over the ORIGINAL features.

Feature groups. A model sees ``D`` encoded input columns (one-hot blocks, several target-encoded columns of a
multiclass task); a user thinks in ``F`` original features. ``input_to_feature`` ``(D,)`` names the feature of every
column (``data.PreparedSplit.input_to_feature``; ``None``: one column per feature). Model-agnostic explainers
perturb features, never single columns: removing a feature replaces ALL its columns by the same background row's
columns, so a one-hot block always holds a valid category (:func:`interventional_values`,
:class:`TokenModel`). Gradient explainers attribute columns and sum each feature's columns
(``models.attribution.aggregate_columns``), which keeps completeness. A caller with a frame-level predict
function (the original features, categorical ones as numeric codes) passes it with ``input_to_feature=None``.

:class:`ExplanationTarget` bundles what an explainer may use of one fitted model; every explainer class of
``explainers.POSTHOC_EXPLAINERS`` builds itself from one with ``from_target(target, seed=..., **options)``, and
:func:`target_from_estimator` makes one from a project estimator (the registry's models). The gradient explainers
read their constructor arguments off a target with :func:`forward_arguments`.

:class:`PostHocExplainer` is the base of the predict-based explainers; its keyword options
(:class:`PostHocOptions`) are documented there once and handed on by every subclass.
:class:`BackgroundSampleExplainer` adds the seeded background sample of the explainers that remove features.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict

import numpy as np

from models.attribution import Attribution, ReferenceKind, reference_point

if TYPE_CHECKING:
    from typing import Unpack  # Python 3.11+; annotations only, so the runtime may be 3.10

    import torch

__all__ = [
    "DEFAULT_BACKGROUND_SIZE",
    "DEFAULT_CHUNK_SIZE",
    "BackgroundSampleExplainer",
    "ExplanationTarget",
    "FeatureGrouping",
    "PostHocExplainer",
    "PostHocOptions",
    "SampleOptions",
    "TokenModel",
    "as_outputs",
    "forward_arguments",
    "interventional_values",
    "sample_background",
    "target_from_estimator",
]

#: Model inputs per ``predict`` call (rows × background rows × coalitions are flattened and cut into such chunks).
DEFAULT_CHUNK_SIZE = 1 << 16
#: Background rows of the interventional explainers (shap's ``Independent`` masker keeps 100 by default).
DEFAULT_BACKGROUND_SIZE = 100

#: A model's outputs on numpy rows: ``(M, D) -> (M,)`` or ``(M, C)``.
Predict = Callable[[np.ndarray], np.ndarray]


def as_outputs(values: Any, n_rows: int) -> np.ndarray:
    """Model outputs as a float64 ``(M, C)`` matrix (a vector is one output).

    Shape:
        values ``(M,)`` or ``(M, C)`` -> ``(M, C)``
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[0] != n_rows:
        raise ValueError(
            f"predict returned shape {values.shape} for {n_rows} rows; expected ({n_rows},) or ({n_rows}, C)"
        )
    return values


def predict_outputs(predict: Predict, points: np.ndarray, chunk_size: int = DEFAULT_CHUNK_SIZE) -> np.ndarray:
    """``predict`` over any number of rows in calls of at most ``chunk_size`` rows, as ``(M, C)``.

    Shape:
        points ``(M, D)`` -> ``(M, C)``
    """
    if points.shape[0] == 0:
        raise ValueError("no rows to predict")
    parts = []
    for start in range(0, points.shape[0], chunk_size):
        block = points[start : start + chunk_size]
        parts.append(as_outputs(predict(block), block.shape[0]))
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


@dataclass(frozen=True)
class FeatureGrouping:
    """The map from ``D`` model input columns to ``F`` original features.

    Attributes:
        input_to_feature: ``(D,)`` the feature index of every column.
        n_features: ``F``.
    """

    input_to_feature: np.ndarray
    n_features: int

    @classmethod
    def create(cls, input_to_feature: Sequence[int] | np.ndarray | None, n_inputs: int) -> FeatureGrouping:
        """A grouping from ``input_to_feature`` (``None``: one column per feature).

        Raises:
            ValueError: not one entry per column, or a feature without columns.
        """
        if input_to_feature is None:
            return cls(np.arange(n_inputs), n_inputs)
        mapping = np.asarray(input_to_feature, dtype=np.int64).reshape(-1)
        if mapping.shape != (n_inputs,):
            raise ValueError(f"input_to_feature has {mapping.size} entries for {n_inputs} input columns")
        n_features = int(mapping.max()) + 1 if mapping.size else 0
        if mapping.size and (mapping.min() < 0 or np.unique(mapping).size != n_features):
            raise ValueError("input_to_feature must map the columns onto features 0..F-1, each with a column")
        return cls(mapping, n_features)

    @property
    def n_inputs(self) -> int:
        return int(self.input_to_feature.shape[0])

    @property
    def identity(self) -> bool:
        """Whether every feature is exactly one column, in order."""
        return self.n_features == self.n_inputs and bool(np.all(self.input_to_feature == np.arange(self.n_inputs)))

    def columns(self, feature_mask: np.ndarray) -> np.ndarray:
        """A mask over features expanded to their columns.

        Shape:
            feature_mask ``(..., F)`` -> ``(..., D)``
        """
        return np.asarray(feature_mask)[..., self.input_to_feature]

    def aggregate(self, values: np.ndarray) -> np.ndarray:
        """Column attributions summed per feature.

        Shape:
            values ``(N, D, C)`` -> ``(N, F, C)``
        """
        if self.identity:
            return values
        from models.attribution import aggregate_columns

        return aggregate_columns(values, self.input_to_feature, self.n_features)


def sample_background(background: np.ndarray, size: int | None, seed: int) -> np.ndarray:
    """At most ``size`` rows of ``background``, drawn without replacement by ``seed`` (all rows if ``None``)."""
    background = np.asarray(background, dtype=np.float64)
    if background.ndim != 2 or background.shape[0] == 0:
        raise ValueError(f"background must be (B, D) with B >= 1, got shape {background.shape}")
    if size is None or size >= background.shape[0]:
        return background
    if size < 1:
        raise ValueError(f"background size must be at least 1, got {size}")
    rows = np.random.default_rng(seed).choice(background.shape[0], size=size, replace=False)
    return background[np.sort(rows)]


def interventional_values(
    predict: Predict,
    X: np.ndarray,
    masks: np.ndarray,
    background: np.ndarray,
    grouping: FeatureGrouping,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> np.ndarray:
    """``v_x(S) = mean_b f(x_S, b_¬S)`` for every row and coalition of features, in big batched model calls.

    A feature outside ``S`` takes all its columns from the background row ``b`` (a one-hot block moves as one).

    Args:
        predict: the model.
        X: rows to explain (model input columns).
        masks: coalitions over features, true = taken from ``x``: ``(K, F)`` for every row or ``(N, K, F)``.
        background: background rows ``b``.
        grouping: the columns of every feature.
        chunk_size: most model inputs per call.

    Shape:
        X ``(N, D)``, masks ``(K, F)`` or ``(N, K, F)``, background ``(B, D)`` -> ``(N, K, C)``
    """
    X = np.asarray(X, dtype=np.float64)
    n, n_background = X.shape[0], background.shape[0]
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim == 2:
        masks = np.broadcast_to(masks[None], (n, *masks.shape))
    k = masks.shape[1]
    columns = grouping.columns(masks).reshape(n * k, -1)  # (pairs, D)
    rows = np.repeat(np.arange(n), k)
    pairs_per_call = max(1, chunk_size // n_background)
    out: np.ndarray | None = None
    for start in range(0, n * k, pairs_per_call):
        stop = min(start + pairs_per_call, n * k)
        points = np.where(columns[start:stop, None, :], X[rows[start:stop], None, :], background[None, :, :])
        values = predict_outputs(predict, points.reshape(-1, X.shape[1]), chunk_size)
        means = values.reshape(stop - start, n_background, -1).mean(axis=1)
        if out is None:
            out = np.empty((n * k, means.shape[1]))
        out[start:stop] = means
    if out is None:
        return np.empty((n, k, 1))
    return out.reshape(n, k, -1)


class TokenModel:
    """A model seen through feature tokens, so that column-wise tools (shap's maskers, KernelSHAP) move features.

    A token row ``z`` ``(F,)`` says, for every feature, which source row its columns come from: tokens
    ``0..B-1`` are the background rows, ``B + i`` the ``i``-th explained row. Masking a token (replacing it by a
    background row's token) therefore replaces all columns of that feature at once. Calling the object with
    token rows ``(M, F)`` assembles the column rows ``(M, D)`` and returns the model's outputs.

    Args:
        predict: the model on input columns.
        X: the rows to explain ``(N, D)``.
        background: the background rows ``(B, D)``.
        grouping: the columns of every feature.
        chunk_size: most model inputs per call.
    """

    def __init__(
        self,
        predict: Predict,
        X: np.ndarray,
        background: np.ndarray,
        grouping: FeatureGrouping,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.predict = predict
        self.grouping = grouping
        self.chunk_size = chunk_size
        self.sources = np.concatenate([np.asarray(background, dtype=np.float64), np.asarray(X, dtype=np.float64)])
        n_background, n_features = background.shape[0], grouping.n_features
        self.background_tokens = np.repeat(np.arange(n_background, dtype=np.float64)[:, None], n_features, axis=1)
        self.row_tokens = np.repeat(
            np.arange(n_background, n_background + X.shape[0], dtype=np.float64)[:, None], n_features, axis=1
        )

    def columns(self, tokens: np.ndarray) -> np.ndarray:
        """The column rows that token rows stand for.

        Shape:
            tokens ``(M, F)`` -> ``(M, D)``
        """
        index = np.rint(np.asarray(tokens, dtype=np.float64)).astype(np.int64)[:, self.grouping.input_to_feature]
        return self.sources[index, np.arange(self.grouping.n_inputs)[None, :]]

    def __call__(self, tokens: np.ndarray) -> np.ndarray:
        return predict_outputs(self.predict, self.columns(tokens), self.chunk_size)


@dataclass(frozen=True)
class ExplanationTarget:
    """What a post-hoc explainer may use of one fitted model.

    Attributes:
        predict: the explained outputs on numpy rows of input columns, ``(M, D) -> (M,)`` or ``(M, C)``
            (regression: predictions; classification: the logits the explanation is about).
        background: ``(B, D)`` rows that stand for the data (the training rows); explainers subsample them.
        feature_names: the ``F`` original features.
        input_to_feature: ``(D,)`` the feature of every input column; ``None``: one column per feature.
        forward: the model as a differentiable torch function ``x (B, D) -> (B, C)`` (gradient explainers), or
            ``None`` for models without gradients (trees, EBM).
        output_scale: ``forward``'s outputs times this plus ``output_shift`` are ``predict``'s outputs.
        output_shift: see ``output_scale``.
        reference: ``(D,)`` the reference input of reference-based explainers (IG's baseline, MAPLE's centre).
        reference_name: the reference in words.
        output_name: what the outputs are, in words.
        model: the fitted estimator itself, for model-specific explainers (CD); ``None`` otherwise.
    """

    predict: Predict
    background: np.ndarray
    feature_names: tuple[str, ...]
    input_to_feature: np.ndarray | None = None
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None
    output_scale: float = 1.0
    output_shift: float = 0.0
    reference: np.ndarray | None = None
    reference_name: str = "training mean"
    output_name: str = "prediction"
    model: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        background = np.asarray(self.background, dtype=np.float64)
        if background.ndim != 2 or background.shape[0] == 0:
            raise ValueError(f"background must be (B, D) with B >= 1, got shape {background.shape}")
        object.__setattr__(self, "background", background)
        object.__setattr__(self, "feature_names", tuple(str(name) for name in self.feature_names))
        if self.reference is None:
            object.__setattr__(self, "reference", background.mean(axis=0))

    @property
    def grouping(self) -> FeatureGrouping:
        return FeatureGrouping.create(self.input_to_feature, self.background.shape[1])


def target_from_estimator(
    model: Any,
    background: np.ndarray,
    *,
    feature_names: Sequence[str],
    input_to_feature: Sequence[int] | np.ndarray | None = None,
    reference: ReferenceKind | np.ndarray = "mean",
    to_model_input: Callable[[np.ndarray], Any] | None = None,
) -> ExplanationTarget:
    """An :class:`ExplanationTarget` of a fitted estimator (the project's networks, scikit-learn, EBM, TabNet).

    The explained output is the prediction for regressors and the decision function (logits) for classifiers
    (``predict_proba`` when there is none). Networks with ``logits_function`` also get a differentiable
    ``forward`` in the same units.

    Args:
        model: the fitted estimator.
        background: its training rows (model input columns).
        feature_names: the original features.
        input_to_feature: the feature of every input column (``None``: one column per feature).
        reference: ``mean`` (the training mean of every column), ``zero`` or a point ``(D,)``.
        to_model_input: converts numpy rows to what the model takes (e.g. a frame for EBM); identity by default.
    """
    background = np.asarray(background, dtype=np.float64)
    convert = to_model_input or (lambda rows: np.asarray(rows, dtype=np.float32))
    if hasattr(model, "decision_function"):
        output = model.decision_function
        output_name = "logit"
    elif hasattr(model, "classes_") and hasattr(model, "predict_proba"):
        output = model.predict_proba
        output_name = "probability"
    else:
        output = model.predict
        output_name = "prediction"

    def predict(rows: np.ndarray) -> np.ndarray:
        return np.asarray(output(convert(rows)), dtype=np.float64)

    forward, scale, shift = None, 1.0, 0.0
    if hasattr(model, "logits_function"):
        forward = model.logits_function()
        scale, shift = model.output_transform()
    training_mean = getattr(model, "reference_", None)
    point, name = reference_point(reference, background.mean(axis=0) if training_mean is None else training_mean)
    return ExplanationTarget(
        predict=predict,
        background=background,
        feature_names=tuple(feature_names),
        input_to_feature=None if input_to_feature is None else np.asarray(input_to_feature, dtype=np.int64),
        forward=forward,
        output_scale=float(scale),
        output_shift=float(shift),
        reference=point,
        reference_name=name,
        output_name=output_name,
        model=model,
    )


def forward_arguments(target: ExplanationTarget, explainer: str) -> dict[str, Any]:
    """The constructor arguments every gradient explainer takes from ``target``, by name.

    A gradient explainer (``requires = "forward"``) is built as ``cls(forward, reference, *, reference_name,
    input_to_feature, feature_names, output_scale, output_shift, output_name, ...)``, each the target's field of that
    name.

    Raises:
        ValueError: the target has no ``forward`` (a model without gradients); ``explainer`` names who needs one.
    """
    if target.forward is None:
        raise ValueError(f"{explainer} needs a differentiable model (the target has no forward)")
    return {
        "forward": target.forward,
        "reference": target.reference,
        "reference_name": target.reference_name,
        "input_to_feature": target.input_to_feature,
        "feature_names": target.feature_names,
        "output_scale": target.output_scale,
        "output_shift": target.output_shift,
        "output_name": target.output_name,
    }


class PostHocOptions(TypedDict, total=False):
    """The keyword options every :class:`PostHocExplainer` takes (their meaning and defaults: there).

    Subclasses take them as ``**options: Unpack[PostHocOptions]`` and hand them on to ``PostHocExplainer``.
    """

    input_to_feature: Sequence[int] | np.ndarray | None
    feature_names: Sequence[str] | None
    output_name: str
    chunk_size: int


class SampleOptions(PostHocOptions, total=False):
    """:class:`PostHocOptions` plus the background sample of a :class:`BackgroundSampleExplainer` (see there)."""

    background_size: int | None
    seed: int


class PostHocExplainer:
    """Base of the post-hoc explainers: a predict function, background rows and the feature grouping.

    Subclasses set ``id``, ``exact`` and ``requires`` (``"predict"``, ``"forward"`` or ``"model"``: what of an
    :class:`ExplanationTarget` they need) and implement :meth:`explain`. They take ``predict`` and ``background``
    first, then their own settings, then this class's keyword options as ``**options: Unpack[PostHocOptions]``.

    Args:
        predict: the model, ``(M, D) -> (M,)`` or ``(M, C)``.
        background: background rows ``(B, D)``.
        input_to_feature: ``(D,)`` the feature of every column (``None``: one column per feature).
        feature_names: the ``F`` feature names (default ``x0``, ``x1``, ...).
        output_name: what the outputs are, in words.
        chunk_size: most model inputs per call.
    """

    id: ClassVar[str] = ""
    exact: ClassVar[bool] = False
    requires: ClassVar[str] = "predict"

    def __init__(
        self,
        predict: Predict,
        background: np.ndarray,
        *,
        input_to_feature: Sequence[int] | np.ndarray | None = None,
        feature_names: Sequence[str] | None = None,
        output_name: str = "prediction",
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.predict = predict
        self.background = np.asarray(background, dtype=np.float64)
        if self.background.ndim != 2 or self.background.shape[0] == 0:
            raise ValueError(f"background must be (B, D) with B >= 1, got shape {self.background.shape}")
        self.grouping = FeatureGrouping.create(input_to_feature, self.background.shape[1])
        names = feature_names if feature_names is not None else [f"x{j}" for j in range(self.grouping.n_features)]
        if len(names) != self.grouping.n_features:
            raise ValueError(f"{len(names)} feature names for {self.grouping.n_features} features")
        self.feature_names = tuple(str(name) for name in names)
        self.output_name = output_name
        self.chunk_size = chunk_size

    @classmethod
    def target_arguments(cls, target: ExplanationTarget) -> dict[str, Any]:
        """The constructor arguments every predict-based explainer takes from a target."""
        return {
            "input_to_feature": target.input_to_feature,
            "feature_names": target.feature_names,
            "output_name": target.output_name,
        }

    @classmethod
    def from_target(cls, target: ExplanationTarget, *, seed: int = 0, **options: Any) -> PostHocExplainer:
        """The explainer of ``target``'s model (``options``: the explainer's own settings)."""
        return cls(target.predict, target.background, **cls.target_arguments(target), seed=seed, **options)

    def check_rows(self, X: Any) -> np.ndarray:
        """``X`` as float64 ``(N, D)`` rows of input columns."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.grouping.n_inputs:
            raise ValueError(f"X must be (N, {self.grouping.n_inputs}), got shape {X.shape}")
        return X

    def outputs(self, X: np.ndarray) -> np.ndarray:
        """The explained outputs ``(N, C)``."""
        return predict_outputs(self.predict, X, self.chunk_size)

    def attribution(
        self,
        values: np.ndarray,
        output: np.ndarray,
        *,
        rest: np.ndarray | None = None,
        reference: np.ndarray | None = None,
        reference_name: str,
        signed: bool = True,
        extras: dict[str, np.ndarray] | None = None,
    ) -> Attribution:
        """An :class:`Attribution` of this explainer; ``rest`` defaults to what the values leave unexplained."""
        values = np.asarray(values, dtype=np.float64)
        return Attribution(
            values=values,
            rest=output - values.sum(axis=1) if rest is None else np.asarray(rest, dtype=np.float64),
            output=output,
            feature_names=self.feature_names,
            explainer=self.id,
            exact=self.exact,
            reference=reference,
            reference_name=reference_name,
            output_name=self.output_name,
            signed=signed,
            extras=dict(extras or {}),
        )

    def explain(self, X: Any) -> Attribution:
        """Attributions ``(N, F, C)`` of the rows ``X`` ``(N, D)``."""
        raise NotImplementedError


class BackgroundSampleExplainer(PostHocExplainer):
    """Base of the explainers that remove a feature by taking its columns from background rows (SHAP, BreakDown).

    Their cost is linear in the background rows, so they work on a seeded sample of them (``sample``) and name it
    as the attributions' reference (:attr:`sample_name`).

    Args:
        predict: the model, ``(M, D) -> (M,)`` or ``(M, C)``.
        background: background rows ``(B, D)``; ``background_size`` of them are drawn with ``seed``.
        background_size: background rows kept in ``sample`` (``None``: all).
        seed: seed of the background sample (kept as ``seed``).
        **options: ``input_to_feature``, ``feature_names``, ``output_name``, ``chunk_size``: see
            :class:`PostHocExplainer`.
    """

    def __init__(
        self,
        predict: Predict,
        background: np.ndarray,
        *,
        background_size: int | None = DEFAULT_BACKGROUND_SIZE,
        seed: int = 0,
        **options: Unpack[PostHocOptions],
    ) -> None:
        super().__init__(predict, background, **options)
        self.sample = sample_background(self.background, background_size, seed)
        self.seed = seed

    @property
    def sample_name(self) -> str:
        """The background sample in words, the reference of the attributions."""
        return f"background sample ({self.sample.shape[0]} rows)"
