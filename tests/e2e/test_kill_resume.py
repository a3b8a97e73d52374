"""kill -9 at five random moments, resume each time: nothing lost, nothing doubled."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness import DEADLINE, assert_same, environment, start_run, wait_for, write_config

from hirondelle.sandbox.faults import Faults
from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import Tenant, TenantSpec
from hirondelle.tests.servers import ImapReadBack, both_imap_servers

KILLS = 5


def audit_lines(directory: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in directory.glob("run-*.jsonl"))


@both_imap_servers
def test_kill_nine_five_times_then_resume(tmp_path: Path, imap_server: ImapReadBack) -> None:
    rng = random.Random(int(os.environ.get("HIRONDELLE_KILL_SEED", "2026")))
    tenant = Tenant.generate(
        TenantSpec(
            seed=23, users=2, messages=150, large_messages=1, large_attachment_bytes=2 * 1024 * 1024
        )
    )
    faults = Faults(slow_seconds=0.03)  # stretch the run so the kills land mid-copy
    with SandboxServer(tenant, tls=True, limits=Limits(enabled=False), faults=faults) as sandbox:
        logins = {user.upn: imap_server.new_user() for user in tenant.users}
        config = write_config(tmp_path, sandbox, imap_server, logins)
        env = environment(sandbox, imap_server)
        audit = tmp_path / "audit"
        killed = 0
        for attempt in range(KILLS):
            process = start_run(config, env)
            if attempt == 0:
                moment = time.monotonic() + rng.uniform(0.2, 1.5)  # start-up, planning, login
                landed = wait_for(lambda m=moment: time.monotonic() >= m, process)
            else:
                goal = audit_lines(audit) + rng.randint(3, 60)
                landed = wait_for(lambda g=goal: audit_lines(audit) >= g, process)
            if landed:
                os.kill(process.pid, signal.SIGKILL)
                killed += 1
            process.wait(timeout=30)
        assert killed >= 4, "the kills should land while the copy is running"
        sandbox.set_faults(Faults())
        final = start_run(config, env)
        _, err = final.communicate(timeout=DEADLINE)
        assert final.returncode == 0, err.decode()
        assert_same(tenant, config, imap_server, logins)
        check = subprocess.run(
            [sys.executable, "-m", "hirondelle.cli", "-c", str(config), "verify"],
            env={**os.environ, **env},
            capture_output=True,
            timeout=DEADLINE,
        )
        assert check.returncode == 0, check.stdout.decode()[-2000:]
