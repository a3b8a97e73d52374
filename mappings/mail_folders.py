"""Mail folder names: from a Graph folder path to a mailbox name an IMAP server accepts.

Pure functions shared by every mail target (IMAP, Maildir archive):

- `imap_utf7_encode` / `imap_utf7_decode`: the modified UTF-7 of RFC 3501 section 5.1.3,
  the form mailbox names take on the IMAP wire and in Maildir++ directory names.
- `target_folder`: the human-readable segments of the target folder for a Graph folder path,
  with well-known folders mapped onto the server's special-use folders (RFC 6154).
- `join_folder` / `split_folder`: one mailbox name from segments with the server's hierarchy
  delimiter, a delimiter inside a segment being replaced by a look-alike character.
"""

from __future__ import annotations

import base64
import hashlib
import unicodedata
from collections.abc import Mapping
from types import MappingProxyType

INBOX = "INBOX"

SPECIAL_USE_ROLES: Mapping[str, str] = MappingProxyType(
    {
        "sentitems": "\\Sent",
        "deleteditems": "\\Trash",
        "drafts": "\\Drafts",
        "junkemail": "\\Junk",
        "archive": "\\Archive",
    }
)
"""Graph well-known folder name -> RFC 6154 special-use attribute ("inbox" is always INBOX)."""

FALLBACK_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "\\Sent": "Sent",
        "\\Trash": "Trash",
        "\\Drafts": "Drafts",
        "\\Junk": "Junk",
        "\\Archive": "Archive",
    }
)
"""Special-use attribute -> folder name to create when the server has no such folder."""

UNNAMED = "Unnamed"
"""Replaces an empty or whitespace-only folder name."""

MAX_SEGMENT_BYTES = 120
"""Longest segment, counted in modified UTF-7 bytes, before it is cut and suffixed with a
digest. Dovecot refuses a name over 255 encoded bytes ("Mailbox name too long"); with the
Maildir++ layout the whole path counts, so a segment takes at most about half of it."""

# Look-alike replacements for a hierarchy delimiter found inside a folder name.
_DELIMITER_LOOKALIKES: Mapping[str, str] = MappingProxyType(
    {
        "/": "\u2215",  # DIVISION SLASH
        ".": "\u2024",  # ONE DOT LEADER
        "\\": "\u29f5",  # REVERSE SOLIDUS OPERATOR
    }
)

# Characters a segment must not carry as such (see `clean_segment`).
_CHAR_REPLACEMENTS: Mapping[str, str] = MappingProxyType(
    {
        # Dovecot's Maildir++ layout refuses any "." in a name ("Character not allowed in
        # mailbox name: '.'"), whatever the IMAP delimiter; other servers use "." as delimiter.
        ".": "\u2024",  # ONE DOT LEADER
        "*": "\u2217",  # ASTERISK OPERATOR: a LIST wildcard (RFC 3501 section 6.3.8)
        "%": "\uff05",  # FULLWIDTH PERCENT SIGN: a LIST wildcard
    }
)
# Characters some servers refuse in any name (Cyrus IMAP: "Invalid mailbox name"; with "." as
# its delimiter, "/" too), replaced only for a server that refused the plain form
# (`clean_segment(strict=True)`): on the others a folder keeps the name earlier versions gave
# it, so an upgrade never splits a folder in two.
_STRICT_REPLACEMENTS: Mapping[str, str] = MappingProxyType(
    {
        **_CHAR_REPLACEMENTS,
        "/": "\u2215",  # DIVISION SLASH, as for the "/" delimiter
        "\\": "\u29f5",  # REVERSE SOLIDUS OPERATOR
        '"': "\uff02",  # FULLWIDTH QUOTATION MARK
        ";": "\uff1b",  # FULLWIDTH SEMICOLON
        "<": "\uff1c",  # FULLWIDTH LESS-THAN SIGN
        ">": "\uff1e",  # FULLWIDTH GREATER-THAN SIGN
        "`": "\uff40",  # FULLWIDTH GRAVE ACCENT
        "{": "\uff5b",  # FULLWIDTH LEFT CURLY BRACKET
        "|": "\uff5c",  # FULLWIDTH VERTICAL LINE
        "}": "\uff5d",  # FULLWIDTH RIGHT CURLY BRACKET
    }
)
_LEADING_TILDE = "\uff5e"  # FULLWIDTH TILDE: Dovecot refuses a name that begins with "~"


# -- modified UTF-7 (RFC 3501 section 5.1.3) ------------------------------------------------


def _is_direct(char: str) -> bool:
    """Printable US-ASCII except "&" stands for itself in modified UTF-7."""
    return "\x20" <= char <= "\x7e" and char != "&"


def _encode_run(run: list[str]) -> str:
    try:
        utf16 = "".join(run).encode("utf-16-be")
    except UnicodeEncodeError as error:
        raise ValueError("mailbox name holds a lone surrogate") from error
    b64 = base64.b64encode(utf16).decode("ascii").rstrip("=").replace("/", ",")
    return f"&{b64}-"


def imap_utf7_encode(name: str) -> str:
    """Encode a mailbox name in modified UTF-7 (RFC 3501 section 5.1.3).

    Printable ASCII stays as is, "&" becomes "&-", every other run of characters becomes
    "&" + base64 of its UTF-16BE form (with "," for "/", no padding) + "-". Characters
    outside the BMP are carried as UTF-16 surrogate pairs. Raises ValueError for a string
    holding a lone surrogate (it has no UTF-16 form).
    """
    out: list[str] = []
    run: list[str] = []
    for char in name:
        if _is_direct(char):
            if run:
                out.append(_encode_run(run))
                run = []
            out.append(char)
        elif char == "&":
            if run:
                out.append(_encode_run(run))
                run = []
            out.append("&-")
        else:
            run.append(char)
    if run:
        out.append(_encode_run(run))
    return "".join(out)


def _decode_run(b64: str) -> str:
    if len(b64) % 4 == 1 or any(not (c.isascii() and (c.isalnum() or c in "+,")) for c in b64):
        raise ValueError(f"invalid modified base64 run {b64!r}")
    padded = b64.replace(",", "/") + "=" * (-len(b64) % 4)
    utf16 = base64.b64decode(padded, validate=True)
    if len(utf16) % 2:
        raise ValueError(f"modified base64 run {b64!r} is not UTF-16")
    try:
        return utf16.decode("utf-16-be")
    except UnicodeDecodeError as error:
        raise ValueError(f"modified base64 run {b64!r} is not UTF-16") from error


def imap_utf7_decode(name: str) -> str:
    """Decode a modified UTF-7 mailbox name (the inverse of `imap_utf7_encode`).

    Strict: raises ValueError for an unterminated "&" run, invalid base64, or UTF-16 that
    does not decode (odd byte count, unpaired surrogate), so that a caller can fall back to
    the raw name instead of silently producing a wrong one.
    """
    out: list[str] = []
    index = 0
    while index < len(name):
        char = name[index]
        if char != "&":
            out.append(char)
            index += 1
            continue
        end = name.find("-", index + 1)
        if end < 0:
            raise ValueError(f"unterminated '&' run in mailbox name {name!r}")
        run = name[index + 1 : end]
        out.append(_decode_run(run) if run else "&")
        index = end + 1
    return "".join(out)


# -- folder names -----------------------------------------------------------------------------


def _shorten(name: str) -> str:
    if len(imap_utf7_encode(name)) <= MAX_SEGMENT_BYTES:
        return name
    suffix = "~" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    name = name[:MAX_SEGMENT_BYTES]  # an encoded character takes at least one byte
    while len(imap_utf7_encode(name + suffix)) > MAX_SEGMENT_BYTES:
        name = name[:-1]
    return name.rstrip() + suffix


def clean_segment(name: str, strict: bool = False) -> str:
    """One folder name made acceptable to IMAP servers and file systems, deterministically.

    In this order: NFC normalisation; control characters (refused by Dovecot) become
    spaces; "." becomes U+2024 (refused by Dovecot's Maildir++ layout, and a delimiter
    elsewhere), the LIST wildcards "*" and "%" become U+2217 and U+FF05; with `strict` (for
    a server that refused the plain form), "/" becomes U+2215 and "\\" U+29F5, and the other
    characters Cyrus refuses (" ; < > ` { | }) their fullwidth forms; surrounding
    whitespace is stripped; an empty result becomes "Unnamed"; a leading "~" (refused by
    Dovecot) becomes U+FF5E; a name whose modified UTF-7 form exceeds `MAX_SEGMENT_BYTES`
    is cut and ends with "~" and 8 hex digits of its SHA-256, so cut names stay distinct.
    """
    name = unicodedata.normalize("NFC", name)
    name = "".join(" " if unicodedata.category(c) == "Cc" else c for c in name)
    replacements = _STRICT_REPLACEMENTS if strict else _CHAR_REPLACEMENTS
    name = "".join(replacements.get(c, c) for c in name).strip()
    if not name:
        return UNNAMED
    if name.startswith("~"):
        name = _LEADING_TILDE + name[1:]
    return _shorten(name)


def _special_name(
    attribute: str, special_use: Mapping[str, str], delimiter: str | None
) -> list[str]:
    existing = special_use.get(attribute)
    if not existing:
        return [FALLBACK_NAMES[attribute]]
    if delimiter:
        return existing.split(delimiter)
    return [existing]


def target_folder(
    path: tuple[str, ...],
    path_roles: tuple[str | None, ...],
    special_use: Mapping[str, str],
    delimiter: str | None = None,
    strict: bool = False,
) -> tuple[str, ...]:
    """The target folder's segments (human-readable, not encoded) for a Graph folder path.

    `path` holds the display names from the root, `path_roles` the Graph well-known name of
    each folder along it (missing entries count as None), `special_use` maps an RFC 6154
    attribute ("\\Sent") to the server's existing folder of that use. Walking the path:
    the inbox restarts the name at "INBOX"; a folder with a special-use role restarts it at
    the server's folder (or `FALLBACK_NAMES` when the server has none); any other folder
    appends its own name cleaned by `clean_segment`. Children thus keep their mapped
    parent as prefix. The server's own names are kept verbatim; give `delimiter` when they
    may be hierarchical (e.g. "INBOX.Sent") so that they are split into segments.
    A top-level folder that is not the inbox but is named "inbox" in any case gets a "_"
    suffix, since IMAP treats that name as INBOX whatever its case.
    An empty path gives ("INBOX",).
    """
    segments: list[str] = []
    for depth, name in enumerate(path):
        role = path_roles[depth] if depth < len(path_roles) else None
        if role == "inbox":
            segments = [INBOX]
        elif role is not None and role in SPECIAL_USE_ROLES:
            segments = _special_name(SPECIAL_USE_ROLES[role], special_use, delimiter)
        else:
            segment = clean_segment(name, strict)
            if not segments and segment.casefold() == INBOX.casefold():
                segment += "_"
            segments.append(segment)
    return tuple(segments) if segments else (INBOX,)


def delimiter_lookalike(delimiter: str) -> str:
    """The character that replaces `delimiter` inside a segment.

    "/" -> U+2215, "." -> U+2024, "\\" -> U+29F5; any other printable ASCII delimiter ->
    its fullwidth form (U+FF01..U+FF5E); anything else -> "_".
    """
    if len(delimiter) != 1:
        raise ValueError(f"a hierarchy delimiter is one character, not {delimiter!r}")
    if delimiter in _DELIMITER_LOOKALIKES:
        return _DELIMITER_LOOKALIKES[delimiter]
    if "\x21" <= delimiter <= "\x7e":
        return chr(ord(delimiter) + 0xFEE0)
    return "_"


def escape_segment(segment: str, delimiter: str) -> str:
    """`segment` with the delimiter replaced by its look-alike; empty becomes "Unnamed"."""
    escaped = segment.replace(delimiter, delimiter_lookalike(delimiter))
    return escaped or UNNAMED


def join_folder(segments: tuple[str, ...], delimiter: str) -> str:
    """One mailbox name: the escaped segments joined with the server's delimiter.

    Every level stays one level (a delimiter inside a name is replaced by a look-alike,
    see `delimiter_lookalike`) and no level is empty.
    """
    return delimiter.join(escape_segment(segment, delimiter) for segment in segments)


def split_folder(name: str, delimiter: str) -> tuple[str, ...]:
    """The segments of a mailbox name (the inverse of `join_folder` on escaped segments)."""
    delimiter_lookalike(delimiter)  # validates the delimiter
    return tuple(name.split(delimiter))
