"""The one exception type for mistakes a user can fix: a bad dataset, file, target or missing package.

The command-line scripts turn it into a single line on stderr and exit code 2 (see ``experiments.cli``);
library callers get an ordinary ``ValueError`` subclass.
"""

from __future__ import annotations


class UserError(ValueError):
    """A problem with the user's input or environment, described in one line."""

    exit_code = 2


class MissingDependencyError(UserError):
    """An optional package is not installed."""

    def __init__(self, package: str, purpose: str) -> None:
        super().__init__(f"{purpose} needs the package '{package}': pip install {package}")
        self.package = package
