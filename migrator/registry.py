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
from ..connectors.archive_dav import IcsArchiveTarget, VcfArchiveTarget
from ..connectors.archive_files import FilesArchiveTarget
from ..connectors.dav import CalDavTarget, CardDavTarget, DavSettings
from ..connectors.graph.auth import make_credential
from ..connectors.graph.budget import MailboxBudget
from ..connectors.graph.calendar import CalendarSettings, GraphCalendarSource
from ..connectors.graph.client import GraphClient
from ..connectors.graph.contacts import GraphContactsSource
from ..connectors.graph.mail import GraphMailSource
from ..connectors.imap import ImapSettings, ImapTarget
from ..mappings.calendar import map_event
from ..mappings.contacts import map_contact, map_contact_v3
from ..mappings.mail import map_message, message_attrs
from .config import Config, TargetConfig
from .errors import ConfigError
from .groupware_plan import GroupwarePlanner, calendar_findings
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


def _archive(config: TargetConfig) -> Path:
    path = config.options.get("path")
    table = f"targets.{config.workload}"
    if not isinstance(path, Path) or set(config.options) - {"path"}:
        raise ConfigError(f"{table}.path", "the archive target takes one setting: path")
    return path


def build_target(config: TargetConfig) -> Target:
    """The target of one `[targets.<workload>]` table."""
    table = f"targets.{config.workload}"
    options = dict(config.options)
    match config.workload, config.kind:
        case "mail", "archive":
            return ArchiveTarget(_archive(config))
        case "mail", "imap":
            return ImapTarget(settings_of(ImapSettings, options, table))
        case "calendar", "archive":
            return IcsArchiveTarget(_archive(config))
        case "contacts", "archive":
            return VcfArchiveTarget(_archive(config))
        case "calendar", "caldav":
            return CalDavTarget(settings_of(DavSettings, {**options, "config_key": table}, table))
        case "contacts", "carddav":
            return CardDavTarget(settings_of(DavSettings, {**options, "config_key": table}, table))
        case "files", "archive":
            return FilesArchiveTarget(_archive(config))
    raise ConfigError(f"{table}.kind", f"unknown target kind {config.kind!r}")


Builder = Callable[[Config, TargetConfig, GraphClient], tuple[Workload, Planner]]


def _mail(
    config: Config, target_config: TargetConfig, client: GraphClient
) -> tuple[Workload, Planner]:
    target = build_target(target_config)
    source = GraphMailSource(client)
    workload = Workload("mail", source, map_message, target, message_attrs)
    return workload, MailPlanner(source, target, _outlook_rate(config))


def _calendar(
    config: Config, target_config: TargetConfig, client: GraphClient
) -> tuple[Workload, Planner]:
    target = build_target(target_config)
    window = CalendarSettings(config.calendar_window_start, config.calendar_window_end)
    source = GraphCalendarSource(client, window)
    workload = Workload("calendar", source, map_event, target)
    return workload, GroupwarePlanner(source, _outlook_rate(config), 3, calendar_findings)


def _contacts(
    config: Config, target_config: TargetConfig, client: GraphClient
) -> tuple[Workload, Planner]:
    target = build_target(target_config)
    source = GraphContactsSource(client)
    version = target_config.options.get("vcard_version", "4.0")
    mapper = map_contact_v3 if version == "3.0" else map_contact
    return Workload("contacts", source, mapper, target), GroupwarePlanner(
        source, _outlook_rate(config), 2, None
    )


def _outlook_rate(config: Config) -> float:
    return config.budget.requests_per_window / config.budget.window_seconds


BUILDERS: dict[str, Builder] = {"mail": _mail, "calendar": _calendar, "contacts": _contacts}


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
