"""The measured side of the files benchmark: `hirondelle run` into a WebDAV server.

The configuration points `[source]` at the sandbox child and `[targets.files]` at the
WebDAV server (`kind = "webdav"`, generic profile); `[users]` names the one OneDrive
under test, so the sandbox's SharePoint libraries are left out. The WebDAV password
sits in a mode-0600 `login:password` file and the sandbox's public test secret in an
environment variable: neither is in the configuration. Downloads are spooled under
the run's own `TMPDIR`, removed with the benchmark's temporary folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hirondelle.bench._files_peer import DavAccount
from hirondelle.bench._hirondelle import (
    STATE_TABLE,
    RunReport,
    run_env,
    run_workload,
    source_table,
    write_tables,
)
from hirondelle.bench._servers import SandboxEndpoint

TARGET_FOLDER = "Microsoft 365"  # `[targets.files] folder`; the drive goes to ".../OneDrive"


@dataclass(frozen=True)
class FilesRun:
    """What one measured copy is: from which OneDrive owner, into which account."""

    upn: str  # the sandbox user whose OneDrive is copied
    account: DavAccount  # `url` is the server's "{login}" template
    concurrency: int  # `run.fetch_concurrency`: downloads in flight
    units_per_minute: int  # `source.files_units_per_minute`
    workers: int = 1  # `run.workers`: one OneDrive is one owner, moved by one of them
    uploads: int = 4  # `[targets.files] uploads`: files of the owner uploaded at once


def write_config(directory: Path, endpoint: SandboxEndpoint, run: FilesRun) -> Path:
    """`hirondelle.toml`, `users.csv` and `dav-passwords` (0600) in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    users = directory / "users.csv"
    users.write_text(f"source_upn,target_login\n{run.upn},{run.account.login}\n", "utf-8")
    passwords = directory / "dav-passwords"
    passwords.touch(mode=0o600)
    passwords.write_text(f"{run.account.login}:{run.account.password}\n", "utf-8")
    passwords.chmod(0o600)
    tables: dict[str, Mapping[str, object]] = {
        "source": source_table(endpoint, files_units_per_minute=run.units_per_minute),
        "state": STATE_TABLE,
        "users": {"file": users.name},
        "run": {
            "owner_concurrency": 1,
            "fetch_concurrency": run.concurrency,
            "workers": run.workers,
        },
        "targets.files": {
            "kind": "webdav",
            "url": run.account.url,
            "folder": TARGET_FOLDER,
            "password_file": passwords.name,
            "uploads": run.uploads,
        },
    }
    return write_tables(directory, tables)


def run_files(
    config: Path, endpoint: SandboxEndpoint, timeout: float, wrapper: list[str] | None = None
) -> RunReport:
    """`hirondelle run --json` on `config` in a child process; the files tally, measured."""
    spool = config.parent / "spool"
    spool.mkdir(exist_ok=True)
    env = run_env(endpoint, {"TMPDIR": str(spool)})
    return run_workload(config, "files", env, timeout, wrapper)
