"""The one exception type of the data layer."""

from __future__ import annotations

__all__ = ["DataError"]


class DataError(ValueError):
    """Bad argument or unusable data folder; the message is one line naming the problem.

    A ``ValueError`` subclass so that callers (the CLI maps it to exit status 2) can catch
    either.
    """
