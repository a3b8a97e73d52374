"""The rules part of `plan`: per user, what the script holds and every finding.

Each user's snapshot is read once (its two requests, plus the folders its rules name)
and mapped as a run would map it, with the same folder names and extensions: every
sentence the Sieve mapping says about something it could not carry exactly (a
follow-up flag, a forward as attachment, a disabled rule kept as a comment, a folder
the mail workload has not written yet) is a finding of that user, in both tiers of the
plan, since reading it is all the plan costs. A user with no rule and automatic
replies off is said to have nothing to carry.
"""

from __future__ import annotations

import json
from typing import Any

from ..connectors.graph.rules import deletes, named_folders
from ..migrator.errors import SkipItem
from ..migrator.model import Container, Owner
from ..migrator.plan import Counted, Finding
from ..migrator.protocols import Source
from .rules import ScriptOf

# Requests per user: the rules and the mailbox settings; when rules name folders, the
# mail source's well-known names ($batch of 14 parts) and each folder up its path (as
# `connectors.graph.rules` reads them).
READS = 2
ROLES = 14


class RulesPlanner:
    counted: Counted = "listing"

    def __init__(self, source: Source, requests_per_second: float, script: ScriptOf) -> None:
        self.source, self.requests_per_second, self.script = source, requests_per_second, script
        self._contents: dict[str, bytes | None] = {}  # owner -> snapshot, until forgotten
        self._parsed: dict[str, dict[str, Any]] = {}  # owner -> that snapshot, parsed once

    def target_name(self, container: Container) -> str:
        return "Sieve script"

    async def count(self, container: Container) -> int:
        return 1 if await self._content(container) is not None else 0

    def requests(self, container: Container) -> int:
        snapshot = self._parsed.get(container.owner)
        return READS + (_folder_requests(snapshot) if snapshot is not None else 0)

    def forget(self, container: Container) -> None:
        self._contents.pop(container.owner, None)
        self._parsed.pop(container.owner, None)

    async def findings(
        self, owner: Owner, containers: list[Container], deep: bool
    ) -> list[Finding]:
        found: list[Finding] = []
        for container in containers:
            where = container.display_path
            try:
                content = await self._content(container)
            except SkipItem as exc:
                found.append(Finding("blocker", "rules", owner.upn, where, str(exc)))
                continue
            if content is None:
                detail = "no inbox rule and automatic replies off: nothing to carry, no script"
                found.append(Finding("info", "rules", owner.upn, where, detail))
                continue
            summary = _summary(self._parsed[container.owner])
            found.append(Finding("info", "rules", owner.upn, where, summary))
            for sentence in self.script(content).findings:
                found.append(Finding("warning", "rule", owner.upn, where, sentence))
        return found

    async def _content(self, container: Container) -> bytes | None:
        if container.owner not in self._contents:
            items = await self.source.listing(container)
            content = await self.source.fetch(container, items[0]) if items else None
            kept = content if isinstance(content, bytes) else None
            self._contents[container.owner] = kept
            if kept:
                self._parsed[container.owner] = json.loads(kept)
        return self._contents[container.owner]


def _folder_requests(snapshot: dict[str, Any]) -> int:
    """What finding the named folders costs: the well-known names, then each named folder
    (found or gone), the root and every folder above a named one, each read once."""
    named = named_folders(snapshot.get("rules") or [])
    if not named and not deletes(snapshot.get("rules") or []):
        return 0
    places = snapshot.get("folders") or {}
    levels = {
        tuple(place["path"][:depth])
        for place in places.values()
        for depth in range(1, len(place["path"]) + 1)
    }
    return ROLES + len(levels) + 1 + sum(1 for folder in named if folder not in places)


def _summary(snapshot: dict[str, Any]) -> str:
    """`11 rules (10 enabled), automatic replies scheduled`."""
    rules = snapshot.get("rules") or []
    enabled = sum(1 for rule in rules if rule.get("isEnabled", True))
    status = str((snapshot.get("automaticRepliesSetting") or {}).get("status") or "disabled")
    return f"{len(rules)} rules ({enabled} enabled), automatic replies {status}"
