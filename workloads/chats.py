"""The chats workload: Teams one-to-one, group and meeting chats into Matrix direct and
private rooms, or into JSON-lines archives with an HTML transcript.

The source lists each user's chats and claims each one for one selected member (the state's
claims table, shared by every process of the run; it moves when that member can no longer
carry it), so a chat is migrated once; its `chats` mapping (chat id -> `ChatInfo`) tells the
targets who is in each room. The mapper and its context are the channel workload's
(`workloads.chat`).
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from ..migrator.config import Config, TargetConfig
from ..migrator.errors import ConfigError
from ..migrator.plan import Planner
from ..migrator.protocols import Target
from ..migrator.registry import Clients, archive_path
from ..migrator.workload import Workload
from .chat import chat_context

BUDGET = "chats"  # the tenant-wide cap on chat message reads, divided among processes
TABLE = "targets.chats"


def build(
    config: Config, target_config: TargetConfig, clients: Clients
) -> tuple[Workload, Planner]:
    from ..connectors.archive_chat import ChatArchiveTarget
    from ..connectors.graph.chats import READS_PER_SECOND, GraphChatsSource, chats_budget
    from ..connectors.graph.client import GraphClient
    from ..connectors.matrix import MatrixTarget
    from ..mappings.chat import map_chat_message
    from ..mappings.chat_direct import MemberAccounts, MemberNames
    from ..migrator.coordinator import run_options
    from ..state.claims import StoreClaims
    from .chats_plan import ChatsPlanner

    separate_archives(config, target_config)
    context, settings = chat_context(config, target_config, clients, TABLE)
    client = GraphClient(
        config.source,
        chats_budget(),
        mailboxes=config.owner_concurrency,
        credential=clients.credential,
    )
    claims = StoreClaims(clients.store, "chats") if clients.store else None
    # a chat is held by a member this run selects (the users file), else nobody carries it
    source = GraphChatsSource(client, claims, wanted=run_options(config).users)
    clients.shared[BUDGET] = source.tenant.divide
    # users.csv names real users by UPN, messages and members by Teams id: the tenant's
    # /users listing (read by the source) joins the two, for the mapper and the rooms alike;
    # the chats' member lists name the people that system events name by id only
    users, names = MemberAccounts(context.users, source.upns), MemberNames(source.chats)
    context = replace(context, users=users, names=names)
    target: Target
    if settings is None:
        target = ChatArchiveTarget(archive_path(target_config), chats=source.chats)
    else:
        target = MatrixTarget(settings, {}, chats=source.chats, users=context.users)
    mapper = partial(map_chat_message, context=context)
    workload = Workload("chats", source, mapper, target, ordered=True, budget=BUDGET)
    return workload, ChatsPlanner(source, float(READS_PER_SECOND))


def separate_archives(config: Config, target_config: TargetConfig) -> None:
    """Refuse the channels' archive as the chats' archive: the chats' folders are
    `data/chats/...`, where a team named "chats" writes its channels."""
    channels = config.targets.get("chat")
    if channels is None or "archive" not in (channels.kind, target_config.kind):
        return
    if channels.identity(config.base_dir) == target_config.identity(config.base_dir):
        raise ConfigError(
            f"{TABLE}.path",
            'is also the path of [targets.chat]: a team named "chats" would write its '
            "channels among the chats' folders; give the chats an archive path of their own",
        )
