"""The chats source through msgraph-sdk and azure-identity against the sandbox's chats."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hirondelle.connectors.graph.chats import ChatClaims, GraphChatsSource, chats_budget
from hirondelle.connectors.graph.client import GraphClient
from hirondelle.connectors.graph.teams_items import instant
from hirondelle.migrator.model import Container, Item, Owner, Page
from hirondelle.sandbox import tenant as tenant_module
from hirondelle.state.claims import StoreClaims
from hirondelle.state.store import open_store
from hirondelle.tests.graph.conftest import run, sandbox_settings, sandbox_with_secret

SECRET_ENV = "HIRONDELLE_TEST_CHATS_SECRET"
SPEC = tenant_module.TenantSpec(
    seed=5, users=3, messages=1, large_messages=0, files_per_drive=1, large_file_bytes=0
)


@pytest.fixture
def sb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with sandbox_with_secret(monkeypatch, SPEC, SECRET_ENV) as sandbox:
        yield sandbox


def source_for(
    sb: Any, claims: ChatClaims | None = None, wanted: frozenset[str] | None = None
) -> GraphChatsSource:
    settings = sandbox_settings(sb, client_secret_env=SECRET_ENV)
    return GraphChatsSource(GraphClient(settings, chats_budget()), claims, wanted=wanted)


async def containers_of(source: GraphChatsSource) -> dict[str, list[Container]]:
    return {owner.upn: await source.containers(owner) for owner in await source.owners()}


async def pages_of(
    source: GraphChatsSource, container: Container, cursor: str | None = None
) -> list[Page]:
    return [page async for page in source.changes(container, cursor)]


def items(pages: list[Page]) -> list[Item]:
    return [item for page in pages for item in page.items]


def test_every_chat_once_with_its_kind_members_and_owner(sb: Any) -> None:
    source = source_for(sb)

    async def scenario() -> dict[str, list[Container]]:
        try:
            return await containers_of(source)
        finally:
            await source.aclose()

    found = run(scenario())
    chats = [c for containers in found.values() for c in containers]
    assert len({c.source_id for c in chats}) == len(chats) == 4  # one unit per chat
    assert sorted(str(c.role) for c in chats) == ["group", "group", "meeting", "oneOnOne"]
    upns = {u.id: u.upn for u in sb.tenant.users}
    for container in chats:  # held by its member of lowest id, whoever listed it first
        members = sb.tenant.chats.chat(container.source_id).members
        assert container.owner == upns[min(m.user_id for m in members)]
    labels = {c.role: c.display_path for c in chats}
    assert labels["meeting"] == "Réunion de chantier hebdomadaire"
    one = next(c for c in chats if c.role == "oneOnOne")
    info = source.chats[one.source_id]
    assert info.kind == "oneOnOne" and info.topic is None
    assert {m.user_id for m in info.members} == {u.id for u in sb.tenant.users[:2]}
    assert one.path == (info.label,) and "," in info.label  # named by its members


def test_a_users_file_without_a_chats_lowest_member_still_carries_it(sb: Any) -> None:
    """users.csv leaves out the user of lowest id: every chat with a selected member is
    carried once, by the selected member of lowest id."""
    users = sorted(sb.tenant.users, key=lambda u: u.id)
    kept = users[1:]
    source = source_for(sb, wanted=frozenset(u.upn.lower() for u in kept))

    async def scenario() -> list[Container]:
        try:
            await source.owners()
            found: list[Container] = []
            for user in kept:
                found += await source.containers(Owner(user.upn, user.id, user.display_name))
            return found
        finally:
            await source.aclose()

    chats = run(scenario())
    ids = {u.id for u in kept}
    theirs = [c for c in sb.tenant.chats.chats if ids & {m.user_id for m in c.members}]
    assert sorted(c.source_id for c in chats) == sorted(c.id for c in theirs)  # once each
    upns = {u.id: u.upn for u in kept}
    for container in chats:
        members = {m.user_id for m in sb.tenant.chats.chat(container.source_id).members}
        assert container.owner == upns[min(members & ids)]
    assert not any(source.unexpected.values())


def test_a_chat_whose_members_leave_out_its_lister_is_carried_with_a_warning(
    sb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Graph lists a chat for a user but its members do not name them, and no selected
    user is named: the lister carries it, and the log and the plan say so."""
    from hirondelle.workloads.chats_plan import ChatsPlanner

    lister = sb.tenant.users[0]
    source = source_for(sb, wanted=frozenset({lister.upn.lower()}))
    planner = ChatsPlanner(source, 20.0)
    read = source._members

    async def without_lister(chat: dict[str, Any], owner: Owner) -> tuple[Any, ...]:
        return tuple(m for m in await read(chat, owner) if m.user_id != owner.source_id)

    monkeypatch.setattr(source, "_members", without_lister)
    owner = Owner(lister.upn, lister.id, lister.display_name)

    async def scenario() -> tuple[list[Container], list[Any]]:
        try:
            await source.owners()
            mine = await source.containers(owner)
            return mine, await planner.findings(owner, [], False)
        finally:
            await source.aclose()

    mine, findings = run(scenario())
    theirs = [c.id for c in sb.tenant.chats.chats if lister.id in {m.user_id for m in c.members}]
    assert sorted(c.source_id for c in mine) == sorted(theirs)  # carried, none dropped
    warned = [f for f in findings if f.kind == "chat-holder"]
    assert len(warned) == len(theirs) and all(f.severity == "warning" for f in warned)


def test_a_claim_held_by_someone_who_cannot_carry_it_moves(sb: Any) -> None:
    """Claims of a renamed (or deleted) user and of a user no longer a member move to the
    preferred member; a claim its holder can still carry stays."""
    from hirondelle.connectors.graph.chats import MemoryClaims

    users = sb.tenant.users
    upns = {u.id: u.upn for u in users}
    chats = sb.tenant.chats.chats
    ids = [{m.user_id for m in c.members} for c in chats]
    left = next(i for i, m in enumerate(ids) if len(m) < len(users))
    renamed = next(i for i in range(len(chats)) if i != left)
    kept = next(i for i in range(len(chats)) if i not in (left, renamed))
    stranger = next(u for u in users if u.id not in ids[left])
    claims = MemoryClaims()
    claims.taken = {
        chats[left].id: stranger.upn,
        chats[renamed].id: "old-name@contoso.test",
        chats[kept].id: upns[max(ids[kept])],
    }
    source = source_for(sb, claims)

    async def scenario() -> dict[str, list[Container]]:
        try:
            return await containers_of(source)
        finally:
            await source.aclose()

    holders = {c.source_id: c.owner for cs in run(scenario()).values() for c in cs}
    assert holders[chats[left].id] == upns[min(ids[left])]
    assert holders[chats[renamed].id] == upns[min(ids[renamed])]
    assert holders[chats[kept].id] == upns[max(ids[kept])]  # can carry it: no move
    assert len(holders) == len(chats)


def test_two_members_listing_at_once_claim_each_chat_once(sb: Any, tmp_path: Path) -> None:
    """Two workers (two sources, one state) list the same chats at the same moment."""
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    sources = [source_for(sb, StoreClaims(store, "chats")) for _ in range(2)]
    users = sb.tenant.users

    async def scenario() -> list[list[Container]]:
        owners = [Owner(u.upn, u.id, u.display_name) for u in users[:2]]
        try:
            first = await asyncio.gather(
                sources[0].containers(owners[1]), sources[1].containers(owners[0])
            )
            again = await sources[0].containers(owners[0])  # later passes: no move
            return [*first, again]
        finally:
            for source in sources:
                await source.aclose()

    second_member, first_member, first_again = run(scenario())
    shared = {c.source_id for c in second_member} | {c.source_id for c in first_member}
    assert len(shared) == len(second_member) + len(first_member)  # nobody holds one twice
    assert {c.source_id for c in first_again} == {c.source_id for c in first_member}
    pair = {users[0].id, users[1].id}
    theirs = {c.id for c in sb.tenant.chats.chats if min(m.user_id for m in c.members) in pair}
    assert shared == theirs  # each chat whose preferred member is one of them, once
    store.engine.dispose()


def test_messages_oldest_first_with_images_quotes_and_system_events(sb: Any) -> None:
    source = source_for(sb)

    async def scenario() -> tuple[Container, list[Page], list[dict[str, Any]]]:
        try:
            containers = [c for cs in (await containers_of(source)).values() for c in cs]
            one = next(c for c in containers if c.role == "oneOnOne")
            pages = await pages_of(source, one)
            fetched = [json.loads(await source.fetch(one, i)) for i in items(pages)]
            return one, pages, fetched
        finally:
            await source.aclose()

    one, pages, fetched = run(scenario())
    listed = items(pages)
    assert len(listed) == len(sb.tenant.chats.roots(one.source_id))
    times = [instant(str(i.meta["createdDateTime"])) for i in listed]
    assert times == sorted(times)
    assert all(i.meta["rootId"] == i.source_id for i in listed)  # no threads in a chat
    assert pages[-1].delta_link and all(p.delta_link is None for p in pages[:-1])
    assert all(
        f["chat"] == {"id": one.source_id, "chatType": "oneOnOne", "topic": None} for f in fetched
    )
    kinds = {f["message"]["messageType"] for f in fetched}
    assert "systemEventMessage" in kinds  # asked with include-unknown-enum-members
    images = [f["hostedContents"] for f in fetched if f["hostedContents"]]
    assert images and all(
        base64.b64decode(h["base64"]).startswith(b"\x89PNG") and h["contentType"] == "image/png"
        for found in images
        for h in found.values()
    )
    attached = [a["contentType"] for f in fetched for a in f["message"]["attachments"]]
    assert "messageReference" in attached and "reference" in attached
    assert any(f["message"]["deletedDateTime"] for f in fetched)
    assert any(i.meta["deleted"] for i in listed)


def test_a_sync_reads_new_edited_and_deleted_messages_only(sb: Any) -> None:
    source = source_for(sb)

    async def scenario() -> tuple[list[Item], list[Item], list[str], list[Item]]:
        try:
            containers = [c for cs in (await containers_of(source)).values() for c in cs]
            group = next(c for c in containers if c.role == "group" and "Karim" in c.display_path)
            first = await pages_of(source, group)
            change = tenant_module.Mutation(
                seed=3, chat_id=group.source_id, chats_messages=2, chats_edits=1,
                chats_deletions=1,
            )  # fmt: skip
            touched = sb.tenant.mutate(change).chat_messages
            second = await pages_of(source, group, first[-1].delta_link)
            third = await pages_of(source, group, second[-1].delta_link)
            return items(first), items(second), touched, items(third)
        finally:
            await source.aclose()

    before, after, touched, third = run(scenario())
    assert len(touched) == 4
    versions = {i.source_id: i.version for i in before}
    changed = [i for i in after if versions.get(i.source_id) != i.version]
    assert sorted(i.source_id for i in changed) == sorted(touched)
    new = [i for i in after if i.source_id not in versions]
    assert len(new) == 2 and after[-2:] == new  # new messages come last, in order
    assert sum(1 for i in changed if i.meta["deleted"]) == 1
    assert len(after) < len(before)  # not the whole chat again
    latest = {i.source_id: i.version for i in before} | {i.source_id: i.version for i in after}
    assert all(latest[i.source_id] == i.version for i in third)  # nothing changed since


def test_a_member_who_left_is_kept_as_such(sb: Any) -> None:
    source = source_for(sb)
    leaver = sb.tenant.users[1]

    async def scenario() -> Container:
        try:
            containers = [c for cs in (await containers_of(source)).values() for c in cs]
            left = next(c for c in containers if c.role == "group" and "Karim" not in c.path[0])
            await pages_of(source, left)
            return left
        finally:
            await source.aclose()

    left = run(scenario())
    members = {m.user_id: m for m in source.chats[left.source_id].members}
    assert members[leaver.id].left and members[leaver.id].name == leaver.display_name
    assert not any(m.left for uid, m in members.items() if uid != leaver.id)


def test_a_chat_of_another_kind_is_left_out_and_the_plan_says_so(sb: Any) -> None:
    from hirondelle.sandbox.chats_data import SandboxChat
    from hirondelle.workloads.chats_plan import ChatsPlanner

    chats = sb.tenant.chats
    first = chats.chats[0]
    odd = SandboxChat("19:future@thread.v2", "unknownFutureValue", "Plus tard", first.created,
                      first.members)  # fmt: skip
    chats.add_chat(odd)
    source = source_for(sb)
    planner = ChatsPlanner(source, 20.0)

    async def scenario() -> tuple[list[Container], list[Any]]:
        containers: list[Container] = []
        findings: list[Any] = []
        try:
            for owner in await source.owners():
                mine = await source.containers(owner)
                containers += mine
                findings += await planner.findings(owner, mine, False)
            return containers, findings
        finally:
            await source.aclose()

    containers, findings = run(scenario())
    assert odd.id not in {c.source_id for c in containers} and len(containers) == 4
    left_out = [f for f in findings if f.kind == "chat-kind"]
    assert left_out and all(f.severity == "warning" and odd.id in f.detail for f in left_out)
    metered = [f for f in findings if f.kind == "metered"]
    messages = sum(len(chats.roots(c.source_id)) for c in containers)
    assert sum(int(f.detail.split()[0]) for f in metered) == messages
    assert all("$0.00" in f.detail and "25 August 2025" in f.detail for f in metered)
    chat_rows = [f.detail for f in findings if f.kind == "chat"]
    assert all("?" not in row.partition(" authors (")[2] for row in chat_rows)  # no system
    assert sum(1 for f in findings if f.kind == "chat") == 4
    assert all(planner.requests(c) >= 1 for c in containers)


def test_a_chat_of_many_members_reads_them_all(sb: Any) -> None:
    from hirondelle.sandbox.chats_data import SandboxChat
    from hirondelle.sandbox.teams_data import Member

    first = sb.tenant.users[0]
    crowd = tuple(
        Member(f"00000000-0000-4000-8000-{n:012d}", f"Invité {n}", f"g{n}@x.test", ("owner",))
        for n in range(1, 30)
    )
    me = Member(first.id, first.display_name, first.mail, ("owner",))
    chats = sb.tenant.chats
    big = SandboxChat("19:crowd@thread.v2", "group", "Tout le chantier", chats.chats[0].created,
                      (me, *crowd))  # fmt: skip
    chats.add_chat(big)
    source = source_for(sb)

    async def scenario() -> list[Container]:
        try:
            await source.owners()
            return await source.containers(Owner(first.upn, first.id, first.display_name))
        finally:
            await source.aclose()

    held = {c.source_id for c in run(scenario())}
    assert big.id in held  # the one tenant user among them holds it
    assert len(source.chats[big.id].members) == 30  # past the 25 that $expand gives


def test_a_refused_filter_reads_the_chat_whole_from_then_on(
    sb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hirondelle.sandbox import chats as sandbox_chats
    from hirondelle.sandbox.odata import GraphError

    source = source_for(sb)

    def refused(request: Any, field: str) -> Any:
        if request.query.get("$filter"):
            raise GraphError(400, "BadRequest", "Invalid filter clause")
        return []

    async def scenario() -> tuple[list[Item], list[Item], list[Page]]:
        try:
            containers = [c for cs in (await containers_of(source)).values() for c in cs]
            chat = next(c for c in containers if c.role == "meeting")
            first = await pages_of(source, chat)
            sb.tenant.mutate(tenant_module.Mutation(seed=9, chat_id=chat.source_id, chats_edits=1))
            monkeypatch.setattr(sandbox_chats, "_filters", refused)
            second = await pages_of(source, chat, first[-1].delta_link)
            third = await pages_of(source, chat, second[-1].delta_link)
            return items(first), items(second), third
        finally:
            await source.aclose()

    before, after, third = run(scenario())
    assert len(after) == len(before)  # read whole: the engine skips what did not change
    assert sum(1 for a, b in zip(before, after, strict=True) if a.version != b.version) == 1
    assert json.loads(str(third[-1].delta_link))["filtered"] is False
    assert len(items(third)) == len(before)


def test_a_refused_protected_api_names_chats_and_the_approval(sb: Any) -> None:
    from hirondelle.connectors.graph.errors import PROTECTED_APIS, ProtectedApiRefused

    sb.set_protected_apis(False)
    source = source_for(sb)

    async def scenario() -> None:
        try:
            containers = [c for cs in (await containers_of(source)).values() for c in cs]
            await pages_of(source, containers[0])
        finally:
            await source.aclose()

    with pytest.raises(ProtectedApiRefused) as refused:
        run(scenario())
    assert "chat messages" in str(refused.value) and PROTECTED_APIS in str(refused.value)
    assert "Chat.Read.All" in str(refused.value)


def test_the_plan_estimate_takes_the_tenant_wide_rate_for_all_owners(sb: Any) -> None:
    """20 chat message reads a second per tenant: however many owners run at once, the
    chats take their requests / 20; the summary names the rate as the tenant's."""
    from hirondelle.migrator.plan import make_plan
    from hirondelle.migrator.workload import RunOptions, Workload
    from hirondelle.workloads.chats_plan import ChatsPlanner

    source = source_for(sb)
    unused: Any = None  # a plan neither maps nor writes
    workload = Workload("chats", source, unused, unused)

    async def scenario() -> Any:
        try:
            return await make_plan([(workload, ChatsPlanner(source, 20.0))], RunOptions())
        finally:
            await source.aclose()

    plan = run(scenario())
    assert plan.requests > 0 and plan.estimate_seconds == plan.requests / 20.0
    rates = plan.summary()["assumptions"]
    assert rates["requests_per_second_per_tenant"] == {"chats": 20.0}
    assert rates["requests_per_second_per_owner"] == {}


def test_the_plan_counts_a_request_per_page_and_per_inline_image(sb: Any) -> None:
    """Text messages cost no image reads: a chat costs ceil(messages / 50) listing pages
    plus one read per inline image its messages hold."""
    from hirondelle.workloads.chats_plan import ChatsPlanner

    source = source_for(sb)
    planner = ChatsPlanner(source, 20.0)

    async def scenario() -> dict[str, int]:
        try:
            counts: dict[str, int] = {}
            for owner in await source.owners():
                for container in await source.containers(owner):
                    await planner.count(container)
                    counts[container.source_id] = planner.requests(container)
            return counts
        finally:
            await source.aclose()

    counts = run(scenario())
    data = sb.tenant.chats
    for chat_id, requests in counts.items():
        roots = data.roots(chat_id)
        images = sum(len(m.hosted) for m in roots)
        assert requests == -(-len(roots) // 50) + images
    assert any(len(m.hosted) for c in counts for m in data.roots(c))  # images were counted
