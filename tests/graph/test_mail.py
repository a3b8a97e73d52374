"""The mail source's reading of Graph answers: folder tree, delta entries, extended properties."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import respx

from hirondelle.connectors.graph.mail import GraphMailSource, _mime_path
from hirondelle.migrator.model import Container, Owner, Page
from hirondelle.tests.fake_time import FakeTime

from .conftest import make_budget, make_client, run

ALICE = Owner("alice@contoso.test", "u1")
USER_PATH = "/v1.0/users/alice%40contoso.test"
FOLDERS = [
    {"id": "f-inbox", "displayName": "Boîte de réception", "childFolderCount": 1,
     "totalItemCount": 2, "singleValueExtendedProperties": [{"id": "Long 0xe08", "value": "2048"}]},
    {"id": "f-hidden", "displayName": "Conversation Action Settings", "childFolderCount": 0,
     "isHidden": True},
]  # fmt: skip
CHILDREN = [{"id": "f-clients", "displayName": "Clients", "childFolderCount": 0}]


def batch_answer(request: httpx.Request) -> httpx.Response:
    """Answer a $batch: inbox is known, a removed message is 404, the rest carry properties."""
    responses = []
    for part in json.loads(request.content)["requests"]:
        key = part["id"]
        if key == "inbox":
            responses.append({"id": key, "status": 200, "body": {"id": "f-inbox"}})
        elif key.startswith("m-"):
            props = [
                {"id": "Integer 0x1081", "value": "103"},
                {"id": "Integer 0xe08", "value": "900"},
            ]
            responses.append(
                {
                    "id": key,
                    "status": 200,
                    "body": {"id": key, "singleValueExtendedProperties": props},
                }
            )
        else:
            responses.append(
                {"id": key, "status": 404, "body": {"error": {"code": "ErrorItemNotFound"}}}
            )
    return httpx.Response(200, json={"responses": responses})  # fmt: skip


def at(path: str) -> str:
    """A URL pattern for one Graph path whatever its query string."""
    return "^" + re.escape(f"https://graph.test{USER_PATH}{path}") + r"(\?|$)"


def mock_mailbox(mock: respx.MockRouter) -> None:
    mock.post("https://graph.test/v1.0/$batch").mock(side_effect=batch_answer)
    mock.get(url__regex=at("/mailFolders")).mock(
        return_value=httpx.Response(200, json={"value": FOLDERS})
    )
    mock.get(url__regex=at("/mailFolders/f-inbox/childFolders")).mock(
        return_value=httpx.Response(200, json={"value": CHILDREN})
    )


def test_folder_tree_roles_paths_and_hidden_folders(fake_time: FakeTime) -> None:
    async def survey() -> tuple[list[Container], list[str]]:
        source = GraphMailSource(make_client(make_budget(fake_time)))
        try:
            return await source.containers(ALICE), await source.hidden_folders(ALICE)
        finally:
            await source.aclose()

    with respx.mock() as mock:
        mock_mailbox(mock)
        containers, hidden = run(survey())
        asked = str(mock.calls[1].request.url)
    assert "includeHiddenFolders=true" in asked
    assert [c.path for c in containers] == [
        ("Boîte de réception",),
        ("Boîte de réception", "Clients"),
    ]
    inbox, clients = containers
    assert (inbox.role, inbox.total_items, inbox.size_bytes) == ("inbox", 2, 2048)
    assert (clients.role, clients.path_roles) == (None, ("inbox", None))
    assert hidden == ["Conversation Action Settings"]


def test_delta_pages_become_items_and_removals(fake_time: FakeTime) -> None:
    delta = f"https://graph.test{USER_PATH}/mailFolders/f-inbox/messages/delta"
    first = {
        "@odata.nextLink": f"{delta}?$skiptoken=page2",
        "value": [
            {"id": "m-1", "changeKey": "ck1", "internetMessageId": "<1@x>", "isRead": True,
             "isDraft": False, "receivedDateTime": "2021-03-01T10:00:00Z",
             "flag": {"flagStatus": "flagged"}, "categories": ["Projet X"], "body": "ignored"},
        ],
    }  # fmt: skip
    second = {
        "@odata.deltaLink": f"{delta}?$deltatoken=done",
        "value": [{"id": "m-2", "@removed": {"reason": "deleted"}}],
    }
    inbox = Container("mail", ALICE.upn, "f-inbox", ("Inbox",), "inbox")

    async def pages() -> list[Page]:
        source = GraphMailSource(make_client(make_budget(fake_time)))
        try:
            return [page async for page in source.changes(inbox, None)]
        finally:
            await source.aclose()

    with respx.mock(assert_all_called=False) as mock:
        mock_mailbox(mock)
        route = mock.get(url__startswith=delta).mock(
            side_effect=[httpx.Response(200, json=first), httpx.Response(200, json=second)]
        )
        result = run(pages())
        prefer: Any = route.calls[0].request.headers["Prefer"]
        select = route.calls[0].request.url.params["$select"]
    assert "odata.maxpagesize=1000" in prefer
    # $top on delta bounds the whole round, not a page (see sandbox/mail.py): never sent.
    assert "$top" not in route.calls[0].request.url.params
    assert "body" not in select and "changeKey" in select
    assert [len(page.items) for page in result] == [1, 0]
    assert result[0].next_link and not result[0].delta_link
    assert result[1].removed == ("m-2",)
    assert (result[1].delta_link or "").endswith("deltatoken=done")
    item = result[0].items[0]
    assert (item.source_id, item.version) == ("m-1", "ck1")
    assert dict(item.meta) == {
        "internetMessageId": "<1@x>",
        "receivedDateTime": "2021-03-01T10:00:00Z",
        "isRead": True,
        "isDraft": False,
        "flagStatus": "flagged",
        "categories": ["Projet X"],
        "lastVerb": 103,
        "size": 900,
    }


ZOE = "zoé.o'neil@contoso.test"  # a UPN with what a path segment must encode
ODD_ID = "AAMk+a/b=="  # Graph ids hold `+`, `/` and `=`
PROPERTIES_QUERY = (
    "?$select=id&$expand=singleValueExtendedProperties%28$filter%3Did%20eq%20%27Integer%20"
    "0x1081%27%20or%20id%20eq%20%27Integer%200x0E08%27%29"
)


def test_every_mail_path_is_spelled_as_graph_was_always_sent_it(fake_time: FakeTime) -> None:
    source = GraphMailSource(make_client(make_budget(fake_time)))
    folder = Container("mail", ZOE, "f/1", ("Inbox",), "inbox")
    # The MIME keeps the UPN's `@`; every other path encodes it, as the SDK's builders did.
    assert _mime_path(ZOE, ODD_ID) == (
        "/users/zo%C3%A9.o%27neil@contoso.test/messages/AAMk%2Ba%2Fb%3D%3D/$value"
    )
    assert source._message_path(ZOE, ODD_ID) == (
        "/users/zo%C3%A9.o%27neil%40contoso.test/messages/AAMk%2Ba%2Fb%3D%3D" + PROPERTIES_QUERY
    )
    assert source._delta_url(folder) == (
        "https://graph.test/v1.0/users/zo%C3%A9.o%27neil%40contoso.test/mailFolders/f%2F1"
        "/messages/delta()?$select=id,changeKey,internetMessageId,receivedDateTime,isRead,"
        "isDraft,flag,categories,parentFolderId"
    )
    with respx.mock() as mock:
        mock.get(url__regex=".*").mock(return_value=httpx.Response(200, json={"value": []}))
        batch = mock.post("https://graph.test/v1.0/$batch").mock(side_effect=batch_answer)
        run(source._folders(ZOE, "f/1"))
        run(source.folder_roles(ZOE))
        run(source.listing(folder))
        run(source.aclose())
        folders = mock.calls[0].request.url.raw_path.decode()
        listing = mock.calls[2].request.url.raw_path.decode()
        parts = json.loads(batch.calls[0].request.content)["requests"]
    assert folders == (
        "/v1.0/users/zo%C3%A9.o%27neil%40contoso.test/mailFolders/f%2F1/childFolders"
        "?$select=id,displayName,parentFolderId,childFolderCount,totalItemCount,isHidden"
        "&includeHiddenFolders=true&$expand=singleValueExtendedProperties%28$filter%3Did%20eq"
        "%20%27Long%200x0E08%27%29&$top=250"
    )
    assert parts[0]["url"] == "/users/zo%C3%A9.o%27neil%40contoso.test/mailFolders/inbox?$select=id"
    assert listing == (
        "/v1.0/users/zo%C3%A9.o%27neil%40contoso.test/mailFolders/f%2F1/messages"
        "?$select=id,changeKey,internetMessageId&$expand=singleValueExtendedProperties%28$filter"
        "%3Did%20eq%20%27Integer%200x1081%27%20or%20id%20eq%20%27Integer%200x0E08%27%29&$top=1000"
    )
