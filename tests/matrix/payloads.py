"""Hand-written chat payloads in the mapper's contract shape, for the Matrix target tests."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from hirondelle.migrator.model import Container, Owner, Payload

TEAMS_KEY = "fi.hirondelle.teams_id"
BASE_TS = 1_600_000_000_000  # 2020-09-13: far in the past, so `ts` visibly survives


def puppet(teams_user: str, prefix: str = "_m365_", server: str = "localhost") -> str:
    """The puppet id the mapper derives from a Teams user id."""
    return f"@{prefix}{hashlib.sha256(teams_user.encode()).hexdigest()[:16]}:{server}"


def team(name: str, team_id: str) -> Owner:
    return Owner(upn=f"team:{name}", source_id=team_id, display_name=name)


def channel(team_name: str, name: str, channel_id: str, role: str = "standard") -> Container:
    return Container("chat", f"team:{team_name}", channel_id, (team_name, name), role=role)


def chat_payload(
    source_id: str,
    body: str,
    *,
    sender: str | None = None,
    sender_name: str = "Alice Example",
    ts: int = BASE_TS,
    root: str | None = None,
    reactions: Sequence[str | tuple[str, str]] = (),
    media: Sequence[dict[str, Any]] = (),
    formatted: str | None = None,
    extra_events: Sequence[dict[str, Any]] = (),
) -> Payload:
    """A payload like `map_chat_message`'s: main event, extra parts, then reactions.

    A reaction is a key, or (key, sender) for one with its own author.
    """
    content: dict[str, Any] = {"msgtype": "m.text", "body": body, TEAMS_KEY: source_id}
    if formatted is not None:
        content["format"] = "org.matrix.custom.html"
        content["formatted_body"] = formatted
    if root is not None:
        content["m.relates_to"] = {
            "rel_type": "m.thread",
            "event_id": "$ROOT",
            "is_falling_back": True,
            "m.in_reply_to": {"event_id": "$ROOT"},
        }
    events: list[dict[str, Any]] = [{"type": "m.room.message", "content": content}]
    events.extend(extra_events)
    for reaction in reactions:
        key, author = (reaction, None) if isinstance(reaction, str) else reaction
        relates = {"rel_type": "m.annotation", "event_id": "$SELF", "key": key}
        event: dict[str, Any] = {
            "type": "m.reaction",
            "content": {"m.relates_to": relates, TEAMS_KEY: source_id},
        }
        if author is not None:
            event["sender"] = author
        events.append(event)
    attrs = {
        "sender": sender or puppet("user-alice"),
        "sender_name": sender_name,
        "ts": ts,
        "root": root,
        "txn_id": "hirondelle-" + hashlib.sha256(source_id.encode()).hexdigest()[:32],
        "media": list(media),
        "edited": False,
    }
    data = json.dumps({"events": events}).encode("utf-8")
    return Payload(source_id, data, f"teams:{source_id}", attrs)
