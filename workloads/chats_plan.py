"""The chats part of `plan`: per chat, its kind, messages, authors and inline images; the
chats left out; and what reading them costs.

Counting needs one read of each chat (Graph gives no message count), so the plan reads
each once, at the chat message rate, and reuses the listing for the findings. The reads
are `/chats/{id}/messages`, which is not a metered API: the plan says the cost is nil.
Graph's metered Teams APIs were the export ones (`getAllMessages`), at $0.00075 a message,
no longer billed since 25 August 2025
(https://learn.microsoft.com/en-us/graph/teams-licenses); this workload does not call them.
"""

from __future__ import annotations

import math
from collections import Counter

from ..connectors.graph.chats import GraphChatsSource
from ..connectors.graph.chats_reads import MESSAGE_PAGE
from ..migrator.model import Container, Item, Owner
from ..migrator.plan import Finding
from .chat_plan import authors_text, deleted_findings
from .listed_plan import ListedPlanner

EXPORT_PER_MESSAGE = 0.00075  # USD: what getAllMessages cost until 25 August 2025 (not used)


class ChatsPlanner(ListedPlanner):
    tenant_wide = True  # 20 chat message reads a second per app and tenant, for all owners

    def __init__(self, source: GraphChatsSource, requests_per_second: float) -> None:
        super().__init__(source)
        self.chats_source = source
        self.requests_per_second = requests_per_second

    def target_name(self, container: Container) -> str:
        return container.display_path

    def requests(self, container: Container) -> int:
        """A read per page of messages and one per inline image (`$value`), which the
        listing's bodies point at."""
        items = self._listed(container)
        images = self.chats_source.images.get(container.source_id, 0)
        return math.ceil(max(1, len(items)) / MESSAGE_PAGE) + images

    def forget(self, container: Container) -> None:
        super().forget(container)
        self.chats_source.images.pop(container.source_id, None)

    async def findings(
        self, owner: Owner, containers: list[Container], deep: bool
    ) -> list[Finding]:
        found = await super().findings(owner, containers, deep)
        for what in self.chats_source.left_out.get(owner.upn, []):
            text = f"chat {what} is of a kind this tool does not carry: left out"
            found.append(Finding("warning", "chat-kind", owner.upn, "", text))
        for what in self.chats_source.unexpected.get(owner.upn, []):
            text = (
                f"chat {what} is listed for this user but its members do not name them: "
                "carried all the same, by this user if it names no selected user"
            )
            found.append(Finding("warning", "chat-holder", owner.upn, "", text))
        messages = sum(len(self._listed(c)) for c in containers)
        if containers:
            text = (
                f"{messages} messages read with /chats/{{id}}/messages, not a metered API: "
                "$0.00 (the export API, which this tool does not use, was metered at "
                f"${EXPORT_PER_MESSAGE:g} a message, ${messages * EXPORT_PER_MESSAGE:.2f} here, "
                "until it stopped being billed on 25 August 2025)"
            )
            found.append(Finding("info", "metered", owner.upn, "", text))
        return found

    def _findings(self, owner: Owner, container: Container, items: list[Item]) -> list[Finding]:
        written = [i for i in items if i.meta.get("messageType") == "message"]
        authors = Counter(str(i.meta.get("fromName")) for i in written if i.meta.get("fromName"))
        system = len(items) - len(written)  # system events have no author
        detail = (
            f"{container.role} chat: {len(written)} messages, {system} system events, "
            f"{authors_text(authors)}"
        )
        found = [Finding("info", "chat", owner.upn, container.display_path, detail)]
        return found + deleted_findings(owner, container, items)
