"""One team's connection to the homeserver (`TargetSession`): its rooms, the events of
each payload sent in order (later events alongside, on a second connection), the room's
history read once to know what an interrupted run sent. See `matrix` for the design.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence, Set
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple

from ..mappings.chat import without_reply
from ..migrator.errors import ItemError, SkipItem
from ..migrator.model import Container, Entry, Owner, Payload, TargetRef
from .matrix_chats import ChatRooms
from .matrix_wire import (
    CLIENT,
    CLIENT_V1,
    MEDIA_UPLOAD,
    TEAMS_KEY,
    TXN_KEY,
    MatrixConnection,
    RoomBuilder,
    RoomHistory,
    digest,
    edit_content,
    item_error,
    mentioned,
    part_txn,
    path_part,
    payload_events,
    substitute,
    without_root,
)

if TYPE_CHECKING:
    from .matrix import MatrixTarget


HISTORY_PAGE = 500
SCANNED_TYPES = ["m.room.message", "m.reaction"]


class EventRequest(NamedTuple):
    """One event PUT: room, event type, txnId, content, puppet to send as, timestamp."""

    room: str
    kind: str
    txn: str
    content: Mapping[str, Any]
    as_user: str | None
    ts: Any


class SideSender:
    """The later events of payloads (reactions, edits), sent on a connection of their own
    by one thread, in the order handed over, while the session goes on with the next
    payloads' first events."""

    def __init__(self, connection: MatrixConnection) -> None:
        self._conn = connection
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="matrix-side")
        self._sent: list[tuple[int, str, str, Future[str | None]]] = []

    def send(
        self, position: int, source_id: str, txn: str, put: Callable[[MatrixConnection], str | None]
    ) -> None:
        self._sent.append((position, source_id, txn, self._thread.submit(put, self._conn)))

    def finish(self, history: RoomHistory) -> dict[int, ItemError]:
        """Wait for every send; record what landed; the refusals by payload position.
        Another error (the homeserver gone...) is raised once every send has ended."""
        refused: dict[int, ItemError] = {}
        failure: BaseException | None = None
        sent, self._sent = self._sent, []
        for position, source_id, txn, future in sent:
            try:
                event_id = future.result()
            except ItemError as error:
                refused.setdefault(position, error)
            except Exception as error:  # noqa: BLE001 - raised below, after the rest ended
                failure = failure or error
            else:
                if event_id:
                    history.record(source_id, txn, event_id)
        if failure is not None:
            raise failure
        return refused

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        self._conn.close()


class MatrixSession:
    """One team's connection (`TargetSession`): folders are room ids, refs event ids."""

    def __init__(self, target: MatrixTarget, owner: Owner, connection: MatrixConnection) -> None:
        self._target = target
        self._settings = target.settings
        self._owner = owner
        self._conn = connection
        self.user_id = ""
        self._rooms = RoomBuilder(
            connection, target.settings.server_name, target.settings.room_alias_prefix
        )
        self._histories: dict[str, RoomHistory] = {}
        self._members: dict[str, set[str]] = {}
        self._invited: dict[str, set[str]] = {}  # a chat's members invited, not joined yet
        self._side: SideSender | None = None
        self._chats = ChatRooms(target, connection, self._rooms, target.chat_context)

    def connect(self) -> None:
        """Check the token (`whoami`); raises `FatalError` if the homeserver refuses it."""
        self.user_id = str(self._conn.call("GET", f"{CLIENT}/account/whoami").body["user_id"])
        self._rooms.me = self.user_id

    # -- rooms ------------------------------------------------------------------------------

    def ensure_container(self, container: Container) -> str:
        """The channel's room inside the team's space, both created once; its room id.
        A Teams chat's room (workload "chats"): see `matrix_chats`."""
        if container.workload == "chats":
            room, membership = self._chats.ensure(container)
            self._members[room] = {u for u, state in membership.items() if state == "join"}
            # not again: a second invite would replace the one carrying `is_direct`
            self._invited[room] = {u for u, state in membership.items() if state == "invite"}
        else:
            owners = tuple(self._target.team_owners.get(self._owner.source_id, ()))
            team = container.path[0] if container.path else self._owner.display_name
            channel = container.path[-1] if container.path else container.source_id
            team_id = self._owner.source_id or team
            room = self._rooms.channel_room(team_id, team, container.source_id, channel, owners)
        if room in self._rooms.created:
            # made by this session: none of our events in it yet (no history to read), and
            # `me` the one member joined (a chat's room records its own members above)
            self._histories.setdefault(room, RoomHistory()).scanned = True
            self._members.setdefault(room, {self.user_id})
        return room

    def _joined(self, room: str) -> set[str]:
        if room not in self._members:
            answer = self._conn.call("GET", f"{CLIENT}/rooms/{path_part(room)}/joined_members")
            self._members[room] = set(answer.body.get("joined", {}))
        return self._members[room]

    def _as_user(self, room: str, user_id: str | None, name: str) -> str | None:
        """The `user_id` to send as (a joined puppet or real user), None for our own account."""
        settings = self._settings
        if settings.mode == "bot" or not user_id or user_id == self.user_id:
            return None
        if settings.is_puppet(user_id):
            self._target.ensure_puppet(self._conn, user_id, name)
        elif not settings.acts_for(user_id):
            self._invite(room, [user_id])
            return None
        if user_id not in self._joined(room):
            self._rooms.invite_and_join(room, user_id)
            self._joined(room).add(user_id)
        return user_id

    def _invite(self, room: str, user_ids: Sequence[str]) -> None:
        if not self._settings.invite:
            return
        joined, invited = self._joined(room), self._invited.get(room, set())
        members = self._chats.members(room)  # a chat's room: its members only
        for user_id in user_ids:
            if members is not None and user_id not in members:
                continue
            if user_id not in joined | invited and not self._settings.is_puppet(user_id):
                self._rooms.invite(room, user_id)
                joined.add(user_id)  # invited: not again this session

    # -- history ----------------------------------------------------------------------------

    def _history(self, room: str, scan: bool = False) -> RoomHistory:
        history = self._histories.setdefault(room, RoomHistory())
        if scan and not history.scanned:
            self._scan(room, history)
        return history

    def _scan(self, room: str, history: RoomHistory) -> None:
        """Read the room backwards once: every event this tool sent, by txnId and Teams id."""
        params: dict[str, str | int] = {"dir": "b", "limit": HISTORY_PAGE}
        params["filter"] = json.dumps({"lazy_load_members": True, "types": SCANNED_TYPES})
        found: list[tuple[str, str, str]] = []
        while True:
            answer = self._conn.call(
                "GET", f"{CLIENT}/rooms/{path_part(room)}/messages", params=params
            )
            for event in answer.body.get("chunk", []):
                content = event.get("content") or {}
                teams_id, txn = content.get(TEAMS_KEY), content.get(TXN_KEY)
                relation = (content.get("m.relates_to") or {}).get("rel_type")
                if isinstance(teams_id, str) and isinstance(txn, str) and relation != "m.replace":
                    found.append((teams_id, txn, str(event["event_id"])))
            end = answer.body.get("end")
            if not answer.body.get("chunk") or not end:
                break
            params["from"] = end
        for teams_id, txn, event_id in reversed(found):  # oldest first: the first copy wins
            if txn not in history.by_txn:
                history.record(teams_id, txn, event_id)
        history.scanned = True

    # -- items ------------------------------------------------------------------------------

    def find(self, folder: str, payload: Payload, exclude: Set[str]) -> TargetRef | None:
        """The payload's main event if every one of its events is in the room already."""
        history = self._history(folder, scan=True)
        events = payload_events(payload)
        txn_id = str(payload.attrs["txn_id"])
        main = history.by_txn.get(txn_id)
        if main is None or main in exclude:
            return None
        if any(part_txn(txn_id, i) not in history.by_txn for i in range(1, len(events))):
            return None  # cut short by a crash: `put` sends the rest
        return TargetRef(folder, main)

    def put(self, folder: str, payload: Payload) -> TargetRef:
        """Send the payload's events in order; the ones already in the room are not sent again."""
        return self._put(folder, payload, None, 0)

    def put_many(self, folder: str, payloads: Sequence[Payload]) -> list[TargetRef | ItemError]:
        """`put` for each payload, in order, while the later events of each (reactions,
        edits) go out alongside on a second connection, in their own order.

        A payload's first event is what a later payload can point at (a reply at its
        root), so first events go one after the other on this connection, in the page's
        order; a later event only points at its own payload's first event, sent before
        it is handed over. Every send has ended when this returns: a payload reported
        written has every one of its events in the room.
        """
        side = self._side_sender()
        results: list[TargetRef | ItemError] = []
        try:
            for position, payload in enumerate(payloads):
                try:
                    results.append(self._put(folder, payload, side, position))
                except ItemError as refused:
                    results.append(refused)
        finally:
            refused_later = side.finish(self._history(folder))
        for position, error in refused_later.items():
            results[position] = error
        return results

    def _side_sender(self) -> SideSender:
        if self._side is None:
            self._side = SideSender(self._target.connection())
        return self._side

    def _put(
        self, folder: str, payload: Payload, side: SideSender | None, position: int
    ) -> TargetRef:
        attrs, history = payload.attrs, self._history(folder)
        txn_id = str(attrs["txn_id"])
        events = payload_events(payload)
        replacements = self._relations(folder, attrs)
        main = history.by_txn.get(txn_id)
        if main is None or any(
            part_txn(txn_id, i) not in history.by_txn for i in range(1, len(events))
        ):
            replacements.update(self._upload_media(attrs.get("media") or ()))
        self._invite(folder, mentioned(events[0]["content"]))
        for index, event in enumerate(events):
            txn = part_txn(txn_id, index)
            if main is not None:
                replacements["$SELF"] = main
            event_id = history.by_txn.get(txn)
            if event_id is None and index and side is not None:
                request = self._event_request(folder, payload, event, txn, replacements)
                side.send(position, payload.source_id, txn, partial(self._send_request, request))
                continue
            if event_id is None:
                request = self._event_request(folder, payload, event, txn, replacements)
                event_id = self._send(self._conn, *request)
                if event_id:
                    history.record(payload.source_id, txn, event_id)
            if index == 0:
                main = event_id
        assert main is not None
        return TargetRef(folder, main)

    def _relations(self, room: str, attrs: Mapping[str, Any]) -> dict[str, str]:
        """ "$ROOT" and "$REPLY" as the events of the thread root and the quoted message,
        when they are in the room."""
        found = {}
        for placeholder, key in (("$ROOT", "root"), ("$REPLY", "reply_to")):
            event = self._main_event(room, attrs.get(key))
            if event:
                found[placeholder] = event
        return found

    def _main_event(self, room: str, teams_id: str | None) -> str | None:
        if not teams_id:
            return None
        history = self._history(room)
        if teams_id not in history.main and not history.scanned:
            history = self._history(room, scan=True)
        return history.main.get(teams_id)

    def _upload_media(self, media: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        uploaded = {}
        for entry in media:
            answer = self._conn.call(
                "POST",
                MEDIA_UPLOAD,
                params={"filename": str(entry.get("name") or "image")},
                content=bytes(entry["data"]),
                content_type=str(entry.get("content_type") or "application/octet-stream"),
                item=True,
            )
            uploaded[str(entry["placeholder"])] = str(answer.body["content_uri"])
        return uploaded

    def _event_request(
        self,
        room: str,
        payload: Payload,
        event: Mapping[str, Any],
        txn: str,
        replacements: Mapping[str, str],
    ) -> EventRequest:
        """What `_send` PUTs for one event of the payload; its sender joined the room."""
        content = substitute(event["content"], replacements)
        if "$ROOT" not in replacements:
            content = without_root(content)
        if "$REPLY" not in replacements:
            content = without_reply(content, payload.attrs.get("reply_fallback"))
        content[TEAMS_KEY] = payload.source_id
        content[TXN_KEY] = txn
        kind = str(event.get("type") or "m.room.message")
        sender, name = event.get("sender"), str(event.get("sender_name") or "")
        if sender is None and kind == "m.room.message":
            sender = payload.attrs.get("sender")
            name = str(payload.attrs.get("sender_name") or "")
        as_user = self._as_user(room, sender, name)
        return EventRequest(room, kind, txn, content, as_user, payload.attrs.get("ts"))

    def _send_request(self, request: EventRequest, connection: MatrixConnection) -> str | None:
        return self._send(connection, *request)

    def _send(
        self,
        connection: MatrixConnection,
        room: str,
        kind: str,
        txn: str,
        content: Mapping[str, Any],
        as_user: str | None,
        ts: Any,
    ) -> str | None:
        """PUT one event; None for a reaction the room already holds from that sender."""
        params: dict[str, str | int] = {}
        if self._settings.mode == "appservice":
            if as_user:
                params["user_id"] = as_user
            if isinstance(ts, int | float):
                params["ts"] = int(ts)
        path = f"{CLIENT}/rooms/{path_part(room)}/send/{path_part(kind)}/{path_part(txn)}"
        answer = connection.call("PUT", path, body=content, params=params, ok=(200, 400), item=True)
        if answer.status == 400:
            if answer.errcode == "M_DUPLICATE_ANNOTATION":
                return None
            raise item_error(answer, f"PUT {kind} event")
        return str(answer.body["event_id"])

    def update(self, ref: TargetRef, payload: Payload) -> TargetRef:
        """An `m.replace` edit of the main event with the new content, then the reactions."""
        events = payload_events(payload)
        txn_id = str(payload.attrs["txn_id"])
        replacements = self._upload_media(payload.attrs.get("media") or ())
        replacements["$SELF"] = ref.ref
        replacements.update(self._relations(ref.folder, payload.attrs))
        new = substitute(events[0]["content"], replacements)
        if "$REPLY" not in replacements:
            new = without_reply(new, payload.attrs.get("reply_fallback"))
        new = {k: v for k, v in new.items() if k not in ("m.relates_to", TEAMS_KEY, TXN_KEY)}
        digest = hashlib.sha256(json.dumps(new, sort_keys=True).encode()).hexdigest()[:16]
        edit = edit_content(new, ref.ref)
        edit[TEAMS_KEY] = payload.source_id
        edit[TXN_KEY] = f"{txn_id}.edit.{digest}"
        sender = payload.attrs.get("sender")
        as_user = self._as_user(ref.folder, sender, str(payload.attrs.get("sender_name") or ""))
        when = payload.attrs.get("changed_ts")  # in Teams' time, as the messages
        self._send(self._conn, ref.folder, "m.room.message", edit[TXN_KEY], edit, as_user, when)
        reactions = [e for e in events[1:] if e.get("type") == "m.reaction"]
        self._sync_reactions(ref, payload, reactions, replacements)
        return ref

    def _sync_reactions(
        self,
        ref: TargetRef,
        payload: Payload,
        reactions: Sequence[Mapping[str, Any]],
        replacements: Mapping[str, str],
    ) -> None:
        """Send the reactions the event lacks; redact ours that the source no longer has."""
        path = f"{CLIENT_V1}/rooms/{path_part(ref.folder)}/relations/{path_part(ref.ref)}"
        answer = self._conn.call("GET", f"{path}/m.annotation/m.reaction", params={"limit": 500})
        present: dict[tuple[str, str], str] = {}
        for event in answer.body.get("chunk", []):
            content = event.get("content") or {}
            if TEAMS_KEY in content:
                key = str((content.get("m.relates_to") or {}).get("key"))
                present[(str(event.get("sender")), key)] = str(event["event_id"])
        wanted: set[tuple[str, str]] = set()
        for reaction in reactions:
            as_user = self._as_user(ref.folder, reaction.get("sender"), "")
            key = str(reaction["content"]["m.relates_to"]["key"])
            wanted.add((as_user or self.user_id, key))
            if (as_user or self.user_id, key) not in present:
                txn = f"{payload.attrs['txn_id']}.r.{digest(as_user or '', key)}"
                event = {**reaction, "sender": as_user}
                request = self._event_request(ref.folder, payload, event, txn, replacements)
                self._send(self._conn, *request)
        for pair, event_id in present.items():
            if pair not in wanted:
                self.remove(TargetRef(ref.folder, event_id))

    def move(self, ref: TargetRef, folder: str) -> TargetRef:
        """Matrix events cannot move between rooms: the engine writes the item afresh."""
        if folder == ref.folder:
            return ref
        raise SkipItem(f"{ref.ref} cannot move to another room: Matrix events stay where sent")

    def remove(self, ref: TargetRef) -> None:
        """Redact the event; nothing to do if it is already gone."""
        txn = "hirondelle-redact-" + digest(ref.folder, ref.ref)
        path = f"{CLIENT}/rooms/{path_part(ref.folder)}/redact/{path_part(ref.ref)}/{txn}"
        self._conn.call("PUT", path, body={"reason": "deleted in Teams"}, ok=(200, 404))
        self._history(ref.folder).forget(ref.ref)

    def listing(self, folder: str) -> list[Entry]:
        """Every main event this tool sent to the room, with its Teams fingerprint."""
        history = self._history(folder, scan=True)
        return [
            Entry(TargetRef(folder, event_id), f"teams:{teams_id}", -1)
            for teams_id, event_id in history.main.items()
        ]

    def close(self) -> None:
        try:
            if self._side is not None:
                self._side.close()
            for room, joined in self._members.items():
                self._chats.leave_former_members(room, joined)
        finally:
            self._conn.close()
