"""Mutations and the per-folder change log that `messages/delta` is served from."""

from __future__ import annotations

import threading

import pytest

from hirondelle.sandbox.tenant import Mutation, Tenant
from hirondelle.sandbox.tenant_records import SandboxMessage


def folder_of(tenant: Tenant, message_id: str) -> tuple[str, str]:
    for user in tenant.users:
        for folder in tenant.folders(user.id):
            if any(m.id == message_id for m in tenant.messages(user.id, folder.id)):
                return user.id, folder.id
    raise AssertionError(f"{message_id} is in no folder")


def snapshot(tenant: Tenant) -> dict[str, tuple[str, str, SandboxMessage]]:
    """Every message by id, with its user and folder."""
    return {
        m.id: (user.id, folder.id, m)
        for user in tenant.users
        for folder in tenant.folders(user.id)
        for m in tenant.messages(user.id, folder.id)
    }


def test_changes_since_reports_exactly_the_touched_messages(fresh_tenant: Tenant) -> None:
    tenant = fresh_tenant
    before = snapshot(tenant)
    mark = tenant.seq
    result = tenant.mutate(Mutation(seed=5, new=3, flag_changes=4, moves=3, deletions=2))
    assert (len(result.new), len(result.changed), len(result.moved), len(result.deleted)) == (
        3, 4, 3, 2,
    )  # fmt: skip
    after = snapshot(tenant)
    expected_changed: dict[tuple[str, str], set[str]] = {}
    expected_removed: dict[tuple[str, str], set[str]] = {}
    for message_id in result.new + result.changed + result.moved:
        user_id, folder_id, _ = after[message_id]
        expected_changed.setdefault((user_id, folder_id), set()).add(message_id)
    for message_id in result.moved + result.deleted:
        user_id, folder_id, _ = before[message_id]
        expected_removed.setdefault((user_id, folder_id), set()).add(message_id)
    for user in tenant.users:
        for folder in tenant.folders(user.id):
            changes = tenant.changes_since(user.id, folder.id, mark)
            key = (user.id, folder.id)
            assert {m.id for m in changes.changed} == expected_changed.get(key, set())
            assert set(changes.removed) == expected_removed.get(key, set())


def test_a_move_keeps_the_id_and_changes_the_version(fresh_tenant: Tenant) -> None:
    tenant = fresh_tenant
    before = snapshot(tenant)
    mark = tenant.seq
    (moved,) = tenant.mutate(Mutation(seed=2, moves=1)).moved
    user_id, source, old = before[moved]
    _, destination, new = snapshot(tenant)[moved]
    assert destination != source
    assert new.id == old.id and new.change_key != old.change_key and new.seq > old.seq
    assert tenant.changes_since(user_id, source, mark).removed == [moved]
    assert [m.id for m in tenant.changes_since(user_id, destination, mark).changed] == [moved]
    assert tenant.mime(user_id, moved) == b"".join(tenant.mime_chunks(user_id, moved))


def test_every_change_bumps_seq_and_change_key(fresh_tenant: Tenant) -> None:
    tenant = fresh_tenant
    before = snapshot(tenant)
    start = tenant.seq
    result = tenant.mutate(Mutation(seed=9, flag_changes=6))
    assert tenant.seq == start + 6
    for message_id in result.changed:
        old, new = before[message_id][2], tenant.message(before[message_id][0], message_id)
        assert new.change_key != old.change_key and new.seq > start
        assert (old.is_read, old.flag_status, old.categories) != (
            new.is_read, new.flag_status, new.categories,
        )  # fmt: skip
        assert new.modified > old.modified


def test_deleted_messages_are_gone(fresh_tenant: Tenant) -> None:
    tenant = fresh_tenant
    before = snapshot(tenant)
    (deleted,) = tenant.mutate(Mutation(seed=4, deletions=1)).deleted
    user_id = before[deleted][0]
    with pytest.raises(KeyError):
        tenant.message(user_id, deleted)
    with pytest.raises(KeyError):
        tenant.mime(user_id, deleted)


def test_new_messages_arrive_unread_in_the_inbox_newest(fresh_tenant: Tenant) -> None:
    tenant = fresh_tenant
    user = tenant.users[2]
    result = tenant.mutate(Mutation(seed=1, new=2, user=user.upn))
    inbox = tenant.messages(user.id, "inbox")
    assert [m.id for m in inbox[-2:]] == result.new
    assert all(not m.is_read and m.size == len(tenant.mime(user.id, m.id)) for m in inbox[-2:])


def test_mutation_is_limited_to_one_user(fresh_tenant: Tenant) -> None:
    tenant = fresh_tenant
    user = tenant.users[1]
    before = snapshot(tenant)
    result = tenant.mutate(Mutation(seed=3, flag_changes=5, moves=5, deletions=5, user=user.id))
    touched = result.changed + result.moved + result.deleted
    assert len(set(touched)) == 15
    assert all(before[m][0] == user.id for m in touched)


def test_mutations_are_deterministic(tenant: Tenant) -> None:
    assert tenant.spec is not None
    first, second = Tenant.generate(tenant.spec), Tenant.generate(tenant.spec)
    mutation = Mutation(seed=11, new=2, flag_changes=3, moves=2, deletions=2)
    assert first.mutate(mutation) == second.mutate(mutation)
    assert snapshot(first) == snapshot(second)
    assert first.mutate(mutation) != first.mutate(mutation)  # each round picks anew


def test_expired_tokens(fresh_tenant: Tenant) -> None:
    tenant = fresh_tenant
    assert tenant.oldest_delta_seq == 0
    tenant.mutate(Mutation(seed=1, deletions=3))
    tenant.expire_delta_tokens()
    assert tenant.oldest_delta_seq == tenant.seq
    user = tenant.users[0]
    assert tenant.changes_since(user.id, "inbox", tenant.seq).removed == []


def test_a_message_moved_out_and_back_is_only_changed(fresh_tenant: Tenant) -> None:
    tenant = fresh_tenant
    user = tenant.users[0]
    mark = tenant.seq
    for seed in range(40):
        tenant.mutate(Mutation(seed=seed, moves=3, user=user.id))
    for folder in tenant.folders(user.id):
        changes = tenant.changes_since(user.id, folder.id, mark)
        assert not {m.id for m in changes.changed} & set(changes.removed)


def test_reads_while_mutating(fresh_tenant: Tenant) -> None:
    """Readers in other threads see consistent snapshots while mutations run."""
    tenant = fresh_tenant
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                for user in tenant.users:
                    for message in tenant.messages(user.id, "inbox"):
                        try:
                            assert len(tenant.mime(user.id, message.id)) == message.size
                        except KeyError:
                            pass  # deleted since the listing
        except BaseException as error:  # noqa: BLE001 - reported to the main thread
            errors.append(error)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    for seed in range(30):
        tenant.mutate(Mutation(seed=seed, new=2, flag_changes=3, moves=2, deletions=1))
    done.set()
    for reader in readers:
        reader.join(timeout=30)
    assert not errors
    messages = [entry[2] for entry in snapshot(tenant).values()]
    assert len({m.seq for m in messages}) == len(messages)
