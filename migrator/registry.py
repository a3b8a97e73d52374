"""Where workloads are assembled from the configuration: source + mapper + target.

Which workloads and target kinds exist, and the code that builds each, is declared in
`workloads`; this module reads those declarations and opens what the configuration
names. The engine, plan and verify only see the `Workload`s it builds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential

from ..connectors.graph.auth import make_credential
from ..connectors.graph.budget import MailboxBudget
from ..connectors.graph.client import GraphClient
from ..state.store import Store
from ..workloads import ARCHIVE, BY_NAME, PACKAGE, WORKLOADS, load, target_spec
from .config import Config, TargetConfig
from .errors import ConfigError
from .plan import Planner
from .protocols import Target
from .spool import process_spool, spool_root
from .spool import remove as remove_spool
from .workload import Workload

# The modules each workload's run imports, by workload, as `workloads` declares them.
WORKLOAD_MODULES: Mapping[str, tuple[str, ...]] = {w.name: w.preload for w in WORKLOADS}


def workload_modules(config: Config) -> list[str]:
    """The full names of the modules the configured workloads' builders import, for a
    forkserver to import once before it forks workers (`local_workers`)."""
    names = (f"{PACKAGE}.{module}" for w in config.targets for module in WORKLOAD_MODULES[w])
    return list(dict.fromkeys(names))


@dataclass
class Assembled:
    workloads: list[Workload] = field(default_factory=list)
    planned: list[tuple[Workload, Planner]] = field(default_factory=list)
    # Tenant-wide Graph budgets (SharePoint's resource units, the Teams tenant rate), by
    # budget group: each divides itself among the processes that draw on it now.
    shared: dict[str, Callable[[int], None]] = field(default_factory=dict)
    graph: GraphClient | None = None  # Outlook's client, for tenant-wide reads (reports)


def settings_of(cls: type, options: Mapping[str, Any], table: str) -> Any:
    """Build a connector's settings dataclass from its `[targets.<workload>]` table, naming
    any unknown or bad key; settings that name themselves in errors learn their table."""
    known = {f.name for f in dataclasses.fields(cls)} - {"config_key"}
    for key in options:
        if key not in known:
            raise ConfigError(f"{table}.{key}", f"is not a known setting (known: {sorted(known)})")
    required = [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [name for name in required if name not in options and name != "config_key"]
    if missing:
        raise ConfigError(f"{table}.{missing[0]}", "is required: " + ", ".join(missing))
    values = dict(options)
    if any(f.name == "config_key" for f in dataclasses.fields(cls)):
        values["config_key"] = table
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(table, str(exc)) from None


@dataclass(frozen=True)
class ArchiveSettings:
    """The `[targets.<workload>]` table of every `kind = "archive"`: one setting, read by
    `archive_path` (declared here so that the archives' settings are checked like any
    other target's, against the README)."""

    path: Path  # the folder written into, a BagIt bag


def archive_path(config: TargetConfig) -> Path:
    """The folder an archive target writes into, its table's one setting."""
    path = config.options.get("path")
    table = f"targets.{config.workload}"
    unknown = sorted(set(config.options) - {"path"})
    if unknown:
        raise ConfigError(f"{table}.{unknown[0]}", "the archive target takes one setting: path")
    if not isinstance(path, Path):
        raise ConfigError(f"{table}.path", "the archive target takes one setting: path")
    return path


def build_target(config: TargetConfig) -> Target:
    """The target of one `[targets.<workload>]` table, as its workload declares it."""
    table = f"targets.{config.workload}"
    spec = target_spec(config.workload, config.kind)
    if spec is None:
        raise ConfigError(f"{table}.kind", f"unknown target kind {config.kind!r}")
    target_class = load(spec.target)
    if spec.settings == ARCHIVE:
        settings = archive_path(config)
    else:
        settings = settings_of(load(spec.settings), dict(config.options), table)
    target: Target = target_class(settings)
    return target


class Clients:
    """The Graph clients of a run, sharing one credential: Outlook's (mail, calendars,
    contacts: one budget per mailbox) and, when files are moved, SharePoint's (one
    tenant-wide resource-unit budget)."""

    def __init__(
        self, config: Config, credential: AsyncTokenCredential, store: Store | None
    ) -> None:
        self.config, self.credential, self.store = config, credential, store
        budget = config.budget
        self.outlook = GraphClient(
            config.source,
            MailboxBudget(budget.concurrency, budget.requests_per_window, budget.window_seconds),
            mailboxes=config.owner_concurrency,
            credential=credential,
        )
        self._sharepoint: GraphClient | None = None
        # Tenant-wide budgets by budget group, registered by the builders whose sources
        # draw on them: each divides itself among the processes that draw on it now.
        self.shared: dict[str, Callable[[int], None]] = {}
        self._teams: GraphClient | None = None
        self._spool: Path | None = None

    def spool(self) -> Path:
        """This process's folder for downloaded contents (dead processes' ones swept)."""
        if self._spool is None:
            root = spool_root(self.config.state_url, self.config.base_dir)
            try:
                self._spool = process_spool(root)
            except OSError as exc:
                raise ConfigError("state.url", f"cannot create {root}: {exc.strerror}") from None
        return self._spool

    @property
    def sharepoint(self) -> GraphClient:
        if self._sharepoint is None:
            from ..connectors.graph.drives import sharepoint_budget

            self._sharepoint = GraphClient(
                self.config.source,
                sharepoint_budget(
                    self.config.budget.files_units_per_minute,
                    window_seconds=self.config.budget.files_window_seconds,
                ),
                mailboxes=self.config.owner_concurrency,
                credential=self.credential,
            )
        return self._sharepoint

    @property
    def teams(self) -> GraphClient:
        """Teams reads are limited per channel (about 4/s) and per tenant: see the source."""
        if self._teams is None:
            from ..connectors.graph.teams import teams_budget

            self._teams = GraphClient(
                self.config.source,
                teams_budget(),
                mailboxes=self.config.owner_concurrency,
                credential=self.credential,
            )
        return self._teams

    async def aclose(self) -> None:
        await self.outlook.aclose()
        for client in (self._sharepoint, self._teams):
            if client is not None:
                await client.aclose()
        if self._spool is not None:
            remove_spool(self._spool)


Builder = Callable[[Config, TargetConfig, Clients], tuple[Workload, Planner]]
# The Graph budgets owners draw on: a mailbox's mail, calendar and contacts share Outlook's
# per-mailbox budget; SharePoint's resource units and the Teams tenant rate are tenant-wide.
OUTLOOK, SHAREPOINT, TEAMS = "outlook", "sharepoint", "teams"


def outlook_rate(config: Config) -> float:
    """Graph requests per second one mailbox's budget allows."""
    return config.budget.requests_per_window / config.budget.window_seconds


@asynccontextmanager
async def assemble(config: Config, store: Store | None = None) -> AsyncIterator[Assembled]:
    """Open the configured workloads; close their connections on the way out.

    Outlook's workloads share one client, so one mailbox's requests of every kind count
    against that mailbox's one budget.
    """
    assembled = Assembled()
    credential = make_credential(config.source)
    clients = Clients(config, credential, store)
    assembled.graph = clients.outlook
    try:
        for name, target_config in config.targets.items():
            build: Builder = load(BY_NAME[name].builder)
            workload, planner = build(config, target_config, clients)
            assembled.workloads.append(workload)
            assembled.planned.append((workload, planner))
        assembled.shared.update(clients.shared)
        yield assembled
    finally:
        await clients.aclose()
        await credential.close()
