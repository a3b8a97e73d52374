"""Teams channels end to end: sandbox Graph -> engine -> a real Synapse (both modes)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from chats_harness import TEAMS_ID, Chat, matrix_login
from harness import SECRET_ENV, audit_reaches, final_run, kill_nine_at, source_table

from hirondelle.mappings.chat import ChatContext, puppet_id
from hirondelle.migrator import operations
from hirondelle.migrator.config import load_config
from hirondelle.sandbox.faults import Faults
from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import Mutation, Tenant, TenantSpec
from hirondelle.state.schema import Unit
from hirondelle.state.store import open_store
from hirondelle.tests.servers import SynapseServer

SMALL_TEAM = TenantSpec(
    seed=29,
    users=2,
    messages=2,
    large_messages=0,
    teams=1,
    posts_per_channel=5,
    replies_per_post=2,
    files_per_drive=4,
    large_file_bytes=0,
)


def chat_setup(
    tmp_path: Path,
    synapse: SynapseServer,
    mode: str,
    faults: Faults | None = None,
    spec: TenantSpec = SMALL_TEAM,
    run_table: str = "",
) -> Iterator[Chat]:
    tenant = Tenant.generate(spec)
    with SandboxServer(tenant, tls=True, limits=Limits(enabled=False), faults=faults) as sandbox:
        login = matrix_login(synapse, mode)
        config = tmp_path / "hirondelle.toml"
        config.write_text(
            f"""
{source_table(sandbox)}
{run_table}
[targets.chat]
kind = "matrix"
mode = "{mode}"
homeserver = "{synapse.url}"
server_name = "{synapse.server_name}"
room_alias_prefix = "{login.prefix}"
bot_rate = 50.0
{login.credential}
"""
        )
        env = {SECRET_ENV: sandbox.client_secret, **login.env}
        yield Chat(tenant, sandbox, synapse, config, env, login.token)


def rooms(chat: Chat) -> dict[str, str]:
    """Channel id -> room id, as the state recorded them."""
    store = open_store(load_config(chat.config_path).state_url)
    try:
        with store.session() as s:
            return {u.container_id: u.target_folder for u in s.query(Unit) if u.target_folder}
    finally:
        store.engine.dispose()


def room_events(chat: Chat, room: str) -> list[dict[str, Any]]:
    """Every event of a room, oldest first, read with the client-server API."""
    events: list[dict[str, Any]] = []
    params: dict[str, Any] = {"dir": "f", "limit": 1000}
    headers = {"Authorization": f"Bearer {chat.token}"}
    with httpx.Client(base_url=chat.synapse.url, headers=headers, timeout=30) as client:
        while True:
            body = client.get(f"/_matrix/client/v3/rooms/{room}/messages", params=params)
            page = body.raise_for_status().json()
            events.extend(page.get("chunk", []))
            if not page.get("end") or not page.get("chunk"):
                return events
            params["from"] = page["end"]


def check_rooms(chat: Chat) -> int:
    """Every channel's messages once each, in order, with their threads and reactions."""
    total = 0
    for channel_id, room in rooms(chat).items():
        events = [e for e in room_events(chat, room) if TEAMS_ID in e.get("content", {})]
        main = [
            e
            for e in events
            if e["type"] == "m.room.message"
            and "fi.hirondelle.part" not in e["content"]
            and e["content"].get("m.relates_to", {}).get("rel_type") != "m.replace"  # edits
        ]
        ids = Counter(e["content"][TEAMS_ID] for e in main)
        assert all(n == 1 for n in ids.values()), [k for k, n in ids.items() if n > 1]
        source = {m for m in _source_ids(chat.tenant, channel_id)}
        assert set(ids) <= source and len(source - set(ids)) <= _skipped(chat, channel_id)
        replies = [e for e in main if "/" in e["content"][TEAMS_ID]]
        for reply in replies:
            relation = reply["content"].get("m.relates_to", {})
            assert relation.get("rel_type") == "m.thread", reply["content"]
        total += len(main)
    return total


def _source_ids(tenant: Tenant, channel_id: str) -> list[str]:
    teams = tenant.teams
    found = []
    for root in teams.roots(channel_id):
        found.append(root.id)
        found.extend(f"{root.id}/{reply.id}" for reply in teams.replies(channel_id, root.id))
    return found


def _skipped(chat: Chat, channel_id: str) -> int:
    return 0  # deleted messages become notices: nothing is skipped by default


@pytest.fixture
def chat(tmp_path: Path, synapse: SynapseServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Chat]:
    for setup in chat_setup(tmp_path, synapse, "appservice"):
        for name, value in setup.env.items():
            monkeypatch.setenv(name, value)
        yield setup


def test_appservice_run_sync_verify(chat: Chat) -> None:
    config = load_config(chat.config_path)
    first = asyncio.run(operations.migrate(config, "run"))
    assert first.ok, first.as_dict()
    assert check_rooms(chat) == first.tallies["chat"].copied > 20
    for room in rooms(chat).values():  # oldest first, with the Teams times, roots first
        main = [
            e
            for e in room_events(chat, room)
            if e["type"] == "m.room.message" and TEAMS_ID in e["content"]
        ]
        stamps = [e["origin_server_ts"] for e in main]
        assert stamps == sorted(stamps) and stamps[0] < 1_735_000_000_000  # Teams' own times
        seen: set[str] = set()
        for event in main:
            teams_id = event["content"][TEAMS_ID]
            assert "/" not in teams_id or teams_id.split("/")[0] in seen, teams_id
            seen.add(teams_id)
    report = asyncio.run(operations.check(config))["chat"]
    assert report.verified, report.differences[:5]
    owners = {m.user_id for t in chat.tenant.teams.teams for m in t.members if "owner" in m.roles}
    headers = {"Authorization": f"Bearer {chat.token}"}
    for room in rooms(chat).values():  # the team's owners administer its rooms
        levels = httpx.get(
            f"{chat.synapse.url}/_matrix/client/v3/rooms/{room}/state/m.room.power_levels",
            headers=headers,
        ).json()["users"]
        admins = {user for user, level in levels.items() if level == 100}
        context = ChatContext(server_name=chat.synapse.server_name)
        assert owners and {puppet_id(owner, context) for owner in owners} <= admins
    changed = chat.sandbox.mutate(
        Mutation(seed=3, chat_posts=2, chat_replies=2, chat_edits=1, chat_deletions=1)
    )
    second = asyncio.run(operations.migrate(config, "sync"))
    assert second.ok, second.as_dict()
    assert second.tallies["chat"].copied == 4 and second.tallies["chat"].updated >= 2
    assert len(changed.messages) >= 6
    check_rooms(chat)
    report = asyncio.run(operations.check(config))["chat"]
    assert report.verified, report.differences[:5]


def test_a_reply_to_a_thread_long_quiet_reaches_matrix_within_the_documented_syncs(
    tmp_path: Path, synapse: SynapseServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With application permissions delta lists root posts only, and a reply does not bring
    # its root back (https://learn.microsoft.com/en-us/graph/api/chatmessage-delta): the
    # reply is found by the round reading every thread again through the channel listing
    # (https://learn.microsoft.com/en-us/graph/api/channel-list-messages), 1 page of 50
    # threads a sync here, at a cost the Teams source's docstring bounds.
    spec = dataclasses.replace(SMALL_TEAM, seed=31, posts_per_channel=110, replies_per_post=0)
    run_table = "[run]\nchat_reread_pages = 1\nchat_reply_window_threads = 5\n"
    for chat in chat_setup(tmp_path, synapse, "appservice", spec=spec, run_table=run_table):
        for name, value in chat.env.items():
            monkeypatch.setenv(name, value)
        config = load_config(chat.config_path)
        assert asyncio.run(operations.migrate(config, "run")).ok
        teams = chat.tenant.teams
        team = teams.teams[0]
        channel = next(c for c in teams.channels(team.id) if c.display_name == "Chantier")
        roots = teams.roots(channel.id)
        oldest = next(r for r in roots if r.deleted is None and r.sender and not r.pinned)
        assert len(roots) > 100 and (teams.now - oldest.created).days > 365  # past any window
        reply = chat.sandbox.mutate(Mutation(seed=4, chat_replies=1, chat_thread=oldest.id))
        (reply_id,) = reply.messages
        within = -(-len(roots) // 50)  # ceil(threads / (50 x chat_reread_pages)) syncs
        bound = 1 + 1 + 5  # delta (nothing changed) + 1 round page + at most 5 window threads
        carried, syncs = 0, 0
        while syncs < within:
            syncs += 1
            before = _message_reads(chat.sandbox, channel.id)
            result = asyncio.run(operations.migrate(config, "sync"))
            assert result.ok and _message_reads(chat.sandbox, channel.id) - before <= bound
            tally = result.tallies["chat"]
            carried = tally.copied
            if carried:
                break
            said = [line for line in tally.unchecked if "Chantier" in line]
            assert said and "carried up to" in said[0], tally.unchecked
        assert carried == 1 and syncs >= 2  # the round reached the oldest thread in turns
        room = rooms(chat)[channel.id]
        found = [e for e in room_events(chat, room) if e["content"].get(TEAMS_ID) == reply_id]
        assert len(found) == 1
        assert found[0]["content"]["m.relates_to"]["rel_type"] == "m.thread"
        again = asyncio.run(operations.migrate(config, "sync")).tallies["chat"]
        assert (again.copied, again.updated, again.removed) == (0, 0, 0)
        check_rooms(chat)
        assert asyncio.run(operations.check(config))["chat"].verified


def _message_reads(sandbox: SandboxServer, channel_id: str) -> int:
    """Channel message requests the sandbox answered for one channel so far."""
    counters = sandbox.stats()["by_mailbox"]
    return sum(c["requests"] for key, c in counters.items() if channel_id in key)


def test_kill_nine_during_a_channel_import(tmp_path: Path, synapse: SynapseServer) -> None:
    for setup in chat_setup(tmp_path, synapse, "appservice", Faults(slow_seconds=0.02)):
        env = {**os.environ, **setup.env}
        command = [sys.executable, "-m", "hirondelle.cli", "-c", str(setup.config_path), "run"]
        audit = tmp_path / "audit"
        kills = kill_nine_at(command, env, (audit_reaches(audit, goal) for goal in (5, 20, 35)))
        assert kills >= 2
        setup.sandbox.set_faults(Faults())
        final_run(command, env)
        check_rooms(setup)  # each message once: no duplicate, no gap


def test_bot_mode_prefixes_authors(
    tmp_path: Path, synapse: SynapseServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for setup in chat_setup(tmp_path, synapse, "bot"):
        for name, value in setup.env.items():
            monkeypatch.setenv(name, value)
        config = load_config(setup.config_path)
        result = asyncio.run(operations.migrate(config, "run"))
        assert result.ok, result.as_dict()
        check_rooms(setup)
        room = next(iter(rooms(setup).values()))
        bodies = [
            e["content"].get("body", "")
            for e in room_events(setup, room)
            if TEAMS_ID in e.get("content", {}) and e["type"] == "m.room.message"
        ]
        assert bodies and all(" (" in b.split(":", 1)[0] for b in bodies if b)
        assert asyncio.run(operations.check(config))["chat"].verified


def test_an_app_not_approved_for_protected_apis_fails_in_one_line(tmp_path: Path) -> None:
    # Channel messages need Microsoft's approval for application permissions:
    # https://learn.microsoft.com/en-us/graph/teams-protected-apis
    spec = TenantSpec(seed=29, users=2, messages=1, large_messages=0, teams=1, posts_per_channel=3)
    with SandboxServer(Tenant.generate(spec), tls=True, limits=Limits(enabled=False)) as sandbox:
        sandbox.set_protected_apis(False)
        config = tmp_path / "hirondelle.toml"
        config.write_text(
            f'{source_table(sandbox)}\n[targets.chat]\nkind = "archive"\npath = "archive"\n'
        )
        env = {**os.environ, SECRET_ENV: sandbox.client_secret}
        command = [sys.executable, "-m", "hirondelle.cli", "-c", str(config), "run"]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    *progress, error = done.stderr.strip().splitlines()
    assert done.returncode == 3 and progress == ["run 1"], done.stderr  # the pass, then why
    lines = [error]
    assert lines[0].startswith("error: chat team:")
    assert "not approved this app for the Teams protected APIs" in lines[0]
    assert lines[0].endswith("https://learn.microsoft.com/en-us/graph/teams-protected-apis")
    assert "Grant the application permission" not in lines[0]
