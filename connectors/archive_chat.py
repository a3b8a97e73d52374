"""The chat archive target: the Matrix events of each channel as JSON lines, plus a transcript.

Layout, per team (the owner's display name)::

    <root>/data/<team>/<channel>/events.jsonl     one Matrix event per line, in the order written
    <root>/data/<team>/<channel>/media/<digest>.<ext>   inline images, named by their SHA-256
    <root>/data/<team>/<channel>/transcript.html  readable: threads, reactions, images; on close()

Each line is {"event_id", "type", "sender", "sender_name", "origin_server_ts", "teams_id",
"part", "content"} (plus "redacts" for a redaction). Event ids are derived from the Teams id
(and the reaction's sender and emoji, the edit's content...), so a rerun after a crash writes
only the lines still missing: no duplicate, no gap. Lines are appended and synced before
`put` returns; a line torn by a crash is cut off when the channel is next opened.

Placeholders of the mapper's payload are resolved as a homeserver would: "$ROOT" and "$SELF"
become event ids, "mxc://hirondelle/<id>" becomes "mxc://archive/<digest>" for the media file.
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

from ..mappings.chat import PART_KEY, PLACEHOLDER_PREFIX, TEAMS_ID_KEY
from ..mappings.chat_html import escape, sanitize
from ..mappings.chat_members import ChatInfo
from ..migrator.errors import FatalError, SkipItem
from ..migrator.model import Capabilities, Container, Entry, Owner, Payload, TargetRef
from .archive_dav import collection_dir_name
from .archive_root import ArchiveRoot
from .archive_write import sync_dir, write_atomically

EVENTS_FILE = "events.jsonl"
TRANSCRIPT_FILE = "transcript.html"
MEDIA_DIR = "media"
ARCHIVE_MXC = "mxc://archive/"


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


def is_main(line: Mapping[str, Any]) -> bool:
    """The first event of a message (not a split continuation, reaction, edit or redaction)."""
    content = line.get("content") or {}
    relation = content.get("m.relates_to") or {}
    return (
        line.get("type") == "m.room.message"
        and int(line.get("part") or 1) == 1
        and relation.get("rel_type") != "m.replace"
    )


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
    """Writes channels under `root` (see the module doc); `durable` syncs every write."""

    capabilities = Capabilities(
        server_assigned_ids=False,
        keeps_timestamps=True,
        max_item_bytes=None,
        checksums=False,
        moves=False,
    )

    def __init__(
        self, root: Path, durable: bool = True, *, chats: Mapping[str, ChatInfo] | None = None
    ) -> None:
        super().__init__(root, durable)
        self.chats = chats if chats is not None else {}  # the chats workload's chats

    def open(self, owner: Owner) -> ChatArchiveSession:
        name = owner.display_name or owner.upn.removeprefix("team:")
        if not name.strip():
            raise FatalError(f"team {owner.source_id!r} has no name for its archive directory")
        directory = self.directory(collection_dir_name(name, "Team"))
        return ChatArchiveSession(directory, self.durable)


class ChatArchiveSession:
    """One team's channels (`TargetSession`), used by one thread at a time."""

    def __init__(self, base: Path, durable: bool = True) -> None:
        self.base = base
        self.durable = durable
        self._logs: dict[str, ChannelLog] = {}
        self._titles: dict[str, str] = {}
        self._changed: set[str] = set()

    def ensure_container(self, container: Container) -> str:
        """Create the channel's directory; return its name (the `TargetRef.folder`)."""
        name = container.path[-1] if container.path else container.source_id
        folder = collection_dir_name(name, "Channel")
        self._dir(folder).mkdir(parents=True, exist_ok=True)
        self._titles[folder] = " / ".join(container.path) or folder
        return folder

    def _dir(self, folder: str) -> Path:
        if not folder or "/" in folder or folder in (".", ".."):
            raise SkipItem(f"{folder!r} is not a channel of this archive")
        return self.base / folder

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
        root = attrs.get("root")
        targets = {
            "$SELF": main_event_id(payload.source_id),
            "$ROOT": main_event_id(str(root)) if root else "",
        }
        media = self._store_media(folder, attrs.get("media") or ())
        lines, parts = [], 0
        for index, event in enumerate(events):
            content = _resolve(event.get("content") or {}, targets, media)
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
        """Rebuild the transcript of every channel written in this session or stale."""
        if not self.base.is_dir():
            return
        for directory in sorted(p for p in self.base.iterdir() if p.is_dir()):
            events = directory / EVENTS_FILE
            transcript = directory / TRANSCRIPT_FILE
            stale = events.exists() and (
                not transcript.exists()
                or transcript.stat().st_mtime_ns <= events.stat().st_mtime_ns
            )
            if directory.name in self._changed or stale:
                self.write_transcript(directory.name)

    def write_transcript(self, folder: str) -> Path:
        title = self._titles.get(folder) or f"{self.base.name} / {folder}"
        lines = read_lines(self._dir(folder) / EVENTS_FILE)
        path = self._dir(folder) / TRANSCRIPT_FILE
        media = {p.name: p for p in (self._dir(folder) / MEDIA_DIR).glob("*")}
        write_atomically(
            path, [render_transcript(title, lines, media).encode()], self.durable, sync_parent=True
        )
        return path


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


# -- the readable transcript ----------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 50rem; margin: 2rem auto; color: #222; }
article { border-top: 1px solid #ddd; padding: .6rem 0; }
.thread { margin-left: 2rem; border-left: 3px solid #cde; padding-left: 1rem; }
.thread article { border-top: none; }
header { font-size: .9rem; color: #555; }
.notice .body { color: #666; font-style: italic; }
.reactions span { background: #f1f3f5; border-radius: 1rem; padding: 0 .5rem; margin-right: .3rem; }
img { max-width: 100%; }
pre { background: #f6f8fa; padding: .5rem; overflow-x: auto; }
"""


@dataclass
class _Message:
    line: dict[str, Any]
    content: dict[str, Any]
    parts: list[dict[str, Any]] = field(default_factory=list)
    reactions: dict[str, int] = field(default_factory=dict)
    replies: list[_Message] = field(default_factory=list)


def render_transcript(title: str, lines: list[dict[str, Any]], media: Mapping[str, Path]) -> str:
    """The channel as a standalone HTML page: posts oldest first, replies indented."""
    redacted = {str(line.get("redacts")) for line in lines if line["type"] == "m.room.redaction"}
    messages: dict[str, _Message] = {}
    by_teams_id: dict[str, _Message] = {}
    for line in lines:
        if is_main(line) and line["event_id"] not in redacted:
            message = _Message(line, line["content"])
            messages[line["event_id"]] = by_teams_id[str(line.get("teams_id"))] = message
    for line in lines:
        relation = line["content"].get("m.relates_to") or {}
        target = messages.get(str(relation.get("event_id")))
        if line["type"] == "m.reaction" and target is not None:
            key = str(relation.get("key"))
            target.reactions[key] = target.reactions.get(key, 0) + 1
        elif relation.get("rel_type") == "m.replace" and target is not None:
            target.content = line["content"].get("m.new_content") or target.content
        elif line["type"] == "m.room.message" and int(line.get("part") or 1) > 1:
            owner = by_teams_id.get(str(line.get("teams_id")))
            if owner is not None:
                owner.parts.append(line["content"])
    roots: list[_Message] = []
    orphans: dict[str, _Message] = {}
    for message in sorted(messages.values(), key=lambda m: m.line["origin_server_ts"]):
        relation = message.line["content"].get("m.relates_to") or {}
        if relation.get("rel_type") != "m.thread":
            roots.append(message)
            continue
        root_id = str(relation.get("event_id"))
        if root_id not in messages and root_id not in orphans:
            orphans[root_id] = _Message({"origin_server_ts": message.line["origin_server_ts"]}, {})
            roots.append(orphans[root_id])
        (messages.get(root_id) or orphans[root_id]).replies.append(message)
    body = "".join(_render(message, media) for message in roots)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n"
        f"<body><h1>{escape(title)}</h1>\n{body}</body></html>\n"
    )


def _render(message: _Message, media: Mapping[str, Path]) -> str:
    replies = "".join(_render(reply, media) for reply in message.replies)
    thread = f'<section class="thread">{replies}</section>' if replies else ""
    if not message.content:
        missing = '<p class="notice"><em>Original post not archived</em></p>'
        return f"<article>{missing}{thread}</article>\n"
    line = message.line
    notice = " notice" if message.content.get("msgtype") == "m.notice" else ""
    when = datetime.fromtimestamp(line["origin_server_ts"] / 1000, UTC)
    reactions = "".join(
        f"<span>{escape(key)} {count}</span>" for key, count in message.reactions.items()
    )
    bodies = "".join(_body_html(content, media) for content in [message.content, *message.parts])
    return (
        f'<article class="message{notice}" id="{escape(line["event_id"])}"><header>'
        f"<strong>{escape(line.get('sender_name') or line.get('sender') or '')}</strong> "
        f'<time datetime="{when.isoformat()}">{when:%Y-%m-%d %H:%M} UTC</time></header>'
        f'<div class="body">{bodies}</div>'
        f"{f'<div class=reactions>{reactions}</div>' if reactions else ''}{thread}</article>\n"
    )


def _body_html(content: Mapping[str, Any], media: Mapping[str, Path]) -> str:
    """The event's HTML, sanitized again, with archived images pointing at media/."""
    if isinstance(content.get("formatted_body"), str):
        markup = sanitize(content["formatted_body"])
    else:
        markup = escape(str(content.get("body") or "")).replace("\n", "<br>")
    for name in media:
        markup = markup.replace(f'src="{ARCHIVE_MXC}{name}"', f'src="{MEDIA_DIR}/{escape(name)}"')
    return markup
