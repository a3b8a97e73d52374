"""The mutations applied to the sandbox's mailboxes: deliveries, state changes, moves, deletions.

A `Mutation`'s mail fields (`tenant.Tenant.mutate`) pick messages and changes with the
random generator the tenant seeds, then apply them through the tenant's own writes
(`add_message`, `restamp`, `move_message`, `delete_message`). Every message is touched at
most once per mutation, so the lists returned are disjoint.
"""

from __future__ import annotations

import dataclasses
import random
from typing import TYPE_CHECKING

from .mime import CATEGORIES, CONTACTS, SUBJECTS, MessageRecipe
from .tenant_records import (
    MESSAGE_ID_PREFIX,
    SandboxFolder,
    SandboxUser,
    message_from_recipe,
    stable_id,
    take,
)

if TYPE_CHECKING:
    from .tenant import Mutation, Tenant

# Well-known folders a mutation never moves a message into.
_NOT_MOVE_TARGETS = frozenset({"drafts", "outbox", "syncissues", "conflicts"})


def mutate_mail(
    tenant: Tenant, seed: int, rng: random.Random, users: list[SandboxUser], mutation: Mutation
) -> tuple[list[str], list[str], list[str], list[str]]:
    """Apply `mutation`'s mail fields to `users`' mailboxes: (new, changed, moved, deleted)."""
    pool = [m for user in users for m in tenant.message_ids(user.id)]
    new = [
        _deliver(tenant, seed, rng, rng.choice(users)) for _ in range(mutation.new if users else 0)
    ]
    wanted = mutation.flag_changes + mutation.moves + mutation.deletions
    picks = iter(rng.sample(pool, min(wanted, len(pool))))
    owners = {m: u.id for u in users for m in tenant.message_ids(u.id)}
    changed = [
        _change_state(tenant, rng, owners[message_id], message_id)
        for message_id in take(picks, mutation.flag_changes)
    ]
    moved = [
        _move(tenant, rng, owners[message_id], message_id)
        for message_id in take(picks, mutation.moves)
    ]
    deleted = [
        tenant.delete_message(owners[message_id], message_id)
        for message_id in take(picks, mutation.deletions)
    ]
    return new, changed, moved, deleted


def _deliver(tenant: Tenant, seed: int, rng: random.Random, user: SandboxUser) -> str:
    inbox = tenant.folder(user.id, "inbox")
    message_id = stable_id(MESSAGE_ID_PREFIX, seed, "delivered", tenant.seq)
    sender = rng.choice(CONTACTS)
    recipe = MessageRecipe(
        seed=message_id,
        kind=rng.choice(("plain", "alternative")),
        subject=rng.choice(SUBJECTS),
        sender=sender,
        to=((user.display_name, user.mail),),
        date=tenant.clock(),
        message_id=f"<{rng.getrandbits(64):016X}@{sender[1].split('@')[1]}>",
        body_bytes=rng.randint(1500, 9000),
    )
    message = message_from_recipe(recipe, message_id, user.id, inbox.id, tenant.clock())
    tenant.add_message(dataclasses.replace(message, is_read=False), recipe)
    return message_id


def _change_state(tenant: Tenant, rng: random.Random, user_id: str, message_id: str) -> str:
    message = tenant.message(user_id, message_id)
    change = rng.choice(("read", "flag", "category"))
    if change == "read":
        tenant.restamp(message, is_read=not message.is_read)
    elif change == "flag":
        cycle = {"notFlagged": "flagged", "flagged": "complete", "complete": "notFlagged"}
        tenant.restamp(message, flag_status=cycle[message.flag_status])
    else:
        category = rng.choice(CATEGORIES)
        toggled = [c for c in message.categories if c != category]
        if len(toggled) == len(message.categories):
            toggled.append(category)
        tenant.restamp(message, categories=toggled)
    return message_id


def _move(tenant: Tenant, rng: random.Random, user_id: str, message_id: str) -> str:
    message = tenant.message(user_id, message_id)
    targets = [f.id for f in _movable_folders(tenant, user_id) if f.id != message.folder_id]
    tenant.move_message(message, rng.choice(targets))
    return message_id


def _movable_folders(tenant: Tenant, user_id: str) -> list[SandboxFolder]:
    return [
        f
        for f in tenant.folders(user_id)
        if not f.hidden and f.well_known_name not in _NOT_MOVE_TARGETS
    ]
