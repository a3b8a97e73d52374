"""The rules workload end to end: the demo's entry and `.sieve` files, and kill -9 at
three moments then resume, into the archive and into ManageSieve on a real Dovecot (there
with the mail workload, whose folder names the scripts file into). Nothing lost, nothing
doubled, `verify` clean, and a `sync` of unchanged rules writes nothing."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import (
    DEADLINE,
    MASTER_ENV,
    SECRET_ENV,
    environment,
    source_table,
    start_run,
    wait_for,
    write_config,
)

from hirondelle.connectors.managesieve_include import include_line
from hirondelle.migrator.operations import check, migrate
from hirondelle.sandbox.faults import Faults
from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import Mutation, Tenant, TenantSpec
from hirondelle.tests.servers import DovecotServer, dovecot_server
from hirondelle.workloads.demo import SECRET_ENV as DEMO_SECRET_ENV
from hirondelle.workloads.demo import demo_config, run_demo

SCRIPT = "outlook-rules"  # targets.rules.script_name's default
SPEC = TenantSpec(seed=29, users=6, messages=10, large_messages=0, large_file_bytes=0)


def carried(tenant: Tenant) -> set[str]:
    """The users with something to carry: a rule, or automatic replies on."""
    return {
        user.upn
        for user in tenant.users
        if tenant.rules.of(user).rules or tenant.rules.of(user).replies["status"] != "disabled"
    }


def rules_done(state: Path) -> int:
    """Rules units the state holds as done (read-only, while a run writes it)."""
    if not state.exists():
        return 0
    query = "SELECT count(*) FROM units WHERE workload = 'rules' AND status = 'done'"
    try:
        with sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute(query).fetchone()[0])
    except sqlite3.OperationalError:  # the run has not made its tables yet
        return 0


def kill_three_times(config: Path, env: dict[str, str], state: Path, users: int) -> None:
    """kill -9 early, once the first user's script is settled, and halfway through."""
    rng = random.Random(int(os.environ.get("HIRONDELLE_KILL_SEED", "14")))
    moment = time.monotonic() + rng.uniform(0.3, 1.2)
    moments: list[Callable[[], bool]] = [
        lambda: time.monotonic() >= moment,
        lambda: rules_done(state) >= 1,
        lambda: rules_done(state) >= users // 2 + 1,
    ]
    killed = 0
    for condition in moments:
        process = start_run(config, env)
        if wait_for(condition, process):
            os.kill(process.pid, signal.SIGKILL)
            killed += 1
        process.wait(timeout=30)
    assert killed >= 2, "the kills should land while the run is going"


def command(config: Path, env: dict[str, str], *arguments: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "hirondelle.cli", "-c", str(config), *arguments],
        env={**os.environ, **env},
        capture_output=True,
        timeout=DEADLINE,
    )
    assert done.returncode == 0, (done.stdout + done.stderr).decode()[-3000:]
    return done.stdout.decode()


def mail_folder_of(state: Path, upn: str, path: str) -> str:
    """The IMAP name the mail workload wrote the folder at `path` to."""
    with sqlite3.connect(f"file:{state}?mode=ro", uri=True) as db:
        query = "SELECT target_folder FROM units WHERE workload = 'mail' AND owner = ? AND path = ?"
        return str(db.execute(query, (upn, path)).fetchone()[0])


def test_the_demo_has_a_rules_entry_and_writes_a_script_per_user(tmp_path: Path) -> None:
    summary = run_demo(tmp_path, users=3, messages=8, seed=7, workloads=("mail", "rules"))
    entry = summary["rules"]
    assert {"copied", "skipped", "failed", "verified"} <= set(entry)
    assert entry["failed"] == 0 and entry["verified"] is True
    assert entry["copied"] >= 2  # the showcase user and the small one, at least
    scripts = sorted((tmp_path / "archive" / "mail").rglob(f"{SCRIPT}.sieve"))
    assert len(scripts) >= 2
    for script in scripts:
        assert (script.parent / "Maildir").is_dir(), script  # beside the user's Maildir
        assert b"require" in script.read_bytes()
    json.dumps(summary)  # what `demo --json` prints


def test_rules_into_the_archive_kill_nine_and_resume(tmp_path: Path) -> None:
    tenant = Tenant.generate(SPEC)
    faults = Faults(slow_seconds=0.03)  # stretch the run so that the kills land in it
    with SandboxServer(tenant, tls=True, limits=Limits(enabled=False), faults=faults) as sandbox:
        config = tmp_path / "hirondelle.toml"
        config.write_text(
            f"""{source_table(sandbox)}
[state]
url = "sqlite:///state/hirondelle.sqlite"

[targets.rules]
kind = "archive"
path = "archive"
""",
            encoding="utf-8",
        )
        env = {SECRET_ENV: sandbox.client_secret}
        kill_three_times(config, env, tmp_path / "state" / "hirondelle.sqlite", len(tenant.users))
        sandbox.set_faults(Faults())
        command(config, env, "run")
        command(config, env, "verify")
        scripts = sorted((tmp_path / "archive").rglob(f"{SCRIPT}.sieve"))
        assert len(scripts) == len(carried(tenant))  # one per user with rules, none doubled
        for script in scripts:  # each user's own, whole
            text = script.read_text("utf-8")
            assert text.startswith("# Outlook inbox rules") and script.parent.name in text


def test_a_changed_user_is_written_again_and_a_user_left_with_nothing_loses_the_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = Tenant.generate(TenantSpec(seed=29, users=3, messages=4, large_messages=0))
    with SandboxServer(tenant, tls=True, limits=Limits(enabled=False)) as sandbox:
        monkeypatch.setenv(DEMO_SECRET_ENV, sandbox.client_secret)
        config = demo_config(sandbox, tmp_path, ("rules",))
        first = asyncio.run(migrate(config, "run"))
        assert first.ok and first.tallies["rules"].copied == 2  # the third has nothing
        unchanged = asyncio.run(migrate(config, "sync")).tallies["rules"]
        assert (unchanged.copied, unchanged.updated, unchanged.removed) == (0, 0, 0)

        changed, emptied = tenant.users[0], tenant.users[1]
        sandbox.mutate(Mutation(seed=5, rule_changes=1, user=changed.upn))  # a rule toggled
        tenant.rules.of(emptied).rules.clear()  # between passes: no request in flight
        tenant.rules.of(emptied).replies = {"status": "disabled"}
        synced = asyncio.run(migrate(config, "sync")).tallies["rules"]
        assert (synced.copied, synced.updated, synced.removed) == (0, 1, 1)
        scripts = {p.parent.name for p in (tmp_path / "archive").rglob(f"{SCRIPT}.sieve")}
        assert scripts == {changed.upn}
        again = asyncio.run(migrate(config, "sync")).tallies["rules"]
        assert (again.updated, again.removed) == (0, 0)  # the removal is said once
        assert all(report.verified for report in asyncio.run(check(config)).values())


def test_rules_into_managesieve_kill_nine_and_resume(tmp_path: Path) -> None:
    tenant = Tenant.generate(SPEC)
    faults = Faults(slow_seconds=0.03)
    with (
        dovecot_server() as server,
        SandboxServer(tenant, tls=True, limits=Limits(enabled=False), faults=faults) as sandbox,
    ):
        logins = {user.upn: server.new_user() for user in tenant.users}
        config = write_config(tmp_path, sandbox, server, logins)
        with config.open("a", encoding="utf-8") as toml:
            toml.write(rules_table(server))
        env = environment(sandbox, server)
        state = tmp_path / "state" / "hirondelle.sqlite"
        kill_three_times(config, env, state, len(tenant.users))
        sandbox.set_faults(Faults())
        command(config, env, "run")
        # A script made before mail wrote its folders is written again with their names.
        command(config, env, "sync")
        command(config, env, "verify")
        for upn, user in logins.items():
            expected = {SCRIPT: True} if upn in carried(tenant) else {}
            assert server.sieve_scripts(user.login) == expected, upn
        showcase = tenant.users[0]
        invoices = mail_folder_of(state, showcase.upn, "Boîte de réception/Factures & Devis")
        assert f'"{invoices}"' in server.sieve_script(logins[showcase.upn].login, SCRIPT)
        stored = {
            upn: (server.home(user.login) / "sieve" / f"{SCRIPT}.sieve").stat().st_mtime_ns
            for upn, user in logins.items()
            if upn in carried(tenant)
        }
        command(config, env, "sync")  # nothing changed since: no PUTSCRIPT
        again = {
            upn: (server.home(logins[upn].login) / "sieve" / f"{SCRIPT}.sieve").stat().st_mtime_ns
            for upn in stored
        }
        assert again == stored
        # Another script made active by hand leaves ours stored but not running: `verify`
        # reports it, and the next `sync` includes ours from that script.
        login = logins[showcase.upn].login
        server.put_sieve(login, "mine", 'require "fileinto";\n')
        checked = subprocess.run(
            [sys.executable, "-m", "hirondelle.cli", "-c", str(config), "verify"],
            env={**os.environ, **env},
            capture_output=True,
            timeout=DEADLINE,
        )
        assert checked.returncode != 0 and b"rules: 1 difference" in checked.stdout
        command(config, env, "sync")
        assert include_line(SCRIPT) in server.sieve_script(login, "mine")
        command(config, env, "verify")


def rules_table(server: DovecotServer) -> str:
    """`[targets.rules]` into the server's ManageSieve port, as the same master user."""
    return f"""
[targets.rules]
kind = "managesieve"
host = "127.0.0.1"
port = {server.sieve_port}
security = "plain"
master_user = "{server.master_user}"
master_password_env = "{MASTER_ENV}"
master_login = "{server.master_login}"
"""
