"""One IMAP login's connection and mailboxes: connect and log in (again after a dropped
connection), every imaplib failure sorted by the error table (`imap_wire`), the owner's
mailboxes discovered once (delimiter, special-use, personal namespace) and created level
by level, and SELECT/UID commands in them. `imap_session` writes and reads messages."""

from __future__ import annotations

import imaplib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..mappings.mail_folders import imap_utf7_decode, imap_utf7_encode, join_folder, target_folder
from ..migrator.errors import HirondelleError, Unreachable
from ..migrator.model import Container, TargetRef
from . import imap_wire as wire
from .imap_settings import SPECIAL_FOLDERS, ImapSettings, _shutdown
from .imap_wire import Failure, Login

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass
class _Layout:
    """What a session learns once about the owner's mailboxes."""

    delimiter: str
    special_use: dict[str, str]  # RFC 6154 attribute -> existing mailbox (decoded)
    mailboxes: set[str]  # decoded names known to exist
    prefix: tuple[str, ...] = ()  # the personal namespace's levels, e.g. ("INBOX",)


def _decoded(raw_name: str) -> str:
    try:
        return imap_utf7_decode(raw_name)
    except ValueError:
        return raw_name  # a server name that is not valid modified UTF-7 is kept verbatim


def mailbox_arg(name: str) -> str:
    return wire.quote(imap_utf7_encode(name))


def uid_of(ref: TargetRef) -> tuple[int, int] | None:
    uidvalidity, _, uid = ref.ref.partition(":")
    if uidvalidity.isdigit() and uid.isdigit():
        return int(uidvalidity), int(uid)
    return None


class ImapMailboxes:
    """One owner's IMAP connection and mailboxes. Reconnects after a dropped connection."""

    def __init__(
        self, dial: Callable[[], imaplib.IMAP4], login: Login, settings: ImapSettings
    ) -> None:
        self._dial = dial
        self._login = login
        self._settings = settings
        self._conn: imaplib.IMAP4 | None = None
        self._layout: _Layout | None = None
        self._selected: tuple[str, int] | None = None  # (mailbox, uidvalidity)
        self._exists: int | None = None  # messages in it when it was SELECTed (EXISTS)
        self.server_caps: frozenset[str] = frozenset()

    # -- connection ---------------------------------------------------------------------------

    def connect(self) -> None:
        """Connect and log in now (otherwise the first operation does)."""
        self._client()

    def close(self) -> None:
        conn, self._conn, self._selected = self._conn, None, None
        if conn is None:
            return
        try:
            conn.logout()
        except (imaplib.IMAP4.error, OSError):
            _shutdown(conn)

    def _client(self) -> imaplib.IMAP4:
        if self._conn is None:
            try:
                self._conn = self._open()
            except HirondelleError:
                raise
            except Exception as error:
                raise self._mapped(error, "login", "", None) from error
        return self._conn

    def _open(self) -> imaplib.IMAP4:
        try:
            conn = self._dial()
        except ssl.SSLError:
            raise  # a certificate or TLS setting: sorted by the error table
        except (OSError, EOFError, imaplib.IMAP4.abort) as error:
            # Nothing was sent: the engine waits for the server and tries again.
            raise Unreachable(f"IMAP server cannot be reached: {error}") from error
        try:
            wire.authenticate(
                conn, self._login.auth_user, self._login.password, self._login.authzid
            )
            self.server_caps = wire.parse_capabilities(conn.capability()[1])
            if self._layout is None:
                self._layout = self._discover(conn)
        except BaseException:
            _shutdown(conn)
            raise
        return conn

    def _drop(self) -> None:
        conn, self._conn, self._selected = self._conn, None, None
        if conn is not None:
            _shutdown(conn)

    def _context(self, operation: str, mailbox: str, size: int | None) -> wire.FailureContext:
        return wire.FailureContext(
            operation=operation,
            login=self._login.login,
            auth_hint=self._login.hint,
            shared_login=self._login.shared,
            ca_hint=self._settings.ca_hint(),
            mailbox=mailbox,
            size=size,
            limit=self._limit(),
        )

    def _mapped(
        self, error: Exception, operation: str, mailbox: str, size: int | None
    ) -> Exception:
        mapped = wire.error_for_exception(error, self._context(operation, mailbox, size))
        if mapped is None:
            return error
        if isinstance(mapped, wire.Retriable):
            self._drop()
        return mapped

    def _call(
        self,
        operation: str,
        command: Callable[[imaplib.IMAP4], _T],
        mailbox: str = "",
        size: int | None = None,
    ) -> _T:
        """Run `command` on the connection; sort whatever imaplib or the socket raise."""
        conn = self._client()
        conn.untagged_responses.clear()  # imaplib keeps every untagged answer otherwise
        try:
            return command(conn)
        except HirondelleError:
            raise
        except Exception as error:
            mapped = self._mapped(error, operation, mailbox, size)
            if mapped is error:
                raise
            raise mapped from error

    def _refused(
        self, typ: str, data: object, operation: str, mailbox: str = "", size: int | None = None
    ) -> tuple[Failure, str] | None:
        """None for OK; else the sorted failure and the server's text."""
        if typ == "OK":
            return None
        text = wire.text_of(data)
        return wire.failure_of(text, item_scoped=size is not None), text

    def _raise(
        self,
        refusal: tuple[Failure, str],
        operation: str,
        mailbox: str = "",
        size: int | None = None,
    ) -> None:
        failure, text = refusal
        raise wire.error_for(failure, text, self._context(operation, mailbox, size))

    def _limit(self) -> int | None:
        limits = [self._settings.max_message_bytes, wire.append_limit(self.server_caps)]
        known = [limit for limit in limits if limit]
        return min(known) if known else None

    # -- mailboxes ----------------------------------------------------------------------------

    def _discover(self, conn: imaplib.IMAP4) -> _Layout:
        """The hierarchy delimiter, the special-use mailboxes and every existing mailbox."""
        _, root = conn.list('""', '""')
        listed_root = wire.parse_list(root)
        delimiter = (listed_root[0].delimiter if listed_root else None) or "/"
        caps = wire.parse_capabilities(conn.capability()[1])
        conn.untagged_responses.pop("LIST", None)
        lines: list[Any]
        if {"SPECIAL-USE", "LIST-EXTENDED"} <= caps:
            conn.xatom("LIST", '""', '"*"', "RETURN", "(SPECIAL-USE)")
            lines = conn.untagged_responses.pop("LIST", [])
        else:
            lines = conn.list('""', '"*"')[1]
        layout = _Layout(delimiter=delimiter, special_use={}, mailboxes={"INBOX"})
        if "NAMESPACE" in caps:
            # A server may keep every personal folder under a prefix (RFC 2342 section 5),
            # e.g. Cyrus's "INBOX." without its alternate namespace: CREATE "Projets" is
            # refused there ("Permission denied"), "INBOX.Projets" is the user's folder.
            typ, data = conn.namespace()
            prefix = _decoded(wire.personal_prefix(data)) if typ == "OK" else ""
            layout.prefix = _inbox_upper(tuple(level for level in prefix.split(delimiter) if level))
        wanted = {attribute.lower(): attribute for attribute in SPECIAL_FOLDERS}
        for listed in wire.parse_list(lines):
            name = _decoded(listed.raw_name)
            if not {"\\noselect", "\\nonexistent"} & {a.lower() for a in listed.attributes}:
                layout.mailboxes.add(name)
            for attribute in listed.attributes:
                if attribute.lower() in wanted:
                    layout.special_use.setdefault(wanted[attribute.lower()], name)
        return layout

    def _known_layout(self) -> _Layout:
        self._client()
        assert self._layout is not None
        return self._layout

    def ensure_container(self, container: Container) -> str:
        """CREATE (and SUBSCRIBE) each missing level; the mailbox name, decoded. Idempotent.

        A name is first asked for as `target_folder` gives it; a server that refuses it
        (Cyrus refuses " ; < > \\ ` { | } in names, and "/" with "." as delimiter) gets the
        strict form, where those characters are look-alikes. A folder an earlier pass
        created keeps its name either way."""
        layout = self._known_layout()
        plain, strict = (self._segments(container, layout, s) for s in (False, True))
        refused = None
        if join_folder(plain, layout.delimiter) not in layout.mailboxes or plain == strict:
            refused = self._create_levels(plain, quiet=plain != strict)
        if refused is None:
            return join_folder(plain, layout.delimiter)
        log.info(
            "%s: the server refused the name (%s): look-alikes instead", refused[1], refused[0]
        )
        self._create_levels(strict, quiet=False)
        return join_folder(strict, layout.delimiter)

    @staticmethod
    def _segments(container: Container, layout: _Layout, strict: bool) -> tuple[str, ...]:
        roles = container.path_roles or (None,) * (len(container.path) - 1) + (container.role,)
        segments = target_folder(
            container.path, roles, layout.special_use, layout.delimiter, strict
        )
        return _in_namespace(segments, layout.prefix)

    def _create_levels(self, segments: tuple[str, ...], quiet: bool) -> tuple[str, str] | None:
        """CREATE each missing level; with `quiet`, a refused name is returned (the server's
        text, the mailbox) rather than raised."""
        for depth in range(1, len(segments) + 1):
            mailbox = join_folder(segments[:depth], self._known_layout().delimiter)
            refusal = self._create(mailbox, quiet)
            if refusal is not None:
                return refusal[1], mailbox
        return None

    def _create(self, mailbox: str, quiet: bool = False) -> tuple[Failure, str] | None:
        """CREATE and SUBSCRIBE `mailbox` unless it is there. With `quiet`, a refusal
        that may concern the name itself is returned instead of raised."""
        layout = self._known_layout()
        if mailbox.upper() == "INBOX" or mailbox in layout.mailboxes:
            return None
        typ, data = self._call("CREATE", lambda c: c.create(mailbox_arg(mailbox)), mailbox)
        refusal = self._refused(typ, data, "CREATE", mailbox)
        if refusal is not None and refusal[0] is not Failure.EXISTS:
            if quiet and refusal[0] in (Failure.REFUSED, Failure.BROKEN):
                return refusal
            self._raise(refusal, "CREATE", mailbox)
        typ, data = self._call("SUBSCRIBE", lambda c: c.subscribe(mailbox_arg(mailbox)), mailbox)
        if typ != "OK":
            log.warning("cannot subscribe to mailbox %r: %s", mailbox, wire.text_of(data))
        layout.mailboxes.add(mailbox)
        return None

    def _create_path(self, mailbox: str) -> None:
        """Create `mailbox` and its parents (after a TRYCREATE)."""
        layout = self._known_layout()
        layout.mailboxes.discard(mailbox)
        levels = mailbox.split(layout.delimiter)
        for depth in range(1, len(levels) + 1):
            self._create(layout.delimiter.join(levels[:depth]))

    def _select(self, mailbox: str) -> int | None:
        """SELECT `mailbox` unless it is selected; its UIDVALIDITY, or None if it is missing."""
        if self._selected is not None and self._selected[0] == mailbox:
            return self._selected[1]

        def select(conn: imaplib.IMAP4) -> tuple[str, list[Any], list[Any]]:
            typ, data = conn.select(mailbox_arg(mailbox))
            return typ, data, conn.untagged_responses.get("UIDVALIDITY", [])

        typ, data, uidvalidity = self._call("SELECT", select, mailbox)
        refusal = self._refused(typ, data, "SELECT", mailbox)
        if refusal is not None:
            if refusal[0] is Failure.MISSING:
                return None
            self._raise(refusal, "SELECT", mailbox)
        self._selected = (mailbox, int(uidvalidity[-1]))
        self._exists = _count(data)
        return self._selected[1]

    def _uid(self, command: str, mailbox: str, *args: str) -> list[Any]:
        """One UID command in the selected mailbox; its untagged data."""
        typ, data = self._call(command, lambda c: c.uid(command, *args), mailbox)
        refusal = self._refused(typ, data, f"UID {command}", mailbox)
        if refusal is not None:
            self._raise(refusal, f"UID {command}", mailbox)
        return list(data)

    def _resolve(self, ref: TargetRef) -> int | None:
        """The UID of a stored ref, or None if the message or its UIDVALIDITY is gone."""
        parsed = uid_of(ref)
        if parsed is None or self._select(ref.folder) != parsed[0]:
            return None
        found = wire.parse_search(self._uid("SEARCH", ref.folder, "UID", str(parsed[1])))
        return parsed[1] if parsed[1] in found else None


def _count(data: list[Any]) -> int | None:
    """The EXISTS count a SELECT answered (RFC 3501, 6.3.1: a server must send it), or None."""
    try:
        return int(data[-1])
    except (IndexError, TypeError, ValueError):
        return None


def _in_namespace(segments: tuple[str, ...], prefix: tuple[str, ...]) -> tuple[str, ...]:
    """`segments` under the personal namespace's prefix, unless they are already there."""
    if not prefix or _inbox_upper(segments[: len(prefix)]) == prefix:
        return segments
    return prefix + segments


def _inbox_upper(levels: tuple[str, ...]) -> tuple[str, ...]:
    """INBOX is one name whatever its case (RFC 3501 section 5.1)."""
    return tuple("INBOX" if level.upper() == "INBOX" else level for level in levels)
