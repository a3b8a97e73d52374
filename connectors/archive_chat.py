"""The chat archive target: the Matrix events of each channel or Teams chat as JSON lines,
plus a transcript.

Layout, per team (the owner's display name)::

    <root>/data/<team>/<channel>/events.jsonl     one Matrix event per line, in the order written
    <root>/data/<team>/<channel>/media/<digest>.<ext>   inline images, named by their SHA-256
    <root>/data/<team>/<channel>/transcript.html  readable: threads, reactions, images; on close()

and per Teams chat (workload "chats"; whichever member's run writes it), the same files in
`<root>/data/chats/<label>-<digest of the chat id>/`, plus `chat.json` (the chat's id, kind,
topic and members, from the chats source, written again at close with the members who left
that the messages read revealed) whose members head the transcript. The digest
keeps two chats of one label apart, and finds the directory again when the topic changed.

Each line is {"event_id", "type", "sender", "sender_name", "origin_server_ts", "teams_id",
"part", "content"} (plus "redacts" for a redaction). Event ids are derived from the Teams id
(and the reaction's sender and emoji, the edit's content...), so a rerun after a crash writes
only the lines still missing: no duplicate, no gap. Lines are appended and synced before
`put` returns; a line torn by a crash is cut off when the channel is next opened.

Placeholders of the mapper's payload are resolved as a homeserver would: "$ROOT" and "$SELF"
become event ids, "$REPLY" the quoted message's event when archived (else the quote opens
the message, `mappings.chat.without_reply`), "mxc://hirondelle/<id>" becomes
"mxc://archive/<digest>" for the media file.
`update` appends an `m.replace` edit, `remove` an `m.room.redaction`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import os
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..mappings.chat import PART_KEY, PLACEHOLDER_PREFIX, TEAMS_ID_KEY, without_reply
from ..mappings.chat_direct import chat_info
from ..mappings.chat_members import ChatInfo
from ..migrator.errors import FatalError, SkipItem
from ..migrator.model import Capabilities, Container, Entry, Owner, Payload, TargetRef
from .archive_dav import collection_dir_name
from .archive_root import ArchiveRoot
from .archive_transcript import ARCHIVE_MXC, MEDIA_DIR, is_main, render_transcript
from .archive_write import sync_dir, write_atomically

EVENTS_FILE = "events.jsonl"
TRANSCRIPT_FILE = "transcript.html"
CHATS_DIR = "chats"  # beside the teams' directories; a chat's folder is "chats/<name>"
CHAT_FILE = "chat.json"


def event_id(teams_id: str, discriminator: str) -> str:
    """A stable, Matrix-shaped event id for one event of one Teams message."""
    digest = hashlib.sha256(f"{teams_id}\n{discriminator}".encode()).digest()
    return "$" + base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def main_event_id(teams_id: str) -> str:
    return event_id(teams_id, "message:1")


@dataclass
class ChannelLog:
    """What `events.jsonl` of one channel holds, indexed for find and dedupe."""

    path: Path
    ids: set[str] = field(default_factory=set)
    main: dict[str, str] = field(default_factory=dict)  # Teams id -> main event id
    redacted: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, path: Path) -> ChannelLog:
        log = cls(path)
        for line in read_lines(path):
            log.index(line)
        return log

    def index(self, line: Mapping[str, Any]) -> None:
        self.ids.add(str(line.get("event_id")))
        if line.get("type") == "m.room.redaction":
            self.redacted.add(str(line.get("redacts")))
        elif is_main(line):
            self.main[str(line.get("teams_id"))] = str(line["event_id"])

    def append(self, lines: list[dict[str, Any]], durable: bool) -> None:
        """Append the lines not yet in the file, synced to disk before returning."""
        fresh = [line for line in lines if line["event_id"] not in self.ids]
        if not fresh:
            return
        created = not self.path.exists()
        data = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in fresh)
        with open(self.path, "ab") as stream:
            stream.write(data.encode("utf-8"))
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        if durable and created:
            sync_dir(self.path.parent)
        for line in fresh:
            self.index(line)


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every complete line of an events file; a torn last line (crash) is cut off."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        with open(path, "r+b") as stream:
            stream.truncate(keep)
        data = data[:keep]
    lines = []
    for raw in data.splitlines():
        try:
            line = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(line, dict) and isinstance(line.get("event_id"), str):
            lines.append(line)
    return lines


class ChatArchiveTarget(ArchiveRoot):
    """Writes channels and chats under `root` (see the module doc); `durable` syncs every
    write. `chats` (chat id -> `ChatInfo`, filled by the chats source as it lists chats)
    names each chat's members."""

    capabilities = Capabilities(
        server_assigned_ids=False,
        keeps_timestamps=True,
        max_item_bytes=None,
        checksums=False,
        moves=False,
    )

    def __init__(
        self,
        root: Path,
        durable: bool = True,
        *,
        chats: Mapping[str, ChatInfo] | None = None,
    ) -> None:
        super().__init__(root, durable)
        self.chats: Mapping[str, ChatInfo] = chats if chats is not None else {}  # a live view

    def open(self, owner: Owner) -> ChatArchiveSession:
        name = owner.display_name or owner.upn.removeprefix("team:")
        if not name.strip():
            raise FatalError(f"team {owner.source_id!r} has no name for its archive directory")
        directory = self.directory(collection_dir_name(name, "Team"))
        return ChatArchiveSession(directory, self.durable, self.directory(CHATS_DIR), self.chats)


class ChatArchiveSession:
    """One team's channels, or one member's chats (`TargetSession`), used by one thread at
    a time."""

    def __init__(
        self,
        base: Path,
        durable: bool = True,
        chats_base: Path | None = None,
        chats: Mapping[str, ChatInfo] | None = None,
    ) -> None:
        self.base = base
        self.durable = durable
        self.chats_base = chats_base or base.parent / CHATS_DIR
        self._chats: Mapping[str, ChatInfo] = chats or {}
        self._logs: dict[str, ChannelLog] = {}
        self._titles: dict[str, str] = {}
        self._changed: set[str] = set()
        self._chat_ids: dict[str, str] = {}  # chat folder -> chat id

    def ensure_container(self, container: Container) -> str:
        """Create the channel's (or chat's) directory; return its name (the
        `TargetRef.folder`)."""
        if container.workload == "chats":
            return self._ensure_chat(chat_info(self._chats, container))
        name = container.path[-1] if container.path else container.source_id
        folder = collection_dir_name(name, "Channel")
        self._dir(folder).mkdir(parents=True, exist_ok=True)
        self._titles[folder] = " / ".join(container.path) or folder
        return folder

    def _ensure_chat(self, info: ChatInfo) -> str:
        """The chat's directory (found again by its id's digest) and its `chat.json`."""
        digest = hashlib.sha256(info.chat_id.encode("utf-8")).hexdigest()[:12]
        existing = sorted(self.chats_base.glob(f"*-{digest}")) if self.chats_base.is_dir() else []
        label = collection_dir_name(info.label, "Chat").encode("utf-8")[:200]
        name = existing[0].name if existing else f"{label.decode('utf-8', 'ignore')}-{digest}"
        folder = f"{CHATS_DIR}/{name}"
        directory = self._dir(folder)
        directory.mkdir(parents=True, exist_ok=True)
        self._describe(directory, info)
        self._titles[folder] = info.label
        self._chat_ids[folder] = info.chat_id
        return folder

    def _describe(self, directory: Path, info: ChatInfo) -> bool:
        """Write `chat.json` from `info` if it says something new; whether it did. The
        members who left that it named before stay (a sync reads only new messages, so the
        source may not learn of them again)."""
        described = directory / CHAT_FILE
        if not info.members and described.exists():
            return False  # a memberless stand-in never overwrites
        before = json.loads(described.read_text("utf-8")) if described.exists() else {}
        document = chat_description(info)
        names = {m["name"] for m in document["members"]}
        document["members"] += [
            m for m in before.get("members") or () if m.get("left") and m.get("name") not in names
        ]
        if document == before:
            return False
        text = json.dumps(document, ensure_ascii=False, indent=1)
        write_atomically(described, [text.encode()], self.durable, sync_parent=True)
        return True

    def _dir(self, folder: str) -> Path:
        base, name = self.base, folder
        if folder.startswith(f"{CHATS_DIR}/"):
            base, name = self.chats_base, folder.removeprefix(f"{CHATS_DIR}/")
        if not name or "/" in name or name in (".", ".."):
            raise SkipItem(f"{folder!r} is not a channel or chat of this archive")
        return base / name

    def _log(self, folder: str) -> ChannelLog:
        if folder not in self._logs:
            self._dir(folder).mkdir(parents=True, exist_ok=True)
            self._logs[folder] = ChannelLog.load(self._dir(folder) / EVENTS_FILE)
        return self._logs[folder]

    # -- items --------------------------------------------------------------------------------

    def find(self, folder: str, payload: Payload, exclude: Set[str]) -> TargetRef | None:
        """The message's main event, if every event of the payload is already in the file."""
        log = self._log(folder)
        main = log.main.get(payload.source_id)
        if main is None or main in exclude or main in log.redacted:
            return None
        if any(line["event_id"] not in log.ids for line in self._lines(folder, payload)):
            return None  # an interrupted put: `put` writes the rest
        return TargetRef(folder, main)

    def put(self, folder: str, payload: Payload) -> TargetRef:
        """Append the payload's events; events already written are not written again."""
        lines = self._lines(folder, payload)
        self._log(folder).append(lines, self.durable)
        self._changed.add(folder)
        return TargetRef(folder, main_event_id(payload.source_id))

    def _lines(self, folder: str, payload: Payload) -> list[dict[str, Any]]:
        events = _events(payload)
        attrs = payload.attrs
        root, reply = attrs.get("root"), attrs.get("reply_to")
        targets = {
            "$SELF": main_event_id(payload.source_id),
            "$ROOT": main_event_id(str(root)) if root else "",
        }
        if reply and str(reply) in self._log(folder).main:
            targets["$REPLY"] = self._log(folder).main[str(reply)]
        media = self._store_media(folder, attrs.get("media") or ())
        lines, parts = [], 0
        for index, event in enumerate(events):
            content = dict(event.get("content") or {})
            if "$REPLY" not in targets:
                content = without_reply(content, attrs.get("reply_fallback"))
            content = _resolve(content, targets, media)
            kind = str(event.get("type") or "m.room.message")
            own = event.get("sender") or (attrs.get("sender") if kind != "m.reaction" else "")
            sender = str(own or "")
            part = 0
            if kind == "m.room.message":
                parts += 1
                part = int(content.get(PART_KEY) or parts)
            if kind == "m.reaction":
                key = str((content.get("m.relates_to") or {}).get("key"))
                discriminator = f"reaction:{sender}:{key}"
            else:
                discriminator = f"message:{part}" if part else f"event:{index}"
            lines.append(
                {
                    "event_id": event_id(payload.source_id, discriminator),
                    "type": kind,
                    "sender": sender,
                    "sender_name": str(event.get("sender_name") or attrs.get("sender_name") or ""),
                    "origin_server_ts": int(event.get("ts") or attrs.get("ts") or 0),
                    "teams_id": payload.source_id,
                    "part": part,
                    "content": content,
                }
            )
        return lines

    def _store_media(self, folder: str, media: Iterable[Mapping[str, Any]]) -> dict[str, str]:
        """Write each image under media/ by its digest; placeholder -> archive mxc URI."""
        resolved = {}
        for entry in media:
            data = entry.get("data")
            if not isinstance(data, bytes):
                continue
            digest = hashlib.sha256(data).hexdigest()[:32]
            content_type = str(entry.get("content_type") or "").split(";")[0].strip()
            extension = mimetypes.guess_extension(content_type) or ".bin"
            path = self._dir(folder) / MEDIA_DIR / f"{digest}{extension}"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                write_atomically(path, [data], self.durable, sync_parent=True)
            resolved[str(entry.get("placeholder"))] = f"{ARCHIVE_MXC}{digest}{extension}"
        return resolved

    def update(self, ref: TargetRef, payload: Payload) -> TargetRef:
        """Append an `m.replace` edit carrying the payload's text, and any new reactions."""
        lines = self._lines(ref.folder, payload)
        edits = []
        for line in lines:
            if line["type"] == "m.room.message" and line["part"] == 1:
                edits.append(_edit(line, ref.ref))
            elif line["type"] == "m.reaction":
                line["content"]["m.relates_to"]["event_id"] = ref.ref
                edits.append(line)
        self._log(ref.folder).append(edits, self.durable)
        self._changed.add(ref.folder)
        return ref

    def move(self, ref: TargetRef, folder: str) -> TargetRef:
        if folder == ref.folder:
            return ref
        raise SkipItem("a chat message cannot move to another channel")

    def remove(self, ref: TargetRef) -> None:
        """Append a redaction of the event; nothing to do if it is already redacted."""
        log = self._log(ref.folder)
        if ref.ref in log.redacted:
            return
        line = {
            "event_id": event_id(ref.ref, "redaction"),
            "type": "m.room.redaction",
            "redacts": ref.ref,
            "origin_server_ts": int(datetime.now(UTC).timestamp() * 1000),
            "content": {},
        }
        log.append([line], self.durable)
        self._changed.add(ref.folder)

    def listing(self, folder: str) -> list[Entry]:
        """Every message's main event (redacted ones left out)."""
        log = self._log(folder)
        return [
            Entry(TargetRef(folder, main), f"teams:{teams_id}", -1)
            for teams_id, main in log.main.items()
            if main not in log.redacted
        ]

    # -- transcripts --------------------------------------------------------------------------

    def close(self) -> None:
        """Rebuild the transcript of every channel of the team, and of every chat of this
        session, written in this session or stale. (Only this session's chats: other
        members' runs write the others.)"""
        channels = (
            sorted(p.name for p in self.base.iterdir() if p.is_dir()) if self.base.is_dir() else []
        )
        chats = sorted(f for f in self._titles if f.startswith(f"{CHATS_DIR}/"))
        for folder in chats:  # the source learns of members who left as it reads messages
            info = self._chats.get(self._chat_ids.get(folder, ""))
            if info is not None and self._describe(self._dir(folder), info):
                self._changed.add(folder)
        for folder in channels + chats:
            events = self._dir(folder) / EVENTS_FILE
            transcript = self._dir(folder) / TRANSCRIPT_FILE
            stale = events.exists() and (
                not transcript.exists()
                or transcript.stat().st_mtime_ns <= events.stat().st_mtime_ns
            )
            if folder in self._changed or stale:
                self.write_transcript(folder)

    def write_transcript(self, folder: str) -> Path:
        directory = self._dir(folder)
        title = self._titles.get(folder) or f"{self.base.name} / {folder}"
        members: list[str] = []
        if (directory / CHAT_FILE).exists():
            described = json.loads((directory / CHAT_FILE).read_text("utf-8"))
            title = str(described.get("label") or title)
            members = [
                str(m["name"]) + (" (left the chat)" if m.get("left") else "")
                for m in described.get("members") or ()
            ]
        lines = read_lines(directory / EVENTS_FILE)
        media = {p.name: p for p in (directory / MEDIA_DIR).glob("*")}
        page = render_transcript(title, lines, media, members)
        write_atomically(
            directory / TRANSCRIPT_FILE, [page.encode()], self.durable, sync_parent=True
        )
        return directory / TRANSCRIPT_FILE


def chat_description(info: ChatInfo) -> dict[str, Any]:
    """What `chat.json` holds: the chat as the source listed it (no message content)."""
    members = [
        {"name": m.name, "email": m.email, "roles": list(m.roles), "left": m.left}
        for m in info.members
    ]
    return {
        "chat_id": info.chat_id,
        "kind": info.kind,
        "topic": info.topic,
        "label": info.label,
        "created": info.created,
        "members": members,
    }


def _events(payload: Payload) -> list[dict[str, Any]]:
    content = payload.blob.read_bytes() if payload.blob else payload.content
    try:
        events = json.loads(content)["events"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise SkipItem(f"chat payload is not a list of events: {error}") from error
    if not isinstance(events, list) or not events or not all(isinstance(e, dict) for e in events):
        raise SkipItem("chat payload holds no events")
    return events


def _resolve(
    content: Mapping[str, Any], targets: Mapping[str, str], media: Mapping[str, str]
) -> dict[str, Any]:
    """A copy of `content` with relation placeholders and image placeholders resolved."""
    resolved: dict[str, Any] = json.loads(json.dumps(content))
    relation = resolved.get("m.relates_to")
    if isinstance(relation, dict):
        if relation.get("event_id") in targets:
            relation["event_id"] = targets[relation["event_id"]]
        reply = relation.get("m.in_reply_to")
        if isinstance(reply, dict) and reply.get("event_id") in targets:
            reply["event_id"] = targets[reply["event_id"]]
    for key in ("formatted_body", "body"):
        if isinstance(resolved.get(key), str) and PLACEHOLDER_PREFIX in resolved[key]:
            for placeholder, uri in media.items():
                resolved[key] = resolved[key].replace(placeholder, uri)
    return resolved


def _edit(line: Mapping[str, Any], target: str) -> dict[str, Any]:
    """An `m.replace` event making `target` show the content of `line`."""
    new = {k: v for k, v in line["content"].items() if k not in ("m.relates_to", TEAMS_ID_KEY)}
    digest = hashlib.sha256(json.dumps(new, sort_keys=True).encode()).hexdigest()
    content = {
        **{k: v for k, v in new.items() if k not in ("body", "formatted_body")},
        "body": "* " + str(new.get("body", "")),
        "m.new_content": new,
        "m.relates_to": {"rel_type": "m.replace", "event_id": target},
        TEAMS_ID_KEY: line["teams_id"],
    }
    if "formatted_body" in new:
        content["formatted_body"] = "* " + str(new["formatted_body"])
    return {**line, "event_id": event_id(line["teams_id"], f"edit:{digest}"), "content": content}
