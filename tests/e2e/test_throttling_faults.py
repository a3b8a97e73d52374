"""Graph's limits and a flaky network: the run still carries everything, once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from conftest import small_tenant
from harness import assert_same, environment, write_config

from hirondelle.migrator import operations
from hirondelle.migrator.config import load_config
from hirondelle.sandbox.faults import Faults
from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.tests.servers import DovecotServer

# A 100-request, 6-second window per mailbox: Outlook's rate shrunk for a test.
WINDOW = Limits(concurrency=4, requests_per_window=10_000, window_seconds=600.0, scale=0.01)


def run_against(
    tmp_path: Path,
    dovecot: DovecotServer,
    monkeypatch: pytest.MonkeyPatch,
    limits: Limits,
    faults: Faults,
    source_extra: str = "",
    messages: int = 60,
) -> tuple[operations.RunResult, dict[str, Any]]:
    tenant = small_tenant(seed=31, messages=messages)
    with SandboxServer(tenant, tls=True, limits=limits, faults=faults) as sandbox:
        logins = {user.upn: dovecot.new_user() for user in tenant.users}
        config_path = write_config(tmp_path, sandbox, dovecot, logins, source_extra=source_extra)
        for name, value in environment(sandbox, dovecot).items():
            monkeypatch.setenv(name, value)
        result = asyncio.run(operations.migrate(load_config(config_path), "run"))
        sandbox.set_faults(Faults())
        sandbox.set_limits(Limits(enabled=False))
        assert_same(tenant, config_path, dovecot, logins)
        return result, sandbox.stats()


def test_faults_are_retried_and_nothing_is_lost(
    tmp_path: Path, dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = Faults(error_rate=0.05, reset_rate=0.03, truncate_rate=0.1, seed=4)
    result, stats = run_against(tmp_path, dovecot, monkeypatch, Limits(enabled=False), faults)
    assert result.ok
    injected = stats["faults"]
    assert isinstance(injected, dict) and sum(injected.values()) > 5, injected


def test_a_budget_matching_the_limits_is_rarely_throttled(
    tmp_path: Path, dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = "requests_per_window = 100\nwindow_seconds = 6.0"
    result, stats = run_against(
        tmp_path, dovecot, monkeypatch, WINDOW, Faults(), extra, messages=110
    )
    assert result.ok
    requests, throttled = int(stats["requests"]), int(stats["throttled"])
    assert requests > 200  # more than one window per mailbox was needed
    assert throttled <= 0.02 * requests, stats


def test_a_budget_above_the_limits_is_throttled_and_recovers(
    tmp_path: Path, dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = "requests_per_window = 1000\nwindow_seconds = 6.0"
    result, stats = run_against(
        tmp_path, dovecot, monkeypatch, WINDOW, Faults(), extra, messages=110
    )
    assert result.ok
    assert int(stats["throttled"]) > 0, stats
