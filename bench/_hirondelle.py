"""The measured side of the mail benchmark: `hirondelle run` as a child process.

The configuration points `[source]` at the sandbox process (its CA, its public test
secret through an environment variable) and `[targets.mail]` at a Dovecot through
its master user (password in an environment variable too). The run is
`python -m hirondelle.cli -c FILE run --json`, so its peak RSS and CPU time are its own.
`watch_budget` polls the sandbox's counters while a run goes on, to learn when each
mailbox was busy.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hirondelle.bench._servers import (
    BenchError,
    Finished,
    SandboxEndpoint,
    SandboxProcess,
    run_measured,
    stop_live,
)
from hirondelle.tests.servers import DovecotServer

SECRET_ENV = "HIRONDELLE_BENCH_CLIENT_SECRET"
MASTER_ENV = "HIRONDELLE_BENCH_MASTER_PASSWORD"
STATS_INTERVAL_S = 0.1


@dataclass(frozen=True)
class Budget:
    """Graph's per-mailbox request window, scaled like the sandbox's `--scale`."""

    requests: int
    seconds: float

    @classmethod
    def scaled(cls, scale: float) -> Budget:
        return cls(max(1, round(10_000 * scale)), 600.0 * scale)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


@dataclass(frozen=True)
class RunReport:
    """What `hirondelle run` did, from its JSON summary, and what it used."""

    finished: Finished
    copied: int
    skipped: int
    failed: int
    bytes: int


def _toml(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a valid TOML basic string
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def toml_text(tables: Mapping[str, Mapping[str, object]]) -> str:
    """Flat TOML tables (strings, numbers, booleans), in the order given."""
    return "".join(
        f"[{name}]\n" + "".join(f"{key} = {_toml(value)}\n" for key, value in table.items()) + "\n"
        for name, table in tables.items()
    )


STATE_TABLE: Mapping[str, object] = {
    "url": "sqlite:///state/hirondelle.sqlite",
    "audit_dir": "audit",
}


def write_tables(directory: Path, tables: Mapping[str, Mapping[str, object]]) -> Path:
    """`hirondelle.toml` of `tables` in `directory` (made when missing); its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "hirondelle.toml"
    path.write_text(toml_text(tables), encoding="utf-8")
    return path


def run_env(endpoint: SandboxEndpoint, secrets: Mapping[str, str]) -> dict[str, str]:
    """The run's environment: this process's, the sandbox's secret and the target's."""
    return {**os.environ, SECRET_ENV: endpoint.client_secret, **secrets}


def source_table(endpoint: SandboxEndpoint, **extra: object) -> dict[str, object]:
    """The `[source]` table of a bench run: the sandbox, its secret through `SECRET_ENV`."""
    return {
        "tenant_id": endpoint.tenant_id,
        "client_id": endpoint.client_id,
        "client_secret_env": SECRET_ENV,
        "graph_url": endpoint.graph_url,
        "authority": endpoint.authority,
        "ca_file": endpoint.ca_file,
        **extra,
    }


def write_config(
    directory: Path,
    endpoint: SandboxEndpoint,
    target: DovecotServer,
    owner_concurrency: int,
    budget: Budget | None = None,
    workers: int = 1,
) -> Path:
    """`hirondelle.toml` in `directory`; both secrets are read from the environment.

    The master password goes through `master_password_env`: `master_password_file`
    given in the file reaches `ImapSettings` as a str (`registry.build_target`
    turns paths into strings) and the IMAP target then fails to read it.
    """
    source = source_table(endpoint)
    if budget is not None:
        source.update(requests_per_window=budget.requests, window_seconds=budget.seconds)
    tables: dict[str, Mapping[str, object]] = {
        "source": source,
        "state": STATE_TABLE,
        "run": {"owner_concurrency": owner_concurrency, "workers": workers},
        "targets.mail": {
            "kind": "imap",
            "host": target.host,
            "port": target.port,
            "security": "plain",  # loopback only, like the mbsync side
            "master_user": target.master_user,
            "master_password_env": MASTER_ENV,
        },
    }
    return write_tables(directory, tables)


def run_hirondelle(
    config: Path,
    endpoint: SandboxEndpoint,
    target: DovecotServer,
    timeout: float,
    wrapper: list[str] | None = None,
) -> RunReport:
    """`hirondelle run --json` in a child process; its tallies, wall time and peak RSS."""
    env = run_env(endpoint, {MASTER_ENV: target.master_password})
    return run_workload(config, "mail", env, timeout, wrapper)


def run_workload(
    config: Path,
    workload: str,
    env: Mapping[str, str],
    timeout: float,
    wrapper: list[str] | None = None,
) -> RunReport:
    """`hirondelle -c CONFIG run --json` in a child process, measured; `workload`'s tally.

    Its output goes to `run.json` and `run.log` next to the configuration; `wrapper`
    replaces `python -m` (a profiler). Exit codes 0 and 1 (some items failed) count as
    finished runs; anything else raises `BenchError` with the end of its log.
    """
    stdout_path, stderr_path = config.parent / "run.json", config.parent / "run.log"
    command = [*(wrapper or [sys.executable, "-m"]), "hirondelle.cli", "-c", str(config)]
    with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
        finished = run_measured(
            [*command, "run", "--json"],
            env=env,
            cwd=config.parent,
            stdout=stdout,
            stderr=stderr,
            timeout=timeout,
        )
    text = stdout_path.read_text(encoding="utf-8", errors="replace")
    if finished.returncode not in (0, 1) or "{" not in text:
        tail = stderr_path.read_text(encoding="utf-8", errors="replace")[-1500:]
        raise BenchError(f"hirondelle run exited with {finished.returncode}: {tail}")
    tally = json.loads(text[text.index("{") :])["workloads"][workload]
    return RunReport(
        finished=finished,
        copied=int(tally["copied"]),
        skipped=int(tally["skipped"]),
        failed=int(tally["failed"]) + len(tally.get("failed_units", [])),
        bytes=int(tally["bytes"]),
    )


@dataclass
class MailboxActivity:
    """One mailbox's counters at the sandbox and when it was first and last busy."""

    requests: int = 0
    throttled: int = 0
    first_seen: float = 0.0
    last_change: float = 0.0

    @property
    def served(self) -> int:
        return self.requests - self.throttled

    @property
    def span(self) -> float:
        """Seconds between its first and last request (each seen within one poll)."""
        return max(self.last_change - self.first_seen, STATS_INTERVAL_S)


@dataclass
class BudgetWatch:
    """Per-mailbox activity while a run goes on, from `/_sandbox/stats`."""

    mailboxes: dict[str, MailboxActivity] = field(default_factory=dict)

    def observe(self, stats: Mapping[str, Any], now: float) -> None:
        for name, counters in stats.get("by_mailbox", {}).items():
            requests = int(counters.get("requests", 0))
            activity = self.mailboxes.get(name)
            if activity is None:
                activity = self.mailboxes[name] = MailboxActivity(first_seen=now, last_change=now)
            if requests != activity.requests:
                activity.last_change = now
            activity.requests = requests
            activity.throttled = int(counters.get("throttled", 0))

    def figures(self, budget: Budget) -> dict[str, float]:
        """budget_used (brief's formula), its sliding-window variant, throttled_share."""
        active = [a for a in self.mailboxes.values() if a.requests]
        if not active:
            raise BenchError("the sandbox saw no request to any mailbox")
        used = [a.served / (budget.rate * a.span) for a in active]
        # a sliding window also admits one full window at once: the most it permits in T
        # seconds is rate * T + requests
        used_max = [a.served / (budget.rate * a.span + budget.requests) for a in active]
        requests = sum(a.requests for a in active)
        return {
            "budget_used": round(sum(used) / len(used), 3),
            "budget_used_min": round(min(used), 3),
            "budget_used_of_window_max": round(sum(used_max) / len(used_max), 3),
            "throttled_share": round(sum(a.throttled for a in active) / requests, 4),
            "budget_requests_per_mailbox": round(requests / len(active), 1),
            "budget_span_s": round(sum(a.span for a in active) / len(active), 2),
        }


def watch_budget(
    sandbox: SandboxProcess, run: Callable[[], RunReport]
) -> tuple[RunReport, BudgetWatch]:
    """Run `run` in a thread while polling the sandbox's counters every 100 ms."""
    watch = BudgetWatch()
    outcome: list[RunReport | BaseException] = []

    def target() -> None:
        try:
            outcome.append(run())
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            outcome.append(exc)

    worker = threading.Thread(target=target, name="hirondelle-run")
    worker.start()
    try:
        while worker.is_alive():
            watch.observe(sandbox.stats(), time.monotonic())
            worker.join(STATS_INTERVAL_S)
        watch.observe(sandbox.stats(), time.monotonic())
    except BaseException:
        stop_live()
        worker.join()
        raise
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result, watch
