"""One owner's IMAP session: APPEND (MULTIAPPEND with LITERAL+ where offered), find by
Message-ID or by size and digest, flag updates, MOVE, removal and listing."""

from __future__ import annotations

import hashlib
import imaplib
import logging
from collections.abc import Sequence, Set
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..mappings.mail import bare_message_id, header_value
from ..mappings.mail_folders import imap_utf7_encode
from ..migrator.errors import FatalError, ItemError, SkipItem
from ..migrator.model import Entry, Payload, TargetRef
from . import imap_wire as wire
from .imap_mailboxes import ImapMailboxes, mailbox_arg
from .imap_wire import Failure

log = logging.getLogger(__name__)
HEAD_ITEMS = "(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"


@dataclass
class _Outgoing:
    """One message ready for APPEND: flags, quoted date and CRLF content."""

    payload: Payload
    flags: str
    date: str | None
    content: bytes


class ImapSession(ImapMailboxes):
    """One owner's IMAP connection (`TargetSession`). Reconnects after a dropped connection.

    `put_many` appends a batch in one round trip (MULTIAPPEND + LITERAL+) when the server
    offers both; it returns, in order, a ref or the `ItemError` of each payload.
    """

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
            return conn.append(mailbox_arg(folder), message.flags, message.date, message.content)

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
            typ, data = conn.uid(command, str(uid), mailbox_arg(folder))
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
            conn.literal = message_id.encode("utf-8")  # type: ignore[assignment]  # typeshed says str; imaplib sends bytes as they are
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
        selecting = self._selected is None or self._selected[0] != folder
        if self._select(folder) is None:
            return []
        if selecting and self._exists == 0:  # the SELECT just said it is empty: no SEARCH
            return []
        uids = wire.parse_search(self._uid("SEARCH", folder, "ALL"))
        return self._fingerprints(folder, uids) if uids else []


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
