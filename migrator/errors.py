"""The three kinds of error every connector sorts its failures into.

Each connector has one table that turns a protocol failure into one of these;
anything else is a bug and propagates.
"""

from __future__ import annotations


class HirondelleError(Exception):
    """Base of every error the tool reports to the user without a traceback."""


class ConfigError(HirondelleError):
    """A setting is missing or wrong; the message names the setting to fix."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


class FatalError(HirondelleError):
    """The run cannot go on (auth refused, quota full); the message says what to fix."""


class ItemError(HirondelleError):
    """This one item was not written; `status` is what its state row records."""

    status = "failed"


class SkipItem(ItemError):
    """This one item cannot be carried by design (a kind the target has no place for, over
    a size limit the plan announces): recorded as skipped, with the reason."""

    status = "skipped"


class GoneAtSource(SkipItem):
    """The item is gone at the source in substance though still listed (a Teams message
    deleted, with `deleted = "skip"`): not carried, and a copy written earlier is removed."""


class Refused(ItemError):
    """The target refused to write this one item (a 4xx answer, a full quota or disk): a
    failure, kept visible and counted until a later pass or `retry-failed` writes it."""

    status = "failed"


class Retriable(HirondelleError):
    """A passing failure (throttling, 5xx, reset): try again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unreachable(Retriable):
    """The target could not be reached at all: no connection could be made (refused, no
    route, connect timeout). Raise it only where the call it ends can be made again whole
    without writing anything twice: the engine waits for the target, then repeats it."""


class OwnerFailed(HirondelleError):
    """This owner cannot go on (its own login refused, its mailbox or space full, its target
    unreachable past the wait): it fails with this reason and the other owners go on."""


class CursorExpired(HirondelleError):
    """The stored delta cursor is no longer accepted: enumerate the container again."""


class LockedError(HirondelleError):
    """Another run holds the state lock."""


class LeaseLost(HirondelleError):
    """Another process took over the owner this one was moving (its lease had expired)."""
