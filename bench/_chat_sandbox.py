"""The chat benchmark's sandbox: one team with a single channel of a chosen size, over HTTPS.

    python -m hirondelle.bench._chat_sandbox --posts 2000 --replies 2 --seed 7

`TenantSpec(teams=1, ...)` seeds a team of four channels with `posts_per_channel` posts
each; the benchmark measures one channel, so this keeps the team's second channel
("Chantier": regular posts and replies with mentions, reactions, edits and deletions)
and drops the others before serving, throttling off. The first channel (the showcase
of cards, inline images and system events) is left out on purpose: its media uploads
would be work the raw loop does not do.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from hirondelle.sandbox.server import Limits, serve_forever
from hirondelle.sandbox.teams_data import ChannelMessage, SandboxChannel, TeamsData
from hirondelle.sandbox.tenant import Tenant, TenantSpec

CHANNEL_INDEX = 1  # the team's second channel: regular traffic, no showcase


@dataclass(frozen=True)
class ChannelShape:
    """The channel under test: root posts, at most this many replies each, the seed."""

    posts: int
    replies: int = 2
    seed: int = 7

    def spec(self) -> TenantSpec:
        return TenantSpec(
            seed=self.seed,
            users=3,
            messages=0,
            large_messages=0,
            files_per_drive=0,
            large_file_bytes=0,
            events_per_user=0,
            contacts_per_user=0,
            teams=1,
            posts_per_channel=self.posts,
            replies_per_post=self.replies,
        )

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


def parse_args(argv: Sequence[str] | None) -> ChannelShape:
    parser = argparse.ArgumentParser(prog="python -m hirondelle.bench._chat_sandbox")
    parser.add_argument("--posts", type=int, required=True, help="root posts in the channel")
    parser.add_argument("--replies", type=int, default=2, help="at most this many per post")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.posts < 2 or args.replies < 0:
        parser.error("--posts must be at least 2 and --replies not negative")
    return ChannelShape(args.posts, args.replies, args.seed)


def main(argv: Sequence[str] | None = None) -> None:
    """Generate the tenant, keep one channel, then serve until SIGINT (throttling off)."""
    tenant = channel_tenant(parse_args(argv))
    serve_forever(tenant, host="127.0.0.1", port=0, tls=True, limits=Limits(enabled=False))


if __name__ == "__main__":
    main()
