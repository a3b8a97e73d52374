"""The mail workload end to end: sandbox Graph -> engine -> a real IMAP server, then sync.

The run, sync and verify case goes to Dovecot and to Cyrus (within the suite's time
budget); the other cases to Dovecot only."""

from __future__ import annotations

import asyncio
import json

from conftest import Setup
from harness import assert_same, graph_pages

from hirondelle.connectors.imap_mailboxes import mailbox_arg
from hirondelle.migrator import operations
from hirondelle.migrator.config import load_config
from hirondelle.sandbox.tenant import Mutation
from hirondelle.state.schema import ItemRow, Unit
from hirondelle.state.store import open_store
from hirondelle.tests.servers import both_imap_servers


def test_run_copies_every_message_exactly_once(setup: Setup) -> None:
    config = load_config(setup.config_path)
    first = asyncio.run(operations.migrate(config, "run"))
    assert first.ok
    count = assert_same(setup.tenant, setup.config_path, setup.server, setup.logins)
    assert first.tallies["mail"].copied == count > 100
    again = asyncio.run(operations.migrate(config, "run"))
    assert again.tallies["mail"].copied == 0
    assert_same(setup.tenant, setup.config_path, setup.server, setup.logins)


@both_imap_servers
def test_sync_carries_new_mail_flags_moves_and_deletions(setup: Setup) -> None:
    config = load_config(setup.config_path)
    assert asyncio.run(operations.migrate(config, "run")).ok
    changed = setup.sandbox.mutate(Mutation(seed=3, new=5, flag_changes=6, moves=4, deletions=3))
    result = asyncio.run(operations.migrate(config, "sync"))
    tally = result.tallies["mail"]
    assert (tally.copied, tally.updated, tally.moved, tally.removed, tally.failed) == (
        len(changed.new),
        len(changed.changed),
        len(changed.moved),
        len(changed.deleted),
        0,
    )
    assert_same(setup.tenant, setup.config_path, setup.server, setup.logins)
    reports = asyncio.run(operations.check(config))
    assert reports["mail"].verified, reports["mail"].differences[:5]
    # a second sync with no change carries nothing
    quiet = asyncio.run(operations.migrate(config, "sync")).tallies["mail"]
    assert (quiet.copied, quiet.updated, quiet.moved, quiet.removed) == (0, 0, 0, 0)


def test_sync_keeps_deleted_messages_when_asked(setup: Setup) -> None:
    text = setup.config_path.read_text().replace(
        "owner_concurrency = 4", 'owner_concurrency = 4\ndeletions = "keep"'
    )
    setup.config_path.write_text(text)
    config = load_config(setup.config_path)
    assert asyncio.run(operations.migrate(config, "run")).ok
    before = {upn: stored(setup, u.login) for upn, u in setup.logins.items()}
    changed = setup.sandbox.mutate(Mutation(seed=5, deletions=4))
    tally = asyncio.run(operations.migrate(config, "sync")).tallies["mail"]
    assert tally.removed == 0 and len(changed.deleted) == 4
    assert {upn: stored(setup, u.login) for upn, u in setup.logins.items()} == before
    report = asyncio.run(operations.check(config))["mail"]
    kinds = {d.kind for d in report.differences}
    assert kinds <= {"extra"} and len(report.differences) == 4


def stored(setup: Setup, login: str) -> int:
    """How many messages the user's whole target mailbox holds."""
    return sum(
        len(setup.server.read_mailbox(login, name)) for name in setup.server.mailboxes(login)
    )


def test_sync_starts_a_folder_over_when_its_delta_link_has_expired(setup: Setup) -> None:
    # Exchange keeps only the newest few generations of a folder's delta walk: another
    # walk of the same folder by the same app (a second tool, a copy of the state) makes
    # the stored link answer 410 SyncStateNotFound (sandbox/sync_states.py). The folder
    # is enumerated again: new mail arrives once, nothing is written twice.
    config = load_config(setup.config_path)
    assert asyncio.run(operations.migrate(config, "run")).ok
    user = setup.tenant.users[0]
    for _ in range(2):  # each walk serves several pages, each a new generation
        graph_pages(setup.sandbox, f"users/{user.id}/mailFolders/inbox/messages/delta", {})
    changed = setup.sandbox.mutate(Mutation(seed=8, new=6))
    tally = asyncio.run(operations.migrate(config, "sync")).tallies["mail"]
    assert (tally.copied, tally.failed) == (len(changed.new), 0)
    assert_same(setup.tenant, setup.config_path, setup.server, setup.logins)
    audit = setup.config_path.parent / "audit"
    records = [json.loads(line) for f in audit.glob("*.jsonl") for line in f.open()]
    resyncs = [r for r in records if r.get("action") == "resync"]
    assert [(r["owner"], r["result"]) for r in resyncs] == [(user.upn, "cursor-expired")]


def test_a_sync_that_enumerates_again_removes_what_was_deleted_meanwhile(setup: Setup) -> None:
    # When a delta link has expired, the folder is listed again from the start: a message
    # deleted while the link could not say so is one the new listing lacks. It is removed
    # from the target as a reported deletion would be, and only after the whole listing.
    config = load_config(setup.config_path)
    assert asyncio.run(operations.migrate(config, "run")).ok
    changed = setup.sandbox.mutate(Mutation(seed=9, new=4, deletions=5, moves=2))
    setup.sandbox.expire_delta_tokens()
    tally = asyncio.run(operations.migrate(config, "sync")).tallies["mail"]
    assert (tally.copied, tally.removed, tally.failed) == (
        len(changed.new),
        len(changed.deleted),
        0,
    )
    assert tally.moved == len(changed.moved)
    assert_same(setup.tenant, setup.config_path, setup.server, setup.logins)
    assert asyncio.run(operations.check(config))["mail"].verified


def test_a_re_enumeration_cut_short_starts_over_and_still_removes(setup: Setup) -> None:
    # A re-enumeration killed halfway has listed only part of the folder: the next pass
    # lists it from the start again (the unit stays "resync" until its listing ends), so
    # what it removes rests on a whole listing, never on the part a dead process saw.
    from hirondelle.state.schema import RESYNC
    from hirondelle.state.store import open_store

    config = load_config(setup.config_path)
    assert asyncio.run(operations.migrate(config, "run")).ok
    user = setup.tenant.users[0]
    inbox = setup.tenant.folder(user.id, "inbox").id
    store = open_store(config.state_url)
    try:
        unit = next(u for u in store.units("mail") if u.container_id == inbox)
        store.set_unit(unit.id, status=RESYNC, next_link="https://cut.invalid/")
    finally:
        store.engine.dispose()
    changed = setup.sandbox.mutate(Mutation(seed=12, deletions=3, user=user.id))
    tally = asyncio.run(operations.migrate(config, "sync")).tallies["mail"]
    assert (tally.removed, tally.failed, tally.copied) == (len(changed.deleted), 0, 0)
    assert_same(setup.tenant, setup.config_path, setup.server, setup.logins)
    audit = setup.config_path.parent / "audit"
    records = [json.loads(line) for f in audit.glob("*.jsonl") for line in f.open()]
    assert [r["result"] for r in records if r.get("action") == "resync"] == ["interrupted"]


def test_a_move_made_on_the_target_by_an_interrupted_sync_is_found_not_failed(
    setup: Setup,
) -> None:
    """A sync killed between the target's MOVE and the page's settling leaves the state
    naming the copy in its old folder: the next sync finds it in the new one (no failure,
    no second copy), rather than reporting the item failed until a later pass."""
    config = load_config(setup.config_path)
    assert asyncio.run(operations.migrate(config, "run")).ok
    user = setup.tenant.users[0]
    source, destination = [f for f in setup.tenant.folders(user.id) if not f.hidden][:2]
    message = setup.tenant.messages(user.id, source.id)[0]
    store = open_store(config.state_url)
    with store.session() as s:
        row = s.query(ItemRow).filter(ItemRow.source_id == message.id).one()
        old_folder, uid = str(row.target_folder), str(row.target_ref).rpartition(":")[2]
        (new_folder,) = [
            str(u.target_folder)
            for u in s.query(Unit).filter(Unit.owner == user.upn, Unit.workload == "mail")
            if u.container_id == destination.id
        ]
    store.engine.dispose()
    # what the killed sync did: the copy moved on the target, nothing recorded
    with setup.server.client(setup.logins[user.upn].login) as imap:
        assert imap.select(mailbox_arg(old_folder))[0] == "OK"
        assert imap.uid("MOVE", uid, mailbox_arg(new_folder))[0] == "OK"
    setup.tenant.move_message(message, destination.id)

    result = asyncio.run(operations.migrate(config, "sync"))
    assert result.tallies["mail"].failed == 0
    assert result.ok
    assert_same(setup.tenant, setup.config_path, setup.server, setup.logins)
