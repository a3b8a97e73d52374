"""The chat part of `plan`: per channel, messages and replies, authors, inline images.

Counting needs one read of each channel (Graph has no cheap message count), so
the plan reads them once, at Teams' rate, and reuses the listing for findings.
"""

from __future__ import annotations

from collections import Counter

from ..migrator.model import Container, Item, Owner
from ..migrator.plan import Finding
from ..migrator.protocols import Source
from .listed_plan import ListedPlanner


class ChatPlanner(ListedPlanner):
    def __init__(self, source: Source, requests_per_second: float) -> None:
        super().__init__(source)
        self.requests_per_second = requests_per_second

    def target_name(self, container: Container) -> str:
        return " / ".join(container.path)

    def requests(self, container: Container) -> int:
        items = self._listed(container)
        roots = sum(1 for i in items if i.meta.get("rootId") == i.source_id)
        return roots // 50 + roots + 2  # pages of 50 roots, a replies read per thread

    def _findings(self, owner: Owner, container: Container, items: list[Item]) -> list[Finding]:
        roots = sum(1 for i in items if i.meta.get("rootId") == i.source_id)
        authors = Counter(str(i.meta.get("fromName") or "?") for i in items)
        detail = (
            f"{roots} posts, {len(items) - roots} replies, {len(authors)} authors"
            f" ({', '.join(name for name, _ in authors.most_common(5))})"
        )
        found = [Finding("info", "channel", owner.upn, container.display_path, detail)]
        deleted = sum(1 for i in items if i.meta.get("deleted"))
        if deleted:
            text = f"{deleted} deleted messages (carried as notices or skipped)"
            found.append(Finding("info", "deleted", owner.upn, container.display_path, text))
        return found
