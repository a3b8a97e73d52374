"""The one table that turns Microsoft Graph and HTTP failures into the engine's error kinds.

Every request of the Graph connector ends here when it fails: the client builds a
`Failure` from whatever went wrong (an HTTP status with its Graph error code, a
reset connection, a body shorter than announced) and `to_error` decides between
retriable, skippable, fatal and "expired cursor". Whatever the table does not
know returns None and the caller lets the original exception propagate.

References:
- throttling and Retry-After: https://learn.microsoft.com/en-us/graph/throttling
- error codes: https://learn.microsoft.com/en-us/graph/errors
- expired delta tokens: https://learn.microsoft.com/en-us/graph/delta-query-overview#synchronization-reset
- Teams protected APIs (channel messages with application permissions need Microsoft's
  approval beyond admin consent): https://learn.microsoft.com/en-us/graph/teams-protected-apis
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass

from ...migrator.errors import (
    CursorExpired,
    FatalError,
    HirondelleError,
    Retriable,
    SkipItem,
)

RETRIABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
THROTTLING_STATUSES = frozenset({429, 503})

# Graph answers an expired or unusable delta token with 410 Gone, or with a
# 40X carrying one of these codes ("syncStateNotFound" is the documented one;
# the others are what Exchange and OneDrive use for the same condition).
# https://learn.microsoft.com/en-us/graph/delta-query-overview#token-duration
# A drive delta answers 410 Gone with "resyncRequired" or one of the two resync codes:
# https://learn.microsoft.com/en-us/graph/api/driveitem-delta#example-2-last-page-in-a-set
EXPIRED_CURSOR_CODES = frozenset(
    {
        "syncstatenotfound",
        "syncstateinvalid",
        "resyncrequired",
        "errorinvalidsyncstatedata",
        "resyncchangesapplydifferences",
        "resyncchangesuploaddifferences",
    }
)
# A pre-authenticated download URL lives a few minutes; past that it is refused.
LINK_EXPIRED_STATUSES = frozenset({401, 403, 404, 410})
# An app Microsoft has not approved for Teams' protected APIs is refused with 403 and
# "Invoked API requires Protected API access in application-only context..." (the message
# users quote, e.g. github.com/leeford/Backup-TeamsChat/issues/12).
PROTECTED_API_MARK = "protected api"
PROTECTED_APIS = "https://learn.microsoft.com/en-us/graph/teams-protected-apis"


class Throttled(Retriable):
    """Graph asked this mailbox to slow down (429, or 503 with the same meaning)."""


class LinkExpired(Retriable):
    """A pre-authenticated download URL no longer works: ask Graph for a fresh one."""


class TokenRefused(FatalError):
    """Graph refused the access token (401): the client fetches a fresh one and tries once
    more before this ends the run."""


class ProtectedApiRefused(FatalError):
    """Microsoft has not (yet) approved the app for Teams' protected APIs: no permission
    grant fixes that, only Microsoft's approval process."""


class TruncatedBody(Exception):
    """A body ended before the announced Content-Length: the transfer broke."""


@dataclass(frozen=True, slots=True)
class Call:
    """What a request was for, so that an error can say what to fix.

    `permission` is the application permission the request needs; `item` marks a
    request about one message (a 404 then skips that message); `cursor` marks a
    request that follows a stored next or delta link; `link` marks a request to a
    pre-authenticated download URL (sent without the Graph token).
    """

    what: str
    permission: str = "Mail.Read"
    item: bool = False
    cursor: bool = False
    link: bool = False


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed Graph request reduced to what the table needs."""

    status: int | None  # None when no HTTP answer came back (reset, timeout, cut body)
    code: str = ""  # Graph's error.code, when the body carried one
    retry_after: float | None = None
    detail: str = ""  # a short description, never a secret or a message body
    message: str = ""  # Graph's error.message, read to tell refusals apart; never shown


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date).

    Without Retry-After, SharePoint's `RateLimit-Reset` (seconds until the resource-unit
    window resets) says the same thing:
    https://learn.microsoft.com/en-us/sharepoint/dev/general-development/how-to-avoid-getting-throttled-or-blocked-in-sharepoint-online
    """
    if not headers:
        return None
    value = headers.get("Retry-After") or headers.get("retry-after")
    if not value:
        reset = headers.get("RateLimit-Reset") or headers.get("ratelimit-reset")
        return _seconds(reset) if reset else None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _seconds(value: str) -> float | None:
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None


def to_error(failure: Failure, call: Call) -> HirondelleError | None:
    """The engine's error for `failure`, or None when the table does not know it."""
    status = failure.status
    if status is None:
        return Retriable(f"{call.what}: connection failed ({failure.detail})", None)
    if status in THROTTLING_STATUSES:
        return Throttled(f"{call.what}: throttled by Graph (HTTP {status})", failure.retry_after)
    if status in RETRIABLE_STATUSES:
        return Retriable(f"{call.what}: Graph answered HTTP {status}", failure.retry_after)
    if call.link and status in LINK_EXPIRED_STATUSES:
        return LinkExpired(f"{call.what}: the download link expired (HTTP {status})", 0.0)
    if status == 401:
        return TokenRefused(
            f"{call.what}: Graph refused the access token (HTTP 401). Check source.tenant_id, "
            "source.client_id and the secret named by source.client_secret_env, "
            "source.client_secret_file or source.certificate_file."
        )
    if status == 403 and PROTECTED_API_MARK in failure.message.lower():
        return ProtectedApiRefused(_protected_api_message(call))
    if status == 403:
        return FatalError(_forbidden_message(failure, call))
    if call.cursor and (status == 410 or failure.code.lower() in EXPIRED_CURSOR_CODES):
        return CursorExpired(f"{call.what}: the stored delta link expired ({failure.code or 410})")
    if status == 404 and call.item:
        return SkipItem(f"{call.what}: not found (HTTP 404 {failure.code})".rstrip())
    return None


def _forbidden_message(failure: Failure, call: Call) -> str:
    """Name the permission to grant; an access policy may also scope the app out."""
    return (
        f"{call.what}: Graph denied access (HTTP 403 {failure.code}). Grant the application "
        f"permission {call.permission} to the app registration source.client_id with admin "
        "consent, and check that no application access policy excludes this mailbox."
    )


def _protected_api_message(call: Call) -> str:
    """Point at Microsoft's approval process: the permission is granted already."""
    return (
        f"{call.what}: Microsoft has not approved this app for the Teams protected APIs "
        "(HTTP 403): reading Teams channel or chat messages with application permissions needs "
        f"Microsoft's approval on top of the admin-consented {call.permission}. Request it for "
        f"the app registration source.client_id with Microsoft's form: {PROTECTED_APIS}"
    )
