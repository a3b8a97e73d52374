"""The mail workload's part of `plan`: target folder names, request counts, findings.

Findings an integrator shows the client before the move: folders that will be
renamed on the target, hidden folders that are not carried and, in a deep plan
(which lists every message of every folder), messages larger than the target
accepts and drafts without a Message-ID (verified by digest instead). Counts and
sizes are the folders' own (totalItemCount and size), read with the folder tree.
"""

from __future__ import annotations

import math
from typing import Any

from ..mappings.mail_folders import escape_segment, join_folder, target_folder
from ..mappings.sizes import readable_size
from ..migrator.model import Container, Owner
from ..migrator.plan import Counted, Finding
from ..migrator.protocols import FolderTree, HiddenFolders, Source, Target

# Requests per message: one `$value`; per page of the delta enumeration: one
# listing request; plus the folder walk. Kept in one place so the estimate
# follows the source's real request pattern.
DELTA_PAGE = 1000
PLAN_DELIMITER = "/"


class MailPlanner:
    counted: Counted = "inventory"

    def __init__(self, source: Source, target: Target, requests_per_second: float) -> None:
        self.source, self.target = source, target
        self.requests_per_second = requests_per_second
        self._hidden: dict[str, list[str]] = {}  # owner -> hidden folders, until its findings

    async def containers(self, owner: Owner) -> list[Container]:
        """The visible folders, and the hidden ones kept for `findings`: the tree is walked
        once per owner, not once for each."""
        if not isinstance(self.source, FolderTree):
            return await self.source.containers(owner)
        containers, self._hidden[owner.upn] = await self.source.folder_tree(owner)
        return list(containers)

    def target_name(self, container: Container) -> str:
        """The folder name on a server that has no SPECIAL-USE folders yet."""
        segments = target_folder(container.path, _roles(container), {})
        return join_folder(segments, PLAN_DELIMITER)

    def requests(self, container: Container) -> int:
        return self.requests_for(container.total_items)

    def requests_for(self, items: int) -> int:
        """A folder of `items` messages (or a whole mailbox, as a usage report counts it)."""
        return items + math.ceil(items / DELTA_PAGE) + 1

    async def findings(
        self, owner: Owner, containers: list[Container], deep: bool
    ) -> list[Finding]:
        found: list[Finding] = []
        hidden = self._hidden.pop(owner.upn, None)
        if hidden is None and isinstance(self.source, HiddenFolders):
            hidden = await self.source.hidden_folders(owner)
        if hidden is not None:
            for name in hidden:
                found.append(
                    Finding("info", "hidden-folder", owner.upn, name, "hidden folder, not carried")
                )
        limit = self.target.capabilities.max_item_bytes
        for container in containers:
            found.extend(self._renamed(owner, container))
            if deep and container.total_items:
                found.extend(await self._items(owner, container, limit))
        return found

    def forget(self, container: Container) -> None:
        return None  # nothing is kept per folder

    def _renamed(self, owner: Owner, container: Container) -> list[Finding]:
        mapped = target_folder(container.path, _roles(container), {})
        name = escape_segment(mapped[-1], PLAN_DELIMITER)
        if container.role is not None or name == container.path[-1]:
            return []
        detail = f"renamed to {name!r} on the target"
        return [Finding("warning", "renamed", owner.upn, container.display_path, detail)]

    async def _items(self, owner: Owner, container: Container, limit: int | None) -> list[Finding]:
        found: list[Finding] = []
        no_id = 0
        for item in await self.source.listing(container):
            size = _int(item.meta.get("size"))
            if limit is not None and size is not None and size > limit:
                detail = (
                    f"{item.source_id}: {readable_size(size)}, over the target's limit of "
                    f"{readable_size(limit)}; not carried"
                )
                found.append(
                    Finding("blocker", "oversize", owner.upn, container.display_path, detail)
                )
            if not item.meta.get("internetMessageId"):
                no_id += 1
        if no_id:
            detail = f"{no_id} message(s) without Message-ID, matched by content digest"
            where = container.display_path
            found.append(Finding("info", "no-message-id", owner.upn, where, detail))
        return found


def _roles(container: Container) -> tuple[str | None, ...]:
    return container.path_roles or (None,) * (len(container.path) - 1) + (container.role,)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
