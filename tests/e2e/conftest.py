"""A sandbox tenant, a sandbox server and a configuration into the shared IMAP server
(Dovecot; Cyrus as well for the tests marked `both_imap_servers`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import environment, write_config

from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import Tenant, TenantSpec
from hirondelle.tests.servers import ImapReadBack, MailUser


@dataclass
class Setup:
    tenant: Tenant
    sandbox: SandboxServer
    server: ImapReadBack
    logins: dict[str, MailUser]
    config_path: Path
    env: dict[str, str]


def small_tenant(seed: int = 11, messages: int = 60) -> Tenant:
    return Tenant.generate(
        TenantSpec(
            seed=seed,
            users=2,
            messages=messages,
            large_messages=1,
            large_attachment_bytes=3 * 1024 * 1024,
        )
    )


@pytest.fixture
def setup(
    tmp_path: Path, imap_server: ImapReadBack, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Setup]:
    tenant = small_tenant()
    with SandboxServer(tenant, tls=True, limits=Limits(enabled=False)) as sandbox:
        logins = {user.upn: imap_server.new_user() for user in tenant.users}
        config = write_config(tmp_path, sandbox, imap_server, logins)
        env = environment(sandbox, imap_server)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield Setup(tenant, sandbox, imap_server, logins, config, env)
