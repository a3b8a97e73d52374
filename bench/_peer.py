"""The peer of the mail benchmark: mbsync copying the same messages Dovecot to Dovecot.

`populate` fills a source Dovecot with exactly the MIME bytes the sandbox serves (the
same `TenantSpec` generates the same tenant), one IMAP folder per visible Graph folder,
with pipelined LITERAL+ APPENDs; it is not timed. `mbsync_configs` writes one mbsync
configuration per mailbox, the way integrators run it, reading the master password
through `PassCmd` from a file (never a command-line argument). `run_mbsync` starts one
process per mailbox, `concurrency` at a time, and times the whole copy.
"""

from __future__ import annotations

import imaplib
import re
import subprocess
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from hirondelle.bench._mail_floor import segment
from hirondelle.bench._servers import BenchError, Finished, run_measured, stop_live
from hirondelle.mappings.mail_folders import imap_utf7_encode
from hirondelle.sandbox.tenant import Tenant
from hirondelle.sandbox.tenant_records import SandboxFolder, SandboxMessage, SandboxUser
from hirondelle.tests.servers import DovecotServer

APPEND_WINDOW = 64  # APPENDs in flight per connection before reading their answers


@dataclass(frozen=True)
class MbsyncRun:
    """The peer's copy: wall time, and the largest RSS and total CPU of its processes."""

    seconds: float
    processes: int
    peak_rss_mb: float
    cpu_seconds: float
    failures: int


# -- filling the source -----------------------------------------------------------------------


def folder_names(tenant: Tenant, user: SandboxUser) -> dict[str, str]:
    """Graph folder id -> IMAP folder name (modified UTF-7) for the visible folders."""
    folders = {f.id: f for f in tenant.folders(user.id)}
    names: dict[str, str] = {}
    for folder in folders.values():
        if not _visible(folder, folders):
            continue
        if folder.well_known_name == "inbox":
            names[folder.id] = "INBOX"
            continue
        parts: list[str] = []
        current: SandboxFolder | None = folder
        while current is not None:
            parts.append(
                "INBOX" if current.well_known_name == "inbox" else segment(current.display_name)
            )
            current = folders.get(current.parent_id)
        names[folder.id] = imap_utf7_encode("/".join(reversed(parts)))
    return names


def _visible(folder: SandboxFolder, folders: dict[str, SandboxFolder]) -> bool:
    current: SandboxFolder | None = folder
    while current is not None:
        if current.hidden:
            return False
        current = folders.get(current.parent_id)
    return True


def populate(server: DovecotServer, tenant: Tenant, workers: int = 4) -> tuple[int, int]:
    """Append every message of every visible folder; returns (messages, bytes)."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="populate") as pool:
        totals = list(pool.map(lambda user: _populate_user(server, tenant, user), tenant.users))
    return sum(t[0] for t in totals), sum(t[1] for t in totals)


def _populate_user(server: DovecotServer, tenant: Tenant, user: SandboxUser) -> tuple[int, int]:
    names = folder_names(tenant, user)
    count = size = 0
    with server.client(user.upn) as conn:
        for name in sorted(set(names.values()), key=len):
            if name != "INBOX":
                conn.create(f'"{name}"')
        for folder_id, name in names.items():
            messages = tenant.messages(user.id, folder_id)
            for batch in _batches(messages, APPEND_WINDOW):
                size += _append_pipelined(conn, tenant, name, batch)
                count += len(batch)
    return count, size


def _batches(messages: Sequence[SandboxMessage], size: int) -> Iterator[Sequence[SandboxMessage]]:
    for start in range(0, len(messages), size):
        yield messages[start : start + size]


def _flags(message: SandboxMessage) -> str:
    flags = ["\\Seen"] if message.is_read else []
    if message.flag_status == "flagged":
        flags.append("\\Flagged")
    if message.is_draft:
        flags.append("\\Draft")
    return "(" + " ".join(flags) + ")"


def _append_pipelined(
    conn: imaplib.IMAP4, tenant: Tenant, folder: str, batch: Sequence[SandboxMessage]
) -> int:
    """Send a window of APPENDs with non-synchronizing literals, then read every answer."""
    tags: set[bytes] = set()
    sent = 0
    for number, message in enumerate(batch):
        mime = tenant.mime(message.user_id, message.id)
        tag = f"P{number:04d}".encode()
        date = imaplib.Time2Internaldate(message.received)
        head = f'{tag.decode()} APPEND "{folder}" {_flags(message)} {date} {{{len(mime)}+}}\r\n'
        conn.send(head.encode("ascii") + mime + b"\r\n")
        tags.add(tag)
        sent += len(mime)
    while tags:
        line = conn.readline()
        if not line:
            raise BenchError(f"Dovecot closed the connection while appending to {folder}")
        tag, _, rest = line.partition(b" ")
        if tag in tags:
            tags.discard(tag)
            if not rest.startswith(b"OK"):
                raise BenchError(f"APPEND to {folder} refused: {rest.decode(errors='replace')}")
    return sent


# -- mbsync -----------------------------------------------------------------------------------


def mbsync_configs(
    directory: Path,
    logins: Sequence[str],
    source: DovecotServer,
    target: DovecotServer,
    password_file: Path,
) -> list[Path]:
    """One mbsync configuration per mailbox: pull every folder, create it on the target."""
    directory.mkdir(parents=True, exist_ok=True)
    if re.search(r'[\s"\\]', str(password_file)):
        raise BenchError(f"mbsync's PassCmd needs a path without blanks or quotes: {password_file}")
    pass_cmd = f'"cat {password_file}"'
    configs = []
    for number, login in enumerate(logins):
        state = directory / f"state-{number:03d}"
        state.mkdir(exist_ok=True)
        text = "\n".join(
            [
                *_store("far", source, login, pass_cmd),
                *_store("near", target, login, pass_cmd),
                "Channel mailbox",
                "Far :far:",
                "Near :near:",
                "Patterns *",
                "Create Near",
                "Sync Pull",
                "CopyArrivalDate yes",
                f"SyncState {state}/",
                "",
            ]
        )
        path = directory / f"mbsync-{number:03d}.rc"
        path.write_text(text, encoding="utf-8")
        path.chmod(0o600)
        configs.append(path)
    return configs


def _store(name: str, server: DovecotServer, login: str, pass_cmd: str) -> list[str]:
    return [
        f"IMAPAccount {name}",
        f"Host {server.host}",
        f"Port {server.port}",
        f"User {login}*{server.master_user}",
        f"PassCmd {pass_cmd}",
        "SSLType None",  # loopback only: no TLS, as on the hirondelle side
        "AuthMechs LOGIN",
        "",
        f"IMAPStore {name}",
        f"Account {name}",
        "",
    ]


def run_mbsync(configs: Sequence[Path], concurrency: int, log_dir: Path) -> MbsyncRun:
    """Run one `mbsync -a` per configuration, `concurrency` at once; time the whole copy."""

    def one(config: Path) -> Finished:
        with open(log_dir / f"{config.stem}.log", "wb") as log:
            return run_measured(
                ["mbsync", "-q", "-c", str(config), "-a"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    started = time.perf_counter()
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="mbsync")
    try:
        finished = list(pool.map(one, configs))
    except BaseException:
        stop_live()  # Ctrl-C: the running mbsync processes end, so their threads return
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    seconds = time.perf_counter() - started
    return MbsyncRun(
        seconds=seconds,
        processes=len(finished),
        peak_rss_mb=max((f.peak_rss_mb for f in finished), default=0.0),
        cpu_seconds=sum(f.cpu_seconds for f in finished),
        failures=sum(1 for f in finished if f.returncode != 0),
    )
