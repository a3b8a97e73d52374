"""One owner's IMAP session: APPEND (MULTIAPPEND with LITERAL+ where offered), find by
Message-ID or by size and digest, flag updates, MOVE, removal and listing."""

from __future__ import annotations

import hashlib
import imaplib
import logging
import ssl
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from ..mappings.mail import bare_message_id, header_value
from ..mappings.mail_folders import imap_utf7_decode, imap_utf7_encode, join_folder, target_folder
from ..migrator.errors import FatalError, HirondelleError, ItemError, SkipItem, Unreachable
from ..migrator.model import Container, Entry, Payload, TargetRef
from . import imap_wire as wire
from .credentials import Credentials, read_password_file  # noqa: F401 - re-exported
from .imap_settings import SPECIAL_FOLDERS, ImapSettings, _shutdown
from .imap_wire import Failure, Login

log = logging.getLogger(__name__)
HEAD_ITEMS = "(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
_T = TypeVar("_T")


@dataclass
class _Layout:
    """What a session learns once about the owner's mailboxes."""

    delimiter: str
    special_use: dict[str, str]  # RFC 6154 attribute -> existing mailbox (decoded)
    mailboxes: set[str]  # decoded names known to exist
    prefix: tuple[str, ...] = ()  # the personal namespace's levels, e.g. ("INBOX",)


@dataclass
class _Outgoing:
    """One message ready for APPEND: flags, quoted date and CRLF content."""

    payload: Payload
    flags: str
    date: str | None
    content: bytes


def _decoded(raw_name: str) -> str:
    try:
        return imap_utf7_decode(raw_name)
    except ValueError:
        return raw_name  # a server name that is not valid modified UTF-7 is kept verbatim


def _mailbox_arg(name: str) -> str:
    return wire.quote(imap_utf7_encode(name))


def _uid_of(ref: TargetRef) -> tuple[int, int] | None:
    uidvalidity, _, uid = ref.ref.partition(":")
    if uidvalidity.isdigit() and uid.isdigit():
        return int(uidvalidity), int(uid)
    return None


class ImapSession:
    """One owner's IMAP connection (`TargetSession`). Reconnects after a dropped connection.

    `put_many` appends a batch in one round trip (MULTIAPPEND + LITERAL+) when the server
    offers both; it returns, in order, a ref or the `ItemError` of each payload.
    """

    def __init__(
        self, dial: Callable[[], imaplib.IMAP4], login: Login, settings: ImapSettings
    ) -> None:
        self._dial = dial
        self._login = login
        self._settings = settings
        self._conn: imaplib.IMAP4 | None = None
        self._layout: _Layout | None = None
        self._selected: tuple[str, int] | None = None  # (mailbox, uidvalidity)
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
        typ, data = self._call("CREATE", lambda c: c.create(_mailbox_arg(mailbox)), mailbox)
        refusal = self._refused(typ, data, "CREATE", mailbox)
        if refusal is not None and refusal[0] is not Failure.EXISTS:
            if quiet and refusal[0] in (Failure.REFUSED, Failure.BROKEN):
                return refusal
            self._raise(refusal, "CREATE", mailbox)
        typ, data = self._call("SUBSCRIBE", lambda c: c.subscribe(_mailbox_arg(mailbox)), mailbox)
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
            typ, data = conn.select(_mailbox_arg(mailbox))
            return typ, data, conn.untagged_responses.get("UIDVALIDITY", [])

        typ, data, uidvalidity = self._call("SELECT", select, mailbox)
        refusal = self._refused(typ, data, "SELECT", mailbox)
        if refusal is not None:
            if refusal[0] is Failure.MISSING:
                return None
            self._raise(refusal, "SELECT", mailbox)
        self._selected = (mailbox, int(uidvalidity[-1]))
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
        parsed = _uid_of(ref)
        if parsed is None or self._select(ref.folder) != parsed[0]:
            return None
        found = wire.parse_search(self._uid("SEARCH", ref.folder, "UID", str(parsed[1])))
        return parsed[1] if parsed[1] in found else None

    # -- writing ------------------------------------------------------------------------------

    def put(self, folder: str, payload: Payload) -> TargetRef:
        """APPEND with flags and INTERNALDATE; the ref comes from APPENDUID (RFC 4315)."""
        result = self.put_many(folder, [payload])[0]
        if isinstance(result, ItemError):
            raise result
        return result

    def put_many(self, folder: str, payloads: Sequence[Payload]) -> list[TargetRef | ItemError]:
        """APPEND several messages, in batches of one MULTIAPPEND (RFC 3502) when offered.

        A refused batch is retried one message at a time so that one oversized message
        costs only itself. Fatal and retriable errors are raised, not returned.
        """
        results: list[TargetRef | ItemError | None] = [None] * len(payloads)
        pending: list[tuple[int, _Outgoing]] = []
        for index, payload in enumerate(payloads):
            try:
                pending.append((index, self._outgoing(payload)))
            except ItemError as skip:
                results[index] = skip
        for batch in self._batches(pending):
            for (index, _), result in zip(batch, self._append_batch(folder, batch), strict=True):
                results[index] = result
        return [result for result in results if result is not None]

    def _outgoing(self, payload: Payload) -> _Outgoing:
        content = wire.stored_form(payload.content)
        if not content:
            raise SkipItem("empty message: IMAP servers refuse zero-byte messages")
        self._client()
        limit = self._limit()
        if limit is not None and len(content) > limit:
            raise SkipItem(f"message of {len(content)} bytes exceeds the limit of {limit} bytes")
        moment = payload.attrs.get("internal_date")
        return _Outgoing(
            payload=payload,
            flags=wire.format_flags(payload.attrs.get("flags", ())),
            date=wire.format_internal_date(moment) if isinstance(moment, datetime) else None,
            content=content,
        )

    def _batches(self, pending: list[tuple[int, _Outgoing]]) -> list[list[tuple[int, _Outgoing]]]:
        if not {"MULTIAPPEND", "LITERAL+"} <= self.server_caps:
            return [[entry] for entry in pending]
        batches: list[list[tuple[int, _Outgoing]]] = []
        size = 0
        for entry in pending:
            full = batches and len(batches[-1]) >= self._settings.batch_messages
            if not batches or full or size + len(entry[1].content) > self._settings.batch_bytes:
                batches.append([])
                size = 0
            batches[-1].append(entry)
            size += len(entry[1].content)
        return batches

    def _append_batch(
        self, folder: str, batch: list[tuple[int, _Outgoing]]
    ) -> list[TargetRef | ItemError]:
        messages = [outgoing for _, outgoing in batch]
        if len(messages) > 1:
            try:
                return list(self._append(folder, messages))
            except ItemError:
                pass  # MULTIAPPEND is all or nothing: find the culprit one by one
        results: list[TargetRef | ItemError] = []
        for message in messages:
            try:
                results.extend(self._append(folder, [message]))
            except ItemError as refused:
                results.append(refused)
        return results

    def _append(
        self, folder: str, messages: list[_Outgoing], retry: bool = True
    ) -> list[TargetRef]:
        size = sum(len(message.content) for message in messages)

        def send(conn: imaplib.IMAP4) -> tuple[str, list[Any]]:
            if "LITERAL+" in self.server_caps:
                entries = [(m.flags, m.date, m.content) for m in messages]
                command = wire.append_command(imap_utf7_encode(folder), entries)
                return wire.send_raw(conn, "APPEND", command)
            (message,) = messages
            return conn.append(_mailbox_arg(folder), message.flags, message.date, message.content)

        typ, data = self._call("APPEND", send, folder, size)
        refusal = self._refused(typ, data, "APPEND", folder, size)
        if refusal is not None:
            if refusal[0] is Failure.MISSING and retry:
                self._create_path(folder)
                return self._append(folder, messages, retry=False)
            if refusal[0] is Failure.KEYWORDS and len(messages) == 1:
                plain = _without_keywords(messages[0], folder)
                if plain is not None:
                    return self._append(folder, [plain], retry)
            self._raise(refusal, "APPEND", folder, size)
        appended = wire.parse_appenduid(wire.text_of(data))
        if appended is not None and len(appended[1]) == len(messages):
            return [
                TargetRef(folder, f"{appended[0]}:{uid}", stored_size=len(message.content))
                for uid, message in zip(appended[1], messages, strict=True)
            ]
        return [self._locate(folder, message.payload) for message in messages]

    def _locate(self, folder: str, payload: Payload) -> TargetRef:
        """The newest message matching `payload` (a server without UIDPLUS)."""
        uidvalidity = self._select(folder)
        uids = self._matching_uids(folder, payload)
        if uidvalidity is None or not uids:
            raise FatalError(f"APPEND to {folder!r} succeeded but the message cannot be found")
        stored = len(wire.stored_form(payload.content))
        return TargetRef(folder, f"{uidvalidity}:{uids[-1]}", stored_size=stored)

    def update(self, ref: TargetRef, payload: Payload) -> TargetRef:
        """Set the message's flags to the payload's (`UID STORE FLAGS`).

        A ref that is no longer valid (message gone, UIDVALIDITY changed) is looked up
        again by fingerprint, and the message written anew if it cannot be found.
        """
        uid = self._resolve(ref)
        if uid is None:
            found = self.find(ref.folder, payload, frozenset())
            if found is None:
                return self.put(ref.folder, payload)
            ref, uid = found, int(found.ref.partition(":")[2])
        flags = payload.attrs.get("flags", ())
        refusal = self._store_flags(ref.folder, uid, wire.format_flags(flags))
        if refusal is not None and refusal[0] is Failure.KEYWORDS:
            # sorted on the server's own text, not on our message (which names the mailbox)
            log.warning("%s: too many keywords in the mailbox, system flags only", ref.folder)
            refusal = self._store_flags(ref.folder, uid, wire.format_flags(flags, keywords=False))
        if refusal is not None:
            self._raise(refusal, "UID STORE", ref.folder)
        return ref

    def _store_flags(self, folder: str, uid: int, flags: str) -> tuple[Failure, str] | None:
        """`UID STORE … FLAGS.SILENT` in the selected folder; the refusal, if any."""
        typ, data = self._call(
            "STORE", lambda c: c.uid("STORE", str(uid), "FLAGS.SILENT", flags), folder
        )
        return self._refused(typ, data, "UID STORE", folder)

    def move(self, ref: TargetRef, folder: str) -> TargetRef:
        """`UID MOVE` (RFC 6851) when offered, else COPY, \\Deleted and EXPUNGE."""
        if folder == ref.folder:
            return ref
        uid = self._resolve(ref)
        if uid is None:
            raise SkipItem(f"message {ref.ref} is no longer in {ref.folder!r}: nothing to move")
        # without UIDPLUS there is no COPYUID: remember what to look for in `folder`
        before = None if "UIDPLUS" in self.server_caps else self._fingerprints(ref.folder, [uid])
        if "MOVE" in self.server_caps:
            text = self._transfer("MOVE", ref.folder, uid, folder)
        else:
            text = self._transfer("COPY", ref.folder, uid, folder)
            self._expunge(ref.folder, uid)
        copied = wire.parse_copyuid(text) if "COPYUID" in text.upper() else None
        if copied is not None:
            return TargetRef(folder, f"{copied[0]}:{copied[2][-1]}")
        if not before:
            raise FatalError(f"moving {ref.ref} to {folder!r} gave no COPYUID")
        return self._locate_entry(folder, before[0].fingerprint, before[0].size)

    def _transfer(self, command: str, source: str, uid: int, folder: str) -> str:
        """UID COPY or MOVE; the COPYUID text (tagged for COPY, untagged for MOVE)."""

        def send(conn: imaplib.IMAP4) -> tuple[str, list[Any], list[Any]]:
            typ, data = conn.uid(command, str(uid), _mailbox_arg(folder))
            return typ, data, conn.untagged_responses.get("COPYUID", [])

        typ, data, copyuid = self._call(command, send, source)
        refusal = self._refused(typ, data, f"UID {command}", folder)
        if refusal is not None and refusal[0] is Failure.MISSING:
            self._create_path(folder)
            self._select(source)
            typ, data, copyuid = self._call(command, send, source)
            refusal = self._refused(typ, data, f"UID {command}", folder)
        if refusal is not None:
            self._raise(refusal, f"UID {command}", folder)
        return "COPYUID " + wire.text_of(copyuid) if copyuid else wire.text_of(data)

    def _locate_entry(self, folder: str, fingerprint: str, size: int) -> TargetRef:
        uidvalidity = self._select(folder)
        for entry in reversed(self.listing(folder)):
            if entry.fingerprint == fingerprint and entry.size == size:
                return entry.ref
        raise FatalError(f"message moved to {folder!r} (uidvalidity {uidvalidity}) not found")

    def remove(self, ref: TargetRef) -> None:
        """\\Deleted then `UID EXPUNGE` of that one UID; nothing to do if it is gone."""
        uid = self._resolve(ref)
        if uid is not None:
            self._expunge(ref.folder, uid)

    def _expunge(self, folder: str, uid: int) -> None:
        self._uid("STORE", folder, str(uid), "+FLAGS.SILENT", "(\\Deleted)")
        if "UIDPLUS" in self.server_caps:
            self._uid("EXPUNGE", folder, str(uid))
        else:  # without UIDPLUS, EXPUNGE also removes other messages marked \Deleted
            typ, data = self._call("EXPUNGE", lambda c: c.expunge(), folder)
            refusal = self._refused(typ, data, "EXPUNGE", folder)
            if refusal is not None:
                self._raise(refusal, "EXPUNGE", folder)

    # -- reading ------------------------------------------------------------------------------

    def find(self, folder: str, payload: Payload, exclude: Set[str]) -> TargetRef | None:
        """The first message matching the payload's fingerprint whose ref is not excluded."""
        uidvalidity = self._select(folder)
        if uidvalidity is None:
            return None
        for uid in self._matching_uids(folder, payload):
            ref = f"{uidvalidity}:{uid}"
            if ref not in exclude:
                return TargetRef(folder, ref, stored_size=len(wire.stored_form(payload.content)))
        return None

    def _matching_uids(self, folder: str, payload: Payload) -> list[int]:
        """UIDs of the selected `folder` holding exactly the payload's bytes, ascending.

        Candidates come from the Message-ID (searched by a piece of the header as it
        is written, which may hold spaces the fingerprint drops) or from the size; only
        a message of the same size whose bytes have the same SHA-256 is taken, so
        another message with the same Message-ID is never mistaken for this one.
        """
        kind, _, value = payload.fingerprint.partition(":")
        stored = wire.stored_form(payload.content)
        digests = {hashlib.sha256(stored).hexdigest(), hashlib.sha256(payload.content).hexdigest()}
        if kind == "mid":
            term = _search_term(payload.content) or value
            uids = self._search_message_id(folder, term)
            heads = self._fetch(
                folder, uids, "(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
            )
            candidates = [
                m.uid
                for m in heads
                if _message_id(m.literal) == value and m.size in (len(stored), None)
            ]
        else:
            sizes = {len(stored), len(payload.content)}
            candidates = sorted({u for size in sizes for u in self._uid_search_size(folder, size)})
        return [
            m.uid
            for uid in sorted(candidates)
            for m in self._fetch(folder, [uid], "(UID BODY.PEEK[])")
            if hashlib.sha256(m.literal or b"").hexdigest() in digests
        ]

    def _search_message_id(self, folder: str, message_id: str) -> list[int]:
        if message_id.isascii() and message_id.isprintable():
            return wire.parse_search(
                self._uid("SEARCH", folder, "HEADER", "Message-ID", wire.quote(message_id))
            )

        def search(conn: imaplib.IMAP4) -> tuple[str, list[Any]]:
            conn.literal = message_id.encode("utf-8")  # type: ignore[assignment]
            return conn.uid("SEARCH", "CHARSET", "UTF-8", "HEADER", "Message-ID")

        typ, data = self._call("SEARCH", search, folder)
        return wire.parse_search(data) if typ == "OK" else []

    def _uid_search_size(self, folder: str, size: int) -> list[int]:
        return wire.parse_search(
            self._uid("SEARCH", folder, "LARGER", str(size - 1), "SMALLER", str(size + 1))
        )

    def _fetch(self, folder: str, uids: Sequence[int], items: str) -> list[wire.FetchedMessage]:
        if not uids:
            return []
        uid_set = ",".join(str(uid) for uid in uids)
        return wire.parse_fetch(self._uid("FETCH", folder, uid_set, items))

    def _fingerprints(self, folder: str, uids: Sequence[int]) -> list[Entry]:
        """Entries (fingerprint, size) of messages of the selected folder."""
        uidvalidity = self._select(folder)
        items = HEAD_ITEMS
        entries: list[Entry] = []
        for message in self._fetch(folder, uids, items):
            message_id = _message_id(message.literal)
            if message_id is None:
                (body,) = self._fetch(folder, [message.uid], "(UID BODY.PEEK[])")
                fingerprint = f"sha256:{hashlib.sha256(body.literal or b'').hexdigest()}"
            else:
                fingerprint = f"mid:{message_id}"
            ref = TargetRef(folder, f"{uidvalidity}:{message.uid}")
            entries.append(Entry(ref=ref, fingerprint=fingerprint, size=message.size or 0))
        return entries

    def listing(self, folder: str) -> list[Entry]:
        """Every message with the mapper's fingerprint convention and its RFC822.SIZE."""
        if self._select(folder) is None:
            return []
        uids = wire.parse_search(self._uid("SEARCH", folder, "ALL"))
        return self._fingerprints(folder, uids) if uids else []


def _in_namespace(segments: tuple[str, ...], prefix: tuple[str, ...]) -> tuple[str, ...]:
    """`segments` under the personal namespace's prefix, unless they are already there."""
    if not prefix or _inbox_upper(segments[: len(prefix)]) == prefix:
        return segments
    return prefix + segments


def _inbox_upper(levels: tuple[str, ...]) -> tuple[str, ...]:
    """INBOX is one name whatever its case (RFC 3501 section 5.1)."""
    return tuple("INBOX" if level.upper() == "INBOX" else level for level in levels)


def _without_keywords(message: _Outgoing, folder: str) -> _Outgoing | None:
    """The message with its system flags only, for a mailbox that takes no more keywords:
    the message is kept, its categories are not (and the log says so). None if it had
    no keyword to leave out."""
    flags = message.payload.attrs.get("flags", ())
    system = wire.format_flags(flags, keywords=False)
    if system == message.flags:
        return None
    log.warning(
        "%s: the server takes no more keywords in this mailbox; message %s stored without %s",
        folder,
        message.payload.source_id,
        " ".join(flag for flag in flags if not flag.startswith("\\")),
    )
    return _Outgoing(message.payload, system, message.date, message.content)


def _message_id(header: bytes | None) -> str | None:
    return bare_message_id(header_value(header or b"", "Message-ID"))


def _search_term(mime: bytes) -> str | None:
    """A piece of the Message-ID exactly as the header writes it, for SEARCH HEADER (a
    substring match): its longest run without white space, angle brackets left out."""
    raw = header_value(mime, "Message-ID")
    if not raw:
        return None
    pieces = raw.replace("<", " ").replace(">", " ").split()
    return max(pieces, key=len) if pieces else None
