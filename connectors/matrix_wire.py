"""The Matrix client-server API as the Matrix target uses it: one connection, one error table.

`MatrixConnection.call` sends one request with the access token (an application service's
`as_token` or a bot account's token) and turns every failure into one of the engine's three
error kinds, in one place (`classify`):

- 401, or M_UNKNOWN_TOKEN / M_MISSING_TOKEN / M_FORBIDDEN on a 403: `FatalError` naming the
  token setting to fix;
- 429 M_LIMIT_EXCEEDED: `Retriable` after `retry_after_ms` (or the Retry-After header);
- 5xx and transport failures (resets, timeouts, refused connections): `Retriable`;
- 413 M_TOO_LARGE: `SkipItem` (the event or media is over the server's limit);
- any other 4xx: `Refused` when the request writes one item (a failure of that item,
  kept and counted), else `FatalError`.

Callers list the statuses they expect (`ok`) so that, say, a 404 on an alias lookup is an
answer rather than an error. A `RateLimiter` spaces requests (bot mode: one account, Tchap's
rules); it is shared by every session of a target. Secrets and message bodies never reach a
log or an error message.

Reference: https://spec.matrix.org/v1.11/client-server-api/ ("Standard error response",
"Rate limiting", "Application Service API: identity assertion").
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
import time
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from ..migrator.errors import FatalError, Refused, Retriable, SkipItem, Unreachable
from ..migrator.model import Payload

CLIENT = "/_matrix/client/v3"
CLIENT_V1 = "/_matrix/client/v1"
MEDIA_UPLOAD = "/_matrix/media/v3/upload"
TOKEN_ERRORS = frozenset({"M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"})
TEAMS_KEY = "fi.hirondelle.teams_id"  # the Teams id, in every event this tool sends
TXN_KEY = "fi.hirondelle.txn"  # its txnId, so a resume knows what landed
_SLUG_DROP = re.compile(r"[^a-z0-9]+")
# Room versions whose creator is listed in the power levels' `users` map, and those whose
# creators hold their power outside it (https://spec.matrix.org/v1.16/rooms/v12/).
LISTED_CREATOR_VERSIONS = frozenset(str(version) for version in range(1, 12))
CREATOR_POWER_VERSIONS = frozenset({"12"})


def path_part(value: str) -> str:
    """One URL path segment (room ids carry '!' and ':', aliases '#')."""
    return quote(value, safe="")


def slug(name: str, fallback: str = "x") -> str:
    """A lower-case ASCII slug of a display name, for room alias localparts."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return _SLUG_DROP.sub("-", ascii_name.lower()).strip("-")[:40] or fallback


def short_digest(value: str, length: int = 8) -> str:
    """A stable short hex digest of an id: keeps aliases unique when slugs collide."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:length]


class RateLimiter:
    """At most `rate` requests per second, across threads (None: no limit)."""

    def __init__(self, rate: float | None) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            time.sleep(start - now)  # pacing requests, not waiting for a server


@dataclass(frozen=True, slots=True)
class MatrixResponse:
    """A decoded answer: status, JSON body (empty dict when none) and Matrix error code."""

    status: int
    body: Mapping[str, Any]

    @property
    def errcode(self) -> str:
        return str(self.body.get("errcode") or "")


def _decode(response: httpx.Response) -> MatrixResponse:
    try:
        body = response.json() if response.content else {}
    except ValueError:
        body = {}
    return MatrixResponse(response.status_code, body if isinstance(body, dict) else {})


def retry_after(response: httpx.Response, body: Mapping[str, Any]) -> float | None:
    """Seconds to wait before trying again: `retry_after_ms`, else the Retry-After header."""
    milliseconds = body.get("retry_after_ms")
    if isinstance(milliseconds, int | float):
        return max(float(milliseconds) / 1000.0, 0.0)
    header = response.headers.get("Retry-After", "")
    return float(header) if header.replace(".", "", 1).isdigit() else None


def classify(
    response: httpx.Response, decoded: MatrixResponse, what: str, token_hint: str, item: bool
) -> Exception:
    """The one table: a failed Matrix answer as `FatalError`, `Retriable`, `SkipItem`
    or `Refused`."""
    status, code = decoded.status, decoded.errcode
    detail = f"{what}: {status} {code} {str(decoded.body.get('error') or '')[:200]}".rstrip()
    if status == 401 or code in TOKEN_ERRORS:
        return FatalError(f"{detail}: the homeserver refused the token, check {token_hint}")
    if status == 429 or code == "M_LIMIT_EXCEEDED":
        return Retriable(f"{detail}: rate limited", retry_after(response, decoded.body))
    if status >= 500:
        return Retriable(detail)
    if status == 413 or code == "M_TOO_LARGE":
        return SkipItem(f"{detail}: over the homeserver's size limit")
    if status == 403:
        return FatalError(f"{detail}: forbidden, check {token_hint} and the account's rights")
    if item:
        return Refused(detail)
    return FatalError(detail)


class MatrixConnection:
    """Authenticated requests to one homeserver (blocking; one session's thread at a time)."""

    def __init__(
        self,
        client: httpx.Client,
        token: str,
        token_hint: str,
        limiter: RateLimiter,
    ) -> None:
        self._client = client
        self._headers = {"Authorization": f"Bearer {token}"}
        self.token_hint = token_hint
        self._limiter = limiter

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str | int] | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
        ok: Collection[int] = (200,),
        item: bool = False,
    ) -> MatrixResponse:
        """Send one request; return the answer if its status is in `ok`, else raise."""
        headers = dict(self._headers)
        if content_type:
            headers["Content-Type"] = content_type
        what = f"{method} {path.split('?')[0]}"
        self._limiter.wait()
        try:
            response = self._client.request(
                method,
                path,
                json=body if content is None else None,
                content=content,
                params={k: str(v) for k, v in (params or {}).items()},
                headers=headers,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            # No connection, so nothing was sent: the engine waits for the homeserver.
            raise Unreachable(f"{what}: no connection ({error})") from None
        except httpx.TransportError as error:
            raise Retriable(f"{what}: {type(error).__name__}: {error}") from None
        decoded = _decode(response)
        if response.status_code in ok:
            return decoded
        raise classify(response, decoded, what, self.token_hint, item)

    def close(self) -> None:
        self._client.close()


# -- events and what a room holds -------------------------------------------------------


@dataclass
class RoomHistory:
    """What this tool sent to one room: txnId -> event id, Teams id -> main event id."""

    by_txn: dict[str, str] = field(default_factory=dict)
    main: dict[str, str] = field(default_factory=dict)
    scanned: bool = False

    def record(self, teams_id: str, txn: str, event_id: str) -> None:
        self.by_txn[txn] = event_id
        if is_main_txn(txn):
            self.main[teams_id] = event_id

    def forget(self, event_id: str) -> None:
        self.by_txn = {t: e for t, e in self.by_txn.items() if e != event_id}
        self.main = {t: e for t, e in self.main.items() if e != event_id}


def part_txn(txn_id: str, index: int) -> str:
    """The txnId of a payload's `index`-th event (the main event keeps the mapper's)."""
    return txn_id if index == 0 else f"{txn_id}.{index}"


def is_main_txn(txn: str) -> bool:
    return "." not in txn


def substitute(value: Any, replacements: Mapping[str, str]) -> Any:
    """`value` with every string equal to (or containing) a placeholder replaced."""
    if isinstance(value, str):
        for placeholder, actual in replacements.items():
            if placeholder in value:
                value = value.replace(placeholder, actual)
        return value
    if isinstance(value, dict):
        return {key: substitute(item, replacements) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, replacements) for item in value]
    return value


def payload_events(payload: Payload) -> list[dict[str, Any]]:
    """The payload's events (type, content, optional sender), as fresh copies."""
    try:
        events = json.loads(payload.content)["events"]
    except (ValueError, KeyError, TypeError) as error:
        raise FatalError(f"chat payload {payload.source_id} is not an events document") from error
    if not events:
        raise FatalError(f"chat payload {payload.source_id} has no event")
    return copy.deepcopy(list(events))


def without_root(content: dict[str, Any]) -> dict[str, Any]:
    """A reply whose thread root is not in the room: sent as a top-level message."""
    relation = content.get("m.relates_to")
    if isinstance(relation, dict) and "$ROOT" in json.dumps(relation):
        content = {k: v for k, v in content.items() if k != "m.relates_to"}
    return content


def digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:12]


def mentioned(content: Mapping[str, Any]) -> list[str]:
    mentions = content.get("m.mentions") or {}
    return [str(u) for u in mentions.get("user_ids", [])] if isinstance(mentions, dict) else []


def edit_content(new: Mapping[str, Any], event_id: str) -> dict[str, Any]:
    """An `m.replace` event: the fallback text ("* ...") plus `m.new_content`."""
    edit: dict[str, Any] = {
        "msgtype": new.get("msgtype", "m.text"),
        "body": "* " + str(new.get("body", "")),
        "m.new_content": dict(new),
        "m.relates_to": {"rel_type": "m.replace", "event_id": event_id},
    }
    if "formatted_body" in new:
        edit["format"] = new.get("format", "org.matrix.custom.html")
        edit["formatted_body"] = "* " + str(new["formatted_body"])
    return edit


def item_error(decoded: MatrixResponse, what: str) -> Refused:
    """An item the homeserver refused for a reason of its own (bad event, unknown user)."""
    reason = str(decoded.body.get("error") or "")[:200]
    return Refused(f"{what}: {decoded.status} {decoded.errcode} {reason}".rstrip())


class RoomBuilder:
    """Spaces and rooms found by alias first, created when missing, kept unencrypted.

    A space per team and a room per channel: createRoom with the alias is atomic on the
    homeserver, so a crash never leaves a room without its alias, and a rerun finds it.
    """

    def __init__(self, connection: MatrixConnection, server_name: str, alias_prefix: str) -> None:
        self._conn = connection
        self._server = server_name
        self._prefix = alias_prefix
        self._spaces: dict[str, str] = {}
        self.me = ""
        # rooms this builder created: nothing of ours in them yet, only `me` joined
        self.created: set[str] = set()
        self._default_version: str | None = None

    def aliases(self, team_id: str, team: str, channel_id: str, channel: str) -> tuple[str, str]:
        """The alias localparts of the team's space and of the channel's room."""
        space = f"{self._prefix}{slug(team, 'team')}-{short_digest(team_id)}"
        room = f"{self._prefix}{slug(team, 'team')}-{slug(channel, 'channel')}"
        return space, f"{room}-{short_digest(channel_id)}"

    def channel_room(
        self, team_id: str, team: str, channel_id: str, channel: str, owners: tuple[str, ...]
    ) -> str:
        """The channel's room id, its space created first and the two linked both ways."""
        space_alias, room_alias = self.aliases(team_id, team, channel_id, channel)
        space = self._spaces.get(space_alias)
        if space is None:
            space_create = {"name": team, "creation_content": {"type": "m.space"}}
            space = self._spaces[space_alias] = self.ensure_room(space_alias, space_create, owners)
        via = {"via": [self._server]}
        parent: dict[str, Any] = {
            "type": "m.space.parent",
            "state_key": space,
            "content": {**via, "canonical": True},
        }
        create = {
            "name": channel,
            "topic": f"Microsoft Teams: {team} / {channel}",
            "initial_state": [parent],
        }
        room = self.ensure_room(room_alias, create, owners)
        self._conn.call(
            "PUT",
            f"{CLIENT}/rooms/{path_part(space)}/state/m.space.child/{path_part(room)}",
            body=via,
        )
        return room

    def ensure_room(self, alias: str, create: Mapping[str, Any], owners: tuple[str, ...]) -> str:
        """The room of `alias` (joined), created from `create` when missing."""
        full = f"#{alias}:{self._server}"
        room = self._resolve(full)
        if room is None:
            body = {**create, "room_alias_name": alias, "preset": "private_chat"}
            levels = self._owner_levels(owners, create.get("power_level_content_override"))
            if levels is not None:
                body["power_level_content_override"] = levels
            answer = self._conn.call(
                "POST",
                f"{CLIENT}/createRoom",
                body={**body, "visibility": "private"},
                ok=(200, 400),
            )
            if answer.status == 200:
                room = str(answer.body["room_id"])
                self.created.add(room)
                if levels is None:
                    self.raise_owners(room, owners)
            elif answer.errcode == "M_ROOM_IN_USE":
                room = self._resolve(full)  # created meanwhile, by another run
            if room is None:
                raise FatalError(f"cannot create the room {full}: {answer.errcode}")
        else:
            self._conn.call("POST", f"{CLIENT}/join/{path_part(room)}", body={})
        self._check_unencrypted(room, full)
        return room

    def _resolve(self, alias: str) -> str | None:
        answer = self._conn.call(
            "GET", f"{CLIENT}/directory/room/{path_part(alias)}", ok=(200, 404)
        )
        return str(answer.body["room_id"]) if answer.status == 200 else None

    def _owner_levels(
        self, owners: tuple[str, ...], override: Mapping[str, Any] | None
    ) -> dict[str, Any] | None:
        """The createRoom `power_level_content_override` giving the owners power level 100
        in the room's first power levels event (not a second one after it); or None, the
        create body's own override kept, when the creator is the only owner or when the
        server's default room version is one this tool does not know: then `raise_owners`
        does it after creation.

        The override replaces the `users` map as a whole (it is applied "on top of the
        generated content", https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3createroom),
        so it names the creator too up to room version 11; from version 12 on, the creator
        holds its power outside the map and must not be listed
        (https://spec.matrix.org/v1.16/rooms/v12/). The room version is the server's
        default (`m.room_versions` capability), read once.
        """
        others = [user for user in owners if user != self.me]
        if not others:  # nobody to raise: the create body's own override stands
            return None
        if self._default_version is None:
            capabilities = self._conn.call("GET", f"{CLIENT}/capabilities").body
            versions = (capabilities.get("capabilities") or {}).get("m.room_versions") or {}
            self._default_version = str(versions.get("default") or "")
        # the override's own users (the mapping's admins) are kept
        users: dict[str, Any] = dict((override or {}).get("users") or {})
        if self._default_version in CREATOR_POWER_VERSIONS:
            users.pop(self.me, None)
        elif self._default_version in LISTED_CREATOR_VERSIONS:
            users[self.me] = 100
        else:  # None, not the body's own override: that would skip `raise_owners`
            return None
        return {**(override or {}), "users": {**users, **{user: 100 for user in others}}}

    def raise_owners(self, room: str, owners: tuple[str, ...]) -> None:
        """Owners at power level 100, after creation: from room version 12 on, the creator
        holds its power outside the `users` map and must not be listed there
        (https://spec.matrix.org/v1.16/rooms/v12/)."""
        others = [user for user in owners if user != self.me]
        if not others:
            return
        path = f"{CLIENT}/rooms/{path_part(room)}/state/m.room.power_levels/"
        levels = dict(self._conn.call("GET", path).body)
        users = dict(levels.get("users") or {})
        if all(users.get(user) == 100 for user in others):
            return
        users.update({user: 100 for user in others})
        self._conn.call("PUT", path, body={**levels, "users": users})

    def _check_unencrypted(self, room: str, alias: str) -> None:
        path = f"{CLIENT}/rooms/{path_part(room)}/state/m.room.encryption/"
        if self._conn.call("GET", path, ok=(200, 404)).status == 200:
            raise FatalError(
                f"the room {alias} ({room}) is encrypted: the room must be unencrypted for "
                "history import. Turn off encryption by default for new rooms on the "
                "homeserver (Synapse: encryption_enabled_by_default_for_room_type: off), "
                "or use another server"
            )

    def invite_and_join(self, room: str, user_id: str) -> None:
        """Bring a puppet (or masqueraded user) into the room: invite it, then join as it."""
        self._conn.call(
            "POST",
            f"{CLIENT}/rooms/{path_part(room)}/invite",
            body={"user_id": user_id},
            ok=(200, 403),  # 403: already in the room
        )
        self._conn.call(
            "POST", f"{CLIENT}/rooms/{path_part(room)}/join", body={}, params={"user_id": user_id}
        )

    def invite(self, room: str, user_id: str) -> bool:
        """Invite a mapped real user; a refusal (unknown user, banned) only loses the invite."""
        answer = self._conn.call(
            "POST",
            f"{CLIENT}/rooms/{path_part(room)}/invite",
            body={"user_id": user_id},
            ok=(200, 400, 403, 404),
        )
        return answer.status == 200
