"""Teams system events as readable sentences ("Alice added Bob to the team").

Pure. System events (https://learn.microsoft.com/en-us/graph/system-messages) carry an
`eventDetail` whose type names what happened; its fields fill the sentence, and what is
missing reads "?" rather than failing the message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

SENTENCES = {
    "membersAdded": "{initiator} added {members} to the {place}",
    "membersDeleted": "{initiator} removed {members} from the {place}",
    "membersJoined": "{members} joined",
    "membersLeft": "{members} left",
    "channelAdded": "{initiator} created the channel {channelDisplayName}",
    "channelDeleted": "{initiator} deleted the channel {channelDisplayName}",
    "channelRenamed": "{initiator} renamed the channel to {channelDisplayName}",
    "channelDescriptionUpdated": '{initiator} set the channel description: "{channelDescription}"',
    "channelSetAsFavoriteByDefault": "{initiator} made the channel shown by default",
    "channelUnsetAsFavoriteByDefault": "{initiator} stopped showing the channel by default",
    "channelSharingUpdated": "{initiator} changed how the channel is shared",
    "teamCreated": "{initiator} created the team {teamDisplayName}",
    "teamRenamed": "{initiator} renamed the team to {teamDisplayName}",
    "teamDescriptionUpdated": '{initiator} set the team description: "{teamDescription}"',
    "teamArchived": "{initiator} archived the team",
    "teamUnarchived": "{initiator} restored the team from the archive",
    "teamJoiningDisabled": "{initiator} turned off joining the team",
    "teamJoiningEnabled": "{initiator} turned on joining the team",
    "teamsAppInstalled": "{initiator} added the app {teamsAppDisplayName}",
    "teamsAppRemoved": "{initiator} removed the app {teamsAppDisplayName}",
    "teamsAppUpgraded": "{initiator} updated the app {teamsAppDisplayName}",
    "tabUpdated": "{initiator} updated a tab",
    "callStarted": "{initiator} started a {callEventType}",
    "callEnded": "The {callEventType} ended after {callDuration}",
    "callRecording": "{callRecordingDisplayName} is available",
    "callTranscript": "A meeting transcript is available",
    "conversationMemberRoleUpdated": "{initiator} made {conversationMemberUser} {roles}",
    "messagePinned": "{initiator} pinned a message",
    "messageUnpinned": "{initiator} unpinned a message",
    "chatRenamed": "{initiator} renamed the chat to {chatDisplayName}",
}
GENERIC_SENTENCE = "A Teams event took place here"


class _Fields(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


def system_sentence(detail: Any, names: Mapping[str, str], place: str = "team") -> str:
    """A readable sentence for a system event's `eventDetail` ("Alice added Bob to the team");
    `place` is "chat" in a chat (Teams says "added Bob to the chat" there)."""
    if not isinstance(detail, Mapping):
        return GENERIC_SENTENCE
    kind = str(detail.get("@odata.type") or "").rpartition(".")[2]
    template = SENTENCES.get(kind.removesuffix("EventMessageDetail"))
    if template is None:
        return GENERIC_SENTENCE
    fields = _Fields({k: str(v) for k, v in detail.items() if isinstance(v, str) and v})
    fields["place"] = place
    fields["initiator"] = _person(detail.get("initiator"), names, "Someone")
    members = [_person(member, names, "a member") for member in detail.get("members") or ()]
    fields["members"] = _enumeration(members) or "members"
    fields["conversationMemberUser"] = _person(
        detail.get("conversationMemberUser"), names, "a member"
    )
    roles = [str(role).lower() for role in detail.get("conversationMemberRoles") or ()]
    fields["roles"] = "an owner" if "owner" in roles else "a member"
    fields["callEventType"] = {"call": "call"}.get(fields.get("callEventType", ""), "meeting")
    fields["callDuration"] = _duration(str(detail.get("callDuration") or ""))
    return template.format_map(fields)


def _person(identity: Any, names: Mapping[str, str], unknown: str) -> str:
    """The display name in an identitySet or teamworkUserIdentity (often null in Graph)."""
    if isinstance(identity, Mapping) and isinstance(identity.get("user"), Mapping):
        identity = identity["user"]
    if not isinstance(identity, Mapping):
        return unknown
    name = identity.get("displayName") or names.get(str(identity.get("id") or ""))
    return str(name) if name else unknown


def _enumeration(names: list[str]) -> str:
    return "".join(names) if len(names) < 2 else ", ".join(names[:-1]) + " and " + names[-1]


def _duration(value: str) -> str:
    """An ISO 8601 duration ("PT1H2M3.5S") as "1 h 2 min 3 s"."""
    found = re.fullmatch(r"P(?:(\d+)D)?T?(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?", value)
    if not found or not any(found.groups()):
        return "an unknown time"
    days, hours, minutes, seconds = found.groups()
    parts = [
        f"{int(float(number))} {unit}"
        for number, unit in ((days, "d"), (hours, "h"), (minutes, "min"), (seconds, "s"))
        if number and float(number) >= 1
    ]
    return " ".join(parts) or "less than a second"
