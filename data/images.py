"""Image-shaped tabular data: where each input column sits in its image.

A dataset is image-shaped when its columns are pixels named ``pixel_<row>_<column>`` (``data.named``'s digits,
0-based) or ``pixel<n>`` (OpenML's MNIST, 1-based, row-major in a square image). Preprocessing may drop pixels
(a constant pixel, such as a digit image's corner, carries nothing), and ``--blind`` removes some; a model that
needs the image (the CNN) puts every remaining column back at its place and leaves the missing pixels at 0, the
training mean of the standardised inputs. :func:`pixel_layout` gives that place.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

_GRID_NAME = re.compile(r"pixel_(\d+)_(\d+)")
_FLAT_NAME = re.compile(r"pixel(\d+)")


def pixel_layout(names: Sequence[str], also: Iterable[str] = ()) -> tuple[tuple[int, int], list[int]] | None:
    """The image shape ``(height, width)`` and each column's row-major position in it, or None (not pixels).

    Args:
        names: the input columns, in order.
        also: more pixel names of the same images that are not inputs (e.g. the columns preprocessing dropped),
            which only widen the image; names that are not pixels are ignored here.

    Returns:
        ``((height, width), positions)`` with ``positions[j]`` the flat index ``row · width + column`` of column
        ``j``; None when a column is not a pixel of one naming scheme or two columns share a pixel.
    """
    if not names:
        return None
    for pattern, flat in ((_GRID_NAME, False), (_FLAT_NAME, True)):
        matches = [pattern.fullmatch(str(name)) for name in names]
        if not all(matches):
            continue
        extra = [match for match in (pattern.fullmatch(str(name)) for name in also) if match]
        if flat:
            indices = [int(match.group(1)) - 1 for match in matches]
            everything = indices + [int(match.group(1)) - 1 for match in extra]
            if min(everything) < 0:
                return None
            side = math.isqrt(max(everything)) + 1  # the smallest square that holds every index
            shape, positions = (side, side), indices
        else:
            cells = [(int(match.group(1)), int(match.group(2))) for match in matches]
            every = cells + [(int(match.group(1)), int(match.group(2))) for match in extra]
            shape = (max(row for row, _ in every) + 1, max(column for _, column in every) + 1)
            positions = [row * shape[1] + column for row, column in cells]
        if len(set(positions)) != len(positions):
            return None
        return shape, positions
    return None
