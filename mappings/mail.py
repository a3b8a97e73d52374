"""The mail mapper: a Graph message (listed metadata plus MIME) to a target payload.

Pure: no network, no database, no file I/O. The MIME bytes are carried untouched (the very
same object); the mapper only derives what a target needs beside them:

- `fingerprint`: how a target recognises the message again. It is computed from the bytes
  the target stores (`fingerprint_of`), so that a target's listing, which only sees those
  bytes, always agrees with the payload: "mid:<Message-ID without angle brackets>", or
  "sha256:<hex digest of the bytes>" when the header block has no Message-ID.
- `attrs["flags"]`: IMAP system flags then one keyword per Outlook category.
- `attrs["internal_date"]`: an aware datetime, the message's arrival time.
- `attrs["message_id"]`: "<...>" from the MIME header, else Graph's internetMessageId.

Listed metadata (`item.meta`) comes flattened by the Graph source ("flagStatus",
"lastVerb"); the raw Graph shapes (`flag.flagStatus`, the "Integer 0x1081" extended
property) are accepted too. Malformed metadata never raises: a bad value is ignored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from ..migrator.errors import SkipItem
from ..migrator.model import Item, Payload

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# PidTagLastVerbExecuted (0x1081), read through Graph as the single-value extended property
# "Integer 0x1081" (its value arrives as a string). The reply/forward values are those of
# MS-OXOMSG 2.2.1.3 (NOTEIVERB_REPLYTOSENDER 102, REPLYTOALL 103, FORWARD 104), not the
# unrelated "0x0102 Submitted mail" table of the MAPI canonical property page:
# https://learn.microsoft.com/en-us/office/client-developer/outlook/mapi/pidtaglastverbexecuted-canonical-property
VERB_REPLY_TO_SENDER = 102
VERB_REPLY_TO_ALL = 103
VERB_FORWARD = 104
LAST_VERB_PROPERTY = "Integer 0x1081"

# Characters an IMAP atom cannot hold (RFC 3501 section 9: atom-specials), plus "[" that
# some parsers mistake for a response code, "=" and "_" that the keyword escaping uses.
_KEYWORD_UNSAFE = frozenset('(){ %*"\\][=_')


# -- fingerprint --------------------------------------------------------------------------


def header_block(mime: bytes) -> bytes:
    """The header block of a message: everything before the first empty line."""
    # Bare "\n\n" is only looked for before the first CRLF one: not through the whole body.
    crlf = mime.find(b"\r\n\r\n")
    lf = mime.find(b"\n\n", 0, len(mime) if crlf < 0 else crlf + 1)
    ends = [pos for pos in (crlf, lf) if pos >= 0]
    return mime[: min(ends)] if ends else mime


def header_value(mime: bytes, name: str) -> str | None:
    """The unfolded value of the first header field `name` (case-insensitive), or None.

    Only the header block is read; non-UTF-8 bytes are replaced rather than refused.
    """
    wanted = name.lower().encode("ascii")
    value: list[bytes] | None = None
    for line in header_block(mime).split(b"\n"):
        line = line.rstrip(b"\r")
        if value is not None:
            if line[:1] in (b" ", b"\t"):
                value.append(line)
                continue
            break
        field, colon, rest = line.partition(b":")
        if colon and field.strip().lower() == wanted:
            value = [rest]
    if value is None:
        return None
    return b"".join(value).decode("utf-8", errors="replace").strip()


def bare_message_id(value: str | None) -> str | None:
    """The Message-ID without angle brackets or whitespace, or None if there is none."""
    if not value:
        return None
    start = value.find("<")
    end = value.find(">", start + 1)
    if start >= 0 and end > start:
        value = value[start + 1 : end]
    bare = "".join(value.split())
    return bare or None


def fingerprint_of(mime: bytes) -> str:
    """How a target recognises these bytes: "mid:<Message-ID>" or "sha256:<hex>"."""
    message_id = bare_message_id(header_value(mime, "Message-ID"))
    if message_id:
        return f"mid:{message_id}"
    return f"sha256:{hashlib.sha256(mime).hexdigest()}"


# -- flags ------------------------------------------------------------------------------------


def category_keyword(category: str) -> str:
    """An IMAP keyword (an atom, RFC 3501) for an Outlook category, deterministically.

    A space becomes "_"; any character that is not printable ASCII or is unsafe in an atom
    ('(', ')', '{', '%', '*', '"', '\\', ']', '[') is written as "=" plus two uppercase hex
    digits per UTF-8 byte, as are "=" and "_" themselves and a leading "$" (which is kept
    for system keywords like "$Forwarded"). The mapping is injective, so distinct categories
    give distinct keywords: "Projet X" -> "Projet_X", "Équipe" -> "=C3=89quipe".
    """
    out: list[str] = []
    for position, char in enumerate(category):
        if char == " ":
            out.append("_")
        elif "\x21" <= char <= "\x7e" and char not in _KEYWORD_UNSAFE:
            out.append("=24" if position == 0 and char == "$" else char)
        else:
            out.append("".join(f"={byte:02X}" for byte in char.encode("utf-8", "surrogatepass")))
    return "".join(out)


def _categories(meta: Mapping[str, Any]) -> Iterable[str]:
    categories = meta.get("categories")
    if not isinstance(categories, list | tuple):
        return ()
    return (c for c in categories if isinstance(c, str) and c)


def _flag_status(meta: Mapping[str, Any]) -> Any:
    if "flagStatus" in meta:
        return meta.get("flagStatus")
    flag = meta.get("flag")
    return flag.get("flagStatus") if isinstance(flag, Mapping) else None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _last_verb(meta: Mapping[str, Any]) -> int | None:
    if "lastVerb" in meta:
        return _as_int(meta.get("lastVerb"))
    properties = meta.get("singleValueExtendedProperties")
    if not isinstance(properties, list):
        return None
    for prop in properties:
        if isinstance(prop, Mapping) and str(prop.get("id", "")).lower() == "integer 0x1081":
            return _as_int(prop.get("value"))
    return None


def message_flags(meta: Mapping[str, Any]) -> tuple[str, ...]:
    """IMAP flags in a stable order: system flags, then one keyword per category."""
    flags: list[str] = []
    if meta.get("isRead") is True:
        flags.append("\\Seen")
    if _flag_status(meta) == "flagged":
        flags.append("\\Flagged")
    if meta.get("isDraft") is True:
        flags.append("\\Draft")
    verb = _last_verb(meta)
    if verb in (VERB_REPLY_TO_SENDER, VERB_REPLY_TO_ALL):
        flags.append("\\Answered")
    elif verb == VERB_FORWARD:
        flags.append("$Forwarded")
    for category in _categories(meta):
        keyword = category_keyword(category)
        if keyword not in flags:
            flags.append(keyword)
    return tuple(flags)


# -- dates ------------------------------------------------------------------------------------


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_graph_datetime(value: Any) -> datetime | None:
    """An aware datetime from a Graph ISO 8601 string ("2024-03-05T09:12:44Z"), else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return _aware(datetime.fromisoformat(value.strip()))
    except ValueError:
        return None


def parse_header_date(value: str | None) -> datetime | None:
    """An aware datetime from an RFC 5322 Date header, else None (never raises)."""
    if not value:
        return None
    try:
        return _aware(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def internal_date(meta: Mapping[str, Any], mime: bytes) -> datetime:
    """receivedDateTime, else the MIME Date header, else 1970-01-01 UTC."""
    return (
        parse_graph_datetime(meta.get("receivedDateTime"))
        or parse_header_date(header_value(mime, "Date"))
        or EPOCH
    )


# -- the mapper -------------------------------------------------------------------------------


def _message_id(meta: Mapping[str, Any], mime: bytes) -> str | None:
    bare = bare_message_id(header_value(mime, "Message-ID"))
    if bare is None:
        listed = meta.get("internetMessageId")
        bare = bare_message_id(listed) if isinstance(listed, str) else None
    return f"<{bare}>" if bare else None


def map_message(item: Item, mime: bytes) -> Payload:
    """The mail workload's `Mapper`: MIME carried untouched, flags, date and fingerprint.

    Raises `SkipItem` when the content cannot be carried as a message (no bytes, or no
    header block at all).
    """
    if not isinstance(mime, bytes | bytearray) or not mime.strip():
        raise SkipItem("empty MIME content: nothing to carry")
    if b":" not in header_block(mime):
        raise SkipItem("corrupt MIME content: no header field before the body")
    meta: Mapping[str, Any] = item.meta if isinstance(item.meta, Mapping) else {}
    return Payload(
        source_id=item.source_id,
        content=mime,
        fingerprint=fingerprint_of(mime),
        attrs={
            "flags": message_flags(meta),
            "internal_date": internal_date(meta, mime),
            "message_id": _message_id(meta, mime),
        },
    )


def message_attrs(item: Item) -> Payload:
    """A content-less payload carrying the message's flags, for a `sync` flag update.

    Flag changes arrive through delta as a new changeKey; re-downloading the MIME only
    to set flags would cost a Graph request per change, so updates use this instead.
    """
    meta: Mapping[str, Any] = item.meta if isinstance(item.meta, Mapping) else {}
    return Payload(
        source_id=item.source_id,
        content=b"",
        fingerprint="",
        attrs={
            "flags": message_flags(meta),
            "internal_date": internal_date(meta, b""),
            "message_id": None,
        },
    )
