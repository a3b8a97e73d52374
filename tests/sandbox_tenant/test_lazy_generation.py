"""A lazily generated tenant (what `hirondelle sandbox serve` serves) fills each user's
content when the user is first looked up, every user before it first: whenever and in
whatever order users are asked for, the tenant is the one generated at once."""

from __future__ import annotations

import hashlib

from hirondelle.sandbox.tenant import Mutation, Tenant, TenantSpec

SPEC = TenantSpec(seed=11, users=30, messages=12, large_messages=0, events_per_user=9)


def fingerprint(tenant: Tenant) -> str:
    """Every user's folders, messages (with MIME bytes), calendars, events and contacts."""
    digest = hashlib.sha256()
    data = tenant.calendar_data
    for user in tenant.users:
        for folder in tenant.folders(user.id):
            digest.update(repr(folder).encode())
            for message in tenant.messages(user.id, folder.id):
                digest.update(repr(message).encode() + tenant.mime(user.id, message.id))
        for calendar in data.calendars(user.id):
            digest.update(repr(calendar).encode())
            for event in data.events(user.id, calendar.id):
                digest.update(repr(event).encode())
    digest.update(f"{tenant.seq}|{data.seq}".encode())
    return digest.hexdigest()


def test_nothing_is_generated_before_a_user_is_asked_for() -> None:
    lazy = Tenant.generate(SPEC, lazy=True)
    assert len(lazy.users) == SPEC.users
    assert lazy.seq == 0 and lazy.calendar_data.seq == 0
    first = lazy.users[0]
    assert lazy.messages(first.id, "inbox") == []
    lazy.user(first.upn)
    assert lazy.messages(first.id, "inbox")
    assert lazy.messages(lazy.users[1].id, "inbox") == []  # the next one is still empty


def test_users_asked_for_out_of_order_give_the_tenant_generated_at_once() -> None:
    eager = Tenant.generate(SPEC)
    lazy = Tenant.generate(SPEC, lazy=True)
    for index in (17, 3, 29, 0):  # each fills every user before it first
        lazy.user(lazy.users[index].id)
    assert fingerprint(lazy) == fingerprint(eager)


def test_a_mutation_fills_every_user_first() -> None:
    eager = Tenant.generate(SPEC)
    lazy = Tenant.generate(SPEC, lazy=True)
    change = Mutation(seed=3, new=4, flag_changes=5, moves=2, deletions=2, event_changes=3)
    assert lazy.mutate(change) == eager.mutate(change)
    assert fingerprint(lazy) == fingerprint(eager)
