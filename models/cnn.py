"""A small convolutional network for image-shaped inputs (the 8×8 digits), as a scikit-learn estimator.

CDEP's image experiments (Rieger et al. 2020, DecoyMNIST) use a LeNet-style CNN: convolutions, ReLU and
max-pooling, then a dense layer and a linear head. :class:`CNNNetwork` is that network at the size of the 8×8
digits: ``nr_blocks`` blocks ``Conv2d(k × k, 'same' padding) -> ReLU -> MaxPool2d(2)`` (``channels`` filters in the
first block, doubled in each next one), then ``Flatten -> Linear(hidden_size) -> ReLU -> Dropout`` and the linear
head. It reads the rows of an encoded matrix ``(B, D)``: each input column is put back at its pixel
(``pixel_positions``, made from the column names by ``data.images.pixel_layout``), and a pixel that is not an input
(a constant one that preprocessing dropped, or one ``--blind`` removed) is 0, the training mean of the
standardised inputs. The network has no batch norm, so CD decomposes it exactly as it trains.

The estimators follow the neural estimators' pattern (``models.estimators``): the shared parameters
(``NEURAL_PARAMETERS``: epochs, learning rate, snapshot ensemble, penalties, ...) plus :data:`CNN_PARAMETERS`, and
the ``_build_network`` hook, so the training loop, its loss hook and the explanation penalties are the same as for
every network. ``nr_blocks`` counts convolution blocks and ``hidden_size`` is the dense layer's width.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from models.estimators import _NeuralClassifier, _NeuralRegressor, neural_init
from models.networks import NetworkOutput

#: The CNN's own parameters, name -> default (documented on :class:`CNNClassifier`); the shared ones follow them.
#: ``image_shape`` and ``pixel_positions`` come from the data (the registry's factory sets them from the columns).
CNN_PARAMETERS: dict[str, Any] = {"channels": 16, "kernel_size": 3, "image_shape": None, "pixel_positions": None}


def image_layout(
    n_inputs: int, image_shape: Sequence[int] | None = None, pixel_positions: Sequence[int] | None = None
) -> tuple[tuple[int, int], list[int]]:
    """The image ``(height, width)`` and the row-major pixel of each of ``n_inputs`` columns.

    ``image_shape`` None: a square image when ``n_inputs`` is a square number (the 64 pixels of a digit), else one
    row of ``n_inputs`` pixels. ``pixel_positions`` None: the columns are the image's pixels in row-major order.

    Raises:
        ValueError: a shape that is not two positive sizes, positions that are not ``n_inputs`` distinct pixels
            of the image, or no positions for an image of another size than ``n_inputs``.
    """
    if image_shape is None:
        side = math.isqrt(n_inputs)
        image_shape = (side, side) if side * side == n_inputs else (1, n_inputs)
    if len(image_shape) != 2 or any(int(size) < 1 for size in image_shape):
        raise ValueError(f"image_shape must be (height, width) of positive sizes, got {image_shape!r}")
    height, width = (int(size) for size in image_shape)
    if pixel_positions is None:
        if height * width != n_inputs:
            raise ValueError(
                f"a {height}x{width} image has {height * width} pixels, the data {n_inputs} columns: give "
                "pixel_positions (each column's row-major pixel)"
            )
        pixel_positions = range(n_inputs)
    positions = [int(position) for position in pixel_positions]
    if len(positions) != n_inputs or len(set(positions)) != n_inputs:
        raise ValueError(f"pixel_positions must be {n_inputs} distinct pixels, got {len(positions)}")
    if positions and not 0 <= min(positions) <= max(positions) < height * width:
        raise ValueError(f"pixel_positions must lie in the {height}x{width} image (0..{height * width - 1})")
    return (height, width), positions


class ConvolutionalBody(nn.Module):
    """Rows to the dense layer's activations: the image, the convolution blocks, ``Linear -> ReLU -> Dropout``.

    Shape:
        x ``(B, D)`` -> image ``(B, 1, H, W)`` -> ``(B, hidden_size)``
    """

    def __init__(
        self,
        *,
        image_shape: tuple[int, int],
        pixel_positions: Sequence[int],
        channels: int = 16,
        kernel_size: int = 3,
        nr_blocks: int = 2,
        hidden_size: int = 128,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if channels < 1 or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"channels must be >= 1 and kernel_size odd and >= 1, got {channels=}, {kernel_size=}")
        if nr_blocks < 0 or hidden_size < 1 or not 0.0 <= dropout < 1.0:
            raise ValueError(f"need nr_blocks >= 0, hidden_size >= 1, 0 <= dropout < 1; got {nr_blocks=}, "
                             f"{hidden_size=}, {dropout=}")  # fmt: skip
        height, width = image_shape
        self.image_shape = (height, width)
        # Where each pixel comes from: an input column, or the appended zero column (index D) for a missing pixel.
        gather = torch.full((height * width,), len(pixel_positions), dtype=torch.long)
        gather[torch.as_tensor(list(pixel_positions), dtype=torch.long)] = torch.arange(len(pixel_positions))
        self.register_buffer("gather", gather, persistent=False)  # made from the parameters, not saved
        layers: list[nn.Module] = []
        in_channels = 1
        for block in range(nr_blocks):
            out_channels = channels * 2**block
            pool = (2 if height >= 2 else 1, 2 if width >= 2 else 1)  # a one-pixel side is not pooled
            layers += [
                nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
                nn.ReLU(),
                nn.MaxPool2d(pool, ceil_mode=True),  # an odd side keeps its last pixel
            ]
            in_channels, height, width = out_channels, math.ceil(height / pool[0]), math.ceil(width / pool[1])
        self.convolutions = nn.Sequential(*layers)
        self.flatten = nn.Flatten()
        self.dense = nn.Linear(in_channels * height * width, hidden_size)
        self.activation = nn.ReLU()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def image(self, x: torch.Tensor) -> torch.Tensor:
        """The rows as one-channel images, missing pixels 0 (linear, no bias: CD applies it to both streams).

        Shape:
            ``(..., D)`` -> ``(..., 1, H, W)``
        """
        return F.pad(x, (0, 1))[..., self.gather].unflatten(-1, (1, *self.image_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.flatten(self.convolutions(self.image(x)))
        return self.dropout(self.activation(self.dense(out)))


class CNNNetwork(nn.Module):
    """The CNN: :class:`ConvolutionalBody` and a linear head.

    Shape:
        x ``(B, D)`` -> logits ``(B, C)``
    """

    def __init__(
        self,
        *,
        n_inputs: int,
        n_outputs: int,
        image_shape: Sequence[int] | None = None,
        pixel_positions: Sequence[int] | None = None,
        channels: int = 16,
        kernel_size: int = 3,
        nr_blocks: int = 2,
        hidden_size: int = 128,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if n_inputs < 1 or n_outputs < 1:
            raise ValueError(f"n_inputs and n_outputs must be >= 1, got {n_inputs=}, {n_outputs=}")
        shape, positions = image_layout(n_inputs, image_shape, pixel_positions)
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs
        self.body = ConvolutionalBody(
            image_shape=shape,
            pixel_positions=positions,
            channels=channels,
            kernel_size=kernel_size,
            nr_blocks=nr_blocks,
            hidden_size=hidden_size,
            dropout=dropout,
        )
        self.head = nn.Linear(hidden_size, n_outputs)

    def forward(self, x: torch.Tensor) -> NetworkOutput:
        return NetworkOutput(self.head(self.body(x)))

    @staticmethod
    def combine(outputs: Sequence[NetworkOutput], x: torch.Tensor) -> NetworkOutput:
        """The snapshot ensemble's output: the mean of the snapshots' logits."""
        return NetworkOutput(torch.stack([output.logits for output in outputs]).mean(0))


class _CNN:
    """The CNN's parameters (:data:`CNN_PARAMETERS`) and network hook, shared by the classifier and the regressor."""

    __init__ = neural_init(CNN_PARAMETERS)

    #: INN's L1 strength, read by the shared parameter checks; the CNN generates no weights.
    weight_norm = 0.0

    def _check_params(self) -> None:
        super()._check_params()
        for name in ("channels", "kernel_size"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd ('same' padding keeps the image size), got {self.kernel_size}")

    def _build_network(self, n_inputs: int, n_outputs: int) -> nn.Module:
        return CNNNetwork(
            n_inputs=n_inputs,
            n_outputs=n_outputs,
            image_shape=self.image_shape,
            pixel_positions=self.pixel_positions,
            channels=self.channels,
            kernel_size=self.kernel_size,
            nr_blocks=self.nr_blocks,
            hidden_size=self.hidden_size,
            dropout=self.dropout,
        )


class CNNClassifier(_CNN, _NeuralClassifier):
    """A small CNN classifier for image-shaped rows (the black box of CDEP's image experiments).

    Parameters (:data:`CNN_PARAMETERS`, then the shared ones of ``models.estimators.NEURAL_PARAMETERS``;
    ``nr_blocks`` counts convolution blocks, ``hidden_size`` is the dense layer's width, ``dropout`` acts after it):

    Args:
        channels: filters of the first convolution, doubled in every next block.
        kernel_size: the convolutions' (odd) kernel size; 'same' zero padding.
        image_shape: ``(height, width)`` of the images (None: square when the columns are a square number,
            else one row); set from the data by the method registry.
        pixel_positions: each input column's row-major pixel (None: the columns are the pixels in order); set
            from the column names by the method registry (``data.images.pixel_layout``), so that pixels the
            preprocessing dropped stay in their place as zeros.

    Its explanation is gradient × input (``explainers.gradient``); its contextual decomposition is
    ``models.decomposition``'s (Conv2d, ReLU, MaxPool2d, Flatten), so every CD penalty applies.
    """


class CNNRegressor(_CNN, _NeuralRegressor):
    """The CNN as a regressor (a real target from an image); parameters as :class:`CNNClassifier`."""
