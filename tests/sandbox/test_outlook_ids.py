"""Message ids: immutable only for a request that asks, default ids die with a move.

Source: https://learn.microsoft.com/en-us/graph/outlook-immutable-id ("This header only
applies to the request it is included with"; default ids change when an item moves to
another folder). The client's side is proven by tests/e2e/test_mail_run_sync.py, whose
sync carries moves as moves (not as a deletion and a new copy) against this sandbox.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sandbox_helpers import IMMUTABLE, access_token, make_tenant, trust

from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import Mutation


@pytest.fixture()
def mutable() -> Iterator[SandboxServer]:
    with SandboxServer(make_tenant(), tls=True, limits=Limits(enabled=False)) as server:
        yield server


def bare_client(server: SandboxServer) -> httpx.Client:
    """A client that sends no Prefer header of its own."""
    headers = {"Authorization": f"Bearer {access_token(server)}"}
    return httpx.Client(
        base_url=server.graph_url + "/", headers=headers, verify=trust(server), timeout=10
    )


def test_ids_are_immutable_only_when_the_request_asks(mutable: SandboxServer) -> None:
    user = mutable.tenant.users[0]
    immutable = {m.id for m in mutable.tenant.messages(user.id, "inbox")}
    url = f"users/{user.id}/mailFolders/inbox/messages?$top=100&$select=id"
    with bare_client(mutable) as client:
        asked = client.get(url, headers={"Prefer": IMMUTABLE})
        plain = client.get(url)
    assert {m["id"] for m in asked.json()["value"]} == immutable
    assert asked.headers["Preference-Applied"] == IMMUTABLE
    default = {m["id"] for m in plain.json()["value"]}
    assert len(default) == len(immutable) and not default & immutable
    assert "Preference-Applied" not in plain.headers


def default_ids(client: httpx.Client, user_id: str, folder_id: str) -> dict[str, str]:
    """Immutable id -> default id of every message in a folder (one listing each way)."""
    url = f"users/{user_id}/mailFolders/{folder_id}/messages?$top=1000&$select=id"
    asked = client.get(url, headers={"Prefer": IMMUTABLE}).json()["value"]
    plain = client.get(url).json()["value"]
    return {a["id"]: p["id"] for a, p in zip(asked, plain, strict=True)}


def test_a_move_changes_the_default_id_and_keeps_the_immutable_one(
    mutable: SandboxServer,
) -> None:
    user = mutable.tenant.users[0]
    with bare_client(mutable) as client:
        before: dict[str, str] = {}
        for folder in mutable.tenant.folders(user.id):
            before |= default_ids(client, user.id, folder.id)
        moved = mutable.mutate(Mutation(seed=2, moves=3, user=user.id)).moved
        assert len(moved) == 3
        for immutable_id in moved:
            old = before[immutable_id]
            gone = client.get(f"users/{user.id}/messages/{old}")
            assert gone.status_code == 404
            assert gone.json()["error"]["code"] == "ErrorItemNotFound"
            found = client.get(f"users/{user.id}/messages/{immutable_id}")
            assert found.status_code == 200
            assert found.json()["id"] not in (old, immutable_id)  # a new default id
            kept = client.get(
                f"users/{user.id}/messages/{immutable_id}", headers={"Prefer": IMMUTABLE}
            )
            assert kept.json()["id"] == immutable_id


def test_delta_without_the_header_removes_a_moved_message_by_its_old_default_id(
    mutable: SandboxServer,
) -> None:
    # Delta reports a message moved out of the folder as removed
    # (https://learn.microsoft.com/en-us/graph/delta-query-messages); without the header
    # the id it names is the default id the client saw in that folder.
    user = mutable.tenant.users[0]
    inbox = mutable.tenant.folder(user.id, "inbox")
    with bare_client(mutable) as client:
        known = default_ids(client, user.id, inbox.id)
        url = f"users/{user.id}/mailFolders/inbox/messages/delta"
        body = client.get(url, headers={"Prefer": "odata.maxpagesize=1000"}).json()
        assert {e["id"] for e in body["value"]} == set(known.values())
        result = mutable.mutate(Mutation(seed=4, moves=6, user=user.id))
        moved = [m for m in result.moved if m in known]
        assert moved, "the mutation moved nothing out of the inbox"
        later = client.get(body["@odata.deltaLink"]).json()["value"]
    removed = {e["id"] for e in later if "@removed" in e}
    assert {known[m] for m in moved} <= removed
