"""What the store reports to its callers.

::

    StoreError              root
     +-- NotFound           no such row for this tenant (never says whether another tenant has it)
     +-- Conflict           the change contradicts the current state (a name taken, an action bound)
     +-- QuotaExceeded      a per-tenant limit would be passed; `limit` names it
     +-- StoreUnavailable   the database cannot be reached or refused the work

The HTTP layer maps each to one response (runtime/api/errors.py).
"""

from __future__ import annotations

__all__ = ["Conflict", "NotFound", "QuotaExceeded", "StoreError", "StoreUnavailable"]


class StoreError(Exception):
    """Root of the store's errors."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(StoreError):
    """There is no such row for this tenant."""


class Conflict(StoreError):
    """The change contradicts the current state."""


class QuotaExceeded(StoreError):
    """A per-tenant limit would be passed."""

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


class StoreUnavailable(StoreError):
    """The database cannot be reached or refused the work."""
