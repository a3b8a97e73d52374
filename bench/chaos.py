"""Reliability under abuse: one mixed migration (mail into Dovecot, files into Apache
mod_dav) killed and disturbed many times, then counted independently on each target.

    python -m hirondelle.bench.chaos --quick     # under five minutes
    python -m hirondelle.bench.chaos             # a larger tenant, more kills

In one run it:

- kills `hirondelle run` with SIGKILL at random moments (at least 20 times);
- has the Graph sandbox answer about 10 % of requests with a fault (503 with
  Retry-After, a reset connection, a truncated body) and throttle with 429 + Retry-After
  (scaled per-mailbox limits);
- restarts Dovecot and Apache between and during runs, revokes every Graph access token
  mid-run, and has the WebDAV server refuse writes for a while, as a full disk does;
- then lets a last `run` (and `retry-failed`) finish on healthy servers, runs `verify`,
  and counts on the targets themselves, not through the state: messages and files lost
  (in the source, not on the target) or duplicated (on the target more often than in
  the source), the differences `verify` reports, and failures nobody can explain (items
  still failed once every fault is gone).

The last line printed is one JSON object; every count but the applied ones should be 0.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hirondelle.mappings.quickxor import QuickXorHash
from hirondelle.sandbox.faults import Faults
from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import Mutation, Tenant, TenantSpec
from hirondelle.tests.servers import ApacheDavServer, DovecotServer, MailUser, dovecot_server

SECRET_ENV, MASTER_ENV = "HIRONDELLE_CHAOS_SECRET", "HIRONDELLE_CHAOS_MASTER"
FAULTS = Faults(error_rate=0.05, reset_rate=0.03, truncate_rate=0.02, seed=5)  # ~10 %
# What the source does between the runs and the syncs, for every user and drive.
SYNC_CHANGES = Mutation(
    seed=13,
    new=10,
    flag_changes=10,
    moves=6,
    deletions=6,
    file_creates=4,
    file_changes=3,
    file_renames=2,
    file_moves=2,
    file_deletions=3,
    folder_deletions=1,
)


@dataclass
class Applied:
    """What the run actually did to the migration."""

    kills: int = 0
    imap_restarts: int = 0
    webdav_restarts: int = 0
    token_revocations: int = 0
    refusal_windows: int = 0
    runs: int = 0
    exits: Counter[int] = field(default_factory=Counter)


@dataclass
class Rig:
    tenant: Tenant
    sandbox: SandboxServer
    dovecot: DovecotServer
    dav: ApacheDavServer
    logins: dict[str, MailUser]  # one account per user, the same login on both servers
    config: Path
    env: dict[str, str]


def write_config(directory: Path, rig: Rig) -> Path:
    users = directory / "users.csv"
    users.write_text(
        "".join(f"{upn},{user.login}\n" for upn, user in rig.logins.items()), encoding="utf-8"
    )
    passwords = directory / "dav-passwords"
    passwords.write_text(
        "".join(f"{user.login}:{user.password}\n" for user in rig.logins.values()),
        encoding="utf-8",
    )
    passwords.chmod(0o600)
    sandbox = rig.sandbox
    text = f"""
[source]
tenant_id = "{sandbox.tenant_id}"
client_id = "{sandbox.client_id}"
client_secret_env = "{SECRET_ENV}"
graph_url = "{sandbox.graph_url}"
authority = "{sandbox.authority}"
ca_file = "{sandbox.ca_file}"

[users]
file = "users.csv"

[run]
owner_concurrency = 4
target_wait_seconds = 120

[targets.mail]
kind = "imap"
host = "127.0.0.1"
port = {rig.dovecot.port}
security = "plain"
master_user = "{rig.dovecot.master_user}"
master_password_env = "{MASTER_ENV}"

[targets.files]
kind = "webdav"
url = "{rig.dav.url}"
password_file = "{passwords}"
"""
    config = directory / "hirondelle.toml"
    config.write_text(text, encoding="utf-8")
    return config


def hirondelle(rig: Rig, *args: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "hirondelle.cli", "-c", str(rig.config), *args]
    return subprocess.Popen(
        command,
        env={**os.environ, **rig.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the command and its worker processes (its session), as a crash would."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.communicate(timeout=60)


def disturb(rig: Rig, applied: Applied, rng: random.Random) -> None:
    """One disturbance between or during runs, at random."""
    roll = rng.random()
    if roll < 0.25:
        rig.dovecot.pause()
        time.sleep(rng.uniform(0.2, 2.0))  # the outage itself, not a wait for readiness
        rig.dovecot.resume()
        applied.imap_restarts += 1
    elif roll < 0.45:
        rig.dav.restart(refuse=None)
        applied.webdav_restarts += 1
    elif roll < 0.65:
        applied.token_revocations += bool(rig.sandbox.revoke_tokens())
    elif roll < 0.8:
        rig.dav.restart(refuse=r"\.(txt|pdf)")  # writes refused, as a full disk does
        applied.refusal_windows += 1
        applied.webdav_restarts += 1


def chaos_loop(
    rig: Rig,
    kills: int,
    seconds: tuple[float, float],
    seed: int,
    command: str = "run",
    applied: Applied | None = None,
) -> Applied:
    rng = random.Random(seed)
    applied = applied or Applied()
    goal = applied.kills + kills
    while applied.kills < goal:
        process = hirondelle(rig, command, "--workers", str(rng.choice([1, 2])))
        applied.runs += 1
        deadline = time.monotonic() + rng.uniform(*seconds)
        disturbed = False
        while process.poll() is None and time.monotonic() < deadline:
            if not disturbed and rng.random() < 0.02:
                disturb(rig, applied, rng)  # during the run
                disturbed = True
            time.sleep(0.05)  # polling the child, not a wait for a server
        if process.poll() is None:
            kill_tree(process)
            applied.kills += 1
        else:
            process.communicate(timeout=60)
            applied.exits[process.returncode] += 1
        if rng.random() < 0.5:
            disturb(rig, applied, rng)
    return applied


def finish(rig: Rig, applied: Applied, command: str = "run") -> dict[str, Any]:
    """Healthy servers, no faults: the last run (or sync), retry-failed, then what is still
    failed."""
    rig.sandbox.set_faults(Faults())
    rig.sandbox.set_limits(Limits(enabled=False))
    rig.dav.restart(refuse=None)
    summary: dict[str, Any] = {}
    for args in ((command, "--json"), ("retry-failed", "--json"), (command, "--json")):
        process = hirondelle(rig, *args)
        out, err = process.communicate(timeout=1800)
        applied.exits[process.returncode] += 1
        if out.strip():
            try:
                summary = json.loads(out)
            except json.JSONDecodeError:
                summary = {"unreadable": err.decode(errors="replace")[-500:]}
    return summary


def unexplained(summary: dict[str, Any]) -> int:
    """Items and owners still failed once every fault is gone: nobody can explain them."""
    count = 0
    for tally in (summary.get("workloads") or {}).values():
        count += int(tally.get("failed") or 0) + len(tally.get("failed_units") or [])
        count += len(tally.get("failed_owners") or [])
    for left in (summary.get("still_failed") or {}).values():
        count += int(left.get("failed_items") or 0) + int(left.get("unsettled_items") or 0)
    return count + (1 if "unreadable" in summary else 0)


def verify_differences(rig: Rig) -> int:
    process = hirondelle(rig, "verify", "--json")
    out, _ = process.communicate(timeout=1800)
    try:
        reports = json.loads(out)
    except json.JSONDecodeError:
        return -1
    return sum(int(report["differences"]) for report in reports.values())


def mail_counts(rig: Rig) -> tuple[int, int]:
    """(lost, duplicated) messages, from the tenant and Dovecot's own mailboxes."""
    lost = duplicated = 0
    for upn, user in rig.logins.items():
        source = rig.tenant.user(upn)
        want = Counter(
            hashlib.sha256(rig.tenant.mime(source.id, m.id)).hexdigest()
            for folder in rig.tenant.folders(source.id)
            if not folder.hidden
            for m in rig.tenant.messages(source.id, folder.id)
        )
        have = Counter(
            hashlib.sha256(message.content).hexdigest()
            for mailbox in rig.dovecot.mailboxes(user.login)
            for message in rig.dovecot.read_mailbox(user.login, mailbox)
        )
        lost += sum((want - have).values())
        duplicated += sum((have - want).values())
    return lost, duplicated


def file_counts(rig: Rig) -> tuple[int, int]:
    """(lost, duplicated) files of the users' OneDrives, by QuickXorHash."""
    lost = duplicated = 0
    for upn, user in rig.logins.items():
        one_lost, one_duplicated = _drive_counts(rig, upn, user)
        lost, duplicated = lost + one_lost, duplicated + one_duplicated
    return lost, duplicated


def _drive_counts(rig: Rig, upn: str, user: MailUser) -> tuple[int, int]:
    drives = rig.tenant.drives
    drive_id = drives.user_drives[upn.lower()]
    items = {i.id: i for i in drives.items(drive_id)}

    def carried(item_id: str | None) -> bool:
        while item_id is not None:
            if items[item_id].kind in ("package", "remote"):
                return False
            item_id = items[item_id].parent_id
        return True

    want = Counter(
        drives.quick_xor(i) for i in items.values() if i.kind == "file" and carried(i.id)
    )
    have: Counter[str] = Counter()
    for directory, _, names in os.walk(rig.dav.path_of(user.login)):
        for name in names:
            hasher = QuickXorHash()
            with open(Path(directory) / name, "rb") as stream:
                while chunk := stream.read(1 << 20):
                    hasher.update(chunk)
            have[hasher.b64digest()] += 1
    return sum((want - have).values()), sum((have - want).values())


def on_targets(rig: Rig) -> tuple[int, int]:
    """Messages and files the targets hold now."""
    mail = sum(
        len(rig.dovecot.read_mailbox(user.login, mailbox))
        for user in rig.logins.values()
        for mailbox in rig.dovecot.mailboxes(user.login)
    )
    files = sum(
        len(names)
        for user in rig.logins.values()
        for _, _, names in os.walk(rig.dav.path_of(user.login))
    )
    return mail, files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small tenant: under 5 minutes")
    parser.add_argument("--kills", type=int, help="SIGKILLs to apply (default 20, quick 20)")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    users, messages, files = (2, 120, 30) if args.quick else (4, 600, 120)
    kills = args.kills or 20
    window = (1.5, 6.0) if args.quick else (2.0, 12.0)
    spec = TenantSpec(
        seed=args.seed,
        users=users,
        messages=messages,
        large_messages=1,
        large_attachment_bytes=2 * 1024 * 1024,
        files_per_drive=files,
        large_file_bytes=8 * 1024 * 1024,
    )
    started = time.monotonic()
    tenant = Tenant.generate(spec)
    limits = Limits(scale=0.02)  # 200 requests per 12 s per mailbox: 429s with Retry-After
    with (
        tempfile.TemporaryDirectory(prefix="hirondelle-chaos-") as scratch,
        SandboxServer(tenant, tls=True, limits=limits, faults=FAULTS) as sandbox,
        dovecot_server(spare_users=1) as dovecot,
        ApacheDavServer(spare_users=users) as dav,
    ):
        accounts = [dav.new_user() for _ in tenant.users]
        for account in accounts:  # the same login on the IMAP server
            dovecot.add_user(account.login, account.password)
        logins = {user.upn: account for user, account in zip(tenant.users, accounts, strict=True)}
        env = {SECRET_ENV: sandbox.client_secret, MASTER_ENV: dovecot.master_password}
        rig = Rig(tenant, sandbox, dovecot, dav, logins, Path(), env)
        rig.config = write_config(Path(scratch), rig)
        applied = chaos_loop(rig, kills, window, args.seed)
        faults = sandbox.stats()
        # How much the disturbed runs had written before the last, healthy one.
        written_mail, written_files = on_targets(rig)
        summary = finish(rig, applied)
        # Then the source changes and every delta link expires (Graph's 410: each folder
        # is listed again, and what it no longer lists is removed), and `sync` is killed
        # as `run` was, under the same faults, before a healthy sync ends it.
        changed = sandbox.mutate(SYNC_CHANGES)
        sandbox.expire_delta_tokens()
        sandbox.set_faults(FAULTS)
        sandbox.set_limits(limits)
        chaos_loop(rig, max(1, kills // 2), window, args.seed + 1, "sync", applied)
        faults = sandbox.stats()
        sync_summary = finish(rig, applied, "sync")
        differences = verify_differences(rig)
        mail_lost, mail_duplicated = mail_counts(rig)
        files_lost, files_duplicated = file_counts(rig)
    figures = {
        "bench": "chaos",
        "quick": args.quick,
        "seconds": round(time.monotonic() - started, 1),
        "lost": mail_lost + files_lost,
        "duplicated": mail_duplicated + files_duplicated,
        "verify_differences": differences,
        "unexplained_failures": unexplained(summary) + unexplained(sync_summary),
        "changed_at_source": {
            "messages": len(changed.new) + len(changed.changed) + len(changed.moved),
            "messages_deleted": len(changed.deleted),
            "drive_items": len(changed.files),
        },
        "lost_by_workload": {"mail": mail_lost, "files": files_lost},
        "duplicated_by_workload": {"mail": mail_duplicated, "files": files_duplicated},
        "written_under_chaos": {"mail": written_mail, "files": written_files},
        "kills": applied.kills,
        "runs": applied.runs,
        "graph_faults": dict(faults.get("faults") or {}),
        "graph_throttled": faults.get("throttled", 0),
        "graph_requests": faults.get("requests", 0),
        "graph_unauthorized": faults.get("unauthorized", 0),
        "imap_restarts": applied.imap_restarts,
        "webdav_restarts": applied.webdav_restarts,
        "token_revocations": applied.token_revocations,
        "refusal_windows": applied.refusal_windows,
        "exit_codes": {str(k): v for k, v in sorted(applied.exits.items())},
    }
    print(json.dumps(figures))
    zero = ("lost", "duplicated", "verify_differences", "unexplained_failures")
    return 0 if all(figures[k] == 0 for k in zero) else 1


if __name__ == "__main__":
    sys.exit(main())
