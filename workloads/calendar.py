"""The calendar workload: Outlook calendars into CalDAV or `.ics` archives."""

from __future__ import annotations

from ..migrator.config import Config, TargetConfig
from ..migrator.plan import Planner
from ..migrator.registry import OUTLOOK, Clients, build_target, outlook_rate
from ..migrator.workload import Workload


def build(
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
    return workload, GroupwarePlanner(source, outlook_rate(config), 3, calendar_findings)
