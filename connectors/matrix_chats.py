"""The rooms of Teams chats on a homeserver: made once, members in, marked direct.

`mappings.chat_direct` says what the room of a chat is (alias, createRoom body, members,
owners, the `m.direct` pairs); this module makes it so on the homeserver, in steps that
are each idempotent, so that a run killed anywhere between them completes the room the
next time instead of making a second one:

1. register the members' puppets (display names set) so that invites name them;
2. find the room by its alias, or create it (createRoom with the alias is atomic);
3. owners at power 100, and the name of a group or meeting chat as Teams has it now;
4. invite the members that are neither invited nor joined (with `is_direct` in the
   member event of a one-to-one chat, which the `/invite` endpoint cannot carry:
   a `PUT .../state/m.room.member/{user}` can,
   https://spec.matrix.org/latest/client-server-api/#mroommember), then join the
   puppets as themselves;
5. in appservice mode, list the room in the `m.direct` account data of each side of a
   one-to-one chat that the application service may act for (its puppets, and mapped
   real users when `masquerade_real_users` is on), merged into what is there
   (https://spec.matrix.org/latest/client-server-api/#direct-messaging).

Who left the chat in Teams is no member: never invited, and, joined to say their own
messages in appservice mode, made to leave when the session ends (`leave_former_members`),
so that what is said after they left is not theirs to read, as in Teams. The room's
`shared` history still shows them what was said while they were in.

Account data has no compare-and-set: `PUT .../account_data/m.direct` replaces the whole
content (https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3useruseridaccount_datatype),
so two sessions merging a room each into one person's `m.direct` at once lose one of them.
In this process a lock per user serialises the read-merge-write; against another process,
the entry is read back after the write and merged again until it stays (and every pass
ensures the room again, so an entry lost to another process's write is put back then).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from ..mappings.chat import SYSTEM_USER, ChatContext, puppet_id
from ..mappings.chat_direct import ChatRoom, chat_info, chat_room, member_id, with_direct_room
from ..migrator.errors import HirondelleError
from ..migrator.model import Container
from .matrix_wire import CLIENT, MatrixConnection, RoomBuilder, path_part

if TYPE_CHECKING:
    from .matrix import MatrixTarget

DIRECT_ATTEMPTS = 4  # writes of one m.direct entry before leaving it to the next pass
log = logging.getLogger(__name__)
_direct_locks: dict[str, threading.Lock] = {}  # Matrix user -> its m.direct writer
_direct_guard = threading.Lock()


def _direct_lock(user: str) -> threading.Lock:
    with _direct_guard:
        return _direct_locks.setdefault(user, threading.Lock())


class ChatRooms:
    """One session's chat rooms: `ensure` returns a chat's room, made whole."""

    def __init__(
        self,
        target: MatrixTarget,
        connection: MatrixConnection,
        rooms: RoomBuilder,
        context: ChatContext,
    ) -> None:
        self._target = target
        self._settings = target.settings
        self._conn = connection
        self._rooms = rooms
        self._context = context
        self._chat_of: dict[str, str] = {}  # room -> chat id, for the rooms `ensure` made

    def ensure(self, container: Container) -> tuple[str, dict[str, str]]:
        """The chat's room id and its members' membership ("join", "invite"...), after the
        steps of the module doc."""
        info = chat_info(self._target.chats, container)
        plan = chat_room(info, self._context, self._settings.room_alias_prefix, self._rooms.me)
        for user, name in plan.members.items():
            if self._settings.is_puppet(user):
                self._target.ensure_puppet(self._conn, user, name)
        # createRoom invites the puppets only: a real user it cannot invite (unknown to the
        # homeserver) would fail the whole call; step 4 invites them one by one
        puppets = [user for user in plan.create["invite"] if self._settings.is_puppet(user)]
        create = {**plan.create, "invite": puppets}
        room = self._rooms.ensure_room(plan.alias, create, plan.owners)
        self._chat_of[room] = container.source_id
        if room not in self._rooms.created:  # a room made now has them from the start
            self._rooms.raise_owners(room, plan.owners)
        if "name" in plan.create:
            self._follow_name(room, str(plan.create["name"]))
        membership = self._complete_membership(room, plan)
        if self._settings.mode == "appservice":
            for user, other in plan.direct.items():
                if self._settings.acts_for(user):
                    self._mark_direct(user, other, room)
        return room, membership

    def members(self, room: str) -> set[str] | None:
        """The Matrix ids of the room's chat's members now; None when the room is not a
        chat's, or when its chat was not listed in this run (its members then come in as
        they speak)."""
        chat_id = self._chat_of.get(room)
        info = self._target.chats.get(chat_id) if chat_id else None
        if info is None:
            return None
        users = (member_id(m, self._context) for m in info.members if not m.left)
        return {user for user in users if user}

    def leave_former_members(self, room: str, joined: set[str]) -> None:
        """Those of `joined` the service acts for who are no longer in the chat leave the
        room (and `joined`); the service's own account and the Teams system puppet stay."""
        members = self.members(room)
        if members is None or self._settings.mode != "appservice":
            return
        ours = {self._rooms.me, puppet_id(SYSTEM_USER, self._context)}
        for user in sorted(joined - members - ours):
            if not self._settings.acts_for(user):
                continue
            path = f"{CLIENT}/rooms/{path_part(room)}/leave"
            try:  # 403: not in the room (any more)
                self._conn.call("POST", path, body={}, params={"user_id": user}, ok=(200, 403))
            except HirondelleError as error:  # all is written: the owner has not failed
                what = "%s left chat %s but is still in room %s (%s): the next run makes them leave"
                log.warning(what, user, self._chat_of[room], room, error)
                continue
            joined.discard(user)

    def _follow_name(self, room: str, name: str) -> None:
        """A group chat renamed in Teams since the room was made: the room follows."""
        path = f"{CLIENT}/rooms/{path_part(room)}/state/m.room.name/"
        answer = self._conn.call("GET", path, ok=(200, 404))
        if answer.status == 404 or answer.body.get("name") != name:
            self._conn.call("PUT", path, body={"name": name})

    def _membership(self, room: str) -> dict[str, str]:
        answer = self._conn.call("GET", f"{CLIENT}/rooms/{path_part(room)}/members")
        return {
            str(event.get("state_key")): str((event.get("content") or {}).get("membership"))
            for event in answer.body.get("chunk", [])
        }

    def _complete_membership(self, room: str, plan: ChatRoom) -> dict[str, str]:
        membership = self._membership(room)
        for user in plan.members:
            if user == self._rooms.me or user in membership:
                continue  # in, invited, or left of their own will (not invited again)
            if not (self._settings.invite or self._settings.is_puppet(user)):
                continue
            if plan.is_direct:
                path = f"{CLIENT}/rooms/{path_part(room)}/state/m.room.member/{path_part(user)}"
                body = {"membership": "invite", "is_direct": True}
                # a refusal (unknown user, banned) only loses the invite, as `RoomBuilder.invite`
                self._conn.call("PUT", path, body=body, ok=(200, 400, 403, 404))
            else:
                self._rooms.invite(room, user)
            membership[user] = "invite"
        for user in plan.members:
            if self._settings.is_puppet(user) and membership.get(user) != "join":
                self._conn.call(
                    "POST", f"{CLIENT}/join/{path_part(room)}", body={}, params={"user_id": user}
                )
                membership[user] = "join"
        return membership

    def _mark_direct(self, user: str, other: str, room: str) -> None:
        """List `room` under `other` in `user`'s m.direct: read, merge, write, read back."""
        path = f"{CLIENT}/user/{path_part(user)}/account_data/m.direct"
        params = {"user_id": user}
        with _direct_lock(user):
            for written in range(DIRECT_ATTEMPTS + 1):
                answer = self._conn.call("GET", path, params=params, ok=(200, 404))
                current = dict(answer.body) if answer.status == 200 else {}
                updated = with_direct_room(current, other, room)
                if updated is None:
                    return  # listed, and read back so
                if written < DIRECT_ATTEMPTS:
                    self._conn.call("PUT", path, body=updated, params=params)
        log.warning(
            "room %s: other writers of %s's m.direct kept dropping it; the next pass lists it",
            room,
            user,
        )
