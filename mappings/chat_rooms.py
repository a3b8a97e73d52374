"""The Matrix space and room of a Teams channel: create bodies, power levels, hierarchy.

Pure. A team becomes a space (`m.space`), each channel a room in it
(https://spec.matrix.org/latest/client-server-api/#spaces); owners keep power 100.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .chat import ChatContext, matrix_user


@dataclass(frozen=True)
class RoomSettings:
    """What the target creates for one channel: the team's space and the channel's room.

    `space` and `room` are `POST /createRoom` bodies; `space_child` is the content of the
    `m.space.child` state event (state key: the room id) in the space, `space_parent` that
    of `m.space.parent` (state key: the space id) in the room; `join_rule` is "restricted"
    (members of the space may join) for standard channels, "invite" for the others.
    """

    space: dict[str, Any]
    room: dict[str, Any]
    space_child: dict[str, Any]
    space_parent: dict[str, Any]
    join_rule: str

    def room_state(self, space_id: str) -> list[dict[str, Any]]:
        """State events to send into the room once the space exists."""
        rule: dict[str, Any] = {"join_rule": self.join_rule}
        if self.join_rule == "restricted":
            rule["allow"] = [{"type": "m.room_membership", "room_id": space_id}]
        return [
            {"type": "m.space.parent", "state_key": space_id, "content": self.space_parent},
            {"type": "m.room.join_rules", "state_key": "", "content": rule},
        ]


ADMIN_EVENTS = ("m.room.power_levels", "m.room.history_visibility", "m.room.encryption",
                "m.room.tombstone", "m.room.server_acl")  # fmt: skip
MODERATOR_EVENTS = ("m.room.name", "m.room.topic", "m.room.avatar", "m.space.child")


def _power_levels(admins: Iterable[str], events_default: int, invite: int) -> dict[str, Any]:
    return {
        "users": {user: 100 for user in sorted(set(admins))},
        "users_default": 0,
        "events_default": events_default,
        "state_default": 50,
        "invite": invite,
        **dict.fromkeys(("kick", "ban", "redact"), 50),
        "events": {**dict.fromkeys(ADMIN_EVENTS, 100), **dict.fromkeys(MODERATOR_EVENTS, 50)},
    }


def private_room_state() -> list[dict[str, Any]]:
    """Initial state of the rooms made for Teams: history shared with members, no guests."""
    return [
        {"type": f"m.room.{name}", "state_key": "", "content": {name: value}}
        for name, value in (("history_visibility", "shared"), ("guest_access", "forbidden"))
    ]


def room_settings(
    team: Mapping[str, Any],
    channel: Mapping[str, Any],
    owners: Iterable[str],
    context: ChatContext,
    *,
    creator: str | None = None,
) -> RoomSettings:
    """The space and room of a channel: names, topics, owners (Teams user ids) at power 100.

    In bot mode only owners mapped to real users are named (there are no puppets). The
    `creator` (the application service's sender or the bot) keeps power 100 too: Synapse
    replaces the whole `users` map with the override.
    """
    admins = [
        matrix_user(owner, context)
        for owner in owners
        if context.mode == "appservice" or context.users.get(owner)
    ]
    if creator:
        admins.append(creator)
    private = channel.get("membershipType") in ("private", "shared")
    initial = private_room_state()
    space: dict[str, Any] = {
        "name": str(team.get("displayName") or "Team"),
        "preset": "private_chat",
        "visibility": "private",
        "creation_content": {"type": "m.space"},
        "power_level_content_override": _power_levels(admins, 100, 50),
        "initial_state": initial,
    }
    room: dict[str, Any] = {
        "name": str(channel.get("displayName") or "General"),
        "preset": "private_chat",
        "visibility": "private",
        "power_level_content_override": _power_levels(admins, 0, 50 if private else 0),
        "initial_state": initial,
    }
    for body, description in ((space, team.get("description")), (room, channel.get("description"))):
        if isinstance(description, str) and description.strip():
            body["topic"] = description.strip()
    return RoomSettings(
        space=space,
        room=room,
        space_child={"via": [context.server_name], "suggested": not private},
        space_parent={"via": [context.server_name], "canonical": True},
        join_rule="invite" if private else "restricted",
    )
