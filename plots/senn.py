"""Concept pictures of SENN and DiSENN, drawn on axes the caller gives (matplotlib is imported by the caller).

Learned concepts are grounded by examples (Alvarez-Melis & Jaakkola 2018): the training rows that activate a
concept most (its *prototypes*, ``models.senn.concept_prototypes``) and, for DiSENN's β-VAE, the decoded
*traversal* of each latent dimension (``models.senn.latent_traversal``). Image-shaped inputs (pixel columns named
``pixel_<row>_<column>`` as ``data.named``'s digits, or ``pixel1..pixelN`` as OpenML's MNIST) are drawn as image
grids; tabular inputs as heatmaps of rows × features. :func:`draw_concept_explanation` draws the explanation of
one example: relevances θ(x), activations h(x) against the reference's, and their products (the contributions
that add up to the logit).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from models.attribution import Attribution

if TYPE_CHECKING:
    from matplotlib.axes import Axes

POSITIVE_COLOR = "#C0392B"
NEGATIVE_COLOR = "#2E86C1"
REFERENCE_COLOR = "#7F7F7F"

_GRID_NAME = re.compile(r"pixel_(\d+)_(\d+)")
_FLAT_NAME = re.compile(r"pixel(\d+)")


@dataclass(frozen=True)
class ImageLayout:
    """Where every input column sits in an image.

    Attributes:
        height, width: the image size.
        rows, cols: ``(D,)`` the pixel of every input column (columns the data dropped are simply absent).
    """

    height: int
    width: int
    rows: np.ndarray
    cols: np.ndarray

    def images(self, values: np.ndarray) -> np.ndarray:
        """Input vectors ``(..., D)`` as images ``(..., height, width)``; pixels without a column are NaN."""
        values = np.asarray(values, dtype=np.float64)
        out = np.full((*values.shape[:-1], self.height, self.width), np.nan)
        out[..., self.rows, self.cols] = values
        return out


def image_layout(names: Sequence[str]) -> ImageLayout | None:
    """The image layout of input columns named ``pixel_<r>_<c>`` or ``pixel<n>`` (square, 1-based), else None."""
    grid = [_GRID_NAME.fullmatch(str(name)) for name in names]
    if names and all(grid):
        rows = np.array([int(match.group(1)) for match in grid])
        cols = np.array([int(match.group(2)) for match in grid])
        return ImageLayout(int(rows.max()) + 1, int(cols.max()) + 1, rows, cols)
    flat = [_FLAT_NAME.fullmatch(str(name)) for name in names]
    if names and all(flat):
        index = np.array([int(match.group(1)) - 1 for match in flat])
        side = math.isqrt(int(index.max()) + 1)
        if side * side == index.max() + 1:
            return ImageLayout(side, side, index // side, index % side)
    return None


def _heatmap(
    ax: Axes, values: np.ndarray, feature_names: Sequence[str], row_labels: Sequence[str], limit: float
) -> None:
    limit = limit or 1.0
    ax.imshow(values, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=7)
    ax.set_xticks(range(len(feature_names)), feature_names, rotation=90, fontsize=6)


def _image(ax: Axes, image: np.ndarray, *, vmin: float | None = None, vmax: float | None = None) -> None:
    ax.imshow(np.ma.masked_invalid(image), cmap="gray_r", vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def draw_prototypes(
    axes: np.ndarray, prototypes: np.ndarray, names: Sequence[str], concept_names: Sequence[str] | None = None
) -> None:
    """Each concept's prototypes: an image row per concept, or a heatmap (prototypes × features) per concept.

    Args:
        axes: image-shaped inputs: ``(K, n)`` axes (one per prototype); tabular: ``(K,)`` axes.
        prototypes: ``(K, n, D)`` the prototypes' input values (e.g. the unencoded training rows), most active
            first (``models.senn.concept_prototypes``).
        names: the ``D`` input column names (they decide the layout, see :func:`image_layout`).
        concept_names: ``K`` labels (default ``c0..``).
    """
    prototypes = np.asarray(prototypes, dtype=np.float64)
    n_concepts, n = prototypes.shape[:2]
    labels = list(concept_names or [f"c{k}" for k in range(n_concepts)])
    layout = image_layout(names)
    axes = np.asarray(axes).reshape(n_concepts, -1)
    if layout is not None:
        images = layout.images(prototypes)
        vmin, vmax = float(np.nanmin(images)), float(np.nanmax(images))
        for k in range(n_concepts):
            for j in range(n):
                _image(axes[k, j], images[k, j], vmin=vmin, vmax=vmax)
            axes[k, 0].set_ylabel(labels[k], rotation=0, ha="right", va="center")
        return
    limit = float(np.nanmax(np.abs(prototypes)))  # one colour scale for all concepts
    for k in range(n_concepts):
        _heatmap(axes[k, 0], prototypes[k], names, [f"#{j + 1}" for j in range(n)], limit)
        axes[k, 0].set_title(f"{labels[k]}: most activating rows", fontsize=8)


def draw_traversals(
    axes: np.ndarray, decoded: np.ndarray, values: np.ndarray, names: Sequence[str], concept_names=None
) -> None:
    """Decoded traversals of every latent dimension: an image row per latent, or a heatmap (steps × features).

    Args:
        axes: image-shaped inputs: ``(K, S)`` axes; tabular: ``(K,)`` axes.
        decoded: ``(K, S, D)`` decoded inputs (``models.senn.latent_traversal``), in the units to show.
        values: ``(S,)`` the latent values of the steps.
        names: the ``D`` input column names.
        concept_names: ``K`` labels (default ``c0..``).
    """
    decoded = np.asarray(decoded, dtype=np.float64)
    n_concepts, n_steps = decoded.shape[:2]
    labels = list(concept_names or [f"c{k}" for k in range(n_concepts)])
    layout = image_layout(names)
    axes = np.asarray(axes).reshape(n_concepts, -1)
    if layout is not None:
        images = layout.images(decoded)
        vmin, vmax = float(np.nanmin(images)), float(np.nanmax(images))
        for k in range(n_concepts):
            for j in range(n_steps):
                _image(axes[k, j], images[k, j], vmin=vmin, vmax=vmax)
                if k == n_concepts - 1:
                    axes[k, j].set_xlabel(f"{values[j]:+.1f}", fontsize=7)
            axes[k, 0].set_ylabel(labels[k], rotation=0, ha="right", va="center")
            # The largest change of a pixel along the latent: near 0 for a latent the decoder ignores.
            spread = float(np.ptp(decoded[k], axis=0).max())
            axes[k, -1].text(1.08, 0.5, f"Δ {spread:.2g}", transform=axes[k, -1].transAxes, fontsize=7, va="center")
        return
    centred = decoded - decoded.mean(axis=1, keepdims=True)  # what each latent changes
    # One colour scale for all latents: a latent the decoder ignores (collapsed to the prior) stays blank.
    limit = float(np.nanmax(np.abs(centred)))
    for k in range(n_concepts):
        _heatmap(axes[k, 0], centred[k], names, [f"{value:+.1f}" for value in values], limit)
        spread = float(np.ptp(decoded[k], axis=0).max())
        axes[k, 0].set_title(f"{labels[k]}: decoded change along the latent (largest {spread:.2g})", fontsize=8)


def draw_concept_explanation(axes: Sequence[Axes], attribution: Attribution, row: int = 0, output: int = 0) -> None:
    """One example's concept explanation on three axes: relevances θ, activations h (and h(m)), contributions.

    The contributions ``θ_k·(h_k − h_k(m))`` plus the rest add up to the explained output, which the third
    panel's title states.

    Args:
        axes: three axes.
        attribution: a ``senn_concepts`` attribution (``extras``: ``relevances``, ``activations``,
            ``reference_activations``).
        row: the example.
        output: the output column (class) to show.
    """
    extras = attribution.extras
    names = list(attribution.feature_names)
    positions = np.arange(len(names))
    relevance = np.asarray(extras["relevances"])[row, :, output]
    activation = np.asarray(extras["activations"])[row]
    contribution = np.asarray(attribution.values)[row, :, output]

    def bars(ax: Axes, values: np.ndarray, title: str) -> None:
        colors = [POSITIVE_COLOR if value >= 0 else NEGATIVE_COLOR for value in values]
        ax.barh(positions, values, color=colors)
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_yticks(positions, names)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=9)

    bars(axes[0], relevance, "relevance θ(x)")
    bars(axes[1], activation, "activation h(x)")
    axes[1].scatter(np.asarray(extras["reference_activations"]), positions, marker="|", s=120, color=REFERENCE_COLOR)
    total = float(attribution.output[row, output])
    rest = float(attribution.rest[row, output])
    bars(axes[2], contribution, f"θ·(h − h(m)): sum {contribution.sum():+.2f} + rest {rest:+.2f} = {total:+.2f}")
