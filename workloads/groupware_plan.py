"""The calendar and contacts part of `plan`: counts per calendar/address book, findings.

Counts come from the source's listing (one request per page of events or
contacts; a recurring series is one item, its occurrences are not expanded). In a
deep plan each event is also read with its occurrences and checked by the pure
`event_findings` (time zones without an IANA name, recurrences iCalendar cannot
express, attendees without an address): the only way to say before the move what
will not be carried exactly, at a few requests per event.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from ..mappings.calendar import event_findings
from ..migrator.errors import SkipItem
from ..migrator.model import Container, Owner
from ..migrator.plan import Counted, Finding
from ..migrator.protocols import Source

FINDINGS_LIMIT = 2000  # events read per calendar for findings; beyond, said so


def calendar_findings(content: bytes) -> list[str]:
    try:
        event = json.loads(content).get("event")
    except (ValueError, AttributeError):
        return ["content is not the expected JSON"]
    return event_findings(event)


class GroupwarePlanner:
    counted: Counted = "listing"

    def __init__(
        self,
        source: Source,
        requests_per_second: float,
        requests_per_item: int,
        findings_of: Callable[[bytes], list[str]] | None,
    ) -> None:
        self.source, self.requests_per_second = source, requests_per_second
        self.requests_per_item, self.findings_of = requests_per_item, findings_of
        self._counts: dict[str, int] = {}

    def target_name(self, container: Container) -> str:
        return container.display_path

    async def count(self, container: Container) -> int:
        if container.source_id not in self._counts:
            self._counts[container.source_id] = len(await self.source.listing(container))
        return self._counts[container.source_id]

    def requests(self, container: Container) -> int:
        items = container.total_items or self._counts.get(container.source_id, 0)
        return items * self.requests_per_item + 2

    def forget(self, container: Container) -> None:
        self._counts.pop(container.source_id, None)

    async def findings(
        self, owner: Owner, containers: list[Container], deep: bool
    ) -> list[Finding]:
        found: list[Finding] = []
        if self.findings_of is None or not deep:
            return found
        for container in containers:
            items = await self.source.listing(container)
            for item in items[:FINDINGS_LIMIT]:
                try:
                    content = await self.source.fetch(container, item)
                except SkipItem as exc:
                    found.append(self._finding(owner, container, item.source_id, str(exc)))
                    continue
                if isinstance(content, bytes):
                    for text in self.findings_of(content):
                        found.append(self._finding(owner, container, item.source_id, text))
            if len(items) > FINDINGS_LIMIT:
                detail = f"only the first {FINDINGS_LIMIT} of {len(items)} items were checked"
                found.append(Finding("info", "partial", owner.upn, container.display_path, detail))
        return found

    @staticmethod
    def _finding(owner: Owner, container: Container, source_id: str, text: str) -> Finding:
        return Finding(
            "warning", "event", owner.upn, container.display_path, f"{source_id}: {text}"
        )
