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


class SkipItem(HirondelleError):
    """This one item cannot be carried; the reason is recorded on the item."""


class Retriable(HirondelleError):
    """A passing failure (throttling, 5xx, reset): try again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CursorExpired(HirondelleError):
    """The stored delta cursor is no longer accepted: enumerate the container again."""


class LockedError(HirondelleError):
    """Another run holds the state lock."""


class LeaseLost(HirondelleError):
    """Another process took over the owner this one was moving (its lease had expired)."""
