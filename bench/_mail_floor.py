"""The mail benchmark's floor: the least any Python client does to copy the sandbox into Dovecot.

    python -m hirondelle.bench._mail_floor LOGIN...    # settings in FLOOR_* variables

No state, no retries, no budget, no check: a token (client credentials), each
mailbox's visible folder tree (`mailFolders`, then `childFolders` where there are
some), each folder's messages (`/messages` with `$top=1000`, the flags and the date
in `$select`), every message's MIME through `$batch`es of 20 `$value` parts (Graph
carries a body that is not JSON as base64,
https://learn.microsoft.com/en-us/graph/json-batching#response-format), and one
MULTIAPPEND (RFC 3502) per batch with non-synchronizing literals (LITERAL+, RFC 7888),
pipelined on one IMAP connection per mailbox, logged in through Dovecot's master user
(one APPEND per message cost Dovecot half as much CPU again: a transaction each).

It is as concurrent as `hirondelle run` with the same settings: `FLOOR_WORKERS`
processes (mailboxes dealt among them), `FLOOR_MAILBOXES` mailboxes at once in each,
`FLOOR_FETCHES` batches in flight per mailbox (the migration's `fetch_concurrency`).
Only the standard library, aiohttp and the IMAP folder-name encoding are imported, so
what the process costs from its start is what the copy costs. Each worker prints one
JSON line: messages appended, and parts or APPENDs that failed.
"""

from __future__ import annotations

import asyncio
import binascii
import json
import os
import ssl
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from hirondelle.bench._floor_graph import (
    GRAPH_SETTINGS,
    bearer,
    check_settings,
    get_json,
    token_url,
)
from hirondelle.mappings.mail_folders import imap_utf7_encode

SETTINGS = (
    *GRAPH_SETTINGS,
    "FLOOR_IMAP_HOST",
    "FLOOR_IMAP_PORT",
    "FLOOR_MASTER_USER",
    "FLOOR_MASTER_PASSWORD",
    "FLOOR_WORKERS",
    "FLOOR_MAILBOXES",
    "FLOOR_FETCHES",
)
BATCH_PARTS = 20  # https://learn.microsoft.com/en-us/graph/json-batching
MESSAGE_SELECT = "id,receivedDateTime,isRead,isDraft,flag"
# Hidden folders are left out unless `includeHiddenFolders=true` is asked for, and so are
# their children (https://learn.microsoft.com/en-us/graph/api/user-list-mailfolders).
FOLDER_QUERY = "?$select=id,displayName,childFolderCount&$top=250"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_UNSAFE = str.maketrans({"/": "-", ".": "-", "*": "-", "%": "-", '"': "'", "\\": "-"})


def segment(name: str) -> str:
    """A folder's display name as one IMAP path segment (no separator, no Maildir dot)."""
    return name.translate(_UNSAFE).strip() or "-"


def internal_date(received: str | None) -> str:
    """Graph's `2024-05-01T10:20:30Z` as IMAP's quoted date-time (RFC 3501), UTC."""
    if not received or len(received) < 19:
        return ""
    year, month, day = received[0:4], int(received[5:7]), received[8:10]
    return f' "{day}-{MONTHS[month - 1]}-{year} {received[11:19]} +0000"'


def flags(message: Mapping[str, Any]) -> str:
    """The IMAP flags of a listed message: read, flagged, draft."""
    found = ["\\Seen"] if message.get("isRead") else []
    if (message.get("flag") or {}).get("flagStatus") == "flagged":
        found.append("\\Flagged")
    if message.get("isDraft"):
        found.append("\\Draft")
    return "(" + " ".join(found) + ")"


@dataclass(frozen=True)
class Settings:
    """Where the sandbox and the target are, and how many things at once."""

    graph_url: str
    token_url: str
    client_id: str
    client_secret: str
    ca_file: str
    imap_host: str
    imap_port: int
    master_user: str
    master_password: str
    workers: int
    mailboxes: int
    fetches: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        check_settings(env, SETTINGS)
        return cls(
            graph_url=env["FLOOR_GRAPH_URL"],
            token_url=token_url(env),
            client_id=env["FLOOR_CLIENT_ID"],
            client_secret=env["FLOOR_CLIENT_SECRET"],
            ca_file=env["FLOOR_CA_FILE"],
            imap_host=env["FLOOR_IMAP_HOST"],
            imap_port=int(env["FLOOR_IMAP_PORT"]),
            master_user=env["FLOOR_MASTER_USER"],
            master_password=env["FLOOR_MASTER_PASSWORD"],
            workers=int(env["FLOOR_WORKERS"]),
            mailboxes=int(env["FLOOR_MAILBOXES"]),
            fetches=int(env["FLOOR_FETCHES"]),
        )


@dataclass
class Tally:
    appended: int = 0
    failed: int = 0


class Imap:
    """One pipelined IMAP connection: commands go out at once, answers are counted."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.sent = 0
        self.answers: dict[bytes, bool] = {}
        self.messages: dict[bytes, int] = {}  # tag -> messages its command carries
        self.done = asyncio.Event()
        self.closing = False

    @classmethod
    async def login(cls, settings: Settings, login: str) -> Imap:
        reader, writer = await asyncio.open_connection(settings.imap_host, settings.imap_port)
        imap = cls(reader, writer)
        await reader.readline()  # the greeting
        user = json.dumps(f"{login}*{settings.master_user}")  # a quoted string: no \ or "
        password = json.dumps(settings.master_password)
        writer.write(f"L LOGIN {user} {password}\r\n".encode())
        while True:
            line = await reader.readline()
            if line.startswith(b"L "):
                if not line.startswith(b"L OK"):
                    raise SystemExit(f"floor: {login} cannot log in: {line!r}")
                return imap

    def send(self, command: bytes, messages: int = 0) -> None:
        """`command` under the next tag (no wait); it carries `messages` messages."""
        self.sent += 1
        tag = b"F%d" % self.sent
        self.messages[tag] = messages
        self.writer.write(tag + b" " + command + b"\r\n")

    def append(self, folder: str, messages: Sequence[tuple[str, bytes]]) -> None:
        """One MULTIAPPEND (RFC 3502) of (flags and date, MIME) with non-synchronizing
        literals, as the IMAP target sends its batches: one Dovecot transaction each."""
        parts = [f'APPEND "{folder}"'.encode()]
        for head, body in messages:
            parts.append(f" {head} {{{len(body)}+}}\r\n".encode())
            parts.append(body)
        self.send(b"".join(parts), len(messages))

    async def read_answers(self) -> None:
        """Record each tagged answer (OK or not) until the connection closes."""
        while True:
            line = await self.reader.readline()
            if not line:
                self.done.set()  # what is left unanswered counts as refused
                return
            if line.startswith(b"F"):
                tag, _, rest = line.partition(b" ")
                self.answers[tag] = rest.startswith(b"OK")
                if self.closing and len(self.answers) == self.sent:
                    self.done.set()

    async def finish(self) -> Tally:
        """Wait for every answer; the messages appended and refused."""
        await self.writer.drain()
        self.closing = True
        if len(self.answers) < self.sent:
            await self.done.wait()
        self.writer.write(b"Z LOGOUT\r\n")
        await self.writer.drain()
        self.writer.close()
        appended = sum(count for tag, count in self.messages.items() if self.answers.get(tag))
        return Tally(appended, sum(self.messages.values()) - appended)


class Floor:
    """One worker's copy: its share of the mailboxes, `mailboxes` at once."""

    def __init__(self, settings: Settings, http: aiohttp.ClientSession, authorization: str) -> None:
        self.settings = settings
        self.http = http
        self.headers = {"Authorization": authorization}

    async def get(self, url: str) -> dict[str, Any]:
        return await get_json(self.http, url, self.headers)

    async def pages(self, url: str) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        next_url: str | None = url
        while next_url:
            body = await self.get(next_url)
            entries.extend(body.get("value", []))
            next_url = body.get("@odata.nextLink")
        return entries

    async def folders(self, upn: str) -> dict[str, str]:
        """Folder id -> IMAP name (modified UTF-7) of every visible folder."""
        base = f"{self.settings.graph_url}/users/{quote(upn, safe='@')}/mailFolders"
        inbox = (await self.get(f"{base}/inbox?$select=id"))["id"]
        names: dict[str, str] = {}
        level = [(entry, "") for entry in await self.pages(base + FOLDER_QUERY)]
        while level:
            below = []
            for entry, parent in level:
                if entry["id"] == inbox:
                    name = "INBOX"
                else:
                    name = f"{parent}/{segment(entry['displayName'])}".lstrip("/")
                names[entry["id"]] = name
                if entry.get("childFolderCount"):
                    below.append((entry["id"], name))
            children = await asyncio.gather(
                *(
                    self.pages(f"{base}/{quote(folder, safe='')}/childFolders{FOLDER_QUERY}")
                    for folder, _ in below
                )
            )
            level = [
                (entry, name)
                for (_, name), found in zip(below, children, strict=True)
                for entry in found
            ]
        return {folder: imap_utf7_encode(name) for folder, name in names.items()}

    async def messages(self, upn: str, folder: str) -> list[dict[str, Any]]:
        """Every message of the folder, 1,000 a page: the largest `$top` of list messages
        (https://learn.microsoft.com/en-us/graph/api/mailfolder-list-messages)."""
        url = (
            f"{self.settings.graph_url}/users/{quote(upn, safe='@')}/mailFolders/"
            f"{quote(folder, safe='')}/messages?$select={MESSAGE_SELECT}&$top=1000"
        )
        return await self.pages(url)

    async def mime(self, upn: str, ids: Sequence[str]) -> list[bytes | None]:
        """The MIME of up to 20 messages with one `$batch`; None for a part that failed."""
        messages = f"/users/{quote(upn, safe='@')}/messages/"
        parts = [
            {"id": str(n), "method": "GET", "url": f"{messages}{quote(key, safe='')}/$value"}
            for n, key in enumerate(ids)
        ]
        url = URL(f"{self.settings.graph_url}/$batch", encoded=True)
        async with self.http.post(url, json={"requests": parts}, headers=self.headers) as answer:
            answer.raise_for_status()
            envelope = json.loads(await answer.read())
        bodies: list[bytes | None] = [None] * len(ids)
        for part in envelope.get("responses", []):
            if part.get("status") == 200 and isinstance(part.get("body"), str):
                bodies[int(part["id"])] = binascii.a2b_base64(part["body"])
        return bodies

    async def mailbox(self, upn: str) -> Tally:
        """Copy one mailbox: folders, listings, then batches `fetches` at once."""
        imap = await Imap.login(self.settings, upn)
        reading = asyncio.create_task(imap.read_answers())
        names = await self.folders(upn)
        for name in sorted(set(names.values()), key=len):
            if name != "INBOX":
                imap.send(f'CREATE "{name}"'.encode())
        listings = await asyncio.gather(*(self.messages(upn, folder) for folder in names))
        batches = [
            (names[folder], listed[start : start + BATCH_PARTS])
            for folder, listed in zip(names, listings, strict=True)
            for start in range(0, len(listed), BATCH_PARTS)
        ]
        tally = Tally()
        gate = asyncio.Semaphore(self.settings.fetches)

        async def copy(folder: str, listed: Sequence[dict[str, Any]]) -> None:
            async with gate:
                bodies = await self.mime(upn, [message["id"] for message in listed])
            ready = [
                (flags(message) + internal_date(message.get("receivedDateTime")), body)
                for message, body in zip(listed, bodies, strict=True)
                if body is not None
            ]
            tally.failed += len(listed) - len(ready)
            if ready:
                imap.append(folder, ready)
                await imap.writer.drain()

        await asyncio.gather(*(copy(folder, listed) for folder, listed in batches))
        appended = await imap.finish()
        reading.cancel()
        return Tally(appended.appended, tally.failed + appended.failed)

    async def run(self, logins: Sequence[str]) -> Tally:
        gate = asyncio.Semaphore(self.settings.mailboxes)

        async def one(upn: str) -> Tally:
            async with gate:
                return await self.mailbox(upn)

        tallies = await asyncio.gather(*(one(upn) for upn in logins))
        return Tally(sum(t.appended for t in tallies), sum(t.failed for t in tallies))


async def copy(settings: Settings, logins: Sequence[str]) -> Tally:
    """One worker's share: a token, then every mailbox of `logins`."""
    context = ssl.create_default_context(cafile=settings.ca_file)
    connector = aiohttp.TCPConnector(ssl=context, limit=settings.mailboxes * settings.fetches)
    async with aiohttp.ClientSession(connector=connector) as http:
        authorization = await bearer(
            http, settings.token_url, settings.client_id, settings.client_secret
        )
        return await Floor(settings, http, authorization).run(logins)


def main(argv: Sequence[str]) -> int:
    """Deal the mailboxes among the workers (forked), copy, print one JSON line each."""
    settings = Settings.from_env(os.environ)
    children = []
    for worker in range(1, settings.workers):
        pid = os.fork()
        if pid == 0:  # a worker: its share, then out without the parent's clean-up
            os._exit(_worker(settings, argv[worker :: settings.workers]))
        children.append(pid)
    status = _worker(settings, argv[0 :: settings.workers])
    for pid in children:
        _, code = os.waitpid(pid, 0)
        status = status or os.waitstatus_to_exitcode(code)
    return status


def _worker(settings: Settings, logins: Sequence[str]) -> int:
    tally = asyncio.run(copy(settings, logins)) if logins else Tally()
    print(json.dumps({"appended": tally.appended, "failed": tally.failed}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
