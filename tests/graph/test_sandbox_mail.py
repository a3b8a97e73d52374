"""The mail source through the real msgraph-sdk and azure-identity against the sandbox."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import pytest

from hirondelle.connectors.graph import mail as mail_module
from hirondelle.connectors.graph.auth import GraphSettings
from hirondelle.connectors.graph.budget import MailboxBudget
from hirondelle.connectors.graph.client import GraphClient, user_agent
from hirondelle.connectors.graph.mail import GraphMailSource
from hirondelle.migrator.errors import SkipItem
from hirondelle.migrator.model import Container, Item, Page
from hirondelle.sandbox import mail as sandbox_mail
from hirondelle.sandbox import server
from hirondelle.sandbox import tenant as tenant_module

from .conftest import run, sandbox_settings

SECRET_ENV = "HIRONDELLE_TEST_GRAPH_SECRET"


@pytest.fixture
def sb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    spec = tenant_module.TenantSpec(seed=7, users=2, messages=40, large_messages=0)
    with server.SandboxServer(tenant_module.Tenant.generate(spec), tls=True) as sandbox:
        monkeypatch.setenv(SECRET_ENV, sandbox.client_secret)
        yield sandbox


def settings_for(sb: Any, **secret: str) -> GraphSettings:
    return sandbox_settings(sb, **(secret or {"client_secret_env": SECRET_ENV}))


def source_for(settings: GraphSettings) -> GraphMailSource:
    return GraphMailSource(GraphClient(settings, MailboxBudget(), mailboxes=2))


async def everything(
    source: GraphMailSource, container: Container, cursor: str | None
) -> list[Page]:
    return [page async for page in source.changes(container, cursor)]


async def survey(source: GraphMailSource) -> tuple[list[Any], dict[str, list[Container]]]:
    owners = await source.owners()
    return owners, {owner.upn: await source.containers(owner) for owner in owners}


async def closing(source: GraphMailSource, action: str, *args: Any) -> Any:
    """Run one source call (or `survey`) and close the source on the same event loop."""
    try:
        if action == "survey":
            return await survey(source)
        if action == "changes_list":
            return await everything(source, args[0], None)
        return await getattr(source, action)(*args)
    finally:
        await source.aclose()


def test_owners_and_folder_tree_with_roles(sb: Any) -> None:
    owners, trees = run(closing(source_for(settings_for(sb)), "survey"))
    assert [owner.upn for owner in owners] == [user.upn for user in sb.tenant.users]
    for user in sb.tenant.users:
        containers = trees[user.upn]
        visible = [f for f in sb.tenant.folders(user.id) if not _hidden(sb, user.id, f)]
        assert {c.source_id for c in containers} == {f.id for f in visible}
        by_id = {c.source_id: c for c in containers}
        for folder in visible:
            container = by_id[folder.id]
            assert container.path[-1] == folder.display_name
            assert container.role == folder.well_known_name
            assert container.total_items == len(sb.tenant.messages(user.id, folder.id))
        seen: set[tuple[str, ...]] = set()
        for container in containers:  # parents come before their children
            assert container.path[:-1] in seen or len(container.path) == 1
            seen.add(container.path)
        inbox = next(c for c in containers if c.role == "inbox")
        assert inbox.path_roles == ("inbox",)


def test_full_then_incremental_delta_and_mime(sb: Any) -> None:
    user = sb.tenant.users[0]
    mutation = tenant_module.Mutation(new=3, moves=2, deletions=2, flag_changes=3, user=user.upn)

    async def scenario() -> tuple[dict[str, list[Page]], dict[str, list[Page]], bytes]:
        source = source_for(settings_for(sb))
        try:
            owner = next(o for o in await source.owners() if o.upn == user.upn)
            containers = await source.containers(owner)
            full = {c.source_id: await everything(source, c, None) for c in containers}
            sb.mutate(mutation)
            later = {
                c.source_id: await everything(source, c, full[c.source_id][-1].delta_link)
                for c in containers
            }
            inbox = next(c for c in containers if c.role == "inbox")
            first = sb.tenant.messages(user.id, inbox.source_id)[0]
            return full, later, await source.fetch(inbox, Item(first.id, first.change_key))
        finally:
            await source.aclose()

    full, later, mime = run(scenario())
    all_changed: set[str] = set()
    all_removed: set[str] = set()
    for folder_id, pages in full.items():
        assert pages[-1].delta_link and all(page.next_link for page in pages[:-1])
        listed = {item.source_id for page in pages for item in page.items}
        changed = {item.source_id: item for page in later[folder_id] for item in page.items}
        removed = {message_id for page in later[folder_id] for message_id in page.removed}
        now = {m.id: m for m in sb.tenant.messages(user.id, folder_id)}
        assert (listed - removed) | set(changed) == set(now)
        for message_id, item in changed.items():
            _assert_item(item, now[message_id])
        all_changed |= set(changed)
        all_removed |= removed
    assert len(all_changed) >= 3 + 2 and len(all_removed) >= 2 + 2  # moves show on both sides
    inbox = sb.tenant.folder(user.id, "inbox")
    assert mime == sb.tenant.mime(user.id, sb.tenant.messages(user.id, inbox.id)[0].id)
    assert user_agent() in sb.stats()["user_agents"]


@pytest.mark.parametrize("listing_cost", [0, 10_000], ids=["folder-listing", "batch"])
def test_full_enumeration_equals_the_folder(
    sb: Any, listing_cost: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mail_module, "listing_requests", lambda container: listing_cost)
    user = sb.tenant.users[0]
    inbox = sb.tenant.folder(user.id, "inbox")
    container = Container("mail", user.upn, inbox.id, (inbox.display_name,), "inbox", ("inbox",))
    pages = run(closing(source_for(settings_for(sb)), "changes_list", container))
    items = {item.source_id: item for page in pages for item in page.items}
    expected = {m.id: m for m in sb.tenant.messages(user.id, inbox.id)}
    assert items.keys() == expected.keys()
    for message_id, message in expected.items():
        _assert_item(items[message_id], message)


def test_a_folder_costs_its_delta_and_listing_pages_not_a_request_per_message(sb: Any) -> None:
    """Reading every message's properties one $batch part each would cost a request per
    message (each part counts against the mailbox); the folder's listing costs one."""
    user = sb.tenant.users[0]
    folders = {f.id: f for f in sb.tenant.folders(user.id) if not f.hidden}
    counts = {fid: len(sb.tenant.messages(user.id, fid)) for fid in folders}
    folder_id = max((fid for fid in counts if 1 < counts[fid] < 1000), key=counts.__getitem__)
    folder = folders[folder_id]
    container = Container(
        "mail", user.upn, folder.id, (folder.display_name,), total_items=counts[folder_id]
    )
    before = sb.stats()["requests"]
    pages = run(closing(source_for(settings_for(sb)), "changes_list", container))
    assert sum(len(page.items) for page in pages) == counts[folder_id] > 2
    assert all(item.meta["size"] for page in pages for item in page.items)
    assert sb.stats()["requests"] - before == 2  # one delta page and one listing page


def test_delta_pages_smaller_than_asked_still_give_the_whole_folder(
    sb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """odata.maxpagesize is a maximum the service may answer below (message-delta, "Request
    headers"): with the sandbox giving 7 a page for the 1,000 asked, every message comes."""
    monkeypatch.setattr(sandbox_mail, "DELTA_MAX_PAGE", 7)
    user = sb.tenant.users[0]
    inbox = sb.tenant.folder(user.id, "inbox")
    container = Container("mail", user.upn, inbox.id, (inbox.display_name,), "inbox", ("inbox",))
    pages = run(closing(source_for(settings_for(sb)), "changes_list", container))
    expected = {m.id for m in sb.tenant.messages(user.id, inbox.id)}
    assert len(expected) > 14 and len(pages) == -(-len(expected) // 7)
    assert {item.source_id for page in pages for item in page.items} == expected
    assert pages[-1].delta_link and all(page.next_link for page in pages[:-1])


def test_listing_matches_the_folder(sb: Any) -> None:
    user = sb.tenant.users[1]
    inbox = sb.tenant.folder(user.id, "inbox")
    container = Container("mail", user.upn, inbox.id, (inbox.display_name,), "inbox")
    listed = {
        item.source_id: item
        for item in run(closing(source_for(settings_for(sb)), "listing", container))
    }
    expected = sb.tenant.messages(user.id, inbox.id)
    assert listed.keys() == {m.id for m in expected}
    for message in expected:
        assert listed[message.id].meta["size"] == message.size
        assert listed[message.id].meta["internetMessageId"] == message.internet_message_id


def test_certificate_credential_works(sb: Any) -> None:
    settings = settings_for(sb, certificate_file=sb.client_cert_file)
    owners = run(closing(source_for(settings), "owners"))
    assert len(owners) == len(sb.tenant.users)
    assert SECRET_ENV in os.environ  # the secret stayed in the environment, never in settings


def _hidden(sb: Any, user_id: str, folder: Any) -> bool:
    """A folder is out of the plan when it or one of its parents is hidden."""
    by_id = {f.id: f for f in sb.tenant.folders(user_id)}
    while folder is not None:
        if folder.hidden:
            return True
        folder = by_id.get(folder.parent_id)
    return False


def _assert_item(item: Item, message: Any) -> None:
    assert item.version == message.change_key
    assert item.meta["internetMessageId"] == message.internet_message_id
    assert item.meta["isRead"] is message.is_read
    assert item.meta["isDraft"] is message.is_draft
    assert item.meta["flagStatus"] == message.flag_status
    assert item.meta["categories"] == message.categories
    assert item.meta["lastVerb"] == message.last_verb
    assert item.meta["size"] == message.size


def test_a_batch_beside_downloads_stays_within_the_mailbox_concurrency(sb: Any) -> None:
    # Graph runs up to four parts of a $batch at once, each counted against the mailbox's
    # four concurrent requests (https://learn.microsoft.com/en-us/graph/throttling-limits,
    # "Outlook service limits"): the client must hold that many slots for a batch, or its
    # parts get 429 while downloads of the same mailbox are in flight.
    from hirondelle.connectors.graph.errors import Call
    from hirondelle.sandbox.faults import Faults
    from hirondelle.sandbox.throttle import Limits

    sb.set_limits(Limits())
    sb.set_faults(Faults(slow_seconds=0.15))
    user = sb.tenant.users[0]
    inbox = sb.tenant.folder(user.id, "inbox")
    ids = [m.id for m in sb.tenant.messages(user.id, inbox.id)][:6]
    client = GraphClient(settings_for(sb), MailboxBudget(), mailboxes=2)

    async def together() -> tuple[list[bytes], dict[str, Any]]:
        try:
            urls = [f"{sb.graph_url}/users/{user.id}/messages/{i}/$value" for i in ids]
            downloads = asyncio.gather(*(client.stream_bytes(u, user.upn) for u in urls))
            paths = {str(n): f"users/{user.id}/mailFolders/inbox" for n in range(10)}
            batch = client.batch_get(user.upn, paths, Call("inbox ten times"))
            bodies, answers = await asyncio.gather(downloads, batch)
            return list(bodies), answers
        finally:
            await client.aclose()

    bodies, answers = asyncio.run(together())
    assert all(bodies) and len(answers) == 10 and all(answers.values())
    mailbox = sb.stats()["by_mailbox"][user.upn.lower()]
    assert mailbox["throttled"] == 0, mailbox
    assert mailbox["peak_in_flight"] == 4  # the budget was used whole, never overrun


def test_fetch_many_gives_each_mime_as_fetch_does_and_skips_a_gone_message(sb: Any) -> None:
    user = sb.tenant.users[0]
    inbox = sb.tenant.folder(user.id, "inbox")
    container = Container("mail", user.upn, inbox.id, (inbox.display_name,), "inbox")
    messages = sb.tenant.messages(user.id, inbox.id)
    messages = (messages * 2)[:25]  # some twice: more parts than one batch holds
    items = [Item(m.id, m.change_key) for m in messages] + [Item("AAMkAGone", "x")]
    before = sb.stats()
    contents = run(closing(source_for(settings_for(sb)), "fetch_many", container, items))
    after = sb.stats()
    assert contents[:-1] == [sb.tenant.mime(user.id, m.id) for m in messages]
    assert isinstance(contents[-1], SkipItem)
    assert after["batches"] - before["batches"] == 2  # 26 parts: 20 and 6
    assert after["requests"] - before["requests"] == 26  # each part counts as a request
