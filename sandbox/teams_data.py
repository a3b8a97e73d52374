"""The sandbox's Teams: teams, channels, members, channel messages and replies, with a change log.

Deterministic from the tenant's seed. Teams are Microsoft 365 groups (the first one is the
"Projet Hirondelle" group whose SharePoint site `drive_data` seeds, so reference attachments
point at files the files workload migrates). Every channel holds `posts_per_channel` root
posts spread over the 14 months before the sandbox's "now" (the latest seeded date), each
with 0 to `replies_per_post` replies; the first channel of the first team also holds the
showcase: mentions, inline images, reference attachments, cards, code, reactions (classic,
Unicode and custom), system events, edited, deleted, very long and hostile messages.

Every change gets a rising sequence number, kept on the message it changed (`seq`), which
is what `messages/delta` reports: delta lists root posts, and a root comes back when the
root itself changed (posted, edited, deleted), not when a reply was added to its thread.
Messages are frozen snapshots: a change replaces them. Mutations happen after "now", one
minute per change.

    teams = TeamsData.generate(spec, users, drives, tenant_id)
    teams.teams / teams.team(id) / teams.channels(team_id) / teams.channel(team_id, id)
    teams.roots(channel_id) -> oldest first / teams.replies(channel_id, root_id) -> oldest first
    teams.roots_changed(channel_id, since, upto) -> roots whose own seq is in (since, upto]
    teams.mutate(mutation, users) -> source ids touched ("<root>" or "<root>/<reply>")
"""

from __future__ import annotations

import base64
import dataclasses
import random
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import quote

from .drive_data import guid
from .png import png

if TYPE_CHECKING:
    from .drive_data import SandboxDrives
    from .tenant import Mutation, TenantSpec
    from .tenant_records import SandboxUser

JSON = dict[str, Any]
END = datetime(2023, 12, 31, 17, 30, tzinfo=UTC)  # seeded posts end about here
SPREAD = timedelta(days=426)  # about 14 months
HORIZON_MONTHS = 8  # messages/delta only returns the last eight months


@dataclass(frozen=True)
class Member:
    user_id: str
    display_name: str
    email: str
    roles: tuple[str, ...]  # ("owner",) or ()


@dataclass(frozen=True)
class SandboxTeam:
    id: str  # the Microsoft 365 group's id
    display_name: str
    description: str
    mail_nickname: str
    visibility: str  # "private" | "public"
    created: datetime
    members: tuple[Member, ...]


@dataclass(frozen=True)
class SandboxGroup:
    """A Microsoft 365 group without a team (so a `/groups` filter has something to drop)."""

    id: str
    display_name: str
    description: str
    mail_nickname: str
    created: datetime


@dataclass(frozen=True)
class SandboxChannel:
    id: str  # "19:<hex>@thread.tacv2"
    team_id: str  # the hosting team
    display_name: str
    description: str | None
    membership_type: str  # "standard" | "private" | "shared"
    created: datetime
    members: tuple[Member, ...]  # the team's members for a standard channel
    shared_with: tuple[str, ...] = ()  # other teams a shared channel is shared with


@dataclass(frozen=True)
class Sender:
    kind: str  # "user" | "application"
    id: str
    display_name: str


@dataclass(frozen=True)
class HostedContent:
    id: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class ChannelMessage:
    """A root post (root_id == id) or a reply, as the service stores it."""

    id: str  # creation time in epoch milliseconds, as Teams does
    team_id: str
    channel_id: str
    root_id: str
    created: datetime
    modified: datetime
    seq: int
    sender: Sender | None  # None for system events
    body: str
    content_type: str = "html"
    message_type: str = "message"  # or "systemEventMessage"
    subject: str | None = None
    summary: str | None = None
    importance: str = "normal"
    edited: datetime | None = None
    deleted: datetime | None = None
    mentions: tuple[JSON, ...] = ()
    attachments: tuple[JSON, ...] = ()
    reactions: tuple[JSON, ...] = ()
    hosted: tuple[HostedContent, ...] = ()
    event_detail: JSON | None = None
    pinned: bool = False  # part of the showcase: mutations leave it alone

    @property
    def is_root(self) -> bool:
        return self.root_id == self.id

    @property
    def source_id(self) -> str:
        """The migration's id: the root's id, or "<root id>/<reply id>"."""
        return self.id if self.is_root else f"{self.root_id}/{self.id}"

    @property
    def etag(self) -> str:
        return str(epoch_ms(self.modified))


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


_I = TypeVar("_I", bound=_Identified)


def by_id(found: Iterable[_I], key: str) -> _I:
    """The one whose id is `key`, ids compared regardless of case as Graph does; KeyError."""
    for one in found:
        if one.id.lower() == key.lower():
            return one
    raise KeyError(key)


def epoch_ms(moment: datetime) -> int:
    return int(round(moment.timestamp() * 1000))


def from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


def iso_ms(moment: datetime | None) -> str | None:
    """Teams' timestamps: UTC with milliseconds ("2021-03-28T21:11:12.395Z")."""
    if moment is None:
        return None
    value = epoch_ms(moment)
    return from_ms(value).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value % 1000:03d}Z"


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (clamped to the month's end)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    for day in range(moment.day, 27, -1):
        try:
            return moment.replace(year=year, month=month + 1, day=day)
        except ValueError:
            continue
    return moment.replace(year=year, month=month + 1, day=min(moment.day, 28))


def tiny_png(seed: str, width: int = 24, height: int = 16) -> bytes:
    """A small, valid, deterministic PNG (a colour gradient) for inline images."""
    shade = [b for b in guid(seed).encode()[:3]]
    rows = b"".join(
        b"\x00"
        + b"".join(
            bytes(((shade[0] + x * 9) % 256, (shade[1] + y * 13) % 256, shade[2]))
            for x in range(width)
        )
        for y in range(height)
    )
    return png(width, height, rows)


def hosted_content_id(seed: str) -> str:
    """An id shaped like the service's: base64 of "id=...,type=1,url=...imgo"."""
    blob = guid(seed).replace("-", "")
    object_id = f"0-weu-d3-{blob}"
    raw = f"id=x_{object_id},type=1,url=https://eu-api.asm.skype.com/v1/objects/{object_id}/views/imgo"
    return base64.b64encode(raw.encode()).decode().rstrip("=")


def channel_web_url(channel: SandboxChannel, tenant_id: str) -> str:
    name = quote(channel.display_name)
    return (
        f"https://teams.microsoft.com/l/channel/{quote(channel.id, safe='')}/{name}"
        f"?groupId={channel.team_id}&tenantId={tenant_id}"
    )


class TeamsData:
    """Teams, channels and their messages with a change log; safe to share between threads."""

    def __init__(self, seed: int, tenant_id: str) -> None:
        self.seed = seed
        self.tenant_id = tenant_id
        self._lock = threading.RLock()
        self.teams: list[SandboxTeam] = []
        self.groups: list[SandboxGroup] = []
        self._channels: dict[str, list[SandboxChannel]] = {}  # hosting team id -> channels
        self._roots: dict[str, dict[str, ChannelMessage]] = {}  # channel id -> id -> root
        self._replies: dict[tuple[str, str], dict[str, ChannelMessage]] = {}
        self._taken: dict[str, set[int]] = {}  # channel id -> message ids in use
        self._seq = 0
        self.delta_epoch = 0  # raised by expire_delta_tokens: older tokens are gone
        self.now = END

    # --- construction -----------------------------------------------------------------------

    @classmethod
    def generate(
        cls,
        spec: TenantSpec,
        users: Sequence[SandboxUser],
        drives: Callable[[], SandboxDrives],
        tenant_id: str,
    ) -> TeamsData:
        """The seeded teams, identical for identical specs; "now" is the latest seeded date."""
        from .teams_seed import SeedPlan, seed_channel  # the seed module builds on this one

        data = cls(spec.seed, tenant_id)
        plan = SeedPlan.build(data, spec, list(users), drives)
        for team, channels in plan.layout():
            data.add_team(team)
            for channel in channels:
                data.add_channel(channel)
                seed_channel(data, plan, team, channel)
        with data._lock:
            stamps = [m.edited or m.created for m in data.all_messages()]
            data.now = max(stamps, default=END)
        return data

    def add_team(self, team: SandboxTeam) -> None:
        with self._lock:
            self.teams.append(team)
            self._channels[team.id] = []

    def add_channel(self, channel: SandboxChannel) -> None:
        with self._lock:
            self._channels[channel.team_id].append(channel)
            self._roots[channel.id] = {}
            self._taken[channel.id] = set()

    def new_id(self, channel_id: str, moment: datetime) -> tuple[str, datetime]:
        """A message id (its creation time in ms), unique in the channel, and that time."""
        with self._lock:
            value = epoch_ms(moment)
            while value in self._taken[channel_id]:
                value += 1
            self._taken[channel_id].add(value)
            return str(value), from_ms(value)

    def store(self, message: ChannelMessage) -> ChannelMessage:
        """Store a new or changed message as the latest change (its seq is assigned here)."""
        with self._lock:
            self._seq += 1
            stamped = dataclasses.replace(message, seq=self._seq)
            if stamped.is_root:
                self._roots[stamped.channel_id][stamped.id] = stamped
                self._replies.setdefault((stamped.channel_id, stamped.id), {})
            else:
                self._replies[(stamped.channel_id, stamped.root_id)][stamped.id] = stamped
            return stamped

    # --- reads ------------------------------------------------------------------------------

    @property
    def seq(self) -> int:
        return self._seq

    @property
    def horizon(self) -> datetime:
        """The oldest creation time `messages/delta` still reports."""
        return months_before(self.now, HORIZON_MONTHS)

    def team(self, key: str) -> SandboxTeam:
        return by_id(self.teams, key)

    def channels(self, team_id: str) -> list[SandboxChannel]:
        """The channels the team hosts, in creation order."""
        with self._lock:
            return list(self._channels[self.team(team_id).id])

    def incoming_channels(self, team_id: str) -> list[SandboxChannel]:
        """Shared channels other teams host and share with this team."""
        team = self.team(team_id)
        with self._lock:
            hosted = [c for channels in self._channels.values() for c in channels]
        return [c for c in hosted if team.id in c.shared_with]

    def channel(self, team_id: str, channel_id: str) -> SandboxChannel:
        """A channel the team hosts or was shared; KeyError."""
        return by_id(self.channels(team_id) + self.incoming_channels(team_id), channel_id)

    def roots(self, channel_id: str) -> list[ChannelMessage]:
        """The channel's root posts, oldest first (deleted ones included, as Teams keeps them)."""
        with self._lock:
            return sorted(self._roots[channel_id].values(), key=lambda m: int(m.id))

    def root(self, channel_id: str, message_id: str) -> ChannelMessage:
        with self._lock:
            return self._roots[channel_id][message_id]

    def replies(self, channel_id: str, root_id: str) -> list[ChannelMessage]:
        """The root's replies, oldest first; KeyError for an unknown root."""
        with self._lock:
            if root_id not in self._roots[channel_id]:
                raise KeyError(root_id)
            return sorted(self._replies[(channel_id, root_id)].values(), key=lambda m: int(m.id))

    def reply(self, channel_id: str, root_id: str, reply_id: str) -> ChannelMessage:
        with self._lock:
            return self._replies[(channel_id, root_id)][reply_id]

    def all_messages(self) -> list[ChannelMessage]:
        with self._lock:
            roots = [m for channel in self._roots.values() for m in channel.values()]
            return roots + [m for thread in self._replies.values() for m in thread.values()]

    def roots_changed(self, channel_id: str, since: int, upto: int) -> list[ChannelMessage]:
        """Roots whose own latest change is in (since, upto], by that change."""
        with self._lock:
            found = [r for r in self._roots[channel_id].values() if since < r.seq <= upto]
        return sorted(found, key=lambda root: root.seq)

    # --- changes ----------------------------------------------------------------------------

    def expire_delta_tokens(self) -> None:
        """Every delta token issued so far becomes expired (410 Gone)."""
        with self._lock:
            self.delta_epoch += 1

    def clock(self) -> datetime:
        """Mutation time: after every seeded message, one minute per change (never wall time)."""
        return self.now + timedelta(minutes=self._seq + 1)

    def mutate(self, mutation: Mutation, users: Sequence[SandboxUser]) -> list[str]:
        """New posts and replies, edits and deletions; the source ids touched, in order.

        Each message is touched at most once per mutation; showcase messages are left alone.
        """
        from .teams_mutations import Mutator  # the mutations build on this module

        with self._lock:
            rng = random.Random(f"{self.seed}|teams-mutation|{mutation.seed}|{self._seq}")
            return Mutator(self, rng, list(users)).apply(mutation)
