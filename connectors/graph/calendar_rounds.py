"""What one round over a calendar found, and what it leaves for the next round.

A round reads expanded instances (single events, occurrences and exceptions of
series) from `calendarView/delta` or from a plain `calendarView`, folds them into
their master (`seriesMasterId`) and settles them into one `Item` per single event
or series master. Two ways of settling, one per way of reading:

- `settle_delta`: delta names only what changed, so a series is re-emitted when one
  of its instances was reported or its master's changeKey moved, and removals come
  from `@removed` entries and from masters gone from the calendar's listing;
- `settle_listing`: a plain view lists everything, so each single and master is
  compared with the version the cursor remembers, and an id the cursor remembers
  that is listed no more was removed.

The cursor is this package's own JSON, only ever handed back by the engine.
Everything here is pure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from ...migrator.errors import CursorExpired
from ...migrator.model import Item
from .calendar_window import Window

CURSOR_VERSION = 1
SINGLE, MASTER = "singleInstance", "seriesMaster"


class EventMeta(TypedDict):
    """An event's `Item.meta`: its kind (a single event or a series' master) and the
    iCalendar UID the calendar target names its resource after."""

    type: str
    iCalUId: str


@dataclass
class Cursor:
    """What a finished round leaves for the next.

    `links`: one delta link per slice of the window (None where delta is not read);
    `masters`: series master id -> changeKey, for a calendar read through delta;
    `known`: single or master id -> the version carried, for a calendar read through
    plain listings (None in a cursor written before listings existed).
    """

    window: Window
    links: list[str | None]
    masters: dict[str, str] = field(default_factory=dict)
    known: dict[str, str] | None = None

    def dumps(self) -> str:
        state: dict[str, Any] = {
            "v": CURSOR_VERSION,
            "start": self.window.start_text,
            "end": self.window.end_text,
            "links": self.links,
            "masters": self.masters,
        }
        if self.known is not None:
            state["known"] = self.known
        return json.dumps(state, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> Cursor:
        """Read a stored cursor; anything unreadable means enumerating again."""
        try:
            state = json.loads(text)
            window = Window.parse(state["start"], state["end"])
            links = [link if isinstance(link, str) else None for link in state["links"]]
            masters = _text_map(state.get("masters"))
            known = _text_map(state["known"]) if "known" in state else None
            if state.get("v") != CURSOR_VERSION or len(links) != len(window.slices()):
                raise ValueError("cursor of another shape")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CursorExpired(f"unreadable calendar cursor ({exc})") from exc
        return cls(window, links, masters, known)


@dataclass
class Round:
    """Everything one round said, across the window's slices."""

    singles: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> version, uid
    series: dict[str, dict[str, str]] = field(default_factory=dict)  # master -> instance tokens
    live: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)

    def take(self, entry: Mapping[str, Any]) -> None:
        event_id = str(entry["id"])
        if "@removed" in entry:
            self.removed.add(event_id)
            return
        self.live.add(event_id)
        master = entry.get("seriesMasterId")
        if entry.get("type") == MASTER:
            self.series.setdefault(event_id, {})[event_id] = _token(entry)
        elif master:
            self.series.setdefault(str(master), {})[event_id] = _token(entry)
        else:
            self.singles[event_id] = (_token(entry), str(entry.get("iCalUId") or ""))

    @property
    def empty(self) -> bool:
        return not (self.live or self.removed)


Masters = Mapping[str, tuple[str, str]]  # series master id -> (changeKey, iCalUId)


def settle_delta(
    found: Round, known: Mapping[str, str], masters: Masters
) -> tuple[list[Item], set[str], dict[str, str]]:
    """Items to write, ids removed and the masters to remember, from one delta round."""
    items = [
        Item(event_id, version, EventMeta(type=SINGLE, iCalUId=uid))
        for event_id, (version, uid) in sorted(found.singles.items())
    ]
    changed = {m for m, key in known.items() if m in masters and masters[m][0] != key}
    for master_id in sorted(set(found.series) | changed):
        if master_id not in masters:
            continue  # gone since delta listed it: the next round removes it
        change_key, uid = masters[master_id]
        version = master_version(change_key, found.series.get(master_id, {}).values())
        items.append(Item(master_id, version, EventMeta(type=MASTER, iCalUId=uid)))
    removed = (found.removed - found.live - set(masters)) | {m for m in known if m not in masters}
    tracked = {m: masters[m][0] for m in set(known) | set(found.series) if m in masters}
    return items, removed, tracked


def settle_listing(
    found: Round, masters: Masters, known: Mapping[str, str]
) -> tuple[list[Item], set[str], dict[str, str]]:
    """Items whose version is not the one `known` remembers, ids `known` holds that the
    listing no longer has, and every listed id with its version, from one full listing.

    A series whose instances were listed but whose master the master listing missed
    (deleted in between) keeps what `known` says: the next listing settles it.
    """
    current = {
        event_id: Item(event_id, version, EventMeta(type=SINGLE, iCalUId=uid))
        for event_id, (version, uid) in found.singles.items()
    }
    for master_id, tokens in found.series.items():
        if master_id in masters:
            change_key, uid = masters[master_id]
            version = master_version(change_key, tokens.values())
            current[master_id] = Item(master_id, version, EventMeta(type=MASTER, iCalUId=uid))
    undecided = {m: known[m] for m in found.series if m not in masters and m in known}
    items = [item for key, item in sorted(current.items()) if known.get(key) != item.version]
    removed = set(known) - set(current) - set(undecided)
    return items, removed, {key: item.version for key, item in current.items()} | undecided


def master_version(change_key: str, tokens: Iterable[str]) -> str:
    """The master's changeKey, plus a digest of the instance versions the round read."""
    reported = sorted(tokens)
    if not reported:
        return change_key
    digest = hashlib.sha256("\n".join(reported).encode()).hexdigest()[:16]
    return f"{change_key}#{digest}"


def item_of(event: Mapping[str, Any], version: str) -> Item:
    meta = EventMeta(type=str(event.get("type") or SINGLE), iCalUId=str(event.get("iCalUId") or ""))
    return Item(str(event["id"]), version, meta)


def _token(entry: Mapping[str, Any]) -> str:
    """An instance's version: its changeKey, else its etag (delta occurrences carry only that)."""
    return str(entry.get("changeKey") or entry.get("@odata.etag") or entry.get("id"))


def _text_map(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in dict(value or {}).items()}
