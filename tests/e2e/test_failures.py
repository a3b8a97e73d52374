"""Failures that must stay visible: a target that refuses items, a target that goes away,
one user's login refused. Real servers (Apache mod_dav, Dovecot), the sandbox as Graph."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import Setup, small_tenant
from harness import assert_same, environment, write_config
from test_files import drives_setup, source_hashes, target_hashes

from hirondelle.cli import main
from hirondelle.migrator import operations
from hirondelle.migrator.config import load_config
from hirondelle.migrator.coordinator import RunResult
from hirondelle.sandbox.faults import Faults
from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import Tenant, TenantSpec
from hirondelle.tests.servers import ApacheDavServer, DovecotServer, WebDavServer, dovecot_server

REFUSED = r"\.txt"  # the sandbox drive's "Notes de réunion NN.txt" files


@pytest.fixture
def refusing_dav() -> Iterator[ApacheDavServer]:
    """An Apache mod_dav of this test's own that answers 403 to writes of *.txt files."""
    server = ApacheDavServer(spare_users=2)
    server.refuse = REFUSED
    with server:
        yield server


def test_a_refused_write_stays_failed_until_a_later_run_writes_it(
    tmp_path: Path, refusing_dav: ApacheDavServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = TenantSpec(
        seed=23,
        users=1,
        messages=2,
        large_messages=0,
        files_per_drive=24,
        large_file_bytes=2 * 1024 * 1024,
    )
    for setup in drives_setup(tmp_path, refusing_dav, spec):
        for name, value in setup.env.items():
            monkeypatch.setenv(name, value)
        refused = sum(1 for name in _file_names(setup.tenant) if name.endswith(".txt"))
        assert refused >= 2
        config = load_config(setup.config_path)
        first = asyncio.run(operations.migrate(config, "run", workers=1))
        assert not first.ok
        assert first.tallies["files"].failed == refused
        assert first.outstanding["files"].failed_items == refused
        report = asyncio.run(operations.check(config))["files"]
        assert not report.verified and report.failed == refused
        lines = [json.loads(x) for f in (tmp_path / "audit").glob("*.jsonl") for x in f.open()]
        failed = [line for line in lines if line["result"] == "failed"]
        assert failed and all(line["path"].endswith(".txt") for line in failed)  # readable
        reasons = [reason for c in report.containers for _, reason in c.skipped]
        assert not [r for r in reasons if "refused" in r]  # a refusal is never a skip
        assert len(reasons) == first.tallies["files"].skipped  # declared ones only

        # A later run with nothing new still says what is missing, and exits 1.
        again = CliRunner().invoke(main, ["-c", str(setup.config_path), "run", "--workers", "1"])
        assert again.exit_code == 1, again.output
        assert flat(f"{refused} items failed") in flat(again.output)
        assert "Traceback" not in again.output
        # the run's log lines are kept beside its audit log, for this user only
        (log_file,) = [
            line.split(": ", 1)[1]
            for line in again.output.splitlines()
            if line.startswith("log file: ")
        ]
        log_path = Path(log_file)
        assert log_path.parent == tmp_path / "audit" and log_path.suffix == ".log"
        assert log_path.stat().st_mode & 0o777 == 0o600
        logged = log_path.read_text(encoding="utf-8")
        assert "(run): 1 owner jobs queued" in logged and "(run) ends: incomplete" in logged

        refusing_dav.restart(refuse=None)  # the server takes them now
        last = asyncio.run(operations.migrate(config, "run", workers=1))
        assert last.ok, last.as_dict()
        assert last.tallies["files"].copied == refused
        assert target_hashes(refusing_dav, setup.user.login) == source_hashes(setup.tenant)
        assert asyncio.run(operations.check(config))["files"].verified


def flat(text: str) -> str:
    """The text without whitespace: the console wraps long lines wherever it likes."""
    return "".join(text.split())


def _file_names(tenant: Tenant) -> list[str]:
    drives = tenant.drives
    drive_id = drives.user_drives[tenant.users[0].upn.lower()]
    return [i.name for i in drives.items(drive_id) if i.kind == "file"]


class _Said(logging.Handler):
    """Collects what the engine logs, so a test can wait for a moment of the run."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def wait_for(self, text: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not any(text in line for line in self.lines):
            assert time.monotonic() < deadline, f"never logged {text!r}: {self.lines}"
            time.sleep(0.02)


@pytest.fixture
def said() -> Iterator[_Said]:
    handler = _Said()
    logger = logging.getLogger("hirondelle")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def own_dovecot() -> Iterator[DovecotServer]:
    """A Dovecot of this test's own, to bring down and up again."""
    with dovecot_server(spare_users=4) as server:
        yield server


def test_a_target_down_for_a_while_is_waited_for(
    tmp_path: Path,
    own_dovecot: DovecotServer,
    said: _Said,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant = small_tenant(seed=29, messages=30)
    with SandboxServer(tenant, tls=True, limits=Limits(enabled=False)) as sandbox:
        logins = {user.upn: own_dovecot.new_user() for user in tenant.users}
        path = write_config(
            tmp_path, sandbox, own_dovecot, logins, run_extra="target_wait_seconds = 120"
        )
        for name, value in environment(sandbox, own_dovecot).items():
            monkeypatch.setenv(name, value)
        config = load_config(path)
        own_dovecot.pause()
        results: list[RunResult | BaseException] = []

        def run() -> None:
            try:
                results.append(asyncio.run(operations.migrate(config, "run", workers=1)))
            except BaseException as exc:  # noqa: BLE001 - asserted below
                results.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        try:
            said.wait_for("cannot be reached", 60)
        finally:
            own_dovecot.resume()
            thread.join(timeout=300)
        (result,) = results
        assert isinstance(result, RunResult), result
        assert result.ok, result.as_dict()
        assert any("answers again" in line for line in said.lines)
        assert_same(tenant, path, own_dovecot, logins)


def test_a_target_down_past_the_wait_fails_every_owner_with_the_reason(
    tmp_path: Path, own_dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = small_tenant(seed=31, messages=10)
    with SandboxServer(tenant, tls=True, limits=Limits(enabled=False)) as sandbox:
        logins = {user.upn: own_dovecot.new_user() for user in tenant.users}
        path = write_config(
            tmp_path, sandbox, own_dovecot, logins, run_extra="target_wait_seconds = 2"
        )
        for name, value in environment(sandbox, own_dovecot).items():
            monkeypatch.setenv(name, value)
        own_dovecot.pause()
        try:
            outcome = CliRunner().invoke(main, ["-c", str(path), "run", "--workers", "1"])
        finally:
            own_dovecot.resume()
        assert outcome.exit_code == 3, outcome.output
        assert flat("no owner could be moved") in flat(outcome.output)
        assert flat("stayed unreachable") in flat(outcome.output)
        assert "Traceback" not in outcome.output
        # Once it is back, the same command carries everything.
        config = load_config(path)
        assert asyncio.run(operations.migrate(config, "run", workers=1)).ok
        assert_same(tenant, path, own_dovecot, logins)


def test_one_users_refused_login_fails_that_owner_only(
    tmp_path: Path, own_dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = small_tenant(seed=37, messages=10)
    with SandboxServer(tenant, tls=True, limits=Limits(enabled=False)) as sandbox:
        logins = {user.upn: own_dovecot.new_user() for user in tenant.users}
        path = write_config(tmp_path, sandbox, own_dovecot, logins)
        (bad_upn, bad), (good_upn, good) = sorted(logins.items())
        passwords = tmp_path / "imap-passwords.txt"
        passwords.write_text(f"{bad.login}:wrong-password\n{good.login}:{good.password}\n")
        passwords.chmod(0o600)
        text = path.read_text()
        start = text.index("master_user")
        path.write_text(text[:start] + f'password_file = "{passwords}"\n')
        for name, value in environment(sandbox, own_dovecot).items():
            monkeypatch.setenv(name, value)
        outcome = CliRunner().invoke(main, ["-c", str(path), "run", "--workers", "1"])
        assert outcome.exit_code == 1, outcome.output
        assert flat(f"owner failed: {bad_upn}: IMAP login refused for {bad.login}") in flat(
            outcome.output
        )
        assert "Traceback" not in outcome.output
        assert_same(tenant, path, own_dovecot, {good_upn: good})


def test_a_deleted_state_adopts_what_the_target_holds(setup: Setup) -> None:
    """The state removed after a run: the next run looks each item up, writes nothing twice."""
    config = load_config(setup.config_path)
    first = asyncio.run(operations.migrate(config, "run", workers=1))
    assert first.ok
    count = assert_same(setup.tenant, setup.config_path, setup.server, setup.logins)
    state = setup.config_path.parent / "state" / "hirondelle.sqlite"
    for leftover in state.parent.glob("hirondelle.sqlite*"):
        leftover.unlink()
    again = asyncio.run(operations.migrate(config, "run", workers=1))
    assert again.ok and again.tallies["mail"].copied == count  # each one found, not written
    assert assert_same(setup.tenant, setup.config_path, setup.server, setup.logins) == count
    state.write_bytes(b"")  # emptied, as a careless copy would leave it
    assert asyncio.run(operations.migrate(config, "run", workers=1)).ok
    assert assert_same(setup.tenant, setup.config_path, setup.server, setup.logins) == count


def test_a_deleted_state_writes_no_second_copy_of_the_files(
    tmp_path: Path, rclone_dav: WebDavServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = TenantSpec(
        seed=41, users=1, messages=2, large_messages=0, files_per_drive=20, large_file_bytes=1 << 20
    )
    for setup in drives_setup(tmp_path, rclone_dav, spec):
        for name, value in setup.env.items():
            monkeypatch.setenv(name, value)
        config = load_config(setup.config_path)
        assert asyncio.run(operations.migrate(config, "run", workers=1)).ok
        for leftover in (tmp_path / "state").glob("hirondelle.sqlite*"):
            leftover.unlink()
        assert asyncio.run(operations.migrate(config, "run", workers=1)).ok
        assert target_hashes(rclone_dav, setup.user.login) == source_hashes(setup.tenant)


def test_a_token_revoked_mid_run_is_renewed_not_fatal(setup: Setup) -> None:
    config = load_config(setup.config_path)
    setup.sandbox.set_faults(Faults(slow_seconds=0.02))
    results: list[RunResult | BaseException] = []

    def run() -> None:
        try:
            results.append(asyncio.run(operations.migrate(config, "run", workers=1)))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            results.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 60
    while setup.sandbox.stats()["requests"] < 30:
        assert time.monotonic() < deadline and thread.is_alive(), results
        time.sleep(0.02)
    assert setup.sandbox.revoke_tokens() >= 1
    thread.join(timeout=300)
    (result,) = results
    assert isinstance(result, RunResult), result
    assert result.ok, result.as_dict()
    assert setup.sandbox.stats()["unauthorized"] >= 1  # the revoked token was refused
    assert_same(setup.tenant, setup.config_path, setup.server, setup.logins)


def test_doctor_logs_in_as_every_owner_and_says_who_cannot(
    tmp_path: Path, own_dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = small_tenant(seed=43, messages=4)
    with SandboxServer(tenant, tls=True, limits=Limits(enabled=False)) as sandbox:
        logins = {user.upn: own_dovecot.new_user() for user in tenant.users}
        path = write_config(tmp_path, sandbox, own_dovecot, logins)
        for name, value in environment(sandbox, own_dovecot).items():
            monkeypatch.setenv(name, value)
        (first, one), (_, two) = sorted(logins.items())
        path.write_text(path.read_text() + f'probe_login = "{one.login}"\n')
        good = CliRunner().invoke(main, ["-c", str(path), "doctor"])
        assert good.exit_code == 0, good.output
        assert flat("target logins: mail: all 2 owners can log in") in flat(good.output)
        passwords = tmp_path / "imap-passwords.txt"
        passwords.write_text(f"{two.login}:{two.password}\n")  # covers one user of two
        passwords.chmod(0o600)
        text = path.read_text()
        path.write_text(
            text[: text.index("master_user")]
            + f'password_file = "{passwords}"\nprobe_login = "{two.login}"\n'
        )
        bad = CliRunner().invoke(main, ["-c", str(path), "doctor"])
        assert bad.exit_code == 3, bad.output
        assert flat(f"1 of 2 owners cannot: {first}: no password for {one.login}") in flat(
            bad.output
        )
        assert "Traceback" not in bad.output


def test_a_state_pointed_at_another_target_is_refused(setup: Setup, tmp_path: Path) -> None:
    """Its items were written to one server: another one would be told they are done."""
    config = load_config(setup.config_path)
    assert asyncio.run(operations.migrate(config, "run", workers=1)).ok
    text = setup.config_path.read_text()
    setup.config_path.write_text(text.replace('host = "127.0.0.1"', 'host = "localhost"'))
    outcome = CliRunner().invoke(main, ["-c", str(setup.config_path), "run"])
    assert outcome.exit_code == 2, outcome.output
    assert flat("targets.mail: this state (state.url) was written to imap:") in flat(outcome.output)
    assert "Traceback" not in outcome.output
    setup.config_path.write_text(text)  # the old target back: the state is usable again
    assert asyncio.run(operations.migrate(config, "run", workers=1)).ok
