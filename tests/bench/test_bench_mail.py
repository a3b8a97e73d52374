"""The mail benchmark's parts: banner parsing, budget arithmetic, configs, the mbsync peer."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from hirondelle.bench._hirondelle import Budget, BudgetWatch, write_config
from hirondelle.bench._mail_floor import flags, internal_date
from hirondelle.bench._peer import folder_names, mbsync_configs, populate, run_mbsync
from hirondelle.bench._servers import (
    BenchError,
    SandboxEndpoint,
    SandboxProcess,
    SandboxShape,
    message_count,
    parse_banner,
    start_dovecot,
)
from hirondelle.bench.mail import parse_args, run_floor
from hirondelle.mappings.mail_folders import imap_utf7_decode
from hirondelle.migrator.config import load_config
from hirondelle.sandbox.tenant import Tenant, TenantSpec

BANNER = [
    "Graph URL:      https://127.0.0.1:40123/v1.0\n",
    "Authority:      127.0.0.1:40123\n",
    "CA file:        sandbox-x/ca.pem\n",
    "Tenant id:      11111111-2222-3333-4444-555555555555\n",
    "Client id:      66666666-7777-8888-9999-000000000000\n",
    "Client secret:  s3cret-value  (a fixed public test value)\n",
    "App cert + key: sandbox-x/app.pem\n",
]
needs_servers = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("mbsync") or not Path("/usr/sbin/dovecot").exists(),
    reason="needs root, Dovecot (dovecot-imapd) and mbsync (isync)",
)


def endpoint() -> SandboxEndpoint:
    return parse_banner(BANNER)


def test_banner_gives_the_endpoint_and_hides_the_secret() -> None:
    parsed = endpoint()
    assert parsed.graph_url == "https://127.0.0.1:40123/v1.0"
    assert parsed.base_url == "https://127.0.0.1:40123"
    assert parsed.client_secret == "s3cret-value"
    assert "s3cret" not in repr(parsed)


def test_banner_without_a_secret_or_over_http_is_refused() -> None:
    with pytest.raises(BenchError, match="client_secret"):
        parse_banner([line for line in BANNER if "secret" not in line])
    plain = [line.replace("https://", "http://") for line in BANNER]
    with pytest.raises(BenchError, match="HTTPS"):
        parse_banner(plain)


def test_shape_turns_throttling_off_or_scales_it() -> None:
    assert SandboxShape(2, 10).argv()[-1] == "--no-throttle"
    assert SandboxShape(2, 10, scale=0.02).argv()[-2:] == ["--scale", "0.02"]


def test_budget_is_scaled_like_the_sandbox() -> None:
    budget = Budget.scaled(0.02)
    assert (budget.requests, budget.seconds) == (200, 12.0)
    assert budget.rate == pytest.approx(10_000 / 600)


def test_budget_figures_from_the_sandbox_counters() -> None:
    watch = BudgetWatch()
    watch.observe({"by_mailbox": {"a": {"requests": 10, "throttled": 0}}}, now=100.0)
    watch.observe({"by_mailbox": {"a": {"requests": 110, "throttled": 2}}}, now=106.0)
    watch.observe({"by_mailbox": {"a": {"requests": 110, "throttled": 2}}}, now=109.0)
    figures = watch.figures(Budget(requests=120, seconds=6.0))  # 20 requests/s
    assert figures["budget_span_s"] == 6.0  # the last change, not the last poll
    assert figures["budget_used"] == pytest.approx(108 / (20 * 6.0), abs=1e-3)
    assert figures["budget_used_of_window_max"] == pytest.approx(108 / (120 + 120), abs=1e-3)
    assert figures["throttled_share"] == pytest.approx(2 / 110, abs=1e-4)


def test_budget_figures_need_some_traffic() -> None:
    with pytest.raises(BenchError):
        BudgetWatch().figures(Budget(200, 12.0))


def test_config_is_one_hirondelle_reads_without_secrets(tmp_path: Path) -> None:
    target: Any = SimpleNamespace(
        host="127.0.0.1", port=10143, master_user="admin", master_password="master-pw"
    )
    path = write_config(tmp_path, endpoint(), target, 8, budget=Budget.scaled(0.02))
    text = path.read_text(encoding="utf-8")
    assert "s3cret" not in text and "master-pw" not in text
    config = load_config(path)
    assert config.budget.requests_per_window == 200
    assert config.budget.window_seconds == 12.0
    assert config.owner_concurrency == 8
    assert config.targets["mail"].options["security"] == "plain"


def test_mbsync_configs_read_the_password_through_passcmd(tmp_path: Path) -> None:
    server: Any = SimpleNamespace(host="127.0.0.1", port=10143, master_user="admin")
    password = tmp_path / "pw"
    configs = mbsync_configs(tmp_path / "rc", ["a@x.test", "b@x.test"], server, server, password)
    assert len(configs) == 2
    text = configs[1].read_text(encoding="utf-8")
    assert f'PassCmd "cat {password}"' in text
    assert "User b@x.test*admin" in text and "SSLType None" in text
    assert oct(configs[1].stat().st_mode & 0o777) == "0o600"
    with pytest.raises(BenchError):
        mbsync_configs(tmp_path / "rc", ["a@x.test"], server, server, tmp_path / "a b")


def test_folder_names_cover_the_visible_folders_only() -> None:
    tenant = Tenant.generate(TenantSpec(users=1, messages=30, large_messages=0))
    user = tenant.users[0]
    names = folder_names(tenant, user)
    visible = [f for f in tenant.folders(user.id) if not f.hidden]
    assert len(names) == len(visible)
    assert "INBOX" in names.values()
    assert all(name.isascii() and "." not in name for name in names.values())


def test_sandbox_process_prints_what_the_benchmark_parses(tmp_path: Path) -> None:
    sandbox = SandboxProcess(SandboxShape(users=1, messages=3), tmp_path / "sandbox.log")
    try:
        parsed = sandbox.start()
        assert Path(parsed.ca_file).exists()
        assert sandbox.stats()["requests"] == 0
    finally:
        sandbox.stop()
    assert sandbox.process is not None and sandbox.process.returncode is not None
    assert parsed.client_secret not in (tmp_path / "sandbox.log").read_text(encoding="utf-8")


@needs_servers
def test_mbsync_copies_every_populated_message(tmp_path: Path) -> None:
    tenant = Tenant.generate(TenantSpec(users=2, messages=25, large_messages=0))
    logins = [user.upn for user in tenant.users]
    source, target = start_dovecot(logins, "pw"), start_dovecot(logins, "pw")
    try:
        count, size = populate(source, tenant)
        assert count == 50 and size > 0
        password = tmp_path / "master"
        password.write_text(source.master_password + "\n", encoding="utf-8")
        password.chmod(0o600)
        configs = mbsync_configs(tmp_path / "rc", logins, source, target, password)
        run = run_mbsync(configs, 2, tmp_path)
        assert run.failures == 0
        assert sum(message_count(target, login)[0] for login in logins) == 50
    finally:
        source.stop()
        target.stop()


def test_floor_gives_imap_its_dates_and_flags() -> None:
    assert internal_date("2024-05-01T10:20:30Z") == ' "01-May-2024 10:20:30 +0000"'
    assert internal_date(None) == ""
    listed = {"isRead": True, "isDraft": True, "flag": {"flagStatus": "flagged"}}
    assert flags(listed) == "(\\Seen \\Flagged \\Draft)"
    assert flags({"flag": {"flagStatus": "complete"}}) == "()"


def test_the_floor_runs_unless_told_not_to() -> None:
    assert not parse_args(["--quick"]).no_floor
    assert parse_args(["--quick", "--no-floor"]).no_floor


@needs_servers
def test_floor_copies_every_visible_message_as_served(tmp_path: Path) -> None:
    tenant = Tenant.generate(TenantSpec(users=2, messages=60, large_messages=0))
    logins = [user.upn for user in tenant.users]
    sandbox = SandboxProcess(SandboxShape(users=2, messages=60), tmp_path / "sandbox.log")
    target = start_dovecot(logins, "pw")
    try:
        endpoint = sandbox.start()
        floor = run_floor(endpoint, target, logins, 2, 1, tmp_path / "floor", 120.0)
        expected = 0
        for user in tenant.users:
            for folder_id, name in folder_names(tenant, user).items():
                served = tenant.messages(user.id, folder_id)
                stored = target.read_mailbox(user.upn, imap_utf7_decode(name))
                assert sorted(m.content for m in stored) == sorted(
                    tenant.mime(user.id, m.id) for m in served
                )
                assert sorted(("\\Seen" in m.flags) for m in stored) == sorted(
                    m.is_read for m in served
                )
                expected += len(served)
        assert (floor.appended, floor.failed) == (expected, 0)
        assert floor.finished.cpu_seconds > 0
    finally:
        sandbox.stop()
        target.stop()
