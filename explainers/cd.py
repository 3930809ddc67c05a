"""Contextual decomposition (CD) as an explainer: CD scores of groups of original features, their interactions, and
:class:`CDExplainer`, the CD score of every single original feature as an :class:`~models.attribution.Attribution`.

The layer rules and the network compositions (relevant and irrelevant streams, the reference point, completeness)
are :mod:`models.decomposition`'s; this module maps original features to column masks (a feature's columns, e.g.
one-hot, move together), resolves a fitted estimator or a network into what CD needs (:class:`ModelView`), and
scales scores to the explained outputs (regressors: target units). The post-hoc adapter :class:`ContextualDecomposition`
builds a :class:`CDExplainer` from an explanation target (explainer id ``contextual_decomposition``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from explainers.posthoc import ExplanationTarget
from models.attribution import DEFAULT_REFERENCE, Attribution, ReferenceKind, reference_point
from models.decomposition import (
    CD_BATCH_SIZE,
    RULES,
    Rule,
    contextual_decomposition,
    network_forward,
)

#: A feature group: indices into the original features or their names.
Group = Sequence[int | str]


# ---------------------------------------------------------------------------------- features, groups, models
def feature_columns(input_to_feature: Sequence[int] | np.ndarray, n_features: int | None = None) -> np.ndarray:
    """Membership of input columns in original features: ``(F, D)`` boolean.

    Shape:
        input_to_feature ``(D,)`` -> ``(F, D)``
    """
    mapping = np.asarray(input_to_feature, dtype=np.int64)
    if mapping.ndim != 1:
        raise ValueError(f"input_to_feature must be (D,), got shape {mapping.shape}")
    n_features = int(mapping.max()) + 1 if n_features is None and mapping.size else int(n_features or 0)
    if mapping.size and (mapping.min() < 0 or mapping.max() >= n_features):
        raise ValueError(f"input_to_feature must index {n_features} features")
    membership = np.zeros((n_features, mapping.size), dtype=bool)
    membership[mapping, np.arange(mapping.size)] = True
    return membership


def group_masks(
    groups: Sequence[Group],
    input_to_feature: Sequence[int] | np.ndarray,
    feature_names: Sequence[str] | None = None,
) -> np.ndarray:
    """Column masks ``(G, D)`` of groups of original features (a feature's columns, e.g. one-hot, move together).

    Args:
        groups: every group a sequence of feature indices or feature names (names need ``feature_names``).
        input_to_feature: ``(D,)`` the feature of every input column.
        feature_names: the ``F`` feature names.
    """
    n_features = len(feature_names) if feature_names is not None else None
    membership = feature_columns(input_to_feature, n_features)
    index = {str(name): position for position, name in enumerate(feature_names or ())}
    masks = np.zeros((len(groups), membership.shape[1]), dtype=bool)
    for position, group in enumerate(groups):  # a loop over groups to parse them, not over rows
        for feature in group:
            if isinstance(feature, str):
                if feature not in index:
                    raise ValueError(f"unknown feature {feature!r}")
                feature = index[feature]
            if not 0 <= int(feature) < membership.shape[0]:
                raise ValueError(f"feature index {feature} outside 0..{membership.shape[0] - 1}")
            masks[position] |= membership[int(feature)]
    return masks


@dataclass(frozen=True)
class ModelView:
    """What CD needs to know about a model it explains, resolved once (shared by the CD and ACD explainers).

    Attributes:
        network: the module to decompose (an estimator's snapshot ensemble ``model_``, or the module itself).
        x: the rows ``(N, D)`` in float64.
        input_to_feature: ``(D,)`` the original feature of every input column.
        feature_names: the ``F`` feature names.
        reference: the point ``m`` ``(D,)`` of the input split, and ``reference_name`` its name.
        scale, shift: from the network's logits to the explained outputs (regressors: target units); scores are
            multiplied by ``scale``, the shift belongs to the irrelevant part.
        output_name: what the outputs are, in words (``logit``, ``prediction``).
    """

    network: nn.Module
    x: np.ndarray
    input_to_feature: np.ndarray
    feature_names: tuple[str, ...]
    reference: np.ndarray
    reference_name: str
    scale: float
    shift: float
    output_name: str

    @classmethod
    def resolve(
        cls,
        model,
        X,
        *,
        feature_names: Sequence[str] | None = None,
        input_to_feature: Sequence[int] | np.ndarray | None = None,
        reference: ReferenceKind | np.ndarray | Sequence[float] = DEFAULT_REFERENCE,
    ) -> ModelView:
        """Resolve a fitted estimator (or a bare network) and rows ``X`` ``(N, D)``.

        ``reference="mean"`` needs an estimator's training mean ``reference_``; a bare network takes ``"zero"`` or
        a point. Without ``feature_names`` the features are named by the estimator's ``input_names()`` (when every
        input column is a feature) or ``x0``, ``x1``, ...
        """
        if isinstance(model, nn.Module):
            network = model
        elif isinstance(getattr(model, "model_", None), nn.Module):
            network = model.model_
        else:
            raise TypeError(f"expected a fitted estimator (with model_) or an nn.Module, got {type(model).__name__}")
        x = np.asarray(X, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"X must be (N, D), got shape {x.shape}")
        n_inputs = x.shape[1]
        if input_to_feature is None:
            mapping = np.arange(n_inputs)
        else:
            mapping = np.asarray(input_to_feature, dtype=np.int64)
            if mapping.shape != (n_inputs,):
                raise ValueError(f"input_to_feature has shape {mapping.shape}, expected ({n_inputs},)")
        if feature_names is not None:
            names = tuple(str(name) for name in feature_names)
        elif input_to_feature is None and callable(getattr(model, "input_names", None)):
            names = tuple(str(name) for name in model.input_names())
        else:
            names = tuple(f"x{index}" for index in range(int(mapping.max()) + 1 if mapping.size else 0))
        if mapping.size and (mapping.min() < 0 or mapping.max() >= len(names)):
            raise ValueError(f"input_to_feature must index the {len(names)} features")
        training_mean = getattr(model, "reference_", None)
        if isinstance(reference, str) and reference == "mean" and training_mean is None:
            raise ValueError("reference='mean' needs a fitted estimator with reference_; pass 'zero' or a point (D,)")
        point, reference_name = reference_point(
            reference, np.zeros(n_inputs) if training_mean is None else training_mean
        )
        transform = getattr(model, "output_transform", None)
        scale, shift = transform() if callable(transform) else (1.0, 0.0)
        output_name = model.output_name() if callable(getattr(model, "output_name", None)) else "logit"
        return cls(network, x, mapping, names, point, reference_name, float(scale), float(shift), output_name)

    def masks(self, groups: Sequence[Group]) -> np.ndarray:
        """Column masks ``(G, D)`` of groups of original features."""
        return group_masks(groups, self.input_to_feature, self.feature_names)

    def decompose(
        self, masks: np.ndarray, *, rule: Rule, dtype: torch.dtype, batch_size: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Relevant and irrelevant parts ``(N, G, C)`` in output units (the shift in the irrelevant part)."""
        rel, irrel = contextual_decomposition(
            self.network, self.x, masks, reference=self.reference, rule=rule, dtype=dtype, batch_size=batch_size
        )
        return rel * self.scale, irrel * self.scale + self.shift

    def outputs(self, dtype: torch.dtype = torch.float64) -> np.ndarray:
        """The explained outputs ``(N, C)``: the network's own forward pass, in output units."""
        return network_forward(self.network, self.x, dtype=dtype) * self.scale + self.shift


def cd_group_scores(
    model,
    X,
    groups: Sequence[Group],
    *,
    input_to_feature: Sequence[int] | np.ndarray | None = None,
    feature_names: Sequence[str] | None = None,
    reference: ReferenceKind | np.ndarray | Sequence[float] = DEFAULT_REFERENCE,
    rule: Rule = "relevant_first",
    dtype: torch.dtype = torch.float64,
    batch_size: int = CD_BATCH_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """The CD scores of arbitrary groups of original features for every row, and the irrelevant parts.

    Args:
        model: a fitted estimator (its ``model_`` is explained, in its output units: a regressor's scale and shift
            are applied, the shift going to the irrelevant part) or a network.
        X: rows ``(N, D)`` in model input columns.
        groups: groups of original features (indices, or names with ``feature_names``); a one-hot feature's
            columns move together.
        input_to_feature: ``(D,)`` the feature of every input column; ``None``: every column is a feature.
        feature_names: the names of the ``F`` features (to name groups by name).
        reference: ``"mean"`` (the estimator's training mean), ``"zero"`` (classic CD) or a point ``(D,)``.
        rule: ``relevant_first`` (ACD) or ``shapley`` (two orderings).
        dtype: the floating type of the computation.
        batch_size: (row, group) pairs per pass.

    Shape:
        X ``(N, D)`` -> relevant ``(N, G, C)`` (the scores), irrelevant ``(N, G, C)``; they add up to the outputs
    """
    view = ModelView.resolve(
        model, X, feature_names=feature_names, input_to_feature=input_to_feature, reference=reference
    )
    return view.decompose(view.masks(groups), rule=rule, dtype=dtype, batch_size=batch_size)


def cd_interaction(
    model,
    X,
    group_a: Group,
    group_b: Group,
    *,
    input_to_feature: Sequence[int] | np.ndarray | None = None,
    feature_names: Sequence[str] | None = None,
    reference: ReferenceKind | np.ndarray | Sequence[float] = DEFAULT_REFERENCE,
    rule: Rule = "relevant_first",
    dtype: torch.dtype = torch.float64,
) -> np.ndarray:
    """The CD interaction of two disjoint groups: ``s(A ∪ B) − s(A) − s(B)`` (0 for an additive model).

    Shape:
        X ``(N, D)`` -> ``(N, C)``
    """
    view = ModelView.resolve(
        model, X, feature_names=feature_names, input_to_feature=input_to_feature, reference=reference
    )
    masks = view.masks([group_a, group_b])
    if (masks[0] & masks[1]).any():
        raise ValueError("the two groups share input columns; an interaction needs disjoint groups")
    masks = np.concatenate([masks, masks[:1] | masks[1:]])
    scores, _ = view.decompose(masks, rule=rule, dtype=dtype, batch_size=CD_BATCH_SIZE)
    return scores[:, 2] - scores[:, 0] - scores[:, 1]


class CDExplainer:
    """CD scores of every single original feature, as an :class:`~models.attribution.Attribution`.

    ``values[:, j]`` is the CD score of feature ``j`` alone; ``output`` the model's logits (its own forward pass
    in float64; regressors: predictions); ``rest = output − Σ_j values[:, j]``. Not exact: the CD scores of single
    features do not add up to the output (interactions and shared-out biases stay in the irrelevant parts), so
    ``rest`` is what the single features leave unexplained. ``extras["irrelevant"]`` ``(N, F, C)`` holds every
    feature's irrelevant part (``values + irrelevant == output`` per feature: CD is complete for every group).

    Args:
        feature_names: the ``F`` original features; ``None``: the model's input names (then every input column is
            a feature).
        input_to_feature: ``(D,)`` the feature of every input column (one-hot columns move together).
        reference: ``"mean"`` (the estimator's training mean; the project default), ``"zero"`` (classic CD) or a
            point ``(D,)``.
        rule: ``relevant_first`` (ACD) or ``shapley`` (two orderings).
        dtype: the floating type of the computation (float64: complete to ~1e-14; float32 is about 3x faster on a
            CPU).
        batch_size: (row, feature) pairs per pass.
    """

    name = "cd"

    def __init__(
        self,
        feature_names: Sequence[str] | None = None,
        input_to_feature: Sequence[int] | np.ndarray | None = None,
        *,
        reference: ReferenceKind | np.ndarray | Sequence[float] = DEFAULT_REFERENCE,
        rule: Rule = "relevant_first",
        dtype: torch.dtype = torch.float64,
        batch_size: int = CD_BATCH_SIZE,
    ) -> None:
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
        self.feature_names = feature_names
        self.input_to_feature = input_to_feature
        self.reference = reference
        self.rule = rule
        self.dtype = dtype
        self.batch_size = batch_size

    def _view(self, model, X) -> ModelView:
        return ModelView.resolve(
            model, X, feature_names=self.feature_names, input_to_feature=self.input_to_feature, reference=self.reference
        )

    def explain(self, model, X) -> Attribution:
        """CD scores of every single feature ``(N, F, C)`` for the rows ``X`` ``(N, D)``."""
        view = self._view(model, X)
        masks = feature_columns(view.input_to_feature, len(view.feature_names))
        values, irrelevant = view.decompose(masks, rule=self.rule, dtype=self.dtype, batch_size=self.batch_size)
        output = view.outputs(self.dtype)
        return Attribution(
            values=values,
            rest=output - values.sum(axis=1),
            output=output,
            feature_names=view.feature_names,
            explainer=self.name,
            exact=False,
            reference=view.reference,
            reference_name=view.reference_name,
            output_name=view.output_name,
            extras={"irrelevant": irrelevant},
        )


class ContextualDecomposition:
    """CD scores of single original features of a project network (INN, TabResNet).

    Args:
        model: the fitted network estimator.
        reference: the reference point ``(D,)`` of the input split.
        input_to_feature: ``(D,)`` the feature of every column (``None``: one column per feature).
        feature_names: the ``F`` feature names.
        rule: CD's activation rule (``relevant_first`` as in ACD, or ``shapley``).
    """

    id = "cd"
    exact = False
    requires = "model"

    def __init__(
        self,
        model: Any,
        reference: np.ndarray,
        *,
        input_to_feature: np.ndarray | None = None,
        feature_names: tuple[str, ...] | None = None,
        rule: str = "relevant_first",
    ) -> None:
        self.model = model
        self.inner = CDExplainer(feature_names, input_to_feature, reference=np.asarray(reference), rule=rule)

    @classmethod
    def from_target(cls, target: ExplanationTarget, *, seed: int = 0, **options: Any) -> ContextualDecomposition:
        """CD of ``target``'s network estimator, relative to the target's reference."""
        del seed  # deterministic
        if target.model is None or not hasattr(target.model, "model_"):
            raise ValueError("CD explains the project's network estimators only (the target has no network)")
        return cls(
            target.model,
            target.reference,
            input_to_feature=target.input_to_feature,
            feature_names=target.feature_names,
            **options,
        )

    def explain(self, X: Any) -> Attribution:
        """CD scores ``(N, F, C)`` of every single feature (``rest``: what they leave of the output)."""
        return self.inner.explain(self.model, np.asarray(X, dtype=np.float64))
