"""The configuration file (`hirondelle.toml`): read, checked, and turned into settings.

Every problem raises `ConfigError` naming the setting (`targets.mail.port`), so
the command line can print one line instead of a traceback. Secrets are never
values in this file: only the names of environment variables or files.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from ..connectors.graph.auth import GraphSettings
from ..connectors.graph.calendar_window import Window
from ..workloads import WORKLOADS as WORKLOAD_SPECS
from .errors import ConfigError
from .secret_files import POLICIES, read_secret_text, set_policy
from .selection import UsersFile, read_users

# The workloads and their target kinds, in the order `workloads` declares them.
WORKLOADS = tuple(spec.name for spec in WORKLOAD_SPECS)
TARGET_KINDS = {spec.name: spec.kinds for spec in WORKLOAD_SPECS}


@dataclass(frozen=True)
class BudgetConfig:
    """Graph's per-mailbox limits the source keeps under (Outlook's documented defaults)."""

    concurrency: int = 4
    requests_per_window: int = 10_000
    window_seconds: float = 600.0
    files_units_per_minute: int = 1200  # SharePoint resource units, tenant-wide
    files_window_seconds: float = 60.0  # the window they apply to (SharePoint's: a minute)


@dataclass(frozen=True)
class ClusterConfig:
    """`[cluster]`: Celery workers on several machines, fed through a broker."""

    broker_url: str  # redis://host:6379/0 or amqp://user@host// (no password here)
    queue: str | None = None  # default: one named for the state, "hirondelle-<state id>"
    broker_password_env: str | None = None
    broker_password_file: Path | None = None

    def broker(self) -> str:
        """The broker URL with its password, read now from where the file names it."""
        password = read_secret(
            "cluster", self.broker_password_env, self.broker_password_file, "broker_password"
        )
        if password is None:
            return self.broker_url
        parts = urlsplit(self.broker_url)
        user = quote(unquote(parts.username or ""), safe="")
        netloc = f"{user}:{quote(password, safe='')}@{parts.hostname or ''}"
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))


def read_secret(table: str, env: str | None, file: Path | None, name: str) -> str | None:
    """A secret from the environment variable or the file the configuration names."""
    if env:
        value = os.environ.get(env)
        if not value:
            raise ConfigError(f"{table}.{name}_env", f"the environment variable {env} is not set")
        return value
    if file is not None:
        return read_secret_text(file, f"{table}.{name}_file").strip()
    return None


@dataclass(frozen=True)
class TargetConfig:
    workload: str
    kind: str
    options: dict[str, Any]

    def identity(self, base: Path) -> str:
        """Which server or folder this target writes to, as the state records it: a state
        whose items were written to one server is never taken for another's."""
        where = [
            f"{key}={self.options[key]}"
            for key in ("url", "host", "port", "homeserver", "server_name")
            if key in self.options
        ]
        if "path" in self.options:
            where.append(f"path={(base / str(self.options['path'])).resolve()}")
        return f"{self.kind}:" + ",".join(where)


@dataclass(frozen=True)
class Config:
    base_dir: Path
    source: GraphSettings
    budget: BudgetConfig
    state_url: str
    audit_dir: Path | None
    targets: dict[str, TargetConfig]
    users: dict[str, str] = field(default_factory=dict)  # source UPN (lower) -> target login
    users_file: UsersFile | None = None  # where the users came from, for errors by line
    owner_concurrency: int = 8
    fetch_concurrency: int = 4
    target_sessions: int = 1
    deletions: str = "mirror"
    # TOML dates or ISO strings; default 5 years either side of now
    calendar_window_start: str | date | None = None
    calendar_window_end: str | date | None = None
    workers: int | None = None  # worker processes on this machine; None: its core count
    lease_seconds: float = 60.0
    target_wait: float = 300.0
    cluster: ClusterConfig | None = None
    chat_reread_pages: int = 20  # pages of 50 Teams threads each sync reads again; 0: all
    chat_reply_window_days: float = 7.0  # threads active this recently are read each sync
    chat_reply_window_threads: int = 200  # at most this many of them


def _calendar_window(run: _Table) -> tuple[str | date | None, str | date | None]:
    """`run.calendar_window_start`/`_end`: TOML dates or date-times, or ISO strings,
    checked now rather than when the calendar source first opens."""
    bounds: list[str | date | None] = []
    for key in ("calendar_window_start", "calendar_window_end"):
        run.used.add(key)
        value = run.values.get(key)
        if value is not None and (isinstance(value, time) or not isinstance(value, str | date)):
            raise ConfigError(
                run.setting(key), f"must be a date (2021-01-01) or an ISO string, not {value!r}"
            )
        bounds.append(value)
    start, end = bounds
    Window.from_settings(start, end)  # a ConfigError naming the settings if unreadable
    return start, end


class _Table:
    """A TOML table read with the dotted name of each setting, for error messages."""

    def __init__(self, name: str, values: Any) -> None:
        if not isinstance(values, dict):
            raise ConfigError(name, "must be a table")
        self.name, self.values, self.used = name, values, set[str]()

    def setting(self, key: str) -> str:
        return f"{self.name}.{key}" if self.name else key

    def get(self, key: str, kind: type, default: Any = None, required: bool = False) -> Any:
        self.used.add(key)
        if key not in self.values:
            if required:
                raise ConfigError(self.setting(key), "is required")
            return default
        value = self.values[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(self.setting(key), f"must be a {kind.__name__}, not {value!r}")
        return value

    def positive(self, key: str, default: int) -> int:
        value = self.get(key, int, default)
        if value < 1:
            raise ConfigError(self.setting(key), f"must be at least 1, not {value}")
        return int(value)

    def path(self, key: str, base: Path, required: bool = False) -> Path | None:
        value = self.get(key, str, None, required)
        if value is None or value == "":
            return None
        path = Path(value).expanduser()
        return path if path.is_absolute() else base / path

    def finish(self) -> None:
        unknown = sorted(set(self.values) - self.used)
        if unknown:
            raise ConfigError(self.setting(unknown[0]), "is not a known setting")


def load_config(path: Path) -> Config:
    """Read and check `path`; relative paths in it are relative to its folder."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("--config", f"{path} does not exist (run `hirondelle init`)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", f"{path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError("--config", f"{path} is not UTF-8 text") from None
    except OSError as exc:  # a folder, a file this user cannot read...
        raise ConfigError("--config", f"cannot read {path}: {exc.strerror}") from None
    return parse_config(raw, path.resolve().parent)


def parse_config(raw: dict[str, Any], base: Path) -> Config:
    top = _Table("", raw)
    source, budget = _source(_Table("source", top.get("source", dict, required=True)), base)
    state = _Table("state", top.get("state", dict, {}))
    state_url = state.get("url", str, "sqlite:///state/hirondelle.sqlite")
    if state_url.startswith("sqlite:///") and not state_url.startswith("sqlite:////"):
        relative = state_url.removeprefix("sqlite:///")
        if relative != ":memory:":
            state_url = f"sqlite:///{base / relative}"
    audit_dir = state.path("audit_dir", base) or base / "audit"
    if "lock_file" in state.values:
        raise ConfigError(
            "state.lock_file",
            "is no longer used: the lock that keeps two runs apart lives in the state "
            "database itself; remove the setting",
        )
    state.finish()
    users_table = _Table("users", top.get("users", dict, {}))
    users_path = users_table.path("file", base)
    users_table.finish()
    users = read_users(users_path) if users_path else None
    run = _Table("run", top.get("run", dict, {}))
    deletions = run.get("deletions", str, "mirror")
    if deletions not in ("mirror", "keep"):
        raise ConfigError("run.deletions", f'must be "mirror" or "keep", not {deletions!r}')
    owner_concurrency = run.positive("owner_concurrency", 8)
    fetch_concurrency = run.positive("fetch_concurrency", 4)
    target_sessions = run.positive("target_sessions", 1)
    window_start, window_end = _calendar_window(run)
    workers = run.get("workers", int)
    if workers is not None and workers < 1:
        raise ConfigError("run.workers", f"must be at least 1, not {workers}")
    lease_seconds = run.get("lease_seconds", float, 60.0)
    if not 2 <= lease_seconds <= 86_400:  # also refuses nan and inf
        raise ConfigError(
            "run.lease_seconds", f"must be between 2 and 86400 seconds, not {lease_seconds}"
        )
    target_wait = run.get("target_wait_seconds", float, 300.0)
    if not 0 <= target_wait <= 86_400:
        raise ConfigError(
            "run.target_wait_seconds", f"must be between 0 and 86400 seconds, not {target_wait}"
        )
    reread_pages = run.get("chat_reread_pages", int, 20)
    window_days = run.get("chat_reply_window_days", float, 7.0)
    window_threads = run.get("chat_reply_window_threads", int, 200)
    for key, value in (
        ("chat_reread_pages", reread_pages),
        ("chat_reply_window_days", window_days),
        ("chat_reply_window_threads", window_threads),
    ):
        if not 0 <= value <= 1_000_000:  # also refuses nan and inf
            raise ConfigError(f"run.{key}", f"must be between 0 and 1000000, not {value}")
    run.finish()
    security = _Table("security", top.get("security", dict, {}))
    readable = security.get("readable_secret_files", str, "refuse")
    if readable not in POLICIES:
        raise ConfigError(
            "security.readable_secret_files", f'must be "refuse" or "warn", not {readable!r}'
        )
    security.finish()
    set_policy(readable)
    cluster = _cluster(top.get("cluster", dict), base, state_url)
    targets = _targets(_Table("targets", top.get("targets", dict, required=True)), base)
    top.finish()
    return Config(
        base_dir=base,
        source=source,
        budget=budget,
        state_url=state_url,
        audit_dir=audit_dir,
        targets=targets,
        users=dict(users.logins) if users else {},
        users_file=users,
        owner_concurrency=owner_concurrency,
        fetch_concurrency=fetch_concurrency,
        target_sessions=target_sessions,
        deletions=deletions,
        calendar_window_start=window_start,
        calendar_window_end=window_end,
        workers=workers,
        lease_seconds=lease_seconds,
        target_wait=target_wait,
        cluster=cluster,
        chat_reread_pages=reread_pages,
        chat_reply_window_days=window_days,
        chat_reply_window_threads=window_threads,
    )


def _cluster(values: Any, base: Path, state_url: str) -> ClusterConfig | None:
    if values is None:
        return None
    t = _Table("cluster", values)
    broker_url = t.get("broker_url", str, required=True)
    if not broker_url.startswith(("redis://", "rediss://", "amqp://", "amqps://", "pyamqp://")):
        raise ConfigError(
            "cluster.broker_url", "must be a redis:// or amqp:// URL (Redis or RabbitMQ)"
        )
    parts = urlsplit(broker_url)
    if parts.password or "password" in parts.query.lower():
        raise ConfigError(
            "cluster.broker_url",
            "holds a password: name it with broker_password_env or broker_password_file",
        )
    cluster = ClusterConfig(
        broker_url=broker_url,
        queue=t.get("queue", str),
        broker_password_env=t.get("broker_password_env", str),
        broker_password_file=t.path("broker_password_file", base),
    )
    t.finish()
    if state_url.startswith("sqlite"):
        raise ConfigError(
            "state.url",
            "a cluster needs a state every machine reaches: PostgreSQL "
            "(postgresql+psycopg://user@host/db), not SQLite",
        )
    return cluster


def _source(t: _Table, base: Path) -> tuple[GraphSettings, BudgetConfig]:
    if "client_secret" in t.values:
        raise ConfigError(
            "source.client_secret",
            "secrets are not accepted in the file: use client_secret_env or client_secret_file",
        )

    def path(key: str) -> str | None:
        value = t.path(key, base)
        return None if value is None else str(value)

    graph_url = t.get("graph_url", str, "https://graph.microsoft.com/v1.0").rstrip("/")
    if not graph_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise ConfigError("source.graph_url", "must be an https:// URL")
    settings = GraphSettings(
        tenant_id=t.get("tenant_id", str, required=True),
        client_id=t.get("client_id", str, required=True),
        graph_url=graph_url,
        authority=t.get("authority", str),
        ca_file=path("ca_file"),
        client_secret_env=t.get("client_secret_env", str),
        client_secret_file=path("client_secret_file"),
        certificate_file=path("certificate_file"),
        certificate_password_env=t.get("certificate_password_env", str),
    )
    budget = BudgetConfig(
        concurrency=t.positive("concurrency", 4),
        requests_per_window=t.positive("requests_per_window", 10_000),
        window_seconds=t.get("window_seconds", float, 600.0),
        files_units_per_minute=t.positive("files_units_per_minute", 1200),
        files_window_seconds=t.get("files_window_seconds", float, 60.0),
    )
    if budget.window_seconds <= 0:
        raise ConfigError("source.window_seconds", "must be positive")
    if budget.files_window_seconds <= 0:
        raise ConfigError("source.files_window_seconds", "must be positive")
    t.finish()
    return settings, budget


def _targets(t: _Table, base: Path) -> dict[str, TargetConfig]:
    targets: dict[str, TargetConfig] = {}
    for workload in list(t.values):
        if workload not in WORKLOADS:
            raise ConfigError(f"targets.{workload}", f"unknown workload (known: {WORKLOADS})")
        table = _Table(f"targets.{workload}", t.get(workload, dict))
        kind = table.get("kind", str, required=True)
        if kind not in TARGET_KINDS[workload]:
            raise ConfigError(
                f"targets.{workload}.kind",
                f"must be one of {', '.join(TARGET_KINDS[workload])}, not {kind!r}",
            )
        options = {k: v for k, v in table.values.items() if k != "kind"}
        for key, value in options.items():
            if (key == "path" or key.endswith("_file")) and isinstance(value, str) and value:
                path = Path(value).expanduser()
                options[key] = path if path.is_absolute() else base / path
        targets[workload] = TargetConfig(workload, kind, options)
    if not targets:
        raise ConfigError("targets", "configure at least one target, e.g. [targets.mail]")
    return targets
