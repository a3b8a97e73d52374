"""The records of the sandbox's tenant: users, mail folders, messages, ids and change keys.

What `tenant.Tenant` stores and the other sandbox modules read. Ids and change keys
derive from their parts alone (a seed, a sequence number), never from the process or
the wall clock, so that a seed always gives the same tenant.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Protocol, TypeVar

from .mime import MessageRecipe, MimeDocument

T = TypeVar("T")


@dataclass
class SandboxUser:
    id: str  # a GUID
    upn: str
    display_name: str
    mail: str
    aliases: tuple[str, ...] = ()  # more addresses ("smtp:" in proxyAddresses)
    guest: bool = False  # userType Guest (an invited user, "#EXT#" in the UPN)


@dataclass
class SandboxFolder:
    id: str  # immutable id (base64url-like, stable across moves)
    user_id: str
    display_name: str
    parent_id: str  # the msgfolderroot id for top-level folders
    well_known_name: str | None = None  # "inbox", "sentitems", "deleteditems", ...
    hidden: bool = False


@dataclass
class SandboxMessage:
    id: str  # immutable id: unchanged by moves within the mailbox
    user_id: str
    folder_id: str
    change_key: str  # changes whenever the message changes
    seq: int  # sequence number of its last change
    subject: str
    internet_message_id: str | None  # None for drafts that have none
    received: datetime  # aware, UTC
    sent: datetime | None
    sender: tuple[str, str]  # (name, address)
    to: list[tuple[str, str]]
    is_read: bool
    is_draft: bool
    flag_status: str  # "notFlagged" | "flagged" | "complete"
    categories: list[str]
    last_verb: int | None  # PR_LAST_VERB_EXECUTED: 102 reply, 103 reply all, 104 forward
    has_attachments: bool
    size: int  # len(mime)
    created: datetime = field(default=datetime.min)
    modified: datetime = field(default=datetime.min)


@dataclass
class FolderChanges:
    changed: list[SandboxMessage]  # added or updated since the sequence, in the folder now
    removed: list[str]  # ids deleted from or moved out of the folder since the sequence


class MimeSource(Protocol):
    """Where a message's bytes come from: a synthetic recipe or a file slice."""

    def document(self) -> MimeDocument: ...


# Graph immutable ids start with a fixed mailbox-independent prefix; the rest is seeded.
MESSAGE_ID_PREFIX = "AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A"
FOLDER_ID_PREFIX = "AQkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A"
# What the seed generates (mail, events, drive items) is older; mutations come after.
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
ROOT = "msgfolderroot"


def stable_id(prefix: str, *parts: object) -> str:
    """A base64url id derived from `parts`: the same parts always give the same id."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:30]
    return prefix + base64.urlsafe_b64encode(digest).decode("ascii")


COLLEAGUES = 20  # the other users a generated user writes to, invites or shares with


def colleagues(
    users: Iterable[SandboxUser], user_id: str, limit: int = COLLEAGUES
) -> list[SandboxUser]:
    """The first `limit` users other than `user_id`, in the tenant's order: what one user's
    generated mail, events and sharing name, in time independent of the tenant's size."""
    return list(islice((u for u in users if u.id != user_id), limit))


def take(picks: Iterator[T], count: int) -> list[T]:
    """The next `count` of `picks` (fewer when it runs out): each mutation's share of one
    sample, so that no item is touched twice."""
    return list(islice(picks, count))


def change_key(message_id: str, seq: int) -> str:
    """A short version stamp that differs for every (message, change) pair."""
    digest = hashlib.sha256(f"{message_id}|{seq}".encode()).digest()[:12]
    return "CQAAABYAAAA" + base64.b64encode(digest).decode("ascii")


def message_from_recipe(
    recipe: MessageRecipe, message_id: str, user_id: str, folder_id: str, received: datetime
) -> SandboxMessage:
    """A message's metadata from its recipe; its size comes from building the MIME once."""
    return SandboxMessage(
        id=message_id,
        user_id=user_id,
        folder_id=folder_id,
        change_key="",
        seq=0,
        subject=recipe.subject,
        internet_message_id=recipe.message_id,
        received=received,
        sent=recipe.date,
        sender=recipe.sender,
        to=list(recipe.to),
        is_read=True,
        is_draft=False,
        flag_status="notFlagged",
        categories=[],
        last_verb=None,
        # Graph's hasAttachments ignores inline attachments such as the related kind's image:
        # https://learn.microsoft.com/en-us/graph/api/resources/message
        has_attachments=bool(recipe.attachments),
        size=recipe.document().size,
        created=received,
        modified=received,
    )
