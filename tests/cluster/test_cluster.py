"""A cluster on one machine, as if on several: real `hirondelle worker` processes (Celery
nodes named for two machines), Redis as the broker, PostgreSQL as the state.

- every workload split across two workers, then `verify` clean and a `sync`;
- kill -9 of a worker in the middle of a mailbox: the other takes it over once its lease
  expires, nothing lost or doubled; meanwhile a second `run` from another folder over the
  same state is refused (exit 4);
- a broker restart during a detached run: what Redis lost is sent again, the workers
  finish the run on their own;
- RabbitMQ as the broker: only the URL differs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from harness import MASTER_ENV, SECRET_ENV, assert_same, source_table, write_config

from hirondelle.sandbox.faults import Faults
from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import Mutation, Tenant, TenantSpec
from hirondelle.state.schema import Job, WorkerRow
from hirondelle.state.store import open_store
from hirondelle.tests.servers import (
    SYNAPSE_AS_TOKEN,
    DovecotServer,
    MailUser,
    PostgresServer,
    RedisServer,
    SynapseServer,
    dovecot_server,
    rabbitmq_server,
    radicale_server,
)

DEADLINE = 240.0
AS_TOKEN_ENV = "HIRONDELLE_TEST_AS_TOKEN"
LEASE = 3


def poll(condition: Callable[[], object], what: str, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


STARTED: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def no_command_left_behind() -> Iterator[None]:
    """A failed test leaves no hirondelle command running."""
    yield
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def cli(config: Path, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "hirondelle.cli", "-c", str(config), *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    STARTED.append(process)
    return process


def finished(process: subprocess.Popen[bytes], timeout: float = DEADLINE) -> tuple[str, str]:
    out, err = process.communicate(timeout=timeout)
    return out.decode(), err.decode()


def cluster_table(redis: RedisServer) -> str:
    return f'\n[cluster]\nbroker_url = "{redis.url}"\n'


class Workers:
    """`hirondelle worker` processes, each a Celery node named for a machine of its own."""

    def __init__(self, config: Path, env: dict[str, str], logs: Path) -> None:
        self.config, self.env, self.logs = config, env, logs
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        log = open(self.logs / f"{name}.log", "wb")  # closed by the child
        self.processes[name] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hirondelle.cli",
                "-c",
                str(self.config),
                "-v",
                "worker",
                "--processes",
                "1",
                "--name",
                name,
                "--owners",
                "2",
            ],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        url = _state_url(self.config)
        base = name.split("@")[0]
        poll(lambda: _registered(url, base), f"worker {name} to start", 60)

    def kill(self, name: str) -> None:
        self.processes[name].send_signal(signal.SIGKILL)
        self.processes[name].wait(timeout=30)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]


@contextmanager
def workers(config: Path, env: dict[str, str], logs: Path, *names: str) -> Iterator[Workers]:
    pool = Workers(config, env, logs)
    try:
        for name in names:
            pool.start(name)
        yield pool
    finally:
        pool.stop()


def _state_url(config: Path) -> str:
    from hirondelle.migrator.config import load_config

    return load_config(config).state_url


def _registered(url: str, base: str) -> bool:
    store = open_store(url)
    try:
        with store.session() as s:
            return any(row.id.startswith(f"{base}@") for row in s.query(WorkerRow))
    finally:
        store.engine.dispose()


def jobs_of(url: str) -> list[Job]:
    store = open_store(url)
    try:
        with store.session() as s:
            return list(s.query(Job).order_by(Job.id))
    finally:
        store.engine.dispose()


# -- every workload, two machines --------------------------------------------------------


def test_every_workload_split_across_two_workers_then_verify_and_sync(
    tmp_path: Path, postgres: PostgresServer, redis: RedisServer, synapse: SynapseServer
) -> None:
    spec = TenantSpec(
        seed=53,
        users=2,
        messages=25,
        large_messages=0,
        teams=1,
        posts_per_channel=4,
        replies_per_post=1,
        files_per_drive=5,
        large_file_bytes=0,
    )
    tenant = Tenant.generate(spec)
    passwords = {user.upn: f"pw-{uuid.uuid4().hex}" for user in tenant.users}
    with (
        SandboxServer(tenant, tls=True, limits=Limits(enabled=False)) as sandbox,
        dovecot_server(passwords) as dovecot,
        radicale_server() as radicale,
    ):
        for upn, password in passwords.items():
            radicale.add_user(upn, password)
        dav_passwords = tmp_path / "dav-passwords.txt"
        dav_passwords.write_text("".join(f"{u}:{p}\n" for u, p in passwords.items()))
        dav_passwords.chmod(0o600)
        prefix = f"m365_{uuid.uuid4().hex[:8]}_"
        config = tmp_path / "hirondelle.toml"
        config.write_text(
            f"""{source_table(sandbox)}
[state]
url = "{postgres.new_database()}"

[run]
lease_seconds = {LEASE}
calendar_window_start = "2023-01-01"
calendar_window_end = "2027-12-31"
{cluster_table(redis)}
[targets.mail]
kind = "imap"
host = "127.0.0.1"
port = {dovecot.port}
security = "plain"
master_user = "{dovecot.master_user}"
master_password_env = "{MASTER_ENV}"

[targets.calendar]
kind = "caldav"
url = "{radicale.url}"
password_file = "{dav_passwords}"

[targets.contacts]
kind = "carddav"
url = "{radicale.url}"
password_file = "{dav_passwords}"

[targets.files]
kind = "archive"
path = "archive/files"

[targets.chat]
kind = "matrix"
homeserver = "{synapse.url}"
server_name = "{synapse.server_name}"
room_alias_prefix = "{prefix}"
as_token_env = "{AS_TOKEN_ENV}"
"""
        )
        env = {
            SECRET_ENV: sandbox.client_secret,
            MASTER_ENV: dovecot.master_password,
            AS_TOKEN_ENV: SYNAPSE_AS_TOKEN,
        }
        with workers(config, env, tmp_path, "a@machine-a", "b@machine-b") as pool:
            out, err = finished(cli(config, env, "run", "--json"))
            summary = json.loads(out)
            assert summary["workers"] == 2, out
            assert not summary.get("detached")
            for name, tally in summary["workloads"].items():
                assert tally["copied"] > 0 and not tally["failed"], (name, tally, err[-2000:])
            holders = {
                (job.holder or "").split("@")[1].split("#")[0]
                for job in jobs_of(_state_url(config))
            }
            assert holders == {"machine-a", "machine-b"}, pool.log("a@machine-a")
            verify = cli(config, env, "verify")
            out, err = finished(verify)
            assert verify.returncode == 0, out[-3000:] + err[-2000:]
            logins = {upn: MailUser(upn, pw) for upn, pw in passwords.items()}
            assert assert_same(tenant, config, dovecot, logins) > 0

            sandbox.mutate(
                Mutation(
                    seed=54,
                    new=4,
                    flag_changes=3,
                    moves=2,
                    deletions=2,
                    new_events=1,
                    new_contacts=1,
                    file_creates=2,
                    chat_posts=2,
                )
            )
            sync = cli(config, env, "sync", "--json")
            out, err = finished(sync)
            assert sync.returncode == 0, err[-3000:]
            assert json.loads(out)["workloads"]["mail"]["copied"] >= 4
            verify = cli(config, env, "verify")
            out, err = finished(verify)
            assert verify.returncode == 0, out[-3000:] + err[-2000:]
            assert assert_same(tenant, config, dovecot, logins) > 0


# -- a worker lost in the middle of a mailbox ---------------------------------------------


def mail_cluster(
    tmp_path: Path,
    sandbox: SandboxServer,
    dovecot: DovecotServer,
    postgres: PostgresServer,
    redis: RedisServer | None,
    folder: str = "one",
    state_url: str | None = None,
    cluster: str | None = None,
) -> tuple[Path, dict[str, MailUser], dict[str, str]]:
    directory = tmp_path / folder
    directory.mkdir()
    logins = {user.upn: dovecot.new_user() for user in sandbox.tenant.users}
    config = write_config(directory, sandbox, dovecot, logins, run_extra=f"lease_seconds = {LEASE}")
    url = state_url or postgres.new_database()
    text = config.read_text().replace('url = "sqlite:///state/hirondelle.sqlite"', f'url = "{url}"')
    if cluster is None:
        assert redis is not None
        cluster = cluster_table(redis)
    config.write_text(text.replace("owner_concurrency = 4", "owner_concurrency = 1") + cluster)
    env = {SECRET_ENV: sandbox.client_secret, MASTER_ENV: dovecot.master_password}
    return config, logins, env


def busy_mailbox(url: str) -> Job | None:
    """A mailbox some worker is in the middle of."""
    for job in jobs_of(url):
        if job.status == "running" and job.items_done > 10:
            return job
    return None


def machine_of(job: Job) -> str:
    return (job.holder or "").split("@")[1].split("#")[0]


def test_a_worker_killed_mid_mailbox_is_taken_over_after_its_lease(
    tmp_path: Path, dovecot: DovecotServer, postgres: PostgresServer, redis: RedisServer
) -> None:
    tenant = Tenant.generate(TenantSpec(seed=61, users=2, messages=150, large_messages=0))
    faults = Faults(slow_seconds=0.1)  # stretch each mailbox so the kill lands inside one
    with SandboxServer(tenant, tls=True, limits=Limits(enabled=False), faults=faults) as sandbox:
        config, logins, env = mail_cluster(tmp_path, sandbox, dovecot, postgres, redis)
        url = _state_url(config)
        with workers(config, env, tmp_path, "a@machine-a", "b@machine-b") as pool:
            run = cli(config, env, "run", "--json")
            poll(lambda: busy_mailbox(url) is not None, "a worker to be inside a mailbox")
            victim = busy_mailbox(url)
            assert victim is not None
            lost = machine_of(victim)
            heir = "machine-b" if lost == "machine-a" else "machine-a"
            # Meanwhile, a second run from another folder over the same state is refused.
            other, _, other_env = mail_cluster(
                tmp_path, sandbox, dovecot, postgres, redis, folder="two", state_url=url
            )
            refused = cli(other, other_env, "sync")
            _, err = finished(refused, 60)
            assert refused.returncode == 4, err
            assert "another hirondelle run holds this state: `run` (run 1)" in err
            killed_at = time.monotonic()
            pool.kill(f"{lost[-1]}@{lost}")
            out, err = finished(run)
            assert run.returncode == 0, err[-3000:] + pool.log(f"{heir[-1]}@{heir}")
            again = next(job for job in jobs_of(url) if job.id == victim.id)
            assert again.status == "finished" and again.attempts == 2
            assert machine_of(again) == heir
            assert time.monotonic() - killed_at >= LEASE  # taken over only once expired
        sandbox.set_faults(Faults())
        assert assert_same(tenant, config, dovecot, logins) == 2 * 150 - _hidden(tenant)


def _hidden(tenant: Tenant) -> int:
    """Messages of hidden folders (not carried)."""
    return sum(
        len(tenant.messages(user.id, folder.id))
        for user in tenant.users
        for folder in tenant.folders(user.id)
        if folder.hidden
    )


# -- the broker restarts under a detached run ----------------------------------------------


def test_a_broker_restart_during_a_detached_run(
    tmp_path: Path, dovecot: DovecotServer, postgres: PostgresServer, redis: RedisServer
) -> None:
    tenant = Tenant.generate(TenantSpec(seed=67, users=4, messages=60, large_messages=0))
    faults = Faults(slow_seconds=0.05)
    with SandboxServer(tenant, tls=True, limits=Limits(enabled=False), faults=faults) as sandbox:
        config, logins, env = mail_cluster(tmp_path, sandbox, dovecot, postgres, redis)
        url = _state_url(config)
        with workers(config, env, tmp_path, "a@machine-a", "b@machine-b") as pool:
            detached = cli(config, env, "run", "--detach", "--json")
            out, err = finished(detached, 120)
            assert detached.returncode == 0, err
            assert json.loads(out)["detached"] is True
            poll(lambda: any(job.items_done > 5 for job in jobs_of(url)), "the first mailbox")
            redis.restart()  # the queued tasks are lost with it

            def done() -> bool:
                check = cli(config, env, "status", "--json")
                out, _ = finished(check, 60)
                return json.loads(out)["runs"][0]["status"] == "done"

            poll(done, "the workers to finish the run", DEADLINE)
            status = json.loads(finished(cli(config, env, "status", "--json"), 60)[0])
            assert status["run"]["jobs"] == {"finished": 4}, pool.log("a@machine-a")
        sandbox.set_faults(Faults())
        assert assert_same(tenant, config, dovecot, logins) == 4 * 60 - _hidden(tenant)


# -- RabbitMQ instead of Redis ------------------------------------------------------------


def test_rabbitmq_serves_as_the_broker_as_well(
    tmp_path: Path, dovecot: DovecotServer, postgres: PostgresServer
) -> None:
    """Only the broker URL differs; its password comes from the environment."""
    tenant = Tenant.generate(TenantSpec(seed=73, users=2, messages=20, large_messages=0))
    with (
        rabbitmq_server() as rabbit,
        SandboxServer(tenant, tls=True, limits=Limits(enabled=False)) as sandbox,
    ):
        table = (
            f'\n[cluster]\nbroker_url = "{rabbit.url()}"\n'
            'broker_password_env = "HIRONDELLE_TEST_BROKER_PASSWORD"\n'
        )
        config, logins, env = mail_cluster(
            tmp_path, sandbox, dovecot, postgres, None, cluster=table
        )
        env["HIRONDELLE_TEST_BROKER_PASSWORD"] = "guest"
        with workers(config, env, tmp_path, "a@machine-a", "b@machine-b") as pool:
            run = cli(config, env, "run", "--json")
            out, err = finished(run)
            assert run.returncode == 0, err[-3000:] + pool.log("a@machine-a")
            assert json.loads(out)["workloads"]["mail"]["copied"] == 40 - _hidden(tenant)
        assert assert_same(tenant, config, dovecot, logins) == 40 - _hidden(tenant)
