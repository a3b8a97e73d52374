"""The chat benchmark's peer: a raw loop sending the same events through the application service.

The events hirondelle put in its room are replayed, in the same order, into a fresh room
with plain httpx: `PUT /_matrix/client/v3/rooms/{room}/send/{type}/{txn}?user_id=...&ts=...`,
one at a time (hirondelle writes one channel in order, one event after the other). Each
event keeps its type, content, sender and timestamp; the event ids its relations point
at (thread roots, replies, reacted messages) are mapped to the replayed ones, so the
homeserver does the same relation work on both sides. Creating the room and joining the
senders to it is set up first and timed apart: only the sending loop is the peer's rate.
Several rooms (the chats mode) are replayed one after the other, in the order given, each
into a fresh room of its own (`replay_rooms`).
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from hirondelle.bench._chat_hirondelle import Homeserver
from hirondelle.bench._servers import BenchError
from hirondelle.connectors.matrix_wire import CLIENT, path_part


@dataclass(frozen=True)
class RawRun:
    """What the raw loop did: its rooms, events sent, the loops' and the setups' seconds."""

    rooms: tuple[str, ...]
    events: int
    seconds: float
    setup_seconds: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def replay(homeserver: Homeserver, events: Sequence[Mapping[str, Any]]) -> RawRun:
    """Send `events` (oldest first, as read from a room) into a fresh room, one at a time."""
    started = time.perf_counter()
    with homeserver.client() as client:
        me = _call(client, "GET", f"{CLIENT}/account/whoami")["user_id"]
        room = _fresh_room(client)
        for sender in dict.fromkeys(str(e["sender"]) for e in events):
            if sender != me:
                _join(client, room, sender)
        setup = time.perf_counter() - started
        new_ids: dict[str, str] = {}
        started = time.perf_counter()
        for number, event in enumerate(events):
            new_ids[str(event["event_id"])] = _send(client, room, event, me, number, new_ids)
        seconds = time.perf_counter() - started
    return RawRun((room,), len(events), seconds, setup)


def replay_rooms(homeserver: Homeserver, rooms: Sequence[Sequence[Mapping[str, Any]]]) -> RawRun:
    """`replay` each room's events (oldest first), one room after the other; the totals."""
    runs = [replay(homeserver, events) for events in rooms]
    return RawRun(
        tuple(room for run in runs for room in run.rooms),
        sum(run.events for run in runs),
        sum(run.seconds for run in runs),
        sum(run.setup_seconds for run in runs),
    )


def _fresh_room(client: httpx.Client) -> str:
    body = {"preset": "private_chat", "visibility": "private", "name": "raw loop"}
    return str(_call(client, "POST", f"{CLIENT}/createRoom", body)["room_id"])


def _join(client: httpx.Client, room: str, user_id: str) -> None:
    """Invite `user_id` (a puppet of the application service) and join as that user."""
    _call(client, "POST", f"{CLIENT}/rooms/{path_part(room)}/invite", {"user_id": user_id})
    path = f"{CLIENT}/rooms/{path_part(room)}/join"
    _call(client, "POST", path, {}, params={"user_id": user_id})


def _send(
    client: httpx.Client,
    room: str,
    event: Mapping[str, Any],
    me: str,
    number: int,
    new_ids: Mapping[str, str],
) -> str:
    """PUT one event as its original sender at its original time; the new event id."""
    params: dict[str, str | int] = {"ts": int(event["origin_server_ts"])}
    if event["sender"] != me:
        params["user_id"] = str(event["sender"])
    kind, txn = path_part(str(event["type"])), f"raw-{uuid.uuid4().hex[:8]}-{number}"
    path = f"{CLIENT}/rooms/{path_part(room)}/send/{kind}/{txn}"
    content = remap_relations(event.get("content") or {}, new_ids)
    return str(_call(client, "PUT", path, content, params=params)["event_id"])


def remap_relations(content: Mapping[str, Any], new_ids: Mapping[str, str]) -> dict[str, Any]:
    """A copy of `content` whose relation targets are the replayed room's event ids."""
    copied = copy.deepcopy(dict(content))
    relation = copied.get("m.relates_to")
    if not isinstance(relation, dict):
        return copied
    for holder in (relation, relation.get("m.in_reply_to")):
        if isinstance(holder, dict) and "event_id" in holder:
            old = str(holder["event_id"])
            if old not in new_ids:
                raise BenchError(f"a relation points at {old}, which was not replayed before it")
            holder["event_id"] = new_ids[old]
    return copied


def _call(
    client: httpx.Client,
    method: str,
    path: str,
    body: Mapping[str, Any] | None = None,
    params: Mapping[str, str | int] | None = None,
) -> dict[str, Any]:
    answer = client.request(method, path, json=body, params=params)
    if answer.status_code != 200:
        errcode = answer.json().get("errcode", "") if answer.content else ""
        raise BenchError(f"raw loop: {method} {path}: {answer.status_code} {errcode}")
    result: dict[str, Any] = answer.json()
    return result
