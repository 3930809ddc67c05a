"""The one explanation type of the project: per-example attributions, what they add up to, and to what reference.

Every explainer, native (INN's generated weights, EBM's terms, TreeSHAP) or post-hoc (gradient × input, SHAP,
LIME, CD), returns an :class:`Attribution`. It carries the values ``(N, F, C)`` (examples × features × outputs),
the part of the output that no feature accounts for (``rest``), the explained output itself, the reference point
the values are relative to, and whether the explanation is *exact*: ``values.sum(1) + rest == output``.

Reference point. An additive explanation of a model ``f`` at ``x`` is relative to a reference input ``m``: for a
per-example linear model ``f(x) = Σ_j W_j(x)·x_j + b(x)``, re-referencing is exact,
``contribution_j = W_j(x)·(x_j − m_j)`` and ``rest = b(x) + Σ_j W_j(x)·m_j``, so a row equal to ``m`` gets zero
contributions. The project's default reference is the training mean of every model input column
(:data:`DEFAULT_REFERENCE`); ``"zero"`` (the origin of the input columns) is selectable.

Input columns and features. Models see encoded input columns (``D``, e.g. one-hot columns); users think in
original features (``F``). :func:`aggregate_columns` is the one mapping from the former to the latter: the
attributions of a feature's columns are summed, which keeps additivity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

ReferenceKind = Literal["mean", "zero"]
REFERENCE_KINDS: tuple[ReferenceKind, ...] = ("mean", "zero")
#: The reference every exact explainer uses unless told otherwise.
DEFAULT_REFERENCE: ReferenceKind = "mean"
ImportanceKind = Literal["mean_abs", "signed_mean"]
IMPORTANCE_KINDS: tuple[ImportanceKind, ...] = ("mean_abs", "signed_mean")


@dataclass(frozen=True)
class Attribution:
    """Per-example attributions of a model's outputs to features.

    Attributes:
        values: ``(N, F, C)`` attribution of every feature to every output.
        rest: ``(N, C)`` the part of the output no feature accounts for: for exact explainers the bias plus the
            reference's share (``f(reference)`` for Shapley values), for approximate ones what is left over, NaN
            where the explainer says nothing about it (unsigned masks).
        output: ``(N, C)`` the explained outputs (what ``output_name`` says: logits, probabilities, predictions).
        feature_names: ``F`` names.
        explainer: the explainer's id (``inn``, ``gradient_x_input``, ``tree_shap``, ...).
        exact: whether ``values.sum(1) + rest == output`` holds by construction (up to float rounding).
        reference: the reference point in model input columns ``(D,)``, or ``None`` when the explanation is not
            relative to one point (e.g. relative to a distribution).
        reference_name: the reference in words (``training mean``, ``zero``, ``training distribution``).
        output_name: what ``output`` is, in words (``logit``, ``probability``, ``prediction``).
        signed: whether the values carry a direction (attention masks do not).
        extras: explainer-specific arrays (INN: the generated ``weights`` ``(N, D + 1, C)``).
    """

    values: np.ndarray
    rest: np.ndarray
    output: np.ndarray
    feature_names: tuple[str, ...]
    explainer: str
    exact: bool
    reference: np.ndarray | None = None
    reference_name: str = "zero"
    output_name: str = "logit"
    signed: bool = True
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        values, rest, output = np.asarray(self.values), np.asarray(self.rest), np.asarray(self.output)
        if values.ndim != 3:
            raise ValueError(f"values must be (N, F, C), got shape {values.shape}")
        n, f, c = values.shape
        if rest.shape != (n, c) or output.shape != (n, c):
            raise ValueError(f"rest {rest.shape} and output {output.shape} must both be ({n}, {c})")
        if len(self.feature_names) != f:
            raise ValueError(f"{len(self.feature_names)} feature names for {f} attribution columns")
        object.__setattr__(self, "feature_names", tuple(str(name) for name in self.feature_names))

    @property
    def n_examples(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.values.shape[1])

    @property
    def n_outputs(self) -> int:
        return int(self.values.shape[2])

    def additivity_error(self) -> float:
        """``max |values.sum(1) + rest − output|`` (NaN for explanations without a rest)."""
        if self.n_examples == 0:
            return 0.0
        gap = self.values.sum(axis=1, dtype=np.float64) + self.rest - self.output
        return float(np.max(np.abs(gap)))

    def global_importance(self, kind: ImportanceKind = "mean_abs") -> np.ndarray:
        """One importance per feature ``(F,)``, from the local attributions (labels play no part).

        ``mean_abs``: mean over examples of ``|value|``, summed over outputs, normalised to sum 1 (uniform if all
        are zero). ``signed_mean``: mean over examples of the signed value, summed over outputs, divided by the
        same total as ``mean_abs`` (so it lies in ``[-1, 1]`` and large opposite effects can cancel, which is why
        it is not the default).
        """
        if kind not in IMPORTANCE_KINDS:
            raise ValueError(f"kind must be one of {IMPORTANCE_KINDS}, got {kind!r}")
        values = np.asarray(self.values, dtype=np.float64)
        magnitude = np.abs(values).mean(axis=0).sum(axis=-1) if self.n_examples else np.zeros(self.n_features)
        total = magnitude.sum()
        if kind == "mean_abs":
            if total > 0:
                return magnitude / total
            return np.full(self.n_features, 1.0 / max(self.n_features, 1))
        signed = values.mean(axis=0).sum(axis=-1) if self.n_examples else np.zeros(self.n_features)
        return signed / total if total > 0 else np.zeros(self.n_features)

    def aggregate(self, input_to_feature: Sequence[int] | np.ndarray, feature_names: Sequence[str]) -> Attribution:
        """The same attribution over original features: the columns of each feature summed (additivity kept)."""
        values = aggregate_columns(self.values, input_to_feature, len(feature_names))
        return replace(self, values=values, feature_names=tuple(str(name) for name in feature_names))

    def select(self, rows: Sequence[int] | np.ndarray | slice) -> Attribution:
        """The attribution of some examples only (extras with a leading example axis are sliced too)."""
        n = self.n_examples
        extras = {
            key: value[rows] if isinstance(value, np.ndarray) and value.ndim and value.shape[0] == n else value
            for key, value in self.extras.items()
        }
        return replace(self, values=self.values[rows], rest=self.rest[rows], output=self.output[rows], extras=extras)


def aggregate_columns(values: np.ndarray, input_to_feature: Sequence[int] | np.ndarray, n_features: int) -> np.ndarray:
    """Sum the attributions of input columns that belong to the same original feature.

    This is the one mapping from model input columns to original features (one-hot columns, and any other
    encoding that spends several columns on one feature, move together).

    Shape:
        values ``(N, D, C)``, input_to_feature ``(D,)`` -> ``(N, F, C)``
    """
    values = np.asarray(values)
    mapping = np.asarray(input_to_feature, dtype=np.int64)
    if values.ndim != 3 or mapping.shape != (values.shape[1],):
        raise ValueError(f"input_to_feature has shape {mapping.shape}, expected ({values.shape[1]},)")
    if mapping.size and (mapping.min() < 0 or mapping.max() >= n_features):
        raise ValueError(f"input_to_feature must index {n_features} features")
    membership = np.zeros((mapping.size, n_features), dtype=values.dtype)
    membership[np.arange(mapping.size), mapping] = 1
    # (N, C, D) @ (D, F): one matrix product, exact for 0/1 weights.
    return np.ascontiguousarray((values.transpose(0, 2, 1) @ membership).transpose(0, 2, 1))


def reference_point(
    reference: ReferenceKind | np.ndarray | Sequence[float], training_mean: np.ndarray
) -> tuple[np.ndarray, str]:
    """The reference input ``(D,)`` and its name, from a kind (``mean``, ``zero``) or an explicit point.

    Args:
        reference: ``"mean"`` (the training mean of every input column), ``"zero"`` or a point ``(D,)``.
        training_mean: the training mean of the input columns ``(D,)``, stored by the fitted model.
    """
    training_mean = np.asarray(training_mean, dtype=np.float64)
    if isinstance(reference, str):
        if reference == "mean":
            return training_mean, "training mean"
        if reference == "zero":
            return np.zeros_like(training_mean), "zero"
        raise ValueError(f"reference must be one of {REFERENCE_KINDS} or a point, got {reference!r}")
    point = np.asarray(reference, dtype=np.float64).reshape(-1)
    if point.shape != training_mean.shape:
        raise ValueError(f"a reference point needs {training_mean.shape[0]} values, got {point.shape[0]}")
    return point, "given point"


def linear_attribution(
    weights: np.ndarray,
    bias: np.ndarray,
    x: np.ndarray,
    reference: np.ndarray,
    *,
    feature_names: Sequence[str],
    explainer: str,
    reference_name: str,
    output: np.ndarray | None = None,
    output_name: str = "logit",
    extras: Mapping[str, np.ndarray] | None = None,
) -> Attribution:
    """The exact attribution of per-example linear models ``output = Σ_j w_j·x_j + b`` relative to ``reference``.

    ``values_j = w_j·(x_j − m_j)`` and ``rest = b + Σ_j w_j·m_j``: a row equal to ``m`` gets zero values and
    the sum still gives the output. Pass the model's own ``output`` (e.g. a network's logits) to have the
    attribution explain what the model computed; by default it is ``Σ_j w_j·x_j + b``.

    Shape:
        weights ``(N, D, C)`` (or ``(D, C)`` for one model for all rows), bias ``(N, C)`` (or ``(C,)``),
        x ``(N, D)``, reference ``(D,)`` -> values ``(N, D, C)``
    """
    x = np.asarray(x)
    weights = np.asarray(weights)
    if weights.ndim == 2:
        weights = np.broadcast_to(weights, (x.shape[0], *weights.shape))
    bias = np.broadcast_to(np.asarray(bias), (x.shape[0], weights.shape[2]))
    reference = np.asarray(reference, dtype=weights.dtype)
    centred = (x - reference[None, :]).astype(weights.dtype, copy=False)
    values = weights * centred[:, :, None]
    rest = bias + np.einsum("ndc,d->nc", weights, reference)
    if output is None:
        output = bias + np.einsum("ndc,nd->nc", weights, x.astype(weights.dtype, copy=False))
    return Attribution(
        values=values,
        rest=rest,
        output=output,
        feature_names=tuple(feature_names),
        explainer=explainer,
        exact=True,
        reference=reference.astype(np.float64),
        reference_name=reference_name,
        output_name=output_name,
        extras=dict(extras or {}),
    )
