"""Where workloads are assembled from the configuration: source + mapper + target.

This is the one module that names concrete connectors; the engine, plan and
verify only see the `Workload` it builds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from azure.core.credentials_async import AsyncTokenCredential

from ..connectors.graph.auth import make_credential
from ..connectors.graph.budget import MailboxBudget
from ..connectors.graph.client import GraphClient
from ..state.store import LinkMap, Store
from .config import Config, TargetConfig
from .errors import ConfigError
from .model import Container, Item, Owner, TargetRef
from .plan import Planner
from .protocols import Mapper, Target
from .spool import process_spool, spool_root
from .spool import remove as remove_spool
from .workload import Workload

if TYPE_CHECKING:
    from ..connectors.graph.teams import GraphTeamsSource
    from ..mappings.chat import ChatContext

# Each workload's connectors, mappers and planner are imported by its builder, when the
# configuration names it: a mail run does not import what calendars, files or chat need
# (their imports cost about 0.4 s of CPU in each process). The same modules, by name, for
# a forkserver to import once before it forks workers (`local_workers`).
WORKLOAD_MODULES: Mapping[str, tuple[str, ...]] = {
    "mail": (
        "connectors.graph.mail", "connectors.imap", "connectors.archive",
        "mappings.mail", "migrator.mail_plan",
    ),
    "calendar": (
        "connectors.graph.calendar", "connectors.dav", "connectors.archive_dav",
        "mappings.calendar", "migrator.groupware_plan",
    ),
    "contacts": (
        "connectors.graph.contacts", "connectors.dav", "connectors.archive_dav",
        "mappings.contacts", "migrator.groupware_plan",
    ),
    "files": (
        "connectors.graph.drives", "connectors.webdav", "connectors.archive_files",
        "mappings.files", "migrator.files_plan",
    ),
    "chat": (
        "connectors.graph.teams", "connectors.matrix", "connectors.archive_chat",
        "mappings.chat", "migrator.chat_plan",
    ),
}  # fmt: skip


def workload_modules(config: Config) -> list[str]:
    """The full names of the modules the configured workloads' builders import."""
    package = __name__.rsplit(".", 2)[0]  # "hirondelle"
    names = (f"{package}.{module}" for w in config.targets for module in WORKLOAD_MODULES[w])
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
    values = dict(options)
    if any(f.name == "config_key" for f in dataclasses.fields(cls)):
        values["config_key"] = table
    try:
        return cls(**values)
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
            from ..connectors.archive import ArchiveTarget

            return ArchiveTarget(_archive(config))
        case "mail", "imap":
            from ..connectors.imap import ImapSettings, ImapTarget

            return ImapTarget(settings_of(ImapSettings, options, table))
        case "calendar", "archive":
            from ..connectors.archive_dav import IcsArchiveTarget

            return IcsArchiveTarget(_archive(config))
        case "contacts", "archive":
            from ..connectors.archive_dav import VcfArchiveTarget

            return VcfArchiveTarget(_archive(config))
        case "calendar", "caldav":
            from ..connectors.dav import CalDavTarget, DavSettings

            return CalDavTarget(settings_of(DavSettings, options, table))
        case "contacts", "carddav":
            from ..connectors.dav import CardDavTarget, DavSettings

            return CardDavTarget(settings_of(DavSettings, options, table))
        case "files", "archive":
            from ..connectors.archive_files import FilesArchiveTarget

            return FilesArchiveTarget(_archive(config))
        case "chat", "archive":
            from ..connectors.archive_chat import ChatArchiveTarget

            return ChatArchiveTarget(_archive(config))
        case "files", "webdav":
            from ..connectors.webdav import WebDavSettings, WebDavTarget

            return WebDavTarget(settings_of(WebDavSettings, options, table))
    raise ConfigError(f"{table}.kind", f"unknown target kind {config.kind!r}")


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


def _mail(
    config: Config, target_config: TargetConfig, clients: Clients
) -> tuple[Workload, Planner]:
    from ..connectors.graph.mail import GraphMailSource
    from ..mappings.mail import map_message, message_attrs
    from .mail_plan import MailPlanner

    target = build_target(target_config)
    source = GraphMailSource(clients.outlook)
    workload = Workload("mail", source, map_message, target, message_attrs, budget=OUTLOOK)
    return workload, MailPlanner(source, target, _outlook_rate(config))


def _calendar(
    config: Config, target_config: TargetConfig, clients: Clients
) -> tuple[Workload, Planner]:
    from ..connectors.graph.calendar import CalendarSettings, GraphCalendarSource
    from ..mappings.calendar import map_event
    from .groupware_plan import GroupwarePlanner, calendar_findings

    target = build_target(target_config)
    window = CalendarSettings(config.calendar_window_start, config.calendar_window_end)
    source = GraphCalendarSource(clients.outlook, window)
    workload = Workload(
        "calendar", source, map_event, target, budget=OUTLOOK, complete_listing=False
    )
    return workload, GroupwarePlanner(source, _outlook_rate(config), 3, calendar_findings)


def _contacts(
    config: Config, target_config: TargetConfig, clients: Clients
) -> tuple[Workload, Planner]:
    from ..connectors.dav import CardDavTarget
    from ..connectors.graph.contacts import GraphContactsSource
    from ..mappings.contacts import map_contact, map_contact_as, map_contact_v3
    from .groupware_plan import GroupwarePlanner

    target = build_target(target_config)
    source = GraphContactsSource(clients.outlook)
    mapper: Mapper
    if isinstance(target, CardDavTarget):  # the setting, else what the server lists
        mapper = map_contact_as(target.vcard_version)
    else:
        version = target_config.options.get("vcard_version", "4.0")
        mapper = map_contact_v3 if version == "3.0" else map_contact
    return Workload("contacts", source, mapper, target, budget=OUTLOOK), GroupwarePlanner(
        source, _outlook_rate(config), 2, None
    )


def _files(
    config: Config, target_config: TargetConfig, clients: Clients
) -> tuple[Workload, Planner]:
    from ..connectors.graph.drives import GraphDriveSource
    from ..connectors.webdav import WebDavTarget
    from ..mappings.file_names import LOCAL, PRESETS
    from ..mappings.files import attrs_only, content_changed, map_drive_item, sharepoint_note
    from .files_plan import FilesPlanner

    target = build_target(target_config)
    source = GraphDriveSource(clients.sharepoint, temp_dir=clients.spool())
    workload = Workload(
        "files",
        source,
        map_drive_item,
        target,
        attrs_only,
        content_changed=content_changed,
        update_order=path_depth,
        content_in_memory=False,
        hierarchical_refs=True,
        verify_note=sharepoint_note,
        budget=SHAREPOINT,
    )
    if isinstance(target, WebDavTarget):
        rules = PRESETS[target.settings.profile]
        limit = target.settings.max_upload_bytes
    else:
        rules, limit = LOCAL, None
    workload.link_of = partial(_file_link, config, target)
    units = config.budget.files_units_per_minute / 60.0
    return workload, FilesPlanner(source, rules, units, limit)


def _file_link(
    config: Config, target: Target, container: Container, item: Item, ref: TargetRef
) -> tuple[str, str] | None:
    """(the file's SharePoint/OneDrive URL, where it is now) for the links table."""
    from ..connectors.archive_files import FilesArchiveTarget
    from ..connectors.webdav import WebDavTarget
    from ..mappings.files import drive_meta

    meta = drive_meta(item)  # rows written by older versions may lack keys: .get
    web_url = meta.get("webUrl")
    if not isinstance(web_url, str) or meta.get("kind") != "file":
        return None
    relative = quote(f"{ref.folder}/{ref.ref}")
    if isinstance(target, WebDavTarget):
        owner = Owner(container.owner, "", "", config.users.get(container.owner.lower(), ""))
        login = target.target_login(owner)
        return web_url, target.settings.url.replace("{login}", quote(login)) + relative
    if isinstance(target, FilesArchiveTarget):
        return web_url, (target.payload / container.owner / f"{ref.folder}/{ref.ref}").as_uri()
    return None


def _chat(
    config: Config, target_config: TargetConfig, clients: Clients
) -> tuple[Workload, Planner]:
    from ..connectors.archive_chat import ChatArchiveTarget
    from ..connectors.graph.teams import GraphTeamsSource, TeamsSettings
    from ..connectors.matrix import MatrixSettings, MatrixTarget
    from ..mappings.chat import ChatContext, map_chat_message
    from .chat_plan import ChatPlanner

    table = "targets.chat"
    options = dict(target_config.options)
    # users.csv's target login is a Matrix id for real users known on the homeserver
    users = {upn: login for upn, login in config.users.items() if login.startswith("@")}
    links: Mapping[str, str] = LinkMap(clients.store, "files") if clients.store else {}
    target: Target
    if target_config.kind == "archive":
        target = ChatArchiveTarget(_archive(target_config))
        context = ChatContext(server_name="archive.invalid", users=users, links=links)
    else:
        settings = settings_of(MatrixSettings, options, table)
        context = ChatContext(
            server_name=settings.server_name,
            puppet_prefix=settings.puppet_prefix,
            users=users,
            links=links,
            deleted=settings.deleted,
            mode=settings.mode,
        )
    reread = TeamsSettings(
        reread_pages=config.chat_reread_pages,
        reply_window_days=config.chat_reply_window_days,
        reply_window_threads=config.chat_reply_window_threads,
    )
    source = GraphTeamsSource(clients.teams, reread)
    if target_config.kind != "archive":
        target = MatrixTarget(settings, _TeamOwners(source, context))
    mapper = partial(map_chat_message, context=context)
    workload = Workload("chat", source, mapper, target, ordered=True, budget=TEAMS)
    return workload, ChatPlanner(source, 4.0)


class _TeamOwners(Mapping[str, list[str]]):
    """Team id -> the Matrix ids of its owners, filled as the source lists teams."""

    def __init__(self, source: GraphTeamsSource, context: ChatContext) -> None:
        self.source, self.context = source, context

    def __getitem__(self, team_id: str) -> list[str]:
        from ..mappings.chat import matrix_user

        owners = self.source.team_owner_ids[team_id]
        return [matrix_user(user_id, self.context) for user_id in owners]

    def __iter__(self) -> Iterator[str]:
        return iter(self.source.team_owner_ids)

    def __len__(self) -> int:
        return len(self.source.team_owner_ids)


def path_depth(item: Item) -> int:
    """Parents before children: a renamed folder moves before the files in it change."""
    from ..mappings.files import drive_meta

    return str(drive_meta(item).get("path", "")).count("/")


def _outlook_rate(config: Config) -> float:
    return config.budget.requests_per_window / config.budget.window_seconds


BUILDERS: dict[str, Builder] = {
    "mail": _mail,
    "calendar": _calendar,
    "contacts": _contacts,
    "files": _files,
    "chat": _chat,
}


@asynccontextmanager
async def assemble(config: Config, store: Store | None = None) -> AsyncIterator[Assembled]:
    """Open the configured workloads; close their connections on the way out.

    Outlook workloads (mail, calendar, contacts) share one client, so one
    mailbox's requests of every kind count against that mailbox's one budget.
    """
    assembled = Assembled()
    credential = make_credential(config.source)
    clients = Clients(config, credential, store)
    assembled.graph = clients.outlook
    try:
        for name, target_config in config.targets.items():
            workload, planner = BUILDERS[name](config, target_config, clients)
            assembled.workloads.append(workload)
            assembled.planned.append((workload, planner))
            if workload.budget == SHAREPOINT:
                assembled.shared[SHAREPOINT] = clients.sharepoint.budgets.divide
            if workload.budget == TEAMS:
                from ..connectors.graph.teams import GraphTeamsSource

                assert isinstance(workload.source, GraphTeamsSource)
                assembled.shared[TEAMS] = workload.source.tenant.divide
        yield assembled
    finally:
        await clients.aclose()
        await credential.close()
