"""Agglomerative contextual decomposition (ACD) for tabular data: a hierarchy of feature groups per prediction.

ACD (Singh, Murdoch & Yu, ICLR 2019) explains one prediction by growing groups of input units and recording the
order of the joins as a tree, every node scored by CD. The paper grows phrases and image blobs along the input's
adjacency; tabular features have none, so here any two groups may join:

1. Level 0: every original feature is a group (a one-hot feature's columns start together), scored by CD.
2. At every level, the two current groups ``A``, ``B`` with the largest CD interaction
   ``|I(A, B)| = |s(A ∪ B) − s(A) − s(B)|`` join (``criterion="interaction"``: the largest signed interaction),
   until one group holds every feature: ``F − 1`` joins, ``F`` levels.
3. Scores are for one output of the model: the predicted class's logit (binary tasks: the logit of the second
   class; regressors: the prediction), or a chosen output.

The result is an :class:`ACDTree` (JSON-serialisable: levels, groups, scores, the interaction of each join),
drawn by :func:`plots.acd.plot_acd_hierarchy`. Hierarchies of many rows are built together: every level costs one
batched CD pass with the new group's unions (the scores of earlier unions are kept), so a row with ``F`` features
needs about ``F²`` group scores in all.

:class:`ACDExplainer` takes part in benchmarks like any explainer: its flat attributions are level 0, the CD score
of every single feature (the same as :class:`~explainers.cd.CDExplainer`'s), and ``hierarchies`` gives the trees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from explainers.cd import CDExplainer, ModelView, feature_columns
from models.attribution import DEFAULT_REFERENCE, ReferenceKind
from models.decomposition import CD_BATCH_SIZE, Rule

Criterion = Literal["abs_interaction", "interaction"]
CRITERIA: tuple[Criterion, ...] = ("abs_interaction", "interaction")


@dataclass(frozen=True)
class ACDLevel:
    """One level of the hierarchy: a partition of the features into groups, each with its CD score.

    Attributes:
        groups: feature indices of every group (sorted; groups ordered by their first feature).
        scores: the CD score of every group.
        joined: the index in ``groups`` of the group formed at this level (``None`` at level 0).
        interaction: the CD interaction of the two groups that formed it (``None`` at level 0).
    """

    groups: tuple[tuple[int, ...], ...]
    scores: tuple[float, ...]
    joined: int | None = None
    interaction: float | None = None


@dataclass(frozen=True)
class ACDTree:
    """The ACD hierarchy of one prediction: level 0 holds single features, the last level one group of all.

    Attributes:
        feature_names: the ``F`` original features.
        levels: the ``F`` levels, from single features to one group.
        output: the index of the explained output (class logit) in the model's outputs.
        output_value: the explained output's value for this row.
        output_name: what it is, in words (``logit``, ``prediction``).
        rule: the CD rule of the nonlinearities (``relevant_first``, ``shapley``).
        reference_name: the reference point of the input split, in words.
        criterion: what chose the joins (``abs_interaction``, ``interaction``).
    """

    feature_names: tuple[str, ...]
    levels: tuple[ACDLevel, ...]
    output: int
    output_value: float
    output_name: str = "logit"
    rule: str = "relevant_first"
    reference_name: str = "zero"
    criterion: str = "abs_interaction"

    def leaf_order(self) -> list[int]:
        """The features in an order in which every group of every level is contiguous (the tree's leaves)."""
        order = {group: list(group) for group in self.levels[0].groups}
        for previous, level in zip(self.levels, self.levels[1:], strict=False):
            if level.joined is None:
                continue
            new = level.groups[level.joined]
            parts = [group for group in previous.groups if group not in level.groups]
            order[new] = [feature for part in sorted(parts, key=lambda g: order[g][0]) for feature in order[part]]
        return [feature for group in self.levels[-1].groups for feature in order[group]]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dictionary (plain lists, ints, floats and strings)."""
        return {
            "feature_names": list(self.feature_names),
            "output": self.output,
            "output_value": self.output_value,
            "output_name": self.output_name,
            "rule": self.rule,
            "reference_name": self.reference_name,
            "criterion": self.criterion,
            "levels": [
                {
                    "groups": [list(group) for group in level.groups],
                    "scores": list(level.scores),
                    "joined": level.joined,
                    "interaction": level.interaction,
                }
                for level in self.levels
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ACDTree:
        """The tree of :meth:`to_dict`'s dictionary (e.g. read back from JSON)."""
        levels = tuple(
            ACDLevel(
                groups=tuple(tuple(int(feature) for feature in group) for group in level["groups"]),
                scores=tuple(float(score) for score in level["scores"]),
                joined=None if level.get("joined") is None else int(level["joined"]),
                interaction=None if level.get("interaction") is None else float(level["interaction"]),
            )
            for level in data["levels"]
        )
        return cls(
            feature_names=tuple(str(name) for name in data["feature_names"]),
            levels=levels,
            output=int(data["output"]),
            output_value=float(data["output_value"]),
            output_name=str(data.get("output_name", "logit")),
            rule=str(data.get("rule", "relevant_first")),
            reference_name=str(data.get("reference_name", "zero")),
            criterion=str(data.get("criterion", "abs_interaction")),
        )


def _pick(values: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """The explained output of every row: ``(N, G, C)`` -> ``(N, G)``."""
    return np.take_along_axis(values, outputs[:, None, None], axis=2)[:, :, 0]


def acd_hierarchies(
    model,
    X,
    *,
    input_to_feature: Sequence[int] | np.ndarray | None = None,
    feature_names: Sequence[str] | None = None,
    reference: ReferenceKind | np.ndarray | Sequence[float] = DEFAULT_REFERENCE,
    rule: Rule = "relevant_first",
    output: int | Sequence[int] | np.ndarray | None = None,
    criterion: Criterion = "abs_interaction",
    dtype: torch.dtype = torch.float64,
    batch_size: int = CD_BATCH_SIZE,
) -> list[ACDTree]:
    """The ACD hierarchy of every row of ``X``, built for all rows together.

    Args:
        model: a fitted estimator or a network (see :func:`explainers.cd.cd_group_scores`).
        X: rows ``(N, D)`` in model input columns.
        input_to_feature: ``(D,)`` the feature of every input column; ``None``: every column is a feature.
        feature_names: the ``F`` feature names.
        reference: ``"mean"`` (the estimator's training mean), ``"zero"`` (classic CD) or a point ``(D,)``.
        rule: the CD rule (``relevant_first`` as in ACD, or ``shapley``).
        output: the explained output, one for all rows or one per row; ``None``: the predicted class (the
            largest logit; the only output when there is one).
        criterion: ``abs_interaction`` (join the pair with the largest ``|I|``) or ``interaction`` (largest ``I``).
        dtype: the floating type of CD.
        batch_size: (row, group) pairs per CD pass.

    Shape:
        X ``(N, D)`` -> ``N`` trees of ``F`` levels
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    view = ModelView.resolve(
        model, X, feature_names=feature_names, input_to_feature=input_to_feature, reference=reference
    )
    n_rows, n_features = view.x.shape[0], len(view.feature_names)
    columns = feature_columns(view.input_to_feature, n_features)  # (F, D)
    logits = view.outputs(dtype)  # (N, C)
    if output is None:
        outputs = logits.argmax(axis=1)
    else:
        outputs = np.broadcast_to(np.asarray(output, dtype=np.int64), (n_rows,)).copy()
        if outputs.size and (outputs.min() < 0 or outputs.max() >= logits.shape[1]):
            raise ValueError(f"output must index the model's {logits.shape[1]} outputs")

    def scores_of(masks: np.ndarray) -> np.ndarray:
        return _pick(view.decompose(masks, rule=rule, dtype=dtype, batch_size=batch_size)[0], outputs)

    # The state of every row, in slots: slot i starts as feature i; a join keeps the lower slot and frees the other.
    members = np.broadcast_to(np.eye(n_features, dtype=bool), (n_rows, n_features, n_features)).copy()
    active = np.ones((n_rows, n_features), dtype=bool)
    score = scores_of(columns) if n_features else np.zeros((n_rows, 0))  # (N, F)
    union = np.full((n_rows, n_features, n_features), np.nan)  # s(slot i ∪ slot j)
    first, second = np.triu_indices(n_features, k=1)
    if first.size:
        pair_scores = scores_of(columns[first] | columns[second])  # (N, P), masks shared by the rows
        union[:, first, second] = pair_scores
        union[:, second, first] = pair_scores
    above_diagonal = np.triu(np.ones((n_features, n_features), dtype=bool), k=1)
    rows = np.arange(n_rows)
    level_scores = [score.copy()]
    joins: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # per level: kept slot, freed slot, interaction
    for remaining in range(n_features, 1, -1):
        interaction = union - score[:, :, None] - score[:, None, :]
        valid = active[:, :, None] & active[:, None, :] & above_diagonal
        key = np.where(valid, np.abs(interaction) if criterion == "abs_interaction" else interaction, -np.inf)
        flat = key.reshape(n_rows, -1).argmax(axis=1)
        kept, freed = np.divmod(flat, n_features)  # kept < freed: the pair lies above the diagonal
        joins.append((kept, freed, interaction[rows, kept, freed]))
        score[rows, kept] = union[rows, kept, freed]
        score[rows, freed] = np.nan
        members[rows, kept] |= members[rows, freed]
        active[rows, freed] = False
        level_scores.append(score.copy())
        if remaining - 1 < 2:
            break
        # The new group's union with every other remaining group: the same count in every row, one CD pass.
        others = active.copy()
        others[rows, kept] = False
        other_slots = np.nonzero(others)[1].reshape(n_rows, remaining - 2)  # (N, K)
        unions = members[rows, kept][:, None, :] | np.take_along_axis(members, other_slots[:, :, None], axis=1)
        masks = (unions.astype(np.uint8) @ columns.astype(np.uint8)) > 0  # (N, K, D) per-row column masks
        new_scores = scores_of(masks)
        union[rows[:, None], kept[:, None], other_slots] = new_scores
        union[rows[:, None], other_slots, kept[:, None]] = new_scores
    return [_tree(row, view, joins, level_scores, int(outputs[row]), logits, rule, criterion) for row in range(n_rows)]


def _tree(
    row: int,
    view: ModelView,
    joins: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    level_scores: list[np.ndarray],
    output: int,
    logits: np.ndarray,
    rule: str,
    criterion: str,
) -> ACDTree:
    """Replay one row's joins into levels (bookkeeping only: the scores were computed for all rows at once)."""
    slots = {slot: (slot,) for slot in range(len(view.feature_names))}

    def level(scores: np.ndarray, new_slot: int | None, interaction: float | None) -> ACDLevel:
        ordered = sorted(slots, key=lambda slot: slots[slot])
        return ACDLevel(
            groups=tuple(slots[slot] for slot in ordered),
            scores=tuple(float(scores[slot]) for slot in ordered),
            joined=None if new_slot is None else ordered.index(new_slot),
            interaction=interaction,
        )

    levels = [level(level_scores[0][row], None, None)]
    for (kept, freed, interaction), scores in zip(joins, level_scores[1:], strict=True):
        slots[int(kept[row])] = tuple(sorted(slots[int(kept[row])] + slots.pop(int(freed[row]))))
        levels.append(level(scores[row], int(kept[row]), float(interaction[row])))
    return ACDTree(
        feature_names=view.feature_names,
        levels=tuple(levels),
        output=output,
        output_value=float(logits[row, output]),
        output_name=view.output_name if logits.shape[1] == 1 else f"logit of output {output}",
        rule=rule,
        reference_name=view.reference_name,
        criterion=criterion,
    )


class ACDExplainer(CDExplainer):
    """ACD as an explainer: flat attributions are level 0 of the hierarchy (each single feature's CD score).

    ``explain`` returns the same :class:`~models.attribution.Attribution` as
    :class:`~explainers.cd.CDExplainer` (explainer id ``acd``; not exact); :meth:`hierarchies` builds the trees.

    Args:
        feature_names, input_to_feature, reference, rule, dtype, batch_size: as for
            :class:`~explainers.cd.CDExplainer`.
        criterion: what chooses the joins (see :func:`acd_hierarchies`).
        output: the explained output of the trees (``None``: the predicted class).
    """

    name = "acd"

    def __init__(
        self,
        feature_names: Sequence[str] | None = None,
        input_to_feature: Sequence[int] | np.ndarray | None = None,
        *,
        reference: ReferenceKind | np.ndarray | Sequence[float] = DEFAULT_REFERENCE,
        rule: Rule = "relevant_first",
        criterion: Criterion = "abs_interaction",
        output: int | None = None,
        dtype: torch.dtype = torch.float64,
        batch_size: int = CD_BATCH_SIZE,
    ) -> None:
        super().__init__(
            feature_names, input_to_feature, reference=reference, rule=rule, dtype=dtype, batch_size=batch_size
        )
        if criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
        self.criterion = criterion
        self.output = output

    def hierarchies(self, model, X) -> list[ACDTree]:
        """The ACD tree of every row of ``X`` ``(N, D)``."""
        return acd_hierarchies(
            model,
            X,
            input_to_feature=self.input_to_feature,
            feature_names=self.feature_names,
            reference=self.reference,
            rule=self.rule,
            output=self.output,
            criterion=self.criterion,
            dtype=self.dtype,
            batch_size=self.batch_size,
        )

    def hierarchy(self, model, x) -> ACDTree:
        """The ACD tree of one row ``x`` ``(D,)``."""
        return self.hierarchies(model, np.asarray(x, dtype=np.float64).reshape(1, -1))[0]
