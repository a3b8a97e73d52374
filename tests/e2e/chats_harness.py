"""Teams chats into a real Synapse: a sandbox tenant with chats, a configuration of the
`chats` workload, and what the homeserver holds read back; what the channels' tests
(`test_chat.py`) share with them: a setup's parts and its Matrix login."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import SECRET_ENV, source_table

from hirondelle.mappings.chat import SYSTEM_USER, ChatContext, puppet_id
from hirondelle.mappings.chat_direct import CHAT_STATE
from hirondelle.migrator.config import load_config
from hirondelle.sandbox.faults import Faults
from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.teams_data import ChannelMessage
from hirondelle.sandbox.tenant import Tenant, TenantSpec
from hirondelle.state.schema import Unit
from hirondelle.state.store import open_store
from hirondelle.tests.servers import SYNAPSE_AS_TOKEN, MatrixAccount, SynapseServer

AS_TOKEN_ENV = "HIRONDELLE_TEST_AS_TOKEN"
BOT_TOKEN_ENV = "HIRONDELLE_TEST_BOT_TOKEN"
TEAMS_ID = "fi.hirondelle.teams_id"
PART = "fi.hirondelle.part"
TXN = "fi.hirondelle.txn"  # each event's own transaction id
# every kind of chat (see sandbox/chats_data.py): 76 messages in 4 chats
SPEC = TenantSpec(
    seed=31, users=3, messages=1, large_messages=0, teams=0, files_per_drive=2,
    large_file_bytes=0,
)  # fmt: skip


@dataclass
class Chat:
    """A sandbox and a homeserver, a configuration between them, its environment and the
    token that reads the homeserver back."""

    tenant: Tenant
    sandbox: SandboxServer
    synapse: SynapseServer
    config_path: Path
    env: dict[str, str]
    token: str


@dataclass
class MatrixLogin:
    """How a configuration logs in to the homeserver in one mode."""

    prefix: str  # the room alias prefix: this test's rooms apart from other tests'
    token: str
    credential: str  # the `[targets.*]` line naming the token's variable
    env: dict[str, str]  # the token's variable
    bot: str | None  # bot mode: the account that sends everything


def matrix_login(synapse: SynapseServer, mode: str) -> MatrixLogin:
    """The application service's token, or in bot mode a new account's."""
    # the application service owns the m365_ aliases exclusively: a bot uses its own
    prefix = f"{'bot' if mode == 'bot' else 'm365_'}{uuid.uuid4().hex[:8]}_"
    if mode == "bot":
        account = synapse.new_user()
        credential = f'access_token_env = "{BOT_TOKEN_ENV}"'
        token, bot = account.access_token, account.user_id
        return MatrixLogin(prefix, token, credential, {BOT_TOKEN_ENV: token}, bot)
    credential = f'as_token_env = "{AS_TOKEN_ENV}"'
    return MatrixLogin(prefix, SYNAPSE_AS_TOKEN, credential, {AS_TOKEN_ENV: SYNAPSE_AS_TOKEN}, None)


@dataclass
class Chats(Chat):
    prefix: str  # this test's room alias prefix: its rooms apart from other tests'
    real: MatrixAccount | None  # the real account the first user is mapped to
    bot: str | None = None  # bot mode: the account that sends everything
    deleted: str = "notice"  # deleted messages: notices, or not in the room ("skip")

    @property
    def context(self) -> ChatContext:
        users = {self.tenant.users[0].id: self.real.user_id} if self.real else {}
        return ChatContext(server_name=self.synapse.server_name, users=users)

    def member(self, teams_user_id: str) -> str:
        """The Matrix id of a Teams user: the mapped real account, else the puppet."""
        return self.context.users.get(teams_user_id) or puppet_id(teams_user_id, self.context)

    def author(self, message: ChannelMessage) -> str:
        """Who must have sent the message (system events: the Teams puppet)."""
        if self.bot:
            return self.bot
        if message.sender is None:
            return puppet_id(SYSTEM_USER, self.context)
        return self.member(message.sender.id)


def chats_setup(
    tmp_path: Path,
    synapse: SynapseServer,
    mode: str = "appservice",
    faults: Faults | None = None,
    real_user: bool = False,
    deleted: str = "notice",
    workers: int = 1,
) -> Iterator[Chats]:
    """A sandbox with `SPEC`'s chats and a configuration carrying them into `synapse`;
    with `real_user`, users.csv maps the first user to a real account of the homeserver
    (and the service may act for it); `deleted` is `targets.chats.deleted`, `workers`
    `run.workers`."""
    tenant = Tenant.generate(SPEC)
    with SandboxServer(tenant, tls=True, limits=Limits(enabled=False), faults=faults) as sandbox:
        real = synapse.new_user() if real_user else None
        login = matrix_login(synapse, mode)
        users_table, masquerade = "", ""
        if real is not None:
            logins = [real.user_id, *(u.upn.split("@")[0] for u in tenant.users[1:])]
            rows = "".join(
                f"{u.upn},{login}\n" for u, login in zip(tenant.users, logins, strict=True)
            )
            (tmp_path / "users.csv").write_text(f"source_upn,target_login\n{rows}")
            users_table, masquerade = '[users]\nfile = "users.csv"', "masquerade_real_users = true"
        config = tmp_path / "hirondelle.toml"
        config.write_text(
            f"""{source_table(sandbox)}
{users_table}

[run]
workers = {workers}

[targets.chats]
kind = "matrix"
mode = "{mode}"
homeserver = "{synapse.url}"
server_name = "{synapse.server_name}"
room_alias_prefix = "{login.prefix}"
bot_rate = 50.0
deleted = "{deleted}"
{masquerade}
{login.credential}
"""
        )
        env = {SECRET_ENV: sandbox.client_secret, **login.env}
        token, prefix, bot = login.token, login.prefix, login.bot
        yield Chats(tenant, sandbox, synapse, config, env, token, prefix, real, bot, deleted)


def chat_rooms(chats: Chats) -> dict[str, str]:
    """Chat id -> room id, as the state recorded them."""
    store = open_store(load_config(chats.config_path).state_url)
    try:
        with store.session() as s:
            units = s.query(Unit).filter(Unit.workload == "chats")
            return {u.container_id: u.target_folder for u in units if u.target_folder}
    finally:
        store.engine.dispose()


def rooms_per_chat(chats: Chats) -> Counter[str]:
    """How many rooms of this test's alias prefix the homeserver holds per chat id, found
    from the application service's side (its rooms' `fi.hirondelle.chat` state), not from
    the state database."""
    joined = chats.synapse.request("GET", "/_matrix/client/v3/joined_rooms", chats.token)
    found: Counter[str] = Counter()
    for room in joined["joined_rooms"]:
        state = {(e["type"], e["state_key"]): e["content"] for e in room_state(chats, room)}
        alias = str(state.get(("m.room.canonical_alias", ""), {}).get("alias", ""))
        chat = state.get((CHAT_STATE, ""))
        if alias.startswith(f"#{chats.prefix}") and chat:
            found[str(chat["chat_id"])] += 1
    return found


def room_state(chats: Chats, room: str) -> list[dict[str, Any]]:
    return [dict(e) for e in chats.synapse.room_state(room, chats.token)]


def messages(chats: Chats, room: str) -> list[dict[str, Any]]:
    """The room's messages this tool wrote, oldest first: one per Teams message (neither
    edits, reactions nor the later parts of a split message)."""
    return [
        event
        for event in room_events(chats, room)
        if event["type"] == "m.room.message"
        and TEAMS_ID in event["content"]
        and PART not in event["content"]
        and relation(event) != "m.replace"
    ]


def room_events(chats: Chats, room: str) -> list[dict[str, Any]]:
    return [dict(e) for e in chats.synapse.room_events(room, chats.token)]


def relation(event: dict[str, Any]) -> str | None:
    return (event["content"].get("m.relates_to") or {}).get("rel_type")


def assert_each_message_once_in_order(chats: Chats) -> int:
    """Every chat's messages once each, in Teams' order, with their authors and (in
    appservice mode) Teams' own times; returns how many."""
    rooms = chat_rooms(chats)
    assert set(rooms) == {chat.id for chat in chats.tenant.chats.chats}
    total = 0
    for chat in chats.tenant.chats.chats:
        events = messages(chats, rooms[chat.id])
        source = chats.tenant.chats.roots(chat.id)
        if chats.deleted == "skip":
            source = [m for m in source if m.deleted is None]
        assert [e["content"][TEAMS_ID] for e in events] == [m.id for m in source], chat.id
        assert [e["sender"] for e in events] == [chats.author(m) for m in source], chat.id
        stamps = [e["origin_server_ts"] for e in events]
        if not chats.bot:
            assert stamps == [int(m.created.timestamp() * 1000) for m in source], chat.id
        total += len(events)
        sent = Counter(e["content"].get(TXN) for e in room_events(chats, rooms[chat.id]))
        assert max(n for txn, n in sent.items() if txn) == 1  # no reaction or part twice
    assert rooms_per_chat(chats) == Counter(set(rooms))  # one room per chat, never two
    return total
