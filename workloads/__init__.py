"""Every workload and every target kind, declared once.

A workload (mail, calendars, contacts, inbox rules, files, chat, chats) is a Graph source, a
mapper, a planner and the targets it can write to. Its declaration names its code by import path
("workloads.mail:build", relative to the package) rather than importing it, so that
reading this table costs nothing: a mail run never imports what calendars, files or chat
need. The configuration's workload and kind lists, the target dispatch, the forkserver's
preload list, the configuration `init` writes, the demo's targets and the README check
(`tests/test_registry.py`) all read it.

Adding a target is one connector module plus one `TargetSpec` here (and its table for
`init` in `workloads.templates`); `tests/test_registry.py` then fails until the README
documents its kind and every setting and the conformance suites run it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .templates import CALENDAR, CHAT, CHATS, CONTACTS, FILES, MAIL, MAIL_ARCHIVE, RULES

PACKAGE = __name__.rsplit(".", 1)[0]  # "hirondelle"
ARCHIVE = "migrator.registry:ArchiveSettings"  # the archive targets' one setting: path


@dataclass(frozen=True)
class TargetSpec:
    """One `kind` of `[targets.<workload>]`: the code that builds it and where it is told."""

    kind: str
    target: str  # the Target class, built from the settings: "connectors.imap:ImapTarget"
    settings: str  # the settings dataclass the table is read into (ARCHIVE: `path` only)
    docs: str  # the README section that describes it
    template: str = ""  # its table in the configuration `init` writes (commented or not)
    # "module:function" (directory, server name) -> {path: text}: files `init` writes
    # beside the configuration, each readable by its owner only (they hold secrets)
    init_files: str = ""


@dataclass(frozen=True)
class WorkloadSpec:
    """One workload: its builder, the modules that builder imports, its targets, and its
    part of the demo."""

    name: str
    title: str  # how an archive's bag-info names what it holds
    # "module:function" (Config, TargetConfig, Clients) -> (Workload, Planner)
    builder: str
    # What the builder imports besides its targets (its source, mapper and planner).
    modules: tuple[str, ...]
    targets: tuple[TargetSpec, ...]
    demo_path: str  # the demo's archive of this workload, under its folder
    demo_changes: Mapping[str, int] = field(default_factory=dict)  # the demo's `Mutation`
    # How a plan without a full check counts an owner: from the tenant's usage report
    # ("mailboxes" or "onedrives", a table of `UsageReports`, with `report_row` the name of
    # the owner's one row), or not at all ("checks": left to the fully checked owners).
    usage_report: str = ""
    report_row: str = ""
    left_to_checks: bool = False

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(target.kind for target in self.targets)

    @property
    def preload(self) -> tuple[str, ...]:
        """Every module the workload's run imports, its targets' included, for a forkserver
        to import once before it forks workers."""
        targets = (target.target.partition(":")[0] for target in self.targets)
        return tuple(dict.fromkeys((*self.modules, *targets)))


def _archive(target: str, template: str = "") -> TargetSpec:
    """An archive kind: local files, its one setting `path`, described under "Archives"."""
    return TargetSpec("archive", target, ARCHIVE, "Archives", template)


WORKLOADS: tuple[WorkloadSpec, ...] = (
    WorkloadSpec(
        name="mail",
        title="mail",
        builder="workloads.mail:build",
        modules=(
            "connectors.graph.mail", "mappings.mail", "workloads.mail", "workloads.mail_plan",
        ),
        targets=(
            TargetSpec(
                "imap", "connectors.imap:ImapTarget", "connectors.imap:ImapSettings",
                "Configuration", MAIL,
            ),
            _archive("connectors.archive:ArchiveTarget", template=MAIL_ARCHIVE),
        ),
        demo_path="archive/mail",
        demo_changes={"new": 6, "flag_changes": 6, "moves": 4, "deletions": 3},
        usage_report="mailboxes",
        report_row="(mailbox)",
    ),
    WorkloadSpec(
        name="calendar",
        title="calendars",
        builder="workloads.calendar:build",
        modules=(
            "connectors.graph.calendar", "mappings.calendar",
            "workloads.calendar", "workloads.groupware_plan",
        ),
        targets=(
            TargetSpec(
                "caldav", "connectors.dav:CalDavTarget", "connectors.dav:DavSettings",
                "Calendars and contacts", CALENDAR,
            ),
            _archive("connectors.archive_dav:IcsArchiveTarget"),
        ),
        demo_path="archive/calendars",
        demo_changes={
            "new_events": 2, "event_changes": 2, "event_cancellations": 1, "event_deletions": 1,
        },
        left_to_checks=True,
    ),
    WorkloadSpec(
        name="contacts",
        title="contacts",
        builder="workloads.contacts:build",
        modules=(
            "connectors.graph.contacts", "mappings.contacts",
            "workloads.contacts", "workloads.groupware_plan",
        ),
        targets=(
            TargetSpec(
                "carddav", "connectors.dav:CardDavTarget", "connectors.dav:DavSettings",
                "Calendars and contacts", CONTACTS,
            ),
            _archive("connectors.archive_dav:VcfArchiveTarget"),
        ),
        demo_path="archive/contacts",
        demo_changes={"new_contacts": 2, "contact_changes": 2, "contact_deletions": 1},
        left_to_checks=True,
    ),
    WorkloadSpec(
        name="files",
        title="OneDrive and SharePoint files",
        builder="workloads.files:build",
        modules=(
            "connectors.graph.drives", "mappings.files", "workloads.files", "workloads.files_plan",
        ),
        targets=(
            TargetSpec(
                "webdav", "connectors.webdav:WebDavTarget", "connectors.webdav:WebDavSettings",
                "Files", FILES,
            ),
            _archive("connectors.archive_files:FilesArchiveTarget"),
        ),
        demo_path="archive/files",
        demo_changes={
            "file_creates": 3, "file_changes": 2, "file_renames": 2, "file_moves": 1,
            "folder_renames": 1, "file_deletions": 1, "folder_deletions": 1,
        },
        usage_report="onedrives",
        report_row="(OneDrive)",
    ),
    WorkloadSpec(
        name="chat",
        title="Teams channels",
        builder="workloads.chat:build",
        modules=(
            "connectors.graph.teams", "mappings.chat", "workloads.chat", "workloads.chat_plan",
        ),
        targets=(
            TargetSpec(
                "matrix", "connectors.matrix:MatrixTarget", "connectors.matrix:MatrixSettings",
                "Teams channels", CHAT, init_files="workloads.chat:init_files",
            ),
            _archive("connectors.archive_chat:ChatArchiveTarget"),
        ),
        demo_path="archive/chat",
        demo_changes={"chat_posts": 3, "chat_replies": 4, "chat_edits": 2, "chat_deletions": 1},
    ),
    WorkloadSpec(
        name="rules",
        title="inbox rules and automatic replies",
        builder="workloads.rules:build",
        modules=(
            "connectors.graph.rules", "mappings.sieve", "workloads.rules", "workloads.rules_plan",
        ),
        targets=(
            TargetSpec(
                "managesieve", "connectors.managesieve:ManageSieveTarget",
                "connectors.managesieve:ManageSieveSettings", "Inbox rules and automatic replies",
                RULES,
            ),
            _archive("connectors.archive_sieve:SieveArchiveTarget"),
        ),
        demo_path="archive/mail",  # each user's .sieve lands beside that user's Maildir
        demo_changes={"rule_changes": 2},
        left_to_checks=True,  # no usage report counts rules: read per checked owner
    ),
    WorkloadSpec(
        name="chats",
        title="Teams chats",
        builder="workloads.chats:build",
        modules=(
            "connectors.graph.chats", "mappings.chat", "state.claims",
            "workloads.chats", "workloads.chats_plan",
        ),
        targets=(
            TargetSpec(
                "matrix", "connectors.matrix:MatrixTarget", "connectors.matrix:MatrixSettings",
                "Teams chats", CHATS,
            ),
            _archive("connectors.archive_chat:ChatArchiveTarget"),
        ),
        demo_path="archive/chats",
        demo_changes={"chats_messages": 3, "chats_edits": 2, "chats_deletions": 1},
    ),
)  # fmt: skip

BY_NAME: Mapping[str, WorkloadSpec] = {spec.name: spec for spec in WORKLOADS}


def target_spec(workload: str, kind: str) -> TargetSpec | None:
    """The declaration of `kind` under `[targets.<workload>]`, or None."""
    spec = BY_NAME.get(workload)
    return next((t for t in spec.targets if t.kind == kind), None) if spec else None


def load(path: str) -> Any:
    """What an import path of this table names ("connectors.imap:ImapTarget"), imported now."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(f"{PACKAGE}.{module}"), name)
