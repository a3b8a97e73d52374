"""Teams chats end to end into the chat archive: sandbox Graph -> engine -> JSON lines and
transcripts; a sync of new, edited and deleted messages; kill -9 during a chat."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from harness import SECRET_ENV, audit_reaches, final_run, kill_nine_at, source_table

from hirondelle.connectors.archive_chat import EVENTS_FILE, TRANSCRIPT_FILE
from hirondelle.migrator import operations
from hirondelle.migrator.config import load_config
from hirondelle.sandbox.faults import Faults
from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import Mutation, Tenant, TenantSpec
from hirondelle.tests.config_text import MINIMAL_CONFIG

TEAMS_ID = "fi.hirondelle.teams_id"
SPEC = TenantSpec(
    seed=31, users=3, messages=1, large_messages=0, teams=0, files_per_drive=2,
    large_file_bytes=0,
)  # fmt: skip


def write_config(tmp_path: Path, sandbox: SandboxServer) -> Path:
    config = tmp_path / "hirondelle.toml"
    config.write_text(
        f"""{source_table(sandbox)}
[targets.chats]
kind = "archive"
path = "{tmp_path / "archive"}"
"""
    )
    return config


def messages_written(root: Path) -> dict[str, Counter[str]]:
    """Per chat folder: how many times each Teams message id starts a message (a quoted
    reply is one: its relation is `m.in_reply_to`, not an edit or a reaction)."""
    found: dict[str, Counter[str]] = {}
    for events in root.rglob(EVENTS_FILE):
        ids: Counter[str] = Counter()
        for line in events.read_text(encoding="utf-8").splitlines():
            event: dict[str, Any] = json.loads(line)
            content = event.get("content") or {}
            relation = content.get("m.relates_to") or {}
            # edits and reactions relate to a message; a quoted reply is a message itself
            if TEAMS_ID in content and relation.get("rel_type") not in (
                "m.replace",
                "m.annotation",
            ):
                ids[str(content[TEAMS_ID]).split("#")[0]] += 1
        found[events.parent.name] = ids
    return found


def expected(tenant: Tenant) -> Counter[str]:
    return Counter(m.id for chat in tenant.chats.chats for m in tenant.chats.roots(chat.id))


def test_chats_into_the_archive_then_a_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = Tenant.generate(SPEC)
    with SandboxServer(tenant, tls=True, limits=Limits(enabled=False)) as sandbox:
        monkeypatch.setenv(SECRET_ENV, sandbox.client_secret)
        config = load_config(write_config(tmp_path, sandbox))
        first = asyncio.run(operations.migrate(config, "run"))
        assert first.ok, first.as_dict()
        written = messages_written(tmp_path / "archive")
        assert len(written) == len(tenant.chats.chats) == 4  # one folder per chat, once
        merged = sum(written.values(), Counter())
        assert merged == expected(tenant)  # every message once, none twice
        transcripts = list((tmp_path / "archive").rglob(TRANSCRIPT_FILE))
        assert len(transcripts) == 4
        folders = list((tmp_path / "archive").rglob(EVENTS_FILE))
        assert len(folders) == 4  # under whichever member claimed each chat first, once
        changed = sandbox.mutate(
            Mutation(seed=4, chats_messages=2, chats_edits=1, chats_deletions=1)
        )
        assert len(changed.chat_messages) == 4
        second = asyncio.run(operations.migrate(config, "sync"))
        assert second.ok, second.as_dict()
        tally = second.tallies["chats"]
        assert (tally.copied, tally.updated) == (2, 2)
        merged = sum(messages_written(tmp_path / "archive").values(), Counter())
        assert merged == expected(tenant)
        assert asyncio.run(operations.check(config))["chats"].verified


def test_a_holder_left_out_of_users_csv_hands_its_chats_over_without_duplicates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The member holding every chat it is in is then left out of users.csv: the next sync
    carries those chats under another member, into the same folders, new messages once
    and the old ones not again."""
    tenant = Tenant.generate(SPEC)
    with SandboxServer(tenant, tls=True, limits=Limits(enabled=False)) as sandbox:
        monkeypatch.setenv(SECRET_ENV, sandbox.client_secret)
        path = write_config(tmp_path, sandbox)
        assert asyncio.run(operations.migrate(load_config(path), "run")).ok
        folders = set(messages_written(tmp_path / "archive"))
        holder, *others = sorted(tenant.users, key=lambda u: u.id)
        held = [c for c in tenant.chats.chats if holder.id in {m.user_id for m in c.members}]
        assert held  # the lowest id holds every chat it is in
        users = tmp_path / "users.csv"
        users.write_text("source_upn,target_login\n" + "".join(f"{u.upn},\n" for u in others))
        path.write_text(path.read_text() + f'[users]\nfile = "{users}"\n')
        sandbox.mutate(Mutation(seed=4, chats_messages=6, chats_edits=2, chats_deletions=1))
        config = load_config(path)
        sync = asyncio.run(operations.migrate(config, "sync"))
        assert sync.ok, sync.as_dict()
        written = messages_written(tmp_path / "archive")
        assert set(written) == folders  # the same folders: none made twice
        assert sum(written.values(), Counter()) == expected(tenant)  # new once, none twice
        assert asyncio.run(operations.check(config))["chats"].verified


def test_kill_nine_during_a_chat(tmp_path: Path) -> None:
    tenant = Tenant.generate(SPEC)
    faults = Faults(slow_seconds=0.02)
    with SandboxServer(tenant, tls=True, limits=Limits(enabled=False), faults=faults) as sandbox:
        config = write_config(tmp_path, sandbox)
        env = {**os.environ, SECRET_ENV: sandbox.client_secret}
        command = [sys.executable, "-m", "hirondelle.cli", "-c", str(config), "run"]
        audit = tmp_path / "audit"
        kills = kill_nine_at(command, env, (audit_reaches(audit, goal) for goal in (5, 25, 45)))
        assert kills >= 2
        sandbox.set_faults(Faults())
        final_run(command, env)
        merged = sum(messages_written(tmp_path / "archive").values(), Counter())
        assert merged == expected(tenant)  # each message once: no duplicate, no gap


def test_the_channels_archive_is_refused_as_the_chats_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A team named "chats" would write its channels among the chats' folders."""
    monkeypatch.setenv("HIRONDELLE_TEST_NEVER_SET", "not used: nothing is read")
    from hirondelle.migrator.errors import ConfigError
    from hirondelle.migrator.registry import assemble

    path = tmp_path / "hirondelle.toml"

    def configure(chats: str) -> None:
        path.write_text(
            f"""{MINIMAL_CONFIG}
[targets.chat]
kind = "archive"
path = "{tmp_path}/archive"

[targets.chats]
kind = "archive"
path = "{chats}"
"""
        )

    async def build() -> None:
        async with assemble(load_config(path)):
            pass

    configure(f"{tmp_path}/archive/.")  # the same folder, spelt otherwise
    with pytest.raises(ConfigError) as refused:
        asyncio.run(build())
    assert refused.value.setting == "targets.chats.path" and "team" in str(refused.value)
    configure(f"{tmp_path}/chats")
    asyncio.run(build())  # an archive of their own: accepted
