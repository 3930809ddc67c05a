"""The ACD hierarchy of one prediction, drawn as the ACD paper draws it: one row per level, groups as blocks.

Level 0 (single features) is the top row and every row below shows the groups after one more join, down to one
group of all features. The features are laid out in the tree's leaf order, so every group of every level is one
contiguous block; a block's colour is its CD score on a diverging colour map centred at 0 (symmetric limits, so
equal colours mean equal magnitudes), and the group formed at a level has a heavy outline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.patches import Rectangle

from explainers.acd import ACDTree

#: Block gaps as fractions of a feature's width and a level's height.
_GAP_X, _GAP_Y = 0.06, 0.14


def _short(name: str, length: int) -> str:
    return name if len(name) <= length else name[: length - 1] + "…"


def plot_acd_hierarchy(
    tree: ACDTree | Mapping[str, Any],
    ax: Axes,
    *,
    cmap: str = "RdBu_r",
    vmax: float | None = None,
    annotate: bool = True,
    name_length: int = 18,
    title: bool = True,
) -> ScalarMappable:
    """Draw an ACD tree on ``ax``; returns the colour mapping (for ``figure.colorbar(mappable, ax=ax)``).

    Args:
        tree: an :class:`~explainers.acd.ACDTree` or its :meth:`~explainers.acd.ACDTree.to_dict` dictionary.
        ax: the axis to draw on (nothing else of the figure is touched).
        cmap: a diverging colour map; its centre is score 0.
        vmax: the score at the ends of the colour map; ``None``: the largest ``|score|`` of the tree.
        annotate: write the scores in the blocks (in groups of two or more features when there are more than 12
            features, so that the numbers fit).
        name_length: feature names longer than this are shortened on the axis.
        title: set a title naming the explained output.
    """
    if not isinstance(tree, ACDTree):
        tree = ACDTree.from_dict(tree)
    order = tree.leaf_order()
    position = {feature: index for index, feature in enumerate(order)}
    all_scores = np.array([score for level in tree.levels for score in level.scores], dtype=np.float64)
    finite = all_scores[np.isfinite(all_scores)]
    limit = float(vmax) if vmax is not None else float(np.abs(finite).max()) if finite.size else 1.0
    norm = Normalize(vmin=-(limit or 1.0), vmax=limit or 1.0)
    n_features, n_levels = len(order), len(tree.levels)
    mappable = ScalarMappable(norm=norm, cmap=cmap)
    for depth, level in enumerate(tree.levels):
        for index, (group, score) in enumerate(zip(level.groups, level.scores, strict=True)):
            if not group:
                continue
            left = min(position[feature] for feature in group)
            width = max(position[feature] for feature in group) - left + 1
            joined = index == level.joined
            ax.add_patch(
                Rectangle(
                    (left - 0.5 + _GAP_X, depth - 0.5 + _GAP_Y),
                    width - 2 * _GAP_X,
                    1 - 2 * _GAP_Y,
                    facecolor=mappable.to_rgba(score),
                    edgecolor="black" if joined else "0.6",
                    linewidth=1.6 if joined else 0.5,
                )
            )
            if annotate and np.isfinite(score) and (width > 1 or n_features <= 12):
                strong = abs(norm(score) - 0.5) > 0.3  # dark block: white text
                ax.text(
                    left - 0.5 + width / 2,
                    depth,
                    f"{score:.2g}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if strong else "black",
                )
    ax.set_xlim(-0.5, n_features - 0.5)
    ax.set_ylim(n_levels - 0.5, -0.5)  # level 0 on top
    ax.set_xticks(range(n_features))
    ax.set_xticklabels([_short(tree.feature_names[feature], name_length) for feature in order], rotation=60, ha="right")
    ax.set_yticks(range(n_levels))
    ax.set_yticklabels([str(depth) for depth in range(n_levels)])
    ax.set_ylabel("level (joins)")
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(f"ACD of the {tree.output_name} = {tree.output_value:.3g} (reference: {tree.reference_name})")
    return mappable
