"""The items of each workload, shaped as its mapper hands them to a target."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from hirondelle.mappings.chat import ChatContext
from hirondelle.mappings.chat_members import ChatInfo
from hirondelle.mappings.mail import fingerprint_of
from hirondelle.migrator.model import Container, Owner, Payload
from hirondelle.tests.dav.payloads import contact, event
from hirondelle.tests.matrix.chats import chat_document, member
from hirondelle.tests.matrix.chats import chat_payload as chats_payload
from hirondelle.tests.matrix.payloads import BASE_TS, channel, chat_payload, team
from hirondelle.tests.webdav.payloads import file

from .subject import Items

_ids = itertools.count(1)
DATE = datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)


# -- mail --------------------------------------------------------------------------------------


def message(
    message_id: str | None = "auto",
    body: str = "Bonjour, ceci est un test.",
    flags: tuple[str, ...] = (),
    source_id: str | None = None,
) -> Payload:
    """A CRLF MIME message as the mail mapper hands it over."""
    number = next(_ids)
    if message_id == "auto":
        message_id = f"conformance-{number}@example.test"
    header = f"Message-ID: <{message_id}>\r\n" if message_id else ""
    content = (
        f"From: Émile <emile@example.test>\r\nSubject: test {number}\r\n{header}"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        f"{body}\r\n"
    ).encode()
    return Payload(
        source_id=source_id or f"source-{number}",
        content=content,
        fingerprint=fingerprint_of(content),
        attrs={"flags": flags, "internal_date": DATE},
    )


def container(*path: str, roles: tuple[str | None, ...] = ()) -> Container:
    return Container(
        workload="mail",
        owner="owner@example.test",
        source_id="/".join(path),
        path=path,
        role=roles[-1] if roles else None,
        path_roles=roles or (None,) * len(path),
    )


INBOX = container("Boîte de réception", roles=("inbox",))

UNICODE_PATHS = [
    (("Boîte de réception", "Projets été"), ("inbox", None)),
    (("Archives", "2024/2025"), (None, None)),
    (("Archives", "v1.2 final"), (None, None)),
    (("🚀 Fusée", "Ça & là"), (None, None)),
    (("Éléments envoyés",), ("sentitems",)),
    # Cyrus refuses these characters in names: it gets look-alikes, the others the name
    (("Factures | 2024", 'Clients "VIP"; <Europe> {a\\b}'), (None, None)),
]


class MailItems(Items):
    """MIME messages: with flags and a Message-ID, without a Message-ID, a long body."""

    workload = "mail"

    def container(self, name: str) -> Container:
        return container(name)

    def unicode_containers(self) -> list[Container]:
        return [container(*path, roles=roles) for path, roles in UNICODE_PATHS]

    def items(self, count: int) -> list[Payload]:
        kinds: list[Callable[[], Payload]] = [
            lambda: message(flags=("\\Seen", "Projet_X")),
            lambda: message(message_id=None),
            lambda: message(body="é" * 5000),
        ]
        return [kinds[n % len(kinds)]() for n in range(count)]

    def empty(self) -> Payload:
        return Payload(f"empty-{next(_ids)}", b"", fingerprint_of(b""), {})

    def oversized(self, limit: int) -> Payload:
        return message(body="x" * (limit + 1))


# -- calendar and contacts ---------------------------------------------------------------------

DAV_NAMES = ["Calendrier", "Été 2024", "Ete 2024", "2024/2025", "🚀 Fusée", "Ça & là", "日本語"]


class DavItems(Items):
    """Events (a VCALENDAR with a VTIMEZONE) or vCards, by workload."""

    empty_refusal = ("empty", "zero", "holds no item with UID")
    # CalDAV and CardDAV servers answer an empty resource with valid-calendar-data or
    # valid-address-data (RFC 4791 §5.3.2.1, RFC 6352 §6.3.2.1)
    empty_refused_by_server = True

    def __init__(self, owner: Owner, spool: Path, workload: str) -> None:
        super().__init__(owner, spool)
        self.workload = workload
        self.make: Callable[..., Payload] = event if workload == "calendar" else contact

    def container(self, name: str) -> Container:
        return Container(self.workload, self.owner.upn, f"id-{name}", (name,))

    def unicode_containers(self) -> list[Container]:
        return [self.container(name) for name in DAV_NAMES]

    def items(self, count: int) -> list[Payload]:
        return [self.make(f"source-{next(_ids)}") for _ in range(count)]

    def changed(self, source_id: str) -> Payload:
        """The item of `source_id` with another title (summary or name)."""
        if self.workload == "calendar":
            return self.make(source_id, summary="Déplacée")
        return self.make(source_id, name="Émile Z.")

    def empty(self) -> Payload:
        return dataclasses.replace(self.item(), content=b"")

    def oversized(self, limit: int) -> Payload:
        source_id = f"source-{next(_ids)}"
        if self.workload == "calendar":
            return self.make(source_id, description="x" * (limit + 1))
        return self.make(source_id, name="x" * (limit + 1))


# -- files -------------------------------------------------------------------------------------


class FilesItems(Items):
    """Files spooled to disk, each of its own size, in a drive."""

    workload = "files"
    content_fingerprints = True  # "sha256:<hex>" of the content

    def container(self, name: str = "OneDrive") -> Container:
        return Container("files", self.owner.upn, f"drive-{name}", (name,), "personal")

    def unicode_containers(self) -> list[Container]:
        return [self.container(name) for name in ("OneDrive", "Été 2024", "🚀 Fusée & co")]

    def items(self, count: int) -> list[Payload]:
        numbers = [next(_ids) for _ in range(count)]
        return [
            file(self.spool, f"fichier {n} é.bin", bytes([n % 256]) * (1000 * (i + 1)))
            for i, n in enumerate(numbers)
        ]

    def empty(self) -> Payload:
        return file(self.spool, f"zéro {next(_ids)}.bin", b"")

    def oversized(self, limit: int) -> Payload:
        return file(self.spool, f"gros {next(_ids)}.bin", b"x" * (limit + 1))


# -- chat --------------------------------------------------------------------------------------


def new_team() -> Owner:
    return team(f"Équipe {uuid.uuid4().hex[:6]}", f"team-{uuid.uuid4().hex}")


def new_chat_owner() -> Owner:
    """A member whose listing owns the chats (its UPN names no directory: chats share one)."""
    name = f"user{uuid.uuid4().hex[:8]}"
    return Owner(upn=f"{name}@example.test", source_id=f"id-{name}", display_name=name)


class ChatItems(Items):
    """Channel messages of a fresh team: a root, a reply in its thread, later messages,
    each with reactions (events a batch sends after the message's own)."""

    workload = "chat"

    def container(self, name: str = "Général ☀") -> Container:
        return channel(self.owner.display_name, name, f"{self.owner.source_id}-{name}")

    def unicode_containers(self) -> list[Container]:
        return [self.container()]

    def items(self, count: int) -> list[Payload]:
        root = f"c{next(_ids)}"
        made = [chat_payload(root, "héllo 👋", reactions=["👍", "🎉"])]
        if count > 1:
            reply = chat_payload(f"{root}/r", "reply", root=root, ts=BASE_TS + 1, reactions=["👀"])
            made.append(reply)
        for n in range(2, count):
            later = chat_payload(f"c{next(_ids)}", f"message {n}", ts=BASE_TS + n, reactions=["👍"])
            made.append(later)
        return made[:count]

    def empty(self) -> Payload:
        return chat_payload(f"c{next(_ids)}", "")

    def oversized(self, limit: int) -> Payload:
        return chat_payload(f"c{next(_ids)}", "x" * (limit + 1))


# -- rules -------------------------------------------------------------------------------------


def sieve_script(source_id: str, text: str) -> Payload:
    """A Sieve script as the rules mapper hands it over: UTF-8, its SHA-256 as fingerprint."""
    content = text.encode("utf-8")
    return Payload(source_id, content, hashlib.sha256(content).hexdigest(), {"findings": []})


class RulesItems(Items):
    """One user's rules as a Sieve script: the one container and the one item of an owner
    (`Capabilities.single_item`), varied in what they require."""

    workload = "rules"
    content_fingerprints = True  # the SHA-256 of the script

    def container(self, name: str = "Sieve") -> Container:
        return Container("rules", self.owner.upn, "rules", ("Sieve",))

    def unicode_containers(self) -> list[Container]:
        return [self.container()]

    def items(self, count: int) -> list[Payload]:
        kinds = [
            '# Règle « Factures » {n}\r\nrequire ["fileinto", "imap4flags"];\r\n'
            'if header :contains "subject" "Facture {n}" {{\r\n'
            '  addflag "\\\\Flagged";\r\n  fileinto "INBOX/Factures été";\r\n  stop;\r\n}}\r\n',
            '# {n}\r\nrequire ["vacation"];\r\n'
            'vacation :days 1 :subject "Absent {n}" "Je suis absent, retour lundi.";\r\n',
            '# {n}\r\nrequire ["copy", "envelope"];\r\n'
            'if envelope :is "from" "boss@example.test" {{ redirect :copy "me@example.org"; }}\r\n',
        ]
        return [
            sieve_script(f"rules-{n}", kinds[i % len(kinds)].format(n=n))
            for i, n in enumerate(next(_ids) for _ in range(count))
        ]

    def empty(self) -> Payload:
        return sieve_script(f"rules-{next(_ids)}", "")

    def oversized(self, limit: int) -> Payload:
        return sieve_script(f"rules-{next(_ids)}", "#" + "x" * limit + "\r\n")


class ChatsItems(ChatItems):
    """Messages of Teams chats, as the mapper makes them of chat documents: a message, one
    quoting it (a Matrix reply to it), later messages. A container is one group chat the
    source did not describe (the target's stand-in: no member invited beforehand)."""

    workload = "chats"
    context = ChatContext("localhost")

    def container(self, name: str = "Équipe projet ☀") -> Container:
        chat_id = f"19:{self.owner.source_id}-{name}@thread.v2"
        return Container("chats", self.owner.upn, chat_id, (name,), role="group")

    def items(self, count: int) -> list[Payload]:
        info = ChatInfo(f"19:{uuid.uuid4().hex}@thread.v2", "group", "Conformance", ())
        alice, bob = member("Alice"), member("Bob")
        first = str(next(_ids))
        documents = [chat_document(info, first, "héllo 👋", alice, 0)]
        for n in range(1, count):
            quote = (first, alice, "héllo 👋") if n == 1 else None
            documents.append(
                chat_document(info, str(next(_ids)), f"message {n}", bob, n, quote=quote)
            )
        return [chats_payload(document, self.context) for document in documents]
