"""End-to-end helpers: a sandbox tenant, a real IMAP server (Dovecot or Cyrus), a
configuration between them,
and an exact comparison of what the tenant holds with what the target holds."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from hirondelle.migrator.config import Config, load_config
from hirondelle.sandbox.server import SandboxServer
from hirondelle.sandbox.tenant import Tenant
from hirondelle.sandbox.tenant_records import SandboxMessage
from hirondelle.state.schema import Unit
from hirondelle.state.store import open_store
from hirondelle.tests.servers import ImapReadBack, MailUser

SECRET_ENV = "HIRONDELLE_TEST_CLIENT_SECRET"
MASTER_ENV = "HIRONDELLE_TEST_IMAP_MASTER"
DEADLINE = 120.0  # for a run to make progress or end


@dataclass(frozen=True)
class Copy:
    """One message as the comparison sees it: exact bytes, flags and arrival time."""

    digest: str
    flags: frozenset[str]
    received: datetime | None


def source_table(sandbox: SandboxServer) -> str:
    """The `[source]` table of a configuration reading the sandbox."""
    return f"""[source]
tenant_id = "{sandbox.tenant_id}"
client_id = "{sandbox.client_id}"
client_secret_env = "{SECRET_ENV}"
graph_url = "{sandbox.graph_url}"
authority = "{sandbox.authority}"
ca_file = "{sandbox.ca_file}"
"""


def write_config(
    directory: Path,
    sandbox: SandboxServer,
    server: ImapReadBack,
    logins: dict[str, MailUser],
    *,
    source_extra: str = "",
    run_extra: str = "",
) -> Path:
    """A hirondelle.toml (and users.csv) from the sandbox into the IMAP server via its
    master user."""
    users = directory / "users.csv"
    users.write_text(
        "source_upn,target_login\n"
        + "".join(f"{upn},{user.login}\n" for upn, user in logins.items()),
        encoding="utf-8",
    )
    config = directory / "hirondelle.toml"
    config.write_text(
        f"""
{source_table(sandbox)}{source_extra}

[state]
url = "sqlite:///state/hirondelle.sqlite"

[users]
file = "users.csv"

[run]
owner_concurrency = 4
{run_extra}

[targets.mail]
kind = "imap"
host = "127.0.0.1"
port = {server.port}
security = "plain"
master_user = "{server.master_user}"
master_password_env = "{MASTER_ENV}"
master_login = "{server.master_login}"
""",
        encoding="utf-8",
    )
    return config


def environment(sandbox: SandboxServer, server: ImapReadBack) -> dict[str, str]:
    return {SECRET_ENV: sandbox.client_secret, MASTER_ENV: server.master_password}


def expected_flags(
    message: SandboxMessage, category_keyword: Callable[[str], str]
) -> frozenset[str]:
    flags: set[str] = set()
    if message.is_read:
        flags.add("\\Seen")
    if message.flag_status == "flagged":
        flags.add("\\Flagged")
    if message.is_draft:
        flags.add("\\Draft")
    if message.last_verb in (102, 103):
        flags.add("\\Answered")
    if message.last_verb == 104:
        flags.add("$Forwarded")
    flags.update(category_keyword(c) for c in message.categories)
    return frozenset(flags)


def source_view(tenant: Tenant, upn: str) -> dict[str, Counter[Copy]]:
    """Folder id -> the multiset of copies the target must hold for it."""
    from hirondelle.mappings.mail import category_keyword

    user = tenant.user(upn)
    view: dict[str, Counter[Copy]] = {}
    for folder in tenant.folders(user.id):
        if folder.hidden:
            continue
        view[folder.id] = Counter(
            Copy(
                hashlib.sha256(tenant.mime(user.id, m.id)).hexdigest(),
                expected_flags(m, category_keyword),
                m.received.replace(microsecond=0),
            )
            for m in tenant.messages(user.id, folder.id)
        )
    return view


def target_view(
    config: Config, server: ImapReadBack, upn: str, login: str
) -> dict[str, Counter[Copy]]:
    """Folder id -> the multiset of copies the server holds in the folder the state maps
    it to."""
    store = open_store(config.state_url)
    try:
        with store.session() as s:
            units = list(s.query(Unit).filter(Unit.owner == upn, Unit.workload == "mail"))
    finally:
        store.engine.dispose()
    view: dict[str, Counter[Copy]] = {}
    for unit in units:
        assert unit.target_folder, f"{unit.path} has no target folder"
        view[unit.container_id] = Counter(
            Copy(hashlib.sha256(m.content).hexdigest(), m.flags, m.internal_date)
            for m in server.read_mailbox(login, unit.target_folder)
        )
    return view


def assert_same(
    tenant: Tenant, config_path: Path, server: ImapReadBack, logins: dict[str, MailUser]
) -> int:
    """Every folder of every user holds exactly the source's messages; returns the count."""
    config = load_config(config_path)
    total = 0
    for upn, user in logins.items():
        want = source_view(tenant, upn)
        have = target_view(config, server, upn, user.login)
        assert set(have) == set(want), f"{upn}: folders differ"
        for folder_id, copies in want.items():
            missing, extra = copies - have[folder_id], have[folder_id] - copies
            assert not missing and not extra, (
                f"{upn} folder {folder_id}: {sum(missing.values())} missing, "
                f"{sum(extra.values())} extra or different"
            )
            total += sum(copies.values())
    return total


def graph_pages(
    sandbox: SandboxServer, path: str, params: dict[str, str]
) -> list[dict[str, object]]:
    """Every entity of a paged Graph collection of the sandbox, read with plain httpx."""
    import ssl

    import httpx

    tls = ssl.create_default_context(cafile=sandbox.ca_file) if sandbox.ca_file else True
    form = {
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "grant_type": "client_credentials",
        "scope": "https://graph.microsoft.com/.default",
    }
    token_url = f"https://{sandbox.authority}/{sandbox.tenant_id}/oauth2/v2.0/token"
    token = httpx.post(token_url, data=form, verify=tls).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    entities: list[dict[str, object]] = []
    url: str | None = f"{sandbox.graph_url}/{path}"
    query: dict[str, str] | None = params
    with httpx.Client(verify=tls, headers=headers, timeout=30) as client:
        while url:
            body = client.get(url, params=query).raise_for_status().json()
            entities.extend(body["value"])
            url, query = body.get("@odata.nextLink"), None
    return entities


def start_run(config: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "hirondelle.cli", "-c", str(config), "run"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for(condition: Callable[[], object], process: subprocess.Popen[bytes]) -> bool:
    """Poll until `condition()` holds; False if the run finished first."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if condition():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.005)
    raise AssertionError("the run made no progress before the deadline")


def audit_lines(audit: Path) -> int:
    """How many lines the runs' audit logs in `audit` hold so far."""
    return sum(p.read_bytes().count(b"\n") for p in audit.glob("*.jsonl"))


def audit_reaches(audit: Path, goal: int) -> Callable[[], bool]:
    """A moment: the audit logs hold `goal` lines or more."""
    return lambda: audit_lines(audit) >= goal


def kill_nine_at(
    command: list[str],
    env: dict[str, str],
    moments: Iterable[Callable[[], bool]],
    *,
    cwd: Path | None = None,
    deadline: float = 90.0,
    poll: float = 0.005,
) -> int:
    """Start `command` once per moment (each taken from `moments` just before its run
    starts) and kill -9 the run when its moment comes, unless it ends first or `deadline`
    seconds pass; how many runs were killed."""
    kills = 0
    for moment in moments:
        process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        end = time.monotonic() + deadline
        while process.poll() is None and time.monotonic() < end:
            if moment():
                os.kill(process.pid, signal.SIGKILL)
                kills += 1
                break
            time.sleep(poll)
        process.wait(timeout=30)
    return kills


def final_run(
    command: list[str], env: dict[str, str], *, cwd: Path | None = None, timeout: float = 300
) -> None:
    """The run after the kills ends well."""
    final = subprocess.run(command, env=env, cwd=cwd, capture_output=True, timeout=timeout)
    assert final.returncode == 0, final.stderr.decode()[-2000:]
