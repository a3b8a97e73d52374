"""The mbox format as the archive writes it: mboxrd quoting, the "From " line, and the
state headers that carry a message's flags and keywords.

Readers take a message's state from three headers (Dovecot's mbox storage,
`src/lib-storage/index/mbox/mbox-sync-parse.c`; Python's `mailbox.mboxMessage`; mutt):
`Status:` R (seen) and O (old: not recent), `X-Status:` A (answered), F (flagged), T (draft),
D (deleted), and `X-Keywords:` the keywords, separated by spaces. Dovecot honours a keyword
of `X-Keywords:` only when the first message's `X-IMAPbase:` (UID validity, next UID, then
the folder's keywords) names it, so a folder with keywords gets one. Headers of those names
(and `X-UID:`, which would pin UIDs) already in a message are dropped, so the state written
is the only one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_FROM_LINE = re.compile(rb"^(>*From )", re.MULTILINE)
_HEADER_END = re.compile(rb"\n\r?\n")  # the empty line after the headers, CRLF or LF
# The headers the state is written in, lower case, as `bytes.lower()` gives them.
STATE_HEADERS = (b"status", b"x-status", b"x-keywords", b"x-imapbase", b"x-uid")
# IMAP system flags and the letter each state header gives them.
STATUS_LETTERS = {"\\Seen": "R"}
X_STATUS_LETTERS = {"\\Answered": "A", "\\Flagged": "F", "\\Draft": "T", "\\Deleted": "D"}


def asctime(moment: datetime) -> str:
    """`moment` in UTC as C's asctime() writes it, for the mbox "From " line."""
    utc = moment.astimezone(UTC)
    return (
        f"{_WEEKDAYS[utc.weekday()]} {_MONTHS[utc.month - 1]} {utc.day:2d} "
        f"{utc:%H:%M:%S} {utc.year}"
    )


def mboxrd_quote(content: bytes) -> bytes:
    """Quote every line matching `>*From ` with one more ">" (mboxrd)."""
    return _FROM_LINE.sub(rb">\1", content)


def imap_base(folder: str, messages: int, keywords: Sequence[str]) -> str:
    """The `X-IMAPbase:` value of a folder's first message: a UID validity of its own
    (from the folder's name, so a rebuilt file keeps it), the next UID, the keywords."""
    validity = int.from_bytes(hashlib.sha256(folder.encode("utf-8")).digest()[:4]) or 1
    return " ".join([str(validity), str(messages + 1), *keywords])


def state_headers(flags: Sequence[str], base: str | None = None) -> list[str]:
    """`Status:`, `X-Status:` and `X-Keywords:` lines for IMAP flags and keywords, after
    an `X-IMAPbase:` line when `base` is given (the folder's first message)."""
    status = "".join(letter for flag, letter in STATUS_LETTERS.items() if flag in flags) + "O"
    lines = [f"X-IMAPbase: {base}"] if base else []
    lines.append(f"Status: {status}")
    x_status = "".join(letter for flag, letter in X_STATUS_LETTERS.items() if flag in flags)
    if x_status:
        lines.append(f"X-Status: {x_status}")
    keywords = [f for f in flags if not f.startswith("\\")]
    if keywords:
        lines.append(f"X-Keywords: {' '.join(keywords)}")
    return lines


def with_state(content: bytes, flags: Sequence[str], base: str | None = None) -> bytes:
    """The message with its state headers first, any earlier ones of those names dropped
    from its header block. Only a header block that ends with an empty line (whatever its
    line endings) is looked into: a message without one keeps every byte."""
    first_line = content[: content.find(b"\n") + 1]
    newline = b"\r\n" if first_line.endswith(b"\r\n") else b"\n"
    end = _HEADER_END.search(content)
    if content.startswith((b"\n", b"\r\n")) or end is None:
        head, body = b"", content
    else:
        head, body = content[: end.start() + 1], content[end.start() + 1 :]
    kept: list[bytes] = []
    dropping = False
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):  # a continuation of the header above
            if not dropping:
                kept.append(line)
            continue
        dropping = line.split(b":", 1)[0].strip().lower() in STATE_HEADERS
        if not dropping:
            kept.append(line)
    added = b"".join(line.encode("utf-8") + newline for line in state_headers(flags, base))
    return added + b"".join(kept) + body
