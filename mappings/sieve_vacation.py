"""Outlook's automatic replies (Graph's automaticRepliesSetting) as Sieve `vacation`.

Pure. https://learn.microsoft.com/en-us/graph/api/resources/automaticrepliessetting :
`status` (disabled, alwaysEnabled, scheduled), the scheduled window as two
dateTimeTimeZone values, an internal and an external message, and the external audience
(none, contactsOnly, all). The replies come first in the script: Outlook answers whatever
the inbox rules do with the message, and a rule's `stop` must not silence the reply.

- The window is tested with the "date" extension's `currentdate` (RFC 5260) and the
  "relational" `:value` comparisons (RFC 5231). `currentdate :zone` takes a fixed UTC
  offset, not a named zone, so both ends are converted to UTC with their own zone
  (`timezones.zone_of`, daylight saving included; the mailbox's zone when a time names
  none) and compared as UTC ISO 8601 strings.
  The ends are written without a zone suffix: "2026-12-21T08:00:00Z" sorts after
  "2026-12-21T08:00:00", so the start is included and the end excluded whatever suffix the
  server's iso8601 form has.
- Pigeonhole, as RFC 5230 section 4.5 asks, answers only mail that names one of the user's
  addresses (`:addresses`) in To, Cc or Bcc, and never lists, bulk or automated mail;
  Outlook also answers a message that reached the user as a blind copy.
- A sender is internal when the envelope sender's domain is one of the tenant's: the reply
  goes to the envelope sender (RFC 5230 section 4.5), so the internal text never goes to an
  outside address even when the From header claims an inside one.
- "contactsOnly": Sieve cannot read the user's contacts; the safe side is chosen: no
  external reply at all (a finding says so).
- An HTML message becomes a `:mime` reply (RFC 5230 section 5.8): multipart/alternative
  with a text/plain rendering and the HTML, both quoted-printable (lines stay under 78
  characters whatever the HTML), the boundary derived from the content.
- The subject is SUBJECT_PREFIX and the original subject, read with the "variables"
  extension (RFC 5229); without it, or when another string of the script holds "${" (which
  "variables" would expand), the server's own subject is used.
- Outlook answers each sender once while replies are on; `:days` is the scheduled
  window's length in days (7 when always on, RFC 5230's suggested default, with a
  finding: see `ALWAYS_ON_DAYS`).
"""

from __future__ import annotations

import hashlib
import math
import quopri
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import formataddr
from typing import Any

import nh3

from ..migrator.errors import SkipItem
from .chat_html import html_to_text
from .event_times import graph_time
from .sieve_parts import Mailbox
from .sieve_text import comment, commented, multiline, quote, string_list
from .timezones import zone_of

SUBJECT_PREFIX = "Automatic reply: "
"""Put before the original subject, as Outlook's English replies do."""
ALWAYS_ON_DAYS = 7
"""`:days` when the replies are always on. Outlook answers each sender once until the
replies are turned off, a period Sieve cannot know; RFC 5230's suggested 7 days is kept
(a long period would also silence the next absence's reply to the same sender, the server
remembering replies by sender and text), with a finding."""
_STATUSES = {name.lower(): name for name in ("disabled", "alwaysEnabled", "scheduled")}
_HTML = re.compile(r"<\s*[a-zA-Z!/]")
_INDENT = "    "


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _in_zone(value: Any, mailbox: Mailbox, field: str) -> Any:
    """A dateTimeTimeZone whose zone is missing or unknown takes the mailbox's zone (an
    unknown one with a finding: the window may be off by the zones' difference)."""
    fallback = mailbox.time_zone
    if isinstance(value, Mapping) and zone_of(value.get("timeZone")) is None and zone_of(fallback):
        named = value.get("timeZone")
        if named:
            mailbox.findings.append(
                f"automatic replies: {field} names the time zone {named!r}, which is not "
                f"known here: read in the mailbox's zone {fallback!r} instead"
            )
        return {**value, "timeZone": fallback}
    return value


def _window(setting: Mapping[str, Any], mailbox: Mailbox) -> tuple[datetime, datetime] | None:
    ends = []
    for field in ("scheduledStartDateTime", "scheduledEndDateTime"):
        try:
            ends.append(graph_time(_in_zone(setting.get(field), mailbox, field), field))
        except SkipItem as error:
            mailbox.findings.append(
                f"automatic replies: the schedule cannot be read ({error}): kept as a comment"
            )
            return None
    start, end = ends
    if end <= start:
        mailbox.findings.append(
            "automatic replies: the schedule ends before it starts: kept as a comment"
        )
        return None
    return start, end


def is_html(message: str) -> bool:
    return bool(_HTML.search(message))


def mime_reply(markup: str) -> str:
    """A multipart/alternative entity: the text rendering of `markup`, then `markup`."""
    plain = html_to_text(nh3.clean(markup))
    parts = [("plain", plain), ("html", markup)]
    digest = hashlib.sha256("\0".join(text for _, text in parts).encode("utf-8")).hexdigest()
    boundary = f"=_reply_{digest[:32]}"  # "=_" never occurs in quoted-printable text
    lines = ["Content-Type: multipart/alternative;", f' boundary="{boundary}"', ""]
    for subtype, text in parts:
        encoded = quopri.encodestring(text.replace("\r\n", "\n").encode("utf-8"))
        lines += [
            f"--{boundary}",
            f"Content-Type: text/{subtype}; charset=utf-8",
            "Content-Transfer-Encoding: quoted-printable",
            "",
            encoded.decode("ascii").rstrip("\n"),
        ]
    lines.append(f"--{boundary}--")
    return "\n".join(lines) + "\n"


def _plain(message: str) -> str:
    return html_to_text(nh3.clean(message)) if is_html(message) else message.strip()


def _vacation(
    message: str, days: int, user: Mapping[str, Any], mailbox: Mailbox, subject: bool
) -> list[str]:
    args = [f":days {days}"]
    if subject:
        args.append(f':subject "{SUBJECT_PREFIX}${{subject}}"')
    address = user.get("mail") or user.get("upn")
    if isinstance(address, str) and address:
        name = user.get("displayName") if isinstance(user.get("displayName"), str) else ""
        args.append(f":from {quote(formataddr((name, address)))}")
    if mailbox.addresses:
        args.append(f":addresses {string_list(list(mailbox.addresses))}")
    if is_html(message):
        args.append(":mime")
        reason = mime_reply(message)
    else:
        reason = message.strip() + "\n"
    return [f"vacation {' '.join(args)} {multiline(reason)};"]


def _indent(lines: list[str], depth: int = 1) -> list[str]:
    pad = _INDENT * depth
    out = []
    for line in lines:
        head, sep, rest = line.partition("\n")  # a multi-line string's lines stay as written
        out.append(pad + head + sep + rest)
    return out


def vacation_lines(
    setting: Any, user: Mapping[str, Any], mailbox: Mailbox, requires: set[str], variables: bool
) -> list[str]:
    """The script lines of the automatic replies (comments only when they are off or the
    server lacks what they need), the capabilities they need added to `requires`, their
    findings added to the mailbox's. `variables`: the script may use the "variables"
    extension for the subject."""
    if not isinstance(setting, Mapping):
        return []
    given = setting.get("status")
    # Graph's enumeration is camelCase; another casing means the same status
    status = _STATUSES.get(given.lower(), given) if isinstance(given, str) else given
    if status not in ("alwaysEnabled", "scheduled"):
        return comment(f"Automatic replies: {status or 'disabled'} in Outlook")
    audience = str(setting.get("externalAudience") or "none")
    header = [f"Automatic replies ({status}), external audience: {audience}"]
    window = _window(setting, mailbox) if status == "scheduled" else None
    if status == "scheduled" and window is None:
        return comment("\n".join(header) + "\nThe schedule cannot be read: not carried")
    days = ALWAYS_ON_DAYS
    if not window:
        mailbox.findings.append(
            "automatic replies: Outlook answers each sender once for as long as the replies "
            f"stay on; the script answers each sender at most once every {ALWAYS_ON_DAYS} days"
        )
    if window:
        start, end = window
        days = max(1, math.ceil((end - start).total_seconds() / 86400))
        local = f"from {start.isoformat()} to {end.isoformat()}"
        header.append(f"{local} (UTC {_utc(start)} to {_utc(end)})")
    texts = (
        str(setting.get("internalReplyMessage") or ""),
        str(setting.get("externalReplyMessage") or ""),
    )
    replies, notes = _replies(texts, audience, days, user, mailbox, subject=False)
    # "variables" would expand a "${" of the replies' own strings: then no subject of ours
    subject = variables and "${" not in "\n".join(replies)
    if subject:
        replies, notes = _replies(texts, audience, days, user, mailbox, subject=True)
    mailbox.findings.extend(notes)
    if not replies:
        return comment("\n".join(header) + "\nNo reply text: nothing to send")
    needed = {"vacation"} | ({"date", "relational"} if window else set())
    missing = mailbox.lacks(needed)
    if missing:
        mailbox.findings.append(
            f"automatic replies: the server has no Sieve extension {', '.join(missing)}: "
            "kept as a comment"
        )
        return comment("\n".join(header)) + commented(replies)
    requires |= needed | ({"variables"} if subject else set())
    if mailbox.domains and "envelope" in mailbox.extensions:
        requires.add("envelope")
    lines = comment("\n".join(header))
    if subject:
        lines += ['if header :matches "subject" "*" {', _INDENT + 'set "subject" "${1}";', "}"]
    if not window:
        return lines + replies
    return lines + [
        f'if allof (currentdate :zone "+0000" :value "ge" "iso8601" "{_utc(window[0])}",',
        f'          currentdate :zone "+0000" :value "lt" "iso8601" "{_utc(window[1])}") {{',
        *_indent(replies),
        "}",
    ]


def _replies(
    texts: tuple[str, str],
    audience: str,
    days: int,
    user: Mapping[str, Any],
    mailbox: Mailbox,
    subject: bool,
) -> tuple[list[str], list[str]]:
    """The internal and external `vacation` commands, chosen by the sender's domain, and
    the findings about them."""
    internal, external = texts
    notes: list[str] = []
    inside = _vacation(internal, days, user, mailbox, subject) if _plain(internal) else []
    if not inside:
        notes.append("automatic replies: the internal message is empty: no internal reply")
    outside: list[str] = []
    if audience == "all" and _plain(external):
        outside = _vacation(external, days, user, mailbox, subject)
    elif audience == "all":
        notes.append("automatic replies: the external message is empty: no external reply")
    elif audience == "contactsOnly":
        notes.append(
            "automatic replies: the external reply goes to the user's contacts only in "
            "Outlook; Sieve cannot read contacts, so no external reply is sent"
        )
    if not mailbox.domains:
        return outside, notes
    domains = string_list(list(mailbox.domains))
    test = (
        f'envelope :domain :is "from" {domains}'
        if "envelope" in mailbox.extensions
        else f'address :domain :is "from" {domains}'
    )
    lines: list[str] = []
    if inside:
        lines += [f"if {test} {{", *_indent(inside), "}"]
        if outside:
            lines += ["else {", *_indent(outside), "}"]
    elif outside:
        lines += [f"if not {test} {{", *_indent(outside), "}"]
    return lines, notes
