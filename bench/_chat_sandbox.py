"""The chat benchmark's sandbox: one team with a single channel of a chosen size, or two
chats of a chosen size, over HTTPS, throttling off.

    python -m hirondelle.bench._chat_sandbox --posts 2000 --replies 2 --seed 7
    python -m hirondelle.bench._chat_sandbox --chats --messages 1000 --seed 7

Channel: `TenantSpec(teams=1, ...)` seeds a team of four channels with `posts_per_channel`
posts each; the benchmark measures one channel, so this keeps the team's second channel
("Chantier": regular posts and replies with mentions, reactions, edits and deletions)
and drops the others before serving.

Chats: the tenant's chats are replaced by a one-to-one chat (users 1 and 2) and a group
chat with a topic (users 1 to 3) of `--messages` messages each, written by the sandbox's
own chat seeder: a members-added system event, then regular messages with the channels'
mix of mentions, reactions, edits and deletions.

Both leave out the sandbox's showcases (cards, inline images, shared files, in the team's
first channel and the seeded one-to-one chat) on purpose: their media uploads would be
work the raw loop does not do.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from hirondelle.sandbox.auth import SANDBOX_TENANT_ID
from hirondelle.sandbox.chats_data import ChatsData, SandboxChat, _Seeder
from hirondelle.sandbox.server import Limits, serve_forever
from hirondelle.sandbox.teams_data import END, ChannelMessage, SandboxChannel, TeamsData
from hirondelle.sandbox.tenant import Tenant, TenantSpec

CHANNEL_INDEX = 1  # the team's second channel: regular traffic, no showcase
GROUP_TOPIC = "Suivi du chantier 🏗️"
MESSAGE_GAP = timedelta(minutes=600)  # the seeder's longest gap between two chat messages


def _spec(seed: int, teams: int = 0, posts: int = 0, replies: int = 0) -> TenantSpec:
    """Three users and nothing but what the benchmark reads (and the users' OneDrives,
    which chats' file links would name)."""
    return TenantSpec(
        seed=seed,
        users=3,
        messages=0,
        large_messages=0,
        files_per_drive=0,
        large_file_bytes=0,
        events_per_user=0,
        contacts_per_user=0,
        teams=teams,
        posts_per_channel=posts,
        replies_per_post=replies,
    )


@dataclass(frozen=True)
class ChannelShape:
    """The channel under test: root posts, at most this many replies each, the seed."""

    posts: int
    replies: int = 2
    seed: int = 7

    def spec(self) -> TenantSpec:
        return _spec(self.seed, teams=1, posts=self.posts, replies=self.replies)

    def argv(self) -> list[str]:
        """The command line of a sandbox child serving this shape (a `SandboxCommand`)."""
        return [
            sys.executable,
            "-m",
            "hirondelle.bench._chat_sandbox",
            "--posts",
            str(self.posts),
            "--replies",
            str(self.replies),
            "--seed",
            str(self.seed),
        ]


@dataclass(frozen=True)
class ChatsShape:
    """The chats under test: a one-to-one and a group chat of `messages` messages each."""

    messages: int
    seed: int = 7

    def spec(self) -> TenantSpec:
        return _spec(self.seed)

    def argv(self) -> list[str]:
        """The command line of a sandbox child serving this shape (a `SandboxCommand`)."""
        return [
            sys.executable,
            "-m",
            "hirondelle.bench._chat_sandbox",
            "--chats",
            "--messages",
            str(self.messages),
            "--seed",
            str(self.seed),
        ]


def one_channel(teams: TeamsData, index: int = CHANNEL_INDEX) -> TeamsData:
    """A copy of `teams` whose first team holds only its channel number `index`.

    Built through `TeamsData`'s own methods: the messages are stored again, oldest
    first, so sequence numbers (what delta reports) stay in creation order.
    """
    team = teams.teams[0]
    channel = teams.channels(team.id)[index]
    kept = TeamsData(teams.seed, teams.tenant_id)
    kept.add_team(team)
    kept.add_channel(channel)
    for message in sorted(_messages(teams, channel), key=lambda m: (m.seq, int(m.id))):
        kept.new_id(channel.id, message.created)  # reserve the id against later mutations
        kept.store(message)
    kept.now = teams.now
    return kept


def _messages(teams: TeamsData, channel: SandboxChannel) -> list[ChannelMessage]:
    roots = teams.roots(channel.id)
    return roots + [reply for root in roots for reply in teams.replies(channel.id, root.id)]


def channel_tenant(shape: ChannelShape) -> Tenant:
    """The tenant the benchmark's sandbox serves: its users and the one channel."""
    tenant = Tenant.generate(shape.spec())
    # `Tenant.teams` builds its data on first use and has no setter; the benchmark
    # puts its trimmed copy in that slot before the server reads it.
    tenant._teams = one_channel(tenant.teams)
    return tenant


def sized_chats(tenant: Tenant, shape: ChatsShape) -> ChatsData:
    """A one-to-one and a group chat of `shape.messages` messages each, oldest chat first.

    Written by the sandbox's own seeder (`chats_data._Seeder`), whose chats are otherwise of
    fixed sizes; they start early enough for the last message to come before "now".
    """
    users = tenant.users
    data = ChatsData(shape.seed, SANDBOX_TENANT_ID)
    seeder = _Seeder(data, shape.spec(), users, lambda: tenant.drives)
    start = END - MESSAGE_GAP * (shape.messages + 2)
    first, second, third = users[:3]
    pair = f"19:{first.id}_{second.id}@unq.gbl.spaces"
    chats: list[SandboxChat] = [
        seeder._chat("oneOnOne", None, [first, second], start, pair),
        seeder._chat("group", GROUP_TOPIC, [first, second, third], start + timedelta(hours=1)),
    ]
    for chat in chats:
        seeder._regular(chat, shape.messages)
    return data


def chats_tenant(shape: ChatsShape) -> Tenant:
    """The tenant the benchmark's sandbox serves in chats mode: its users and the two chats."""
    tenant = Tenant.generate(shape.spec())
    tenant._chats = sized_chats(tenant, shape)  # the slot `Tenant.chats` fills on first use
    return tenant


def parse_args(argv: Sequence[str] | None) -> ChannelShape | ChatsShape:
    parser = argparse.ArgumentParser(prog="python -m hirondelle.bench._chat_sandbox")
    parser.add_argument("--posts", type=int, help="root posts in the channel")
    parser.add_argument("--replies", type=int, default=2, help="at most this many per post")
    parser.add_argument("--chats", action="store_true", help="serve two chats, no channel")
    parser.add_argument("--messages", type=int, default=0, help="messages per chat")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.chats:
        if args.messages < 1:
            parser.error("--chats needs --messages of at least 1")
        return ChatsShape(args.messages, args.seed)
    if args.posts is None or args.posts < 2 or args.replies < 0:
        parser.error("--posts must be at least 2 and --replies not negative")
    return ChannelShape(args.posts, args.replies, args.seed)


def main(argv: Sequence[str] | None = None) -> None:
    """Generate the tenant, keep what is measured, then serve until SIGINT (throttling off)."""
    shape = parse_args(argv)
    if isinstance(shape, ChatsShape):
        tenant = chats_tenant(shape)
    else:
        tenant = channel_tenant(shape)
    serve_forever(tenant, host="127.0.0.1", port=0, tls=True, limits=Limits(enabled=False))


if __name__ == "__main__":
    main()
