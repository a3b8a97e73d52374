"""The chat part of `plan`: per channel, messages and replies, authors, inline images;
the authors and deleted-message findings the chats part shares.

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
        detail = f"{roots} posts, {len(items) - roots} replies, {authors_text(authors)}"
        found = [Finding("info", "channel", owner.upn, container.display_path, detail)]
        return found + deleted_findings(owner, container, items)


def authors_text(authors: Counter[str]) -> str:
    """How many authors a channel's or a chat's messages have, and the five busiest."""
    return f"{len(authors)} authors ({', '.join(name for name, _ in authors.most_common(5))})"


def deleted_findings(owner: Owner, container: Container, items: list[Item]) -> list[Finding]:
    """The finding that a channel or a chat holds deleted messages, if it does."""
    deleted = sum(1 for i in items if i.meta.get("deleted"))
    if not deleted:
        return []
    text = f"{deleted} deleted messages (carried as notices or skipped)"
    return [Finding("info", "deleted", owner.upn, container.display_path, text)]
