"""The Matrix target: Teams channels as rooms of a space, messages as Matrix events.

Two modes. `appservice` (Synapse, Twake Chat): the tool is an application service; each
Teams author is a puppet (`@<puppet_prefix>...`) registered once, given its display name,
invited and joined to the room, and every event is sent as that puppet with `?ts=` so the
original time shows. `bot` (Tchap, where no application service is allowed): one ordinary
account sends everything (the mapper prefixes author and time), paced to `bot_rate`
requests per second.

Rooms: one space per team (alias `#<room_alias_prefix><team slug>-<id digest>:<server>`)
and one room per channel (alias by team and channel slug), found by alias before being
created so a crash between two runs never makes a second one. A Teams chat (workload
"chats") is one room, direct for a one-to-one chat (`matrix_chats`, `mappings.chat_direct`),
found by an alias derived from the chat id. Rooms stay unencrypted:
history is imported as plain events, so a room the server encrypts is a `FatalError`.

Idempotency: each event is sent with `PUT .../send/{type}/{txnId}`, the txnId derived
from the Teams id (`attrs["txn_id"]`, then ".1", ".2"... for the later events of one
payload). Homeservers forget txnIds after 30 to 60 minutes, so every event also carries
the Teams id ("fi.hirondelle.teams_id") and its txnId ("fi.hirondelle.txn") in its content:
`find` scans the room's history once per session and knows what an interrupted run sent.
`put` skips the events of a payload already in the room, which completes a payload cut
in half by a crash without duplicating its first half.

Placeholders written by the mapper: "$ROOT" (the thread root's event id; a reply whose
root is not in the room is sent as a top-level message), "$REPLY" (the event of the
message a chat message quotes, `attrs["reply_to"]`; when it is not in the room the reply
relation goes and the quote, `attrs["reply_fallback"]`, opens the message instead), "$SELF"
(the payload's main event, for reactions) and "mxc://hirondelle/<id>" (inline media,
uploaded here).
An event dict may carry its own "sender" (a reaction's author); without one, message
events go out as `attrs["sender"]` and reactions as the application service's bot.

Blocking on purpose (httpx's sync client): the engine runs each session in a worker thread.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..mappings.chat import ChatContext
from ..mappings.chat_members import ChatInfo
from ..migrator.errors import ConfigError, HirondelleError
from ..migrator.model import Capabilities, Owner
from .credentials import Secret, read_secret
from .http_client import http_client
from .matrix_session import MatrixSession
from .matrix_wire import CLIENT, MatrixConnection, RateLimiter, item_error, path_part
from .target_settings import TargetSettings

MODES = ("appservice", "bot")
# The application service's own bot, `@hirondelle:<server>`, in the registration `init` writes.
BOT_LOCALPART = "hirondelle"
DELETED_MODES = ("notice", "skip")


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
    masquerade_real_users: bool = False
    ca_file: Path | None = None
    timeout: float = 60.0
    config_key: str = "targets.chat"

    def __post_init__(self) -> None:
        self._paths("as_token_file", "access_token_file", "ca_file")
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

    def acts_for(self, user_id: str) -> bool:
        """Whether the application service may send and act as `user_id`: its puppets, and
        local real users when `masquerade_real_users` is on."""
        return self.is_puppet(user_id) or (
            self.masquerade_real_users and user_id.endswith(f":{self.server_name}")
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
        f"sender_localpart: {json.dumps(BOT_LOCALPART)}",
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


class MatrixTarget:
    """A `Target` on one homeserver; `open(owner)` gives a team's (or a chat owner's) session.

    `team_owners` (team id -> Matrix user ids) gives those users power level 100 in the
    rooms this target creates; the registry fills it from the teams' owner members.
    `chats` (chat id -> `ChatInfo`, filled by the chats source as it lists chats) names
    the members of each chat's room, and `users` (Teams user id or lower-case UPN -> Matrix
    id, the mapper's `ChatContext.users`) the ones that have a real account.
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
        *,
        chats: Mapping[str, ChatInfo] | None = None,
        users: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        # kept by reference: the registry hands live views filled as teams or chats are listed
        self.team_owners: Mapping[str, Sequence[str]] = (
            team_owners if team_owners is not None else {}
        )
        self.chats: Mapping[str, ChatInfo] = chats if chats is not None else {}
        # how chat members are named, as the mapper names message authors
        self.chat_context = ChatContext(
            server_name=settings.server_name,
            puppet_prefix=settings.puppet_prefix,
            users=users if users is not None else {},
            mode=settings.mode,
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
