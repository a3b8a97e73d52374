"""What the Sieve mapping assembles: tests and actions with the extensions they need, the
reasons a part cannot be carried, and the per-user facts every part reads.

Pure. `Test` and `Action` carry the `require` capabilities (RFC 5228 section 3.2) of their
text; `Unmapped` says, in one sentence, why a Graph condition or action has no Sieve form.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .mail import category_keyword
from .sieve_text import clean


@dataclass(frozen=True)
class Test:
    """A Sieve test; `note`, when set, says how it only approximates Graph's condition."""

    text: str
    requires: frozenset[str] = frozenset()
    note: str | None = None


@dataclass(frozen=True)
class Action:
    """Sieve commands (one or more lines); `note` says what differs from Outlook's action."""

    lines: tuple[str, ...]
    requires: frozenset[str] = frozenset()
    note: str | None = None


@dataclass(frozen=True)
class Unmapped:
    """A condition or action Sieve cannot carry: `reason` completes "…: <reason>";
    `text` is the Sieve form it would have on a server with every extension, if any."""

    reason: str
    text: str = ""


@dataclass
class Mailbox:
    """Facts about the user and the server that the parts read, and the findings so far."""

    addresses: tuple[str, ...]
    """The user's own addresses (mail, user principal name, proxy addresses), lower case."""
    domains: tuple[str, ...]
    """The tenant's domains, lower case: a sender there is internal."""
    extensions: frozenset[str]
    """The Sieve capabilities the server advertises."""
    time_zone: str | None = None
    """The mailbox's time zone (mailboxSettings.timeZone), for a time that names none."""
    external_forwarding: bool = False
    """Whether a forward or redirect to an address outside `domains` is carried."""
    findings: list[str] = field(default_factory=list)
    filed: list[str] = field(default_factory=list)
    """The rules so far that file a copy and let later rules run (see `sieve._flags_late`)."""

    def internal(self, address: str) -> bool:
        """Whether `address` is in one of the tenant's domains."""
        return address.rpartition("@")[2].lower() in self.domains

    def lacks(self, requires: Iterable[str]) -> list[str]:
        """The capabilities of `requires` the server does not advertise, sorted."""
        return sorted(set(requires) - self.extensions)


def strings(value: Any) -> list[str]:
    """The strings of a Graph string collection as a script may carry them (`clean`),
    in order, without repeats; one that is empty once cleaned is left out, since an empty
    string would match every message."""
    if not isinstance(value, list):
        return []
    seen: dict[str, None] = {}
    for item in value:
        cleaned = clean(item).strip() if isinstance(item, str) else ""
        if cleaned:
            seen.setdefault(cleaned, None)
    return list(seen)


MAX_KEYWORD_LENGTH = 50
"""Dovecot's default `mail_max_keyword_length`.

Categories become IMAP keywords (imap4flags' `addflag`), the mail workload's
(`mail.category_keyword`). Dovecot takes a keyword that is an IMAP atom (printable ASCII
without space, "(", ")", "{", "%", "*", '"', "\\\\", "]") of at most this length. A longer
one costs more than itself: Pigeonhole 0.5 warns that it ignores it, then stores the
message without any keyword at all ("invalid keywords set for stored message"), so such
keywords are never written."""


def keywords(value: Any) -> tuple[list[str], list[str]]:
    """The IMAP keywords of a Graph category collection: the mail workload's
    (`mail.category_keyword`, from the category exactly as Graph spells it), so that a rule
    sets the keyword the migrated mail carries for the same category; those Dovecot can
    store, then those longer than `MAX_KEYWORD_LENGTH`."""
    if not isinstance(value, list):
        return [], []
    found = (category_keyword(item) for item in value if isinstance(item, str) and item.strip())
    unique = list(dict.fromkeys(found))
    return (
        [k for k in unique if len(k) <= MAX_KEYWORD_LENGTH],
        [k for k in unique if len(k) > MAX_KEYWORD_LENGTH],
    )


def recipient_addresses(value: Any) -> list[str]:
    """The email addresses of a Graph recipient collection
    (`[{"emailAddress": {"name": …, "address": …}}]`; one recipient alone, as the beta
    documentation shows `redirectTo`, counts as a collection of one), in order, without
    repeats."""
    recipients = [value] if isinstance(value, Mapping) else value
    if not isinstance(recipients, list):
        return []
    found: dict[str, None] = {}
    for recipient in recipients:
        email = recipient.get("emailAddress") if isinstance(recipient, Mapping) else None
        address = email.get("address") if isinstance(email, Mapping) else None
        cleaned = clean(address).strip() if isinstance(address, str) else ""
        if cleaned:
            found.setdefault(cleaned, None)
    return list(found)


def ordinal(number: int) -> str:
    """1 -> "1st", 2 -> "2nd", 11 -> "11th", 23 -> "23rd"."""
    if 10 <= number % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"
