"""IMAP wire helpers for the IMAP target: quoting, parsing, APPEND commands, the error table.

`imaplib` speaks the protocol but leaves its responses as raw bytes; this module turns
LIST, FETCH, SEARCH and response codes (RFC 5530, RFC 4315) into typed values, and holds
the one table that sorts every IMAP failure into the engine's three error kinds.
"""

from __future__ import annotations

import enum
import imaplib
import re
import socket
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ..migrator.errors import (
    FatalError,
    HirondelleError,
    OwnerFailed,
    Refused,
    Retriable,
    SkipItem,
)
from .credentials import Login  # noqa: F401 - re-exported for the IMAP target

CRLF = b"\r\n"
SYSTEM_FLAGS = frozenset({"\\seen", "\\answered", "\\flagged", "\\deleted", "\\draft"})
_ATOM_SPECIALS = frozenset('(){ %*"\\]')
_LINE_END = re.compile(rb"\r\n|\r|\n")
_RESPONSE_CODE = re.compile(r"\[([A-Za-z0-9-]+)(?: ([^\]]*))?\]")
_LIST_LINE = re.compile(rb'^\((?P<attrs>[^)]*)\) (?P<delim>NIL|"(?:\\.|[^"\\])*") ?(?P<name>.*)$')
_FETCH_ITEM = re.compile(rb"(UID|RFC822\.SIZE) (\d+)")
_FETCH_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
_FETCH_DATE = re.compile(rb'INTERNALDATE "([^"]+)"')


# -- encoding ---------------------------------------------------------------------------------


def quote(text: str) -> str:
    """An IMAP quoted string (RFC 3501 section 4.3) for an ASCII value."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unquote(text: bytes) -> str:
    """The value of a quoted string or atom as the server sent it."""
    if text.startswith(b'"') and text.endswith(b'"') and len(text) >= 2:
        text = re.sub(rb"\\(.)", rb"\1", text[1:-1])
    return text.decode("utf-8", errors="replace")


def is_flag(flag: str) -> bool:
    """A system flag the client may set, or a keyword that is a valid IMAP atom."""
    if flag.startswith("\\"):
        return flag.lower() in SYSTEM_FLAGS
    return bool(flag) and all(
        "\x20" < char < "\x7f" and char not in _ATOM_SPECIALS for char in flag
    )


def format_flags(flags: Iterable[str], keywords: bool = True) -> str:
    """A parenthesised flag list; anything that is not a valid flag atom is left out, and
    keywords too when `keywords` is False (system flags only)."""
    kept = dict.fromkeys(
        flag for flag in flags if is_flag(flag) and (keywords or flag.startswith("\\"))
    )
    return "(" + " ".join(kept) + ")"


def format_internal_date(moment: datetime) -> str:
    """A quoted INTERNALDATE; a naive datetime is taken as UTC, not as local time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return imaplib.Time2Internaldate(moment)


def parse_internal_date(text: bytes) -> datetime:
    """An INTERNALDATE value ("02-Jan-2021 03:04:05 +0000") as an aware datetime."""
    return datetime.strptime(text.decode("ascii").strip(), "%d-%b-%Y %H:%M:%S %z")


def stored_form(content: bytes) -> bytes:
    """The bytes an IMAP server stores: every line ending is CRLF (RFC 3501 section 4.3)."""
    if content.count(b"\n") == content.count(CRLF) == content.count(b"\r"):
        return content
    return _LINE_END.sub(CRLF, content)


def append_command(mailbox: str, messages: Sequence[tuple[str, str | None, bytes]]) -> list[bytes]:
    """`APPEND` with non-synchronizing literals (LITERAL+, RFC 7888), MULTIAPPEND if several,
    as the pieces to send in order: each message's content is one piece, the very object
    given (never copied into a larger buffer: a 40 MB message stays one copy in memory).

    `mailbox` is already in modified UTF-7; each message is (flags, quoted date or None,
    content).
    """
    pieces: list[bytes] = []
    text = b"APPEND " + quote(mailbox).encode("ascii")
    for flags, date, content in messages:
        head = f" {flags} {date}" if date else f" {flags}"
        pieces.append(text + f"{head} {{{len(content)}+}}".encode("ascii") + CRLF)
        pieces.append(content)
        text = b""
    return pieces


def send_raw(conn: imaplib.IMAP4, name: str, pieces: Sequence[bytes]) -> tuple[str, list[bytes]]:
    """Send one complete command (literals included), piece by piece, and wait for its
    tagged answer.

    `imaplib` sends at most one literal per command and waits for a continuation before
    it; LITERAL+ needs none, so the whole batch goes out at once.
    """
    for kind in ("OK", "NO", "BAD"):
        conn.untagged_responses.pop(kind, None)
    tag = conn._new_tag()  # imaplib has no public API for pipelined literals
    try:
        conn.send(tag + b" ")
        for piece in pieces:
            conn.send(piece)
        conn.send(CRLF)
    except OSError as error:
        raise imaplib.IMAP4.abort(f"socket error: {error}") from error
    return conn._command_complete(name, tag)


def authenticate(conn: imaplib.IMAP4, auth_user: str, password: str, authzid: str = "") -> None:
    """SASL PLAIN when offered (UTF-8 safe, RFC 4616), else LOGIN. Raises imaplib's error.

    `authzid` (a master user acting for a user) needs SASL PLAIN: LOGIN has no place for
    it. The password is only ever written to the socket.
    """
    if "AUTH=PLAIN" in conn.capabilities:
        response = b"\0".join(part.encode("utf-8") for part in (authzid, auth_user, password))
        conn.authenticate("PLAIN", lambda _challenge: response)
        return
    if authzid:
        raise imaplib.IMAP4.error(
            "[AUTHENTICATIONFAILED] the server offers no AUTH=PLAIN, which master_login = "
            '"authzid" needs: use master_login = "separator" if the server knows that form'
        )
    try:
        conn.login(auth_user, password)
    except UnicodeEncodeError:
        raise imaplib.IMAP4.error(
            "[AUTHENTICATIONFAILED] the server offers no AUTH=PLAIN and LOGIN is ASCII only"
        ) from None


# -- parsing ----------------------------------------------------------------------------------


def text_of(data: object) -> str:
    """The human text of a response (bytes, str or imaplib's lists of them)."""
    if isinstance(data, list | tuple):
        return " ".join(text_of(part) for part in data if part is not None)
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return str(data)


def response_code(text: str) -> str | None:
    """The response code of a status response ("OVERQUOTA" in "[OVERQUOTA] Quota..")."""
    found = _RESPONSE_CODE.search(text)
    return found.group(1).upper() if found else None


def parse_capabilities(data: object) -> frozenset[str]:
    """Capability names, upper-cased, from a CAPABILITY response."""
    return frozenset(text_of(data).upper().split())


def append_limit(capabilities: frozenset[str]) -> int | None:
    """The server-wide APPENDLIMIT (RFC 7889), if it advertises a number."""
    for capability in capabilities:
        name, _, value = capability.partition("=")
        if name == "APPENDLIMIT" and value.isdigit():
            return int(value)
    return None


def parse_uid_set(text: str) -> list[int]:
    """UIDs of a uid-set ("5:7,9"), in the order given."""
    uids: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition(":")
        low, high = int(first), int(last or first)
        uids.extend(range(min(low, high), max(low, high) + 1))
    return uids


def parse_appenduid(text: str) -> tuple[int, list[int]] | None:
    """(uidvalidity, uids) of an APPENDUID response code (RFC 4315), or None."""
    found = re.search(r"\[APPENDUID (\d+) ([\d:,]+)\]", text, re.IGNORECASE)
    if not found:
        return None
    return int(found.group(1)), parse_uid_set(found.group(2))


def parse_copyuid(text: str) -> tuple[int, list[int], list[int]] | None:
    """(destination uidvalidity, source uids, destination uids) of COPYUID, or None."""
    found = re.search(r"(?:\[COPYUID )?(\d+) ([\d:,]+) ([\d:,]+)", text, re.IGNORECASE)
    if not found:
        return None
    return int(found.group(1)), parse_uid_set(found.group(2)), parse_uid_set(found.group(3))


def parse_search(data: Sequence[bytes | None]) -> list[int]:
    """UIDs of a SEARCH answer, ascending."""
    return sorted(int(uid) for line in data if line for uid in line.split())


_PERSONAL_NAMESPACE = re.compile(r'^\s*\(\(\s*"((?:\\.|[^"\\])*)"')


def personal_prefix(data: object) -> str:
    """The prefix of the first personal namespace of a NAMESPACE answer (RFC 2342), as
    sent (modified UTF-7): "INBOX." on a server whose users' folders live under INBOX,
    "" on most; "" too for NIL or an answer that cannot be read."""
    found = _PERSONAL_NAMESPACE.match(text_of(data))
    return found.group(1).replace('\\"', '"').replace("\\\\", "\\") if found else ""


@dataclass(frozen=True, slots=True)
class ListedMailbox:
    """One LIST answer line: the raw (modified UTF-7) name, its delimiter and attributes."""

    raw_name: str
    delimiter: str | None
    attributes: frozenset[str]


def parse_list(data: Sequence[object]) -> list[ListedMailbox]:
    """LIST answer lines, including names sent as literals (imaplib gives tuples then)."""
    listed: list[ListedMailbox] = []
    for line in data:
        if line is None or line == b")":
            continue
        literal: bytes | None = None
        if isinstance(line, tuple):
            line, literal = line[0], line[1]
        assert isinstance(line, bytes)
        found = _LIST_LINE.match(line)
        if not found:
            continue
        name = literal.decode("utf-8", "replace") if literal is not None else ""
        if literal is None:
            name = unquote(found.group("name").strip())
        delim = found.group("delim")
        listed.append(
            ListedMailbox(
                raw_name=name,
                delimiter=None if delim == b"NIL" else unquote(delim),
                attributes=frozenset(found.group("attrs").decode("ascii", "replace").split()),
            )
        )
    return listed


@dataclass(frozen=True, slots=True)
class FetchedMessage:
    """What one FETCH answer carried: UID, size, flags, date and the first literal."""

    uid: int
    size: int | None = None
    flags: tuple[str, ...] = ()
    internal_date: datetime | None = None
    literal: bytes | None = None


def _fetched(meta: bytes, literal: bytes | None) -> FetchedMessage | None:
    items = {name: int(value) for name, value in _FETCH_ITEM.findall(meta)}
    if b"UID" not in items:
        return None
    flags = _FETCH_FLAGS.search(meta)
    date = _FETCH_DATE.search(meta)
    return FetchedMessage(
        uid=items[b"UID"],
        size=items.get(b"RFC822.SIZE"),
        flags=tuple(flags.group(1).decode("ascii", "replace").split()) if flags else (),
        internal_date=parse_internal_date(date.group(1)) if date else None,
        literal=literal,
    )


def parse_fetch(data: Sequence[object]) -> list[FetchedMessage]:
    """FETCH answers as imaplib returns them: (meta, literal) tuples, closing b")" lines."""
    fetched: list[FetchedMessage] = []
    for part in data:
        if isinstance(part, tuple):
            message = _fetched(part[0], part[1])
        elif isinstance(part, bytes):
            message = _fetched(part, None)
        else:
            message = None
        if message is not None:
            fetched.append(message)
    return fetched


# -- the error table --------------------------------------------------------------------------


class Failure(enum.Enum):
    """What a refused IMAP command means for the migration."""

    AUTH = "auth"  # login refused: fatal, name the credential setting
    QUOTA = "quota"  # mailbox full: fatal, raise the quota
    TOO_BIG = "too_big"  # this message exceeds the server's size limit: skip it
    REFUSED = "refused"  # this one item was refused for another reason: skip it
    KEYWORDS = "keywords"  # the mailbox holds as many keywords as the server allows
    MISSING = "missing"  # the mailbox does not exist (NONEXISTENT, TRYCREATE)
    EXISTS = "exists"  # the mailbox already exists (ALREADYEXISTS)
    PASSING = "passing"  # try again later (UNAVAILABLE, INUSE, server hiccup)
    BROKEN = "broken"  # anything else: the run cannot go on


# Response codes: RFC 5530 (IMAP response codes), RFC 4315, RFC 3501.
_BY_CODE: dict[str, Failure] = {
    "AUTHENTICATIONFAILED": Failure.AUTH,
    "AUTHORIZATIONFAILED": Failure.AUTH,
    "EXPIRED": Failure.AUTH,
    "PRIVACYREQUIRED": Failure.AUTH,
    "OVERQUOTA": Failure.QUOTA,
    "LIMIT": Failure.TOO_BIG,
    "TOOBIG": Failure.TOO_BIG,
    "NONEXISTENT": Failure.MISSING,
    "TRYCREATE": Failure.MISSING,
    "ALREADYEXISTS": Failure.EXISTS,
    "UNAVAILABLE": Failure.PASSING,
    "INUSE": Failure.PASSING,
    "SERVERBUG": Failure.PASSING,
    "CANNOT": Failure.REFUSED,
    "PARSE": Failure.REFUSED,
}
# Servers that answer without a code (Dovecot before [OVERQUOTA], Courier, Exchange...).
_BY_TEXT: tuple[tuple[re.Pattern[str], Failure], ...] = (
    (re.compile(r"quota", re.IGNORECASE), Failure.QUOTA),
    (re.compile(r"too (large|big)|larger than|size limit|exceeds", re.IGNORECASE), Failure.TOO_BIG),
    (re.compile(r"zero byte|empty message", re.IGNORECASE), Failure.REFUSED),
    # Cyrus IMAP keeps at most 100 keywords per mailbox (its MAX_USER_FLAGS), and says so
    # without a response code: "NO Too many user flags in mailbox".
    (re.compile(r"too many (user )?(flags|keywords)", re.IGNORECASE), Failure.KEYWORDS),
    (re.compile(r"authenticat|invalid credentials|login failed", re.IGNORECASE), Failure.AUTH),
    (re.compile(r"already exists", re.IGNORECASE), Failure.EXISTS),
    (re.compile(r"try again|temporar|unavailable", re.IGNORECASE), Failure.PASSING),
)


def failure_of(text: str, *, item_scoped: bool) -> Failure:
    """Sort a NO/BAD answer. An unknown refusal of an item skips it; of anything else, stops."""
    code = response_code(text)
    if code in _BY_CODE:
        return _BY_CODE[code]
    for pattern, failure in _BY_TEXT:
        if pattern.search(text):
            return failure
    return Failure.REFUSED if item_scoped else Failure.BROKEN


@dataclass(frozen=True, slots=True)
class FailureContext:
    """What the message of an error names: the operation, mailbox, login, setting to fix."""

    operation: str
    login: str
    auth_hint: str  # e.g. "targets.mail.password_file (/etc/hirondelle/passwords)"
    ca_hint: str = "targets.mail.ca_file"
    mailbox: str = ""
    size: int | None = None
    limit: int | None = None
    shared_login: bool = True  # a master user: refused, no owner can go on


def error_for(failure: Failure, text: str, context: FailureContext) -> HirondelleError:
    """The engine error for a sorted failure; `text` is the server's answer, never a secret."""
    where = f" in mailbox {context.mailbox!r}" if context.mailbox else ""
    if failure is Failure.AUTH:
        refused = FatalError if context.shared_login else OwnerFailed
        return refused(
            f"IMAP login refused for {context.login} ({text.strip()}): check {context.auth_hint}"
        )
    if failure is Failure.QUOTA:
        return OwnerFailed(
            f"the mailbox of {context.login} is over quota{where} ({text.strip()}): "
            "raise its quota on the IMAP server, then resume the run"
        )
    if failure is Failure.TOO_BIG:
        limit = f" (limit {context.limit} bytes)" if context.limit else ""
        return SkipItem(
            f"message of {context.size} bytes is larger than the IMAP server accepts"
            f"{limit}: {text.strip()}"
        )
    if failure is Failure.PASSING:
        return Retriable(f"IMAP {context.operation}{where} failed for now: {text.strip()}")
    if failure in (Failure.REFUSED, Failure.KEYWORDS):
        return Refused(f"IMAP server refused {context.operation}{where}: {text.strip()}")
    return FatalError(f"IMAP {context.operation}{where} failed: {text.strip()}")


def error_for_exception(error: BaseException, context: FailureContext) -> HirondelleError | None:
    """The engine error for an exception raised by imaplib or the socket, None if not ours."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return FatalError(
            f"the IMAP server's certificate was not verified ({error.verify_message}): "
            f"check {context.ca_hint}"
        )
    if isinstance(error, imaplib.IMAP4.abort | socket.timeout | ConnectionError | EOFError):
        return Retriable(f"IMAP connection lost during {context.operation}: {error}")
    if isinstance(error, ssl.SSLError | OSError):
        return Retriable(f"IMAP connection failed during {context.operation}: {error}")
    if isinstance(error, imaplib.IMAP4.error):
        text = text_of(error.args[0] if error.args else "")
        item_scoped = context.size is not None
        return error_for(failure_of(text, item_scoped=item_scoped), text, context)
    return None
