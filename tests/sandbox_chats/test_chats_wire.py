"""The sandbox's chats answer as Graph documents: paging, ordering, filters, the long chat."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parents[1] / "sandbox"))  # for sandbox_helpers

from sandbox_helpers import client_fixture, sandbox_fixture

from hirondelle.sandbox.chats_data import BIG_CHAT_MESSAGES
from hirondelle.sandbox.server import SandboxServer
from hirondelle.sandbox.tenant import Mutation, Tenant, TenantSpec

SPEC = TenantSpec(
    seed=11, users=3, messages=1, large_messages=0, files_per_drive=1, large_file_bytes=0,
    big_chat=True,
)  # fmt: skip


sb = sandbox_fixture(SPEC, tls=False)
client = client_fixture()


def chats_of(client: httpx.Client, upn: str) -> list[dict[str, Any]]:
    answer = client.get(f"users/{upn}/chats", params={"$expand": "members", "$top": "50"})
    assert answer.status_code == 200
    return list(answer.json()["value"])


def every_page(client: httpx.Client, first: str, params: dict[str, str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    answer = client.get(first, params=params).json()
    while True:
        found += answer["value"]
        link = answer.get("@odata.nextLink")
        if not link:
            return found
        answer = client.get(link).json()


def test_the_tenant_is_fast_and_the_long_chat_is_written_when_first_read() -> None:
    started = time.process_time()
    tenant = Tenant.generate(SPEC)
    chats = tenant.chats
    assert time.process_time() - started < 2.0
    big = next(c for c in chats.chats if c.id in chats._lazy)
    assert len(chats.roots(big.id)) == BIG_CHAT_MESSAGES
    again = Tenant.generate(SPEC).chats  # the same messages whenever they are written
    again.mutate(Mutation(chats_messages=1), [])
    assert [m.id for m in again.roots(big.id)][:5] == [m.id for m in chats.roots(big.id)][:5]


def test_chats_of_every_kind_with_members(sb: SandboxServer, client: httpx.Client) -> None:
    users = sb.tenant.users
    first = chats_of(client, users[0].upn)
    assert {c["chatType"] for c in first} == {"oneOnOne", "group", "meeting"}
    assert all(c["members"] and all(m["userId"] for m in c["members"]) for c in first)
    second = {c["id"] for c in chats_of(client, users[1].upn)}
    left = next(c for c in first if c["chatType"] == "group" and c["topic"] is None)
    assert left["id"] not in second  # user 2 left that chat: no longer listed for them
    page = client.get(f"users/{users[0].upn}/chats", params={"$top": "51"})
    assert page.status_code == 400


def test_the_long_chat_pages_newest_first(sb: SandboxServer, client: httpx.Client) -> None:
    big = next(c for c in chats_of(client, sb.tenant.users[1].upn) if c["id"].endswith("spaces")
               and sb.tenant.users[0].id not in c["id"])  # fmt: skip
    found = every_page(client, f"chats/{big['id']}/messages", {"$top": "50"})
    assert len(found) == len({m["id"] for m in found}) == BIG_CHAT_MESSAGES
    stamps = [m["lastModifiedDateTime"] for m in found]
    assert stamps == sorted(stamps, reverse=True)
    assert client.get(f"chats/{big['id']}/messages", params={"$top": "51"}).status_code == 400


def test_filters_and_orders_as_documented(sb: SandboxServer, client: httpx.Client) -> None:
    chat = chats_of(client, sb.tenant.users[0].upn)[1]
    url = f"chats/{chat['id']}/messages"
    whole = every_page(client, url, {"$top": "50"})
    middle = sorted(m["lastModifiedDateTime"] for m in whole)[len(whole) // 2]
    clause = f"lastModifiedDateTime gt {middle}"
    newer = every_page(client, url, {"$orderby": "lastModifiedDateTime desc", "$filter": clause})
    assert newer and all(m["lastModifiedDateTime"] > middle for m in newer)
    assert len(newer) < len(whole)
    ignored = every_page(client, url, {"$orderby": "createdDateTime desc", "$filter": clause})
    assert len(ignored) == len(whole)  # a filter on another property than $orderby's
    created = [m["createdDateTime"] for m in ignored]
    assert created == sorted(created, reverse=True)
    ascending = client.get(url, params={"$orderby": "createdDateTime asc"})
    assert ascending.status_code == 400


def test_the_same_seed_gives_the_same_chats() -> None:
    from hirondelle.sandbox.chats import chat_message_json
    from hirondelle.sandbox.chats_data import chat_json

    def dump(tenant: Tenant) -> list[Any]:
        chats = tenant.chats
        return [
            (chat_json(c, "t"), [chat_message_json(m, "t", True) for m in chats.roots(c.id)])
            for c in chats.chats
            if c.id not in chats._lazy
        ]

    small = TenantSpec(seed=3, users=3, messages=1, large_messages=0, files_per_drive=1)
    assert dump(Tenant.generate(small)) == dump(Tenant.generate(small))
    other = TenantSpec(seed=4, users=3, messages=1, large_messages=0, files_per_drive=1)
    assert dump(Tenant.generate(small)) != dump(Tenant.generate(other))
