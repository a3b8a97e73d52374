"""The Teams source through msgraph-sdk and azure-identity against the sandbox's Teams part."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from hirondelle.connectors.graph.client import GraphClient
from hirondelle.connectors.graph.teams import GraphTeamsSource, teams_budget
from hirondelle.migrator.model import Container, Item, Page
from hirondelle.sandbox import tenant as tenant_module
from hirondelle.tests.graph.conftest import run, sandbox_settings, sandbox_with_secret

SECRET_ENV = "HIRONDELLE_TEST_TEAMS_SECRET"
Rounds = dict[Container, list[Page]]


@pytest.fixture
def sb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    wanted: dict[str, Any] = {
        "seed": 5,
        "users": 3,
        "messages": 1,
        "large_messages": 0,
        "files_per_drive": 1,
        "large_file_bytes": 0,
        "teams": 1,
        "posts_per_channel": 12,
    }
    spec = tenant_module.TenantSpec(**wanted)
    with sandbox_with_secret(monkeypatch, spec, SECRET_ENV) as sandbox:
        yield sandbox


def source_for(sb: Any) -> GraphTeamsSource:
    settings = sandbox_settings(sb, client_secret_env=SECRET_ENV)
    return GraphTeamsSource(GraphClient(settings, teams_budget()))


async def read_all(
    source: GraphTeamsSource, cursors: dict[str, str | None] | None = None
) -> Rounds:
    rounds: Rounds = {}
    for owner in await source.owners():
        for container in await source.containers(owner):
            cursor = (cursors or {}).get(container.source_id)
            rounds[container] = [p async for p in source.changes(container, cursor)]
    return rounds


def items_of(rounds: Rounds) -> list[Item]:
    return [item for pages in rounds.values() for p in pages for item in p.items]


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text[:23] + "+00:00" if text.endswith("Z") else text)


def test_every_message_once_in_chronological_order(sb: Any) -> None:
    source = source_for(sb)

    async def scenario() -> tuple[Rounds, dict[Container, list[Item]]]:
        try:
            rounds = await read_all(source)
            return rounds, {c: await source.listing(c) for c in rounds}
        finally:
            await source.aclose()

    rounds, listings = run(scenario())
    assert {c.role for c in rounds} >= {"standard", "private"}
    assert len(items_of(rounds)) > 12
    for container, pages in rounds.items():
        items = [item for p in pages for item in p.items]
        assert len({i.source_id for i in items}) == len(items)
        assert {i.source_id for i in items} == {i.source_id for i in listings[container]}
        roots = [i for i in items if "/" not in i.source_id]
        created = [instant(i.meta["createdDateTime"]) for i in roots]
        assert created == sorted(created)
        current = None
        for item in items:
            if "/" not in item.source_id:
                current = item
            else:
                assert current is not None and item.meta["rootId"] == current.source_id
                assert instant(item.meta["createdDateTime"]) >= instant(
                    current.meta["createdDateTime"]
                )
        assert json.loads(pages[-1].delta_link or "")["delta"]


def test_fetch_carries_inline_images_and_real_event_types(sb: Any) -> None:
    source = source_for(sb)

    async def scenario() -> list[dict[str, Any]]:
        documents: list[dict[str, Any]] = []
        try:
            for owner in await source.owners():
                for container in await source.containers(owner):
                    async for page in source.changes(container, None):
                        for item in page.items:
                            documents.append(json.loads(await source.fetch(container, item)))
        finally:
            await source.aclose()
        return documents

    documents = run(scenario())
    with_images = [d for d in documents if d["hostedContents"]]
    assert with_images
    for hosted in with_images[0]["hostedContents"].values():
        assert hosted["contentType"].startswith("image/") and hosted["base64"]
    events = [d["message"] for d in documents if d["message"]["messageType"] != "message"]
    assert events
    for event in events:
        assert "unknownFutureValue" not in json.dumps(event.get("eventDetail"))


def test_a_sync_after_a_mutation_reports_exactly_the_changed_messages(sb: Any) -> None:
    first = run(_closing(source_for(sb), None))
    before = {i.source_id: i.version for i in items_of(first)}
    cursors = {c.source_id: pages[-1].delta_link for c, pages in first.items()}
    result = sb.mutate(
        tenant_module.Mutation(chat_posts=2, chat_replies=3, chat_edits=1, chat_deletions=1)
    )
    second = run(_closing(source_for(sb), cursors))
    changed = {i.source_id for i in items_of(second) if before.get(i.source_id) != i.version}
    expected = set(result.messages)
    assert len(expected) == 7
    assert changed == expected
    deleted = [i for i in items_of(second) if i.meta["deleted"] and i.source_id in changed]
    assert len(deleted) == 1


async def _closing(source: GraphTeamsSource, cursors: dict[str, str | None] | None) -> Rounds:
    try:
        return await read_all(source, cursors)
    finally:
        await source.aclose()
