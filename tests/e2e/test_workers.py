"""Several worker processes on one machine, over one SQLite state: kill -9 of the parent
and of one child, then resume; and the state lock shared by two folders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import bagit
import psutil
import pytest
from harness import assert_same, environment, write_config

from hirondelle.migrator.config import load_config
from hirondelle.migrator.operations import status
from hirondelle.sandbox.faults import Faults
from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import Tenant, TenantSpec
from hirondelle.state.schema import Job, StateLock
from hirondelle.state.store import open_store
from hirondelle.tests.servers import DovecotServer

DEADLINE = 180.0


STARTED: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def no_run_left_behind() -> Iterator[None]:
    """A failed test leaves no hirondelle process running (its workers die with it)."""
    yield
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def hirondelle(config: Path, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "hirondelle.cli", "-c", str(config), *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    STARTED.append(process)
    return process


def poll(condition: Callable[[], object], what: str, deadline: float = DEADLINE) -> None:
    """Wait until `condition()` holds (polled; the deadline only bounds a broken run)."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def items_done(state_url: str) -> int:
    """Items written by the latest run so far."""
    store = open_store(state_url)
    try:
        with store.session() as s:
            latest = s.query(Job.run_id).order_by(Job.run_id.desc()).limit(1).scalar()
            return sum(job.items_done for job in s.query(Job).filter(Job.run_id == latest))
    finally:
        store.engine.dispose()


def holds_a_job(state_url: str, pid: int) -> bool:
    store = open_store(state_url)
    try:
        with store.session() as s:
            return any(
                (job.holder or "").endswith(f"#{pid}")
                for job in s.query(Job).filter(Job.status == "running")
            )
    finally:
        store.engine.dispose()


def workers_of(process: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """The worker processes of a run: spawned children, or the children of its fork server
    (forked from the run, or multiprocessing's own; its resource tracker left out)."""
    found = []
    for child in psutil.Process(process.pid).children():
        try:
            command = " ".join(child.cmdline())
            if "resource_tracker" in command:
                continue
            if "spawn_main" in command:
                found.append(child)
            else:
                found.extend(child.children())
        except psutil.NoSuchProcess:
            continue
    return found


def test_kill_the_parent_then_a_child_of_two_workers_and_resume(
    tmp_path: Path, dovecot: DovecotServer
) -> None:
    tenant = Tenant.generate(TenantSpec(seed=41, users=3, messages=100, large_messages=0))
    faults = Faults(slow_seconds=0.2)  # stretch the copy so the kills land mid-owner
    with SandboxServer(tenant, tls=True, limits=Limits(enabled=False), faults=faults) as sandbox:
        logins = {user.upn: dovecot.new_user() for user in tenant.users}
        config = write_config(tmp_path, sandbox, dovecot, logins, run_extra="workers = 2")
        # one mailbox at a time per worker: both workers hold an owner when one is killed
        config.write_text(
            config.read_text().replace("owner_concurrency = 4", "owner_concurrency = 1")
        )
        env = environment(sandbox, dovecot)
        state_url = load_config(config).state_url

        first = hirondelle(config, env, "run")
        poll(lambda: len(workers_of(first)) == 2, "two worker processes")
        children = workers_of(first)
        poll(lambda: items_done(state_url) >= 20, "progress of the first run")
        first.kill()  # kill -9 of the parent: its workers die with it
        first.wait(timeout=30)
        poll(
            lambda: not any(c.is_running() and c.status() != "zombie" for c in children),
            "the workers to die with their parent",
            30,
        )
        assert status(load_config(config))["runs"][0]["status"] == "interrupted"

        second = hirondelle(config, env, "run", "--json")
        poll(lambda: len(workers_of(second)) == 2, "two worker processes again")
        poll(lambda: items_done(state_url) >= 20, "progress of the second run")
        victim = next(w for w in workers_of(second) if holds_a_job(state_url, w.pid))
        victim.send_signal(signal.SIGKILL)  # one worker dies mid-owner: its sibling goes on
        sandbox.set_faults(Faults())  # the kills have landed: the rest at full speed
        out, err = second.communicate(timeout=DEADLINE)
        assert second.returncode == 0, err.decode()[-3000:]
        assert b"ended with signal 9" in err
        sandbox.set_faults(Faults())
        assert assert_same(tenant, config, dovecot, logins) == sum(
            len(tenant.messages(u.id, f.id))
            for u in tenant.users
            for f in tenant.folders(u.id)
            if not f.hidden
        )
        store = open_store(state_url)
        with store.session() as s:
            latest = s.query(Job.run_id).order_by(Job.run_id.desc()).limit(1).scalar()
            taken_over = [j for j in s.query(Job).filter(Job.run_id == latest) if j.attempts > 1]
        store.engine.dispose()
        assert taken_over, "a job of the killed worker should have been claimed again"


def test_two_runs_from_two_folders_on_one_state_exclude_each_other(
    tmp_path: Path, dovecot: DovecotServer
) -> None:
    tenant = Tenant.generate(TenantSpec(seed=3, users=1, messages=60, large_messages=0))
    faults = Faults(slow_seconds=0.05)
    with SandboxServer(tenant, tls=True, limits=Limits(enabled=False), faults=faults) as sandbox:
        logins = {user.upn: dovecot.new_user() for user in tenant.users}
        state = tmp_path / "shared" / "hirondelle.sqlite"
        configs = []
        for folder in ("one", "two"):
            (tmp_path / folder).mkdir()
            path = write_config(tmp_path / folder, sandbox, dovecot, logins)
            path.write_text(
                path.read_text().replace(
                    'url = "sqlite:///state/hirondelle.sqlite"', f'url = "sqlite:///{state}"'
                )
            )
            configs.append(path)
        env = environment(sandbox, dovecot)
        first = hirondelle(configs[0], env, "run")
        url = f"sqlite:///{state}"

        def locked() -> bool:
            if not state.exists():
                return False
            store = open_store(url)
            try:
                with store.session() as s:
                    return s.get(StateLock, "state") is not None
            finally:
                store.engine.dispose()

        poll(locked, "the first run to hold the lock")
        second = hirondelle(configs[1], env, "sync")
        _, err = second.communicate(timeout=60)
        assert second.returncode == 4, err.decode()
        message = err.decode()
        assert message.count("\n") == 1, message
        assert "another hirondelle run holds this state: `run` (run 1)" in message
        assert f"#{first.pid}" in message  # names the holding process
        _, err = first.communicate(timeout=DEADLINE)
        assert first.returncode == 0, err.decode()[-2000:]
        again = hirondelle(configs[1], env, "sync")
        _, err = again.communicate(timeout=DEADLINE)
        assert again.returncode == 0, err.decode()[-2000:]


def test_two_workers_keep_together_under_the_tenants_sharepoint_budget(tmp_path: Path) -> None:
    """SharePoint's resource units are one budget per tenant: two workers divide it, so
    together they stay under what the service accepts (no 429) while using most of it."""
    from harness import SECRET_ENV, source_table

    from hirondelle.sandbox.resource_units import ResourceUnitLimits

    tenant = Tenant.generate(
        TenantSpec(
            seed=71, users=3, messages=1, large_messages=0, files_per_drive=30, large_file_bytes=0
        )
    )
    # Graph's 1,200 units a minute, shrunk twenty-fold: 60 units per 3 s window.
    limits = ResourceUnitLimits(units_per_window=1200, window_seconds=60, scale=0.05)
    with SandboxServer(tenant, tls=True, limits=Limits(enabled=False)) as sandbox:
        sandbox.set_resource_units(limits)
        config = tmp_path / "hirondelle.toml"
        config.write_text(
            f"""{source_table(sandbox)}files_units_per_minute = 54
files_window_seconds = {limits.window_length}

[run]
workers = 2
owner_concurrency = 2

[targets.files]
kind = "archive"
path = "archive"
"""
        )
        run = hirondelle(config, {SECRET_ENV: sandbox.client_secret}, "run", "--json")
        out, err = run.communicate(timeout=DEADLINE)
        assert run.returncode == 0, err.decode()[-3000:]
        counters = sandbox.stats()["by_mailbox"]["sharepoint"]
    assert counters["throttled"] == 0, counters
    # Two processes wrote the archive, the command alone its manifests once they finished.
    assert bagit.Bag(str(tmp_path / "archive")).validate()
    assert counters["requests"] > 3 * limits.window_units  # the budget did bind


def test_a_fatal_error_in_one_worker_stops_the_run_with_one_line(
    tmp_path: Path, dovecot: DovecotServer
) -> None:
    """A refused login is fatal: exit 3, one line naming what to fix, no traceback; the
    run is recorded as failed and its state lock is free again."""
    tenant = Tenant.generate(TenantSpec(seed=5, users=2, messages=5, large_messages=0))
    with SandboxServer(tenant, tls=True, limits=Limits(enabled=False)) as sandbox:
        logins = {user.upn: dovecot.new_user() for user in tenant.users}
        config = write_config(tmp_path, sandbox, dovecot, logins, run_extra="workers = 2")
        env = {**environment(sandbox, dovecot), "HIRONDELLE_TEST_IMAP_MASTER": "wrong"}
        run = hirondelle(config, env, "run")
        _, err = run.communicate(timeout=DEADLINE)
        message = err.decode()
        assert run.returncode == 3, message
        assert "Traceback" not in message
        lines = [line for line in message.splitlines() if not line.startswith(" ")]
        assert lines[-1].startswith("error: mail "), message
        report = status(load_config(config))
        assert report["runs"][0]["status"] == "failed"
        with open_store(load_config(config).state_url).session() as s:
            assert s.get(StateLock, "state") is None


def stall(process: psutil.Process, seconds: float) -> None:
    """Freeze a process (as a VM pause or a swapped-out machine would) past its lease."""
    process.send_signal(signal.SIGSTOP)
    time.sleep(seconds)  # the stall itself is what is tested, not a wait for readiness
    process.send_signal(signal.SIGCONT)


def test_a_worker_stalled_past_its_lease_neither_doubles_nor_hangs(
    tmp_path: Path, dovecot: DovecotServer
) -> None:
    """A worker frozen past its lease loses its owner to its sibling; when it wakes it
    writes nothing more of it, and the run ends with every message exactly once."""
    tenant = Tenant.generate(TenantSpec(seed=43, users=3, messages=100, large_messages=0))
    faults = Faults(slow_seconds=0.1)
    with SandboxServer(tenant, tls=True, limits=Limits(enabled=False), faults=faults) as sandbox:
        logins = {user.upn: dovecot.new_user() for user in tenant.users}
        config = write_config(
            tmp_path, sandbox, dovecot, logins, run_extra="workers = 2\nlease_seconds = 3"
        )
        config.write_text(
            config.read_text().replace("owner_concurrency = 4", "owner_concurrency = 1")
        )
        env = environment(sandbox, dovecot)
        state_url = load_config(config).state_url
        run = hirondelle(config, env, "run", "--json")
        poll(lambda: len(workers_of(run)) == 2, "two worker processes")
        poll(lambda: items_done(state_url) >= 15, "progress")
        frozen = next(w for w in workers_of(run) if holds_a_job(state_url, w.pid))
        stall(frozen, 8)
        _, err = run.communicate(timeout=DEADLINE)
        assert run.returncode == 0, err.decode()[-3000:]
        sandbox.set_faults(Faults())
        expected = sum(
            len(tenant.messages(u.id, f.id))
            for u in tenant.users
            for f in tenant.folders(u.id)
            if not f.hidden
        )
        assert assert_same(tenant, config, dovecot, logins) == expected


def test_a_lone_worker_stalled_past_its_lease_takes_its_owners_back(tmp_path: Path) -> None:
    """Nobody else to take over: the worker that woke up claims its owners again."""
    from harness import SECRET_ENV, source_table

    tenant = Tenant.generate(TenantSpec(seed=47, users=2, messages=80, large_messages=0))
    with SandboxServer(
        tenant, tls=True, limits=Limits(enabled=False), faults=Faults(slow_seconds=0.05)
    ) as sandbox:
        config = tmp_path / "hirondelle.toml"
        config.write_text(
            f"""{source_table(sandbox)}
[run]
workers = 1
lease_seconds = 2

[targets.mail]
kind = "archive"
path = "archive"
"""
        )
        state_url = load_config(config).state_url
        run = hirondelle(config, {SECRET_ENV: sandbox.client_secret}, "run", "--json")
        poll(lambda: items_done(state_url) >= 10, "progress")
        for _ in range(4):
            stall(psutil.Process(run.pid), 4)
            time.sleep(0.5)  # let it run a moment between two stalls
        out, err = run.communicate(timeout=DEADLINE)
        assert run.returncode == 0, err.decode()[-3000:]
        copied = json.loads(out)["workloads"]["mail"]["copied"]
        stored = sum(1 for _ in (tmp_path / "archive").rglob("cur/*"))
        assert stored == 160 - sum(
            len(tenant.messages(u.id, f.id))
            for u in tenant.users
            for f in tenant.folders(u.id)
            if f.hidden
        ), (stored, copied)
