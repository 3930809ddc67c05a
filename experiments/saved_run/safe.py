"""The safe reader's primitives: files of a results folder are parsed, never unpickled.

``.npz`` files are opened with ``allow_pickle=False`` (:func:`read_npz`): an object array, which only pickle could
read, is refused with a :class:`~errors.UserError`, as is a corrupt or truncated file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from errors import UserError


def read_npz(file: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, refusing pickled (object) arrays.

    Raises:
        UserError: unreadable, truncated, or holding an array that only pickle could read (refused).
    """
    try:
        with np.load(file, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise UserError(
                f"{file}: refused: it holds pickled objects, and a results folder is never unpickled"
            ) from None
        raise UserError(f"{file}: unreadable ({error})") from None
    except Exception as error:  # zipfile.BadZipFile, zlib and OS errors of a corrupt or truncated file
        raise UserError(f"{file}: unreadable ({type(error).__name__}: {error})") from None
