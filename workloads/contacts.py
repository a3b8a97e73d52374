"""The contacts workload: Outlook contacts into CardDAV or `.vcf` archives."""

from __future__ import annotations

from ..migrator.config import Config, TargetConfig
from ..migrator.plan import Planner
from ..migrator.protocols import Mapper
from ..migrator.registry import OUTLOOK, Clients, build_target, outlook_rate
from ..migrator.workload import Workload


def build(
    config: Config, target_config: TargetConfig, clients: Clients
) -> tuple[Workload, Planner]:
    from ..connectors.dav import CardDavTarget
    from ..connectors.graph.contacts import GraphContactsSource
    from ..mappings.contacts import map_contact, map_contact_as
    from .groupware_plan import GroupwarePlanner

    target = build_target(target_config)
    source = GraphContactsSource(clients.outlook)
    mapper: Mapper
    if isinstance(target, CardDavTarget):  # the setting, else what the server lists
        mapper = map_contact_as(target.vcard_version)
    else:  # an archive takes one setting, its path: it writes vCard 4.0
        mapper = map_contact
    return Workload("contacts", source, mapper, target, budget=OUTLOOK), GroupwarePlanner(
        source, outlook_rate(config), 2, None
    )
