"""Outlook's delta sync states: only the last few generations of a folder's walk live.

Every page Exchange serves for a delta walk (a nextLink or the final deltaLink)
carries a new generation of the folder's sync state, and only the newest few are
kept: a link several pages older answers 410 Gone with `SyncStateNotFound`, "The sync
state generation is not found; generation=518;[highest=523][523][521][522]." (reported
in github.com/microsoftgraph/microsoft-graph-docs/issues/2877 and #2162; the 410 and
the full resync it calls for are documented at
https://learn.microsoft.com/en-us/graph/delta-query-overview#synchronization-reset).
A client that keeps only its newest link never meets it; one that resumes from an
older link, or shares the folder's walk with another process, must start over.
"""

from __future__ import annotations

from collections.abc import Hashable

KEPT_GENERATIONS = 3


class SyncStates:
    """The generations issued per folder (any hashable key), and which still live."""

    def __init__(self, kept: int = KEPT_GENERATIONS) -> None:
        self.kept = kept
        self._highest: dict[Hashable, int] = {}

    def issue(self, key: Hashable) -> int:
        """A new generation for a page about to be served."""
        generation = self._highest.get(key, 0) + 1
        self._highest[key] = generation
        return generation

    def problem(self, key: Hashable, generation: int) -> str | None:
        """Why a link of `generation` is no longer usable, or None while it lives."""
        highest = self._highest.get(key, 0)
        if highest - self.kept < generation <= highest:
            return None
        live = "".join(f"[{g}]" for g in range(highest, max(0, highest - self.kept), -1))
        return (
            f"The sync state generation is not found; generation={generation};"
            f"[highest={highest}]{live}."
        )
