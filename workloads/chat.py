"""The chat workload: Teams channels into Matrix rooms or JSON-lines archives."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from ..migrator.config import Config, TargetConfig
from ..migrator.plan import Planner
from ..migrator.protocols import Target
from ..migrator.registry import TEAMS, Clients, archive_path, settings_of
from ..migrator.workload import Workload
from ..state.store import LinkMap

if TYPE_CHECKING:
    from ..connectors.graph.teams import GraphTeamsSource
    from ..connectors.matrix import MatrixSettings
    from ..mappings.chat import ChatContext


def build(
    config: Config, target_config: TargetConfig, clients: Clients
) -> tuple[Workload, Planner]:
    from ..connectors.archive_chat import ChatArchiveTarget
    from ..connectors.graph.teams import GraphTeamsSource, TeamsSettings
    from ..connectors.matrix import MatrixTarget
    from ..mappings.chat import map_chat_message
    from .chat_plan import ChatPlanner

    context, settings = chat_context(config, target_config, clients, "targets.chat")
    target: Target
    if target_config.kind == "archive":
        target = ChatArchiveTarget(archive_path(target_config))
    reread = TeamsSettings(
        reread_pages=config.chat_reread_pages,
        reply_window_days=config.chat_reply_window_days,
        reply_window_threads=config.chat_reply_window_threads,
    )
    source = GraphTeamsSource(clients.teams, reread)
    clients.shared[TEAMS] = source.tenant.divide
    # the teams' member lists name the people that reactions name by id only; the same
    # dict, filled as the source lists each team's members
    context = replace(context, names=source.member_names)
    if settings is not None:
        target = MatrixTarget(settings, _TeamOwners(source, context))
    mapper = partial(map_chat_message, context=context)
    workload = Workload("chat", source, mapper, target, ordered=True, budget=TEAMS)
    return workload, ChatPlanner(source, 4.0)


def chat_context(
    config: Config, target_config: TargetConfig, clients: Clients, table: str
) -> tuple[ChatContext, MatrixSettings | None]:
    """The Teams mapper's context for a chat target (channels or chats): the real users
    known on the homeserver, the links of migrated files; and the Matrix settings of
    `table` (None for an archive)."""
    from ..connectors.matrix import MatrixSettings
    from ..mappings.chat import ChatContext

    # users.csv's target login is a Matrix id for real users known on the homeserver
    users = {upn: login for upn, login in config.users.items() if login.startswith("@")}
    links: Mapping[str, str] = LinkMap(clients.store, "files") if clients.store else {}
    if target_config.kind == "archive":
        context = ChatContext(server_name="archive.invalid", users=users, links=links)
        return context, None
    settings = settings_of(MatrixSettings, dict(target_config.options), table)
    context = ChatContext(
        server_name=settings.server_name,
        puppet_prefix=settings.puppet_prefix,
        users=users,
        links=links,
        deleted=settings.deleted,
        mode=settings.mode,
    )
    return context, settings


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


def init_files(directory: Path, server_name: str) -> dict[Path, str]:
    """The Matrix application service registration `init` writes, with a fresh token, and
    the token's file the configuration names (`as_token_file`)."""
    from ..connectors.matrix import MatrixSettings, registration_yaml

    as_token, hs_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    token_file = directory / "matrix-as-token"
    settings = MatrixSettings("https://matrix.example.org", server_name, as_token_file=token_file)
    return {
        directory / "matrix-appservice.yaml": registration_yaml(settings, as_token, hs_token),
        token_file: as_token + "\n",
    }
