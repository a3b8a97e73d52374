"""The Matrix target: Teams channels as rooms of a space, messages as Matrix events.

Two modes. `appservice` (Synapse, Twake Chat): the tool is an application service; each
Teams author is a puppet (`@<puppet_prefix>...`) registered once, given its display name,
invited and joined to the room, and every event is sent as that puppet with `?ts=` so the
original time shows. `bot` (Tchap, where no application service is allowed): one ordinary
account sends everything (the mapper prefixes author and time), paced to `bot_rate`
requests per second.

Rooms: one space per team (alias `#<room_alias_prefix><team slug>-<id digest>:<server>`)
and one room per channel (alias by team and channel slug), found by alias before being
created so a crash between two runs never makes a second one. Rooms stay unencrypted:
history is imported as plain events, so a room the server encrypts is a `FatalError`.

Idempotency: each event is sent with `PUT .../send/{type}/{txnId}`, the txnId derived
from the Teams id (`attrs["txn_id"]`, then ".1", ".2"... for the later events of one
payload). Homeservers forget txnIds after 30 to 60 minutes, so every event also carries
the Teams id ("fi.hirondelle.teams_id") and its txnId ("fi.hirondelle.txn") in its content:
`find` scans the room's history once per session and knows what an interrupted run sent.
`put` skips the events of a payload already in the room, which completes a payload cut
in half by a crash without duplicating its first half.

Placeholders written by the mapper: "$ROOT" (the thread root's event id; a reply whose
root is not in the room is sent as a top-level message), "$SELF" (the payload's main
event, for reactions) and "mxc://hirondelle/<id>" (inline media, uploaded here).
An event dict may carry its own "sender" (a reaction's author); without one, message
events go out as `attrs["sender"]` and reactions as the application service's bot.

Blocking on purpose (httpx's sync client): the engine runs each session in a worker thread.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence, Set
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

from ..migrator.errors import ConfigError, HirondelleError, ItemError, SkipItem
from ..migrator.model import Capabilities, Container, Entry, Owner, Payload, TargetRef
from .credentials import Secret, read_secret
from .http_client import http_client
from .matrix_wire import (
    CLIENT,
    CLIENT_V1,
    MEDIA_UPLOAD,
    TEAMS_KEY,
    TXN_KEY,
    MatrixConnection,
    RateLimiter,
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
from .target_settings import TargetSettings

MODES = ("appservice", "bot")
DELETED_MODES = ("notice", "skip")
HISTORY_PAGE = 500
SCANNED_TYPES = ["m.room.message", "m.reaction"]


@dataclass(frozen=True, slots=True)
class MatrixSettings(TargetSettings):
    """The `[targets.chat]` table for `kind = "matrix"`. Holds no secret, only where to read it.

    `masquerade_real_users` lets the application service send as mapped real users (its
    registration then also claims every local user, non-exclusively, as double puppeting
    bridges do); without it their messages go out as the service's own bot.
    """

    homeserver: str
    server_name: str
    mode: str = "appservice"
    as_token_env: str | None = None
    as_token_file: Path | None = None
    access_token_env: str | None = None
    access_token_file: Path | None = None
    puppet_prefix: str = "_m365_"
    room_alias_prefix: str = "m365_"
    invite: bool = True
    bot_rate: float = 1.0
    deleted: str = "notice"
    registration_file: Path | None = None
    sender_localpart: str = "hirondelle"
    masquerade_real_users: bool = False
    ca_file: Path | None = None
    timeout: float = 60.0
    config_key: str = "targets.chat"

    def __post_init__(self) -> None:
        self._paths("as_token_file", "access_token_file", "registration_file", "ca_file")
        object.__setattr__(self, "homeserver", self.homeserver.rstrip("/"))
        self._check_http_url("homeserver", self.homeserver, what="a URL", server="a homeserver")
        if self.mode not in MODES:
            raise ConfigError(self.setting("mode"), f"one of {', '.join(MODES)}")
        if self.deleted not in DELETED_MODES:
            raise ConfigError(self.setting("deleted"), f"one of {', '.join(DELETED_MODES)}")
        if not self.server_name or not self.puppet_prefix:
            raise ConfigError(self.setting("server_name"), "server_name and puppet_prefix are set")
        if self.bot_rate <= 0 or self.timeout <= 0:
            raise ConfigError(self.setting("bot_rate"), "bot_rate and timeout must be positive")
        env, file = self.token_settings
        if not (getattr(self, env) or getattr(self, file)):
            raise ConfigError(self.setting(env), f"{self.mode} mode needs {env} or {file}")

    @property
    def token_settings(self) -> tuple[str, str]:
        """The names of the two settings that may hold this mode's token."""
        if self.mode == "appservice":
            return "as_token_env", "as_token_file"
        return "access_token_env", "access_token_file"

    def token_hint(self) -> str:
        env, file = self.token_settings
        return self.setting(env if getattr(self, env) else file)

    def read_token(self) -> str:
        """The access token, from the environment variable or the first line of the file."""
        env, file = self.token_settings
        path = getattr(self, file)
        token = read_secret(
            getattr(self, env), Path(path) if path else None, self.setting(env), self.setting(file)
        ).strip()
        if not token:
            raise ConfigError(self.setting(file), f"{path} is empty")
        return Secret(token)

    def puppet_regex(self) -> str:
        return f"@{_regex_escape(self.puppet_prefix)}.*:{_regex_escape(self.server_name)}"

    def is_puppet(self, user_id: str) -> bool:
        return user_id.startswith(f"@{self.puppet_prefix}") and user_id.endswith(
            f":{self.server_name}"
        )


def _regex_escape(text: str) -> str:
    return "".join("\\" + c if c in ".^$*+?{}[]\\|()" else c for c in text)


def registration_yaml(settings: MatrixSettings, as_token: str, hs_token: str) -> str:
    """The application service registration file that `hirondelle init` writes.

    `url: null`: the homeserver pushes nothing to the tool (it only sends). The user
    namespace is exclusive so no one else can register a puppet's id.
    """
    server = _regex_escape(settings.server_name)
    users = [{"exclusive": True, "regex": settings.puppet_regex()}]
    if settings.masquerade_real_users:
        users.append({"exclusive": False, "regex": f"@.*:{server}"})
    aliases = [{"exclusive": True, "regex": f"#{_regex_escape(settings.room_alias_prefix)}.*"}]
    lines = [
        "# Matrix application service registration for Hirondelle (Teams migration).",
        "# Add this file to the homeserver's app_service_config_files and restart it.",
        f"id: {json.dumps('hirondelle-' + settings.server_name)}",
        "url: null",
        f"as_token: {json.dumps(as_token)}",
        f"hs_token: {json.dumps(hs_token)}",
        f"sender_localpart: {json.dumps(settings.sender_localpart)}",
        "rate_limited: false",
        "namespaces:",
        "  users:",
        *_yaml_namespaces(users),
        "  aliases:",
        *_yaml_namespaces(aliases),
        "  rooms: []",
    ]
    return "\n".join(lines) + "\n"


def _yaml_namespaces(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = []
    for entry in entries:
        lines.append(f"    - exclusive: {'true' if entry['exclusive'] else 'false'}")
        lines.append(f"      regex: {json.dumps(entry['regex'])}")
    return lines


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
        self._side: SideSender | None = None

    def connect(self) -> None:
        """Check the token (`whoami`); raises `FatalError` if the homeserver refuses it."""
        self.user_id = str(self._conn.call("GET", f"{CLIENT}/account/whoami").body["user_id"])
        self._rooms.me = self.user_id

    # -- rooms ------------------------------------------------------------------------------

    def ensure_container(self, container: Container) -> str:
        """The channel's room inside the team's space, both created once; its room id."""
        owners = tuple(self._target.team_owners.get(self._owner.source_id, ()))
        team = container.path[0] if container.path else self._owner.display_name
        channel = container.path[-1] if container.path else container.source_id
        team_id = self._owner.source_id or team
        return self._rooms.channel_room(team_id, team, container.source_id, channel, owners)

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
        elif not (settings.masquerade_real_users and user_id.endswith(f":{settings.server_name}")):
            self._invite(room, [user_id])
            return None
        if user_id not in self._joined(room):
            self._rooms.invite_and_join(room, user_id)
            self._joined(room).add(user_id)
        return user_id

    def _invite(self, room: str, user_ids: Sequence[str]) -> None:
        if not self._settings.invite:
            return
        joined = self._joined(room)
        for user_id in user_ids:
            if user_id not in joined and not self._settings.is_puppet(user_id):
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
        params["filter"] = json.dumps(
            {"lazy_load_members": True, "types": ["m.room.message", "m.reaction"]}
        )
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
        replacements: dict[str, str] = {}
        root = self._root_event(folder, attrs.get("root"))
        if root:
            replacements["$ROOT"] = root
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

    def _root_event(self, room: str, root: str | None) -> str | None:
        if not root:
            return None
        history = self._history(room)
        if root not in history.main and not history.scanned:
            history = self._history(room, scan=True)
        return history.main.get(root)

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
        root = self._root_event(ref.folder, payload.attrs.get("root"))
        if root:
            replacements["$ROOT"] = root
        new = substitute(events[0]["content"], replacements)
        new = {k: v for k, v in new.items() if k not in ("m.relates_to", TEAMS_KEY, TXN_KEY)}
        digest = hashlib.sha256(json.dumps(new, sort_keys=True).encode()).hexdigest()[:16]
        edit = edit_content(new, ref.ref)
        edit[TEAMS_KEY] = payload.source_id
        edit[TXN_KEY] = f"{txn_id}.edit.{digest}"
        sender = payload.attrs.get("sender")
        as_user = self._as_user(ref.folder, sender, str(payload.attrs.get("sender_name") or ""))
        self._send(self._conn, ref.folder, "m.room.message", edit[TXN_KEY], edit, as_user, None)
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
        if self._side is not None:
            self._side.close()
        self._conn.close()


class MatrixTarget:
    """A `Target` on one homeserver; `open(owner)` gives a team's session.

    `team_owners` (team id -> Matrix user ids) gives those users power level 100 in the
    rooms this target creates; the registry fills it from the teams' owner members.
    """

    capabilities = Capabilities(
        server_assigned_ids=True,
        keeps_timestamps=True,
        max_item_bytes=64 * 1024,
        checksums=False,
        moves=False,
    )

    def __init__(
        self,
        settings: MatrixSettings,
        team_owners: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.settings = settings
        # kept by reference: the registry hands a live view filled as teams are listed
        self.team_owners: Mapping[str, Sequence[str]] = (
            team_owners if team_owners is not None else {}
        )
        self._token = settings.read_token()
        rate = settings.bot_rate if settings.mode == "bot" else None
        self._limiter = RateLimiter(rate)
        self._puppets: dict[str, str] = {}  # registered puppet -> display name set
        if settings.mode == "bot":
            self.capabilities = Capabilities(
                server_assigned_ids=True,
                keeps_timestamps=False,
                max_item_bytes=64 * 1024,
                checksums=False,
                moves=False,
            )

    def connection(self) -> MatrixConnection:
        client = http_client(self.settings, base_url=self.settings.homeserver)
        return MatrixConnection(client, self._token, self.settings.token_hint(), self._limiter)

    def ensure_puppet(self, connection: MatrixConnection, user_id: str, name: str) -> None:
        """Register the puppet once per target; set its display name when a new one shows."""
        if user_id not in self._puppets:
            localpart = user_id[1:].split(":", 1)[0]
            body = {"type": "m.login.application_service", "username": localpart}
            answer = connection.call(
                "POST", f"{CLIENT}/register", body={**body, "inhibit_login": True}, ok=(200, 400)
            )
            if answer.status == 400 and answer.errcode != "M_USER_IN_USE":
                raise item_error(answer, f"register {user_id}")
            self._puppets[user_id] = ""
        if name and self._puppets[user_id] != name:
            connection.call(
                "PUT",
                f"{CLIENT}/profile/{path_part(user_id)}/displayname",
                body={"displayname": name},
                params={"user_id": user_id},
            )
            self._puppets[user_id] = name

    def open(self, owner: Owner) -> MatrixSession:
        session = MatrixSession(self, owner, self.connection())
        try:
            session.connect()
        except BaseException:
            session.close()
            raise
        return session

    def check(self) -> list[str]:
        """Findings for `doctor`: the homeserver answers, the token works, names agree."""
        connection = self.connection()
        try:
            connection.call("GET", "/_matrix/client/versions")
            user_id = str(connection.call("GET", f"{CLIENT}/account/whoami").body["user_id"])
        except HirondelleError as error:
            return [f"Matrix homeserver {self.settings.homeserver}: {error}"]
        finally:
            connection.close()
        if not user_id.endswith(f":{self.settings.server_name}"):
            return [
                f"the token belongs to {user_id}, not to a user of "
                f"{self.settings.server_name}: check {self.settings.setting('server_name')}"
            ]
        return []
