"""The mail workload: Outlook mailboxes into IMAP or Maildir/mbox archives."""

from __future__ import annotations

from ..migrator.config import Config, TargetConfig
from ..migrator.plan import Planner
from ..migrator.registry import OUTLOOK, Clients, build_target, outlook_rate
from ..migrator.workload import Workload


def build(
    config: Config, target_config: TargetConfig, clients: Clients
) -> tuple[Workload, Planner]:
    from ..connectors.graph.mail import GraphMailSource
    from ..mappings.mail import map_message, message_attrs
    from .mail_plan import MailPlanner

    target = build_target(target_config)
    source = GraphMailSource(clients.outlook)
    workload = Workload("mail", source, map_message, target, message_attrs, budget=OUTLOOK)
    return workload, MailPlanner(source, target, outlook_rate(config))
