"""What one sync of a Teams channel leaves for the next: the stored cursor.

A channel's cursor holds three things (`teams.py` explains why each is needed):

- the deltaLink of `messages/delta`, which reports new and changed root posts;
- the recently active threads, whose replies each sync reads again;
- the round that reads every thread of the channel again, a few pages a sync: where it
  resumes, when it started, and when the last complete round started. Every reply
  posted before that time has been read; what came later to a thread the window and
  delta do not cover is found by the round in progress, and the summary says so.

Times are the client's own clock, in UTC. A cursor of another shape (an earlier
version's) is refused with `CursorExpired`: the channel is then read whole once, which
is itself a complete round.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ...migrator.errors import CursorExpired

CURSOR_VERSION = 2
_STAMP = "%Y-%m-%dT%H:%M:%SZ"


def stamp(moment: datetime) -> str:
    """A cursor time: UTC, to the second."""
    return moment.astimezone(UTC).strftime(_STAMP)


def shown(text: str) -> str:
    """A cursor time as the summary prints it."""
    return datetime.strptime(text, _STAMP).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True, slots=True)
class Round:
    """The reading of every thread again, page by page, newest thread first.

    `next`: the listing's next link where the round in progress resumes (None: the next
    sync starts a round at the newest thread); `started`: when that round read its first
    page; `read`: threads it has read so far. `checked`: when the last complete round
    started, so every reply posted before then has been read; `threads`: how many
    threads that round counted.
    """

    next: str | None = None
    started: str | None = None
    read: int = 0
    checked: str | None = None
    threads: int = 0

    def resumed(self, link: str | None, started: str, read: int) -> Round:
        """This round after a sync's pages: still going at `link`, or complete (None)."""
        if link is None:
            return Round(checked=started, threads=read)
        return Round(link, started, read, self.checked, self.threads)

    def unchecked(self, since: str, per_sync: int) -> str | None:
        """What the summary says when some threads have not been read since this sync
        began (`since`); None when a round both began and ended in it."""
        if self.next is None and self.checked == since:
            return None
        last = shown(self.checked) if self.checked else "the first copy"
        if self.next is None:
            progress = "the next round begins at the next sync"
        else:
            total = max(self.threads, self.read)
            progress = f"the round under way has read {self.read} of about {total}"
        return (
            f"replies to threads without recent activity are carried up to {last} only: "
            f"{progress}, {per_sync} threads a sync (run.chat_reread_pages)"
        )


@dataclass(frozen=True, slots=True)
class ChannelCursor:
    """The deltaLink (None where delta was refused), the recent threads, the round."""

    delta: str | None
    recent: dict[str, tuple[str, str]] = field(default_factory=dict)  # root: created, activity
    round: Round = Round()

    def dumps(self) -> str:
        recent = {root: list(times) for root, times in self.recent.items()}
        state: dict[str, Any] = {"v": CURSOR_VERSION, "delta": self.delta, "recent": recent}
        state["round"] = {
            "next": self.round.next,
            "started": self.round.started,
            "read": self.round.read,
            "checked": self.round.checked,
            "threads": self.round.threads,
        }
        return json.dumps(state)

    @classmethod
    def loads(cls, text: str) -> ChannelCursor:
        """Read a stored cursor; anything unreadable means reading the channel whole."""
        try:
            state = json.loads(text)
            if state.get("v") != CURSOR_VERSION or not isinstance(state["delta"], str | None):
                raise ValueError("cursor of another shape")
            recent = {str(k): (str(v[0]), str(v[1])) for k, v in state["recent"].items()}
            kept = state["round"]
            found = Round(
                _text(kept["next"]),
                _text(kept["started"]),
                int(kept["read"]),
                _text(kept["checked"]),
                int(kept["threads"]),
            )
            if found.checked is not None:
                shown(found.checked)  # a time this module wrote, or the cursor is not ours
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise CursorExpired(f"unreadable chat cursor ({exc})") from exc
        return cls(state["delta"], recent, found)


def _text(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"not text: {value!r}")
    return value
