"""Where workloads are assembled from the configuration: source + mapper + target.

This is the one module that names concrete connectors; the engine, plan and
verify only see the `Workload` it builds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..connectors.archive import ArchiveTarget
from ..connectors.graph.auth import make_credential
from ..connectors.graph.budget import MailboxBudget
from ..connectors.graph.client import GraphClient
from ..connectors.graph.mail import GraphMailSource
from ..connectors.imap import ImapSettings, ImapTarget
from ..mappings.mail import map_message, message_attrs
from .config import Config, TargetConfig
from .errors import ConfigError
from .mail_plan import MailPlanner
from .plan import Planner
from .protocols import Target
from .workload import Workload


@dataclass
class Assembled:
    workloads: list[Workload] = field(default_factory=list)
    planned: list[tuple[Workload, Planner]] = field(default_factory=list)


def settings_of(cls: type, options: dict[str, Any], table: str) -> Any:
    """Build a connector's settings dataclass, naming any unknown or bad key."""
    known = {f.name for f in dataclasses.fields(cls)}
    for key in options:
        if key not in known:
            raise ConfigError(f"{table}.{key}", f"is not a known setting (known: {sorted(known)})")
    try:
        return cls(**options)
    except TypeError as exc:
        raise ConfigError(table, str(exc)) from None


def build_target(config: TargetConfig) -> Target:
    table = f"targets.{config.workload}"
    if config.kind == "archive":
        path = config.options.get("path")
        if not isinstance(path, Path) or set(config.options) - {"path"}:
            raise ConfigError(f"{table}.path", "the archive target takes one setting: path")
        return ArchiveTarget(path)
    if config.kind == "imap":
        return ImapTarget(settings_of(ImapSettings, dict(config.options), table))
    raise ConfigError(f"{table}.kind", f"unknown target kind {config.kind!r}")


Builder = Callable[[Config, TargetConfig, GraphClient], tuple[Workload, Planner]]


def _mail(
    config: Config, target_config: TargetConfig, client: GraphClient
) -> tuple[Workload, Planner]:
    target = build_target(target_config)
    source = GraphMailSource(client)
    workload = Workload("mail", source, map_message, target, message_attrs)
    budget = config.budget
    rate = budget.requests_per_window / budget.window_seconds
    return workload, MailPlanner(source, target, rate)


BUILDERS: dict[str, Builder] = {"mail": _mail}


@asynccontextmanager
async def assemble(config: Config) -> AsyncIterator[Assembled]:
    """Open the configured workloads; close their connections on the way out.

    Outlook workloads (mail, calendar, contacts) share one client, so one
    mailbox's requests of every kind count against that mailbox's one budget.
    """
    assembled = Assembled()
    budget = config.budget
    credential = make_credential(config.source)
    budgets = MailboxBudget(budget.concurrency, budget.requests_per_window, budget.window_seconds)
    outlook = GraphClient(
        config.source, budgets, mailboxes=config.owner_concurrency, credential=credential
    )
    try:
        for name, target_config in config.targets.items():
            workload, planner = BUILDERS[name](config, target_config, outlook)
            assembled.workloads.append(workload)
            assembled.planned.append((workload, planner))
        yield assembled
    finally:
        await outlook.aclose()
        await credential.close()
