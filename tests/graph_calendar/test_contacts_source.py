"""The contacts source's reading of Graph: folders, delta paging, expiry and photos."""

from __future__ import annotations

import base64

import httpx
import pytest

from hirondelle.connectors.graph.contacts import GraphContactsSource
from hirondelle.migrator.errors import CursorExpired, SkipItem
from hirondelle.migrator.model import Container, Item, Owner, Page
from hirondelle.tests.fake_time import FakeTime
from hirondelle.tests.graph.conftest import make_budget, make_client, run

from .conftest import USER, ScriptedGraph, json_of, link, query

ALICE = Owner("alice@contoso.test", "u1")
DEFAULT = Container("contacts", ALICE.upn, "f-default", ("Contacts",), "default", ("default",))
SUPPLIERS = Container("contacts", ALICE.upn, "f-sup", ("Fournisseurs",), None, (None,))
FOLDER_DELTA = f"{USER}/contactFolders/f-sup/contacts/delta()"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(40))


def source(fake_time: FakeTime) -> GraphContactsSource:
    return GraphContactsSource(make_client(make_budget(fake_time)))


async def all_pages(
    contacts: GraphContactsSource, folder: Container, cursor: str | None
) -> list[Page]:
    try:
        return [page async for page in contacts.changes(folder, cursor)]
    finally:
        await contacts.aclose()


def test_folder_tree_with_the_default_folder_first(
    graph: ScriptedGraph, fake_time: FakeTime
) -> None:
    graph.answers[f"{USER}/contacts"] = {
        "value": [{"id": "k1", "parentFolderId": "f-default"}],
        "@odata.count": 7,
    }
    graph.answers[f"{USER}/contactFolders"] = {
        "value": [
            {"id": "f-default", "displayName": "Contacts", "parentFolderId": "root"},
            {"id": "f-sup", "displayName": "Fournisseurs", "parentFolderId": "f-default"},
        ]
    }
    graph.answers[f"{USER}/contactFolders/f-sup/childFolders"] = {
        "value": [{"id": "f-eu", "displayName": "Europe", "parentFolderId": "f-sup"}]
    }
    graph.answers[f"{USER}/contactFolders/f-eu/childFolders"] = {"value": []}
    graph.answers[f"{USER}/contactFolders/f-sup/contacts"] = {"value": [], "@odata.count": 3}
    graph.answers[f"{USER}/contactFolders/f-eu/contacts"] = {"value": [], "@odata.count": 1}
    containers = run(source(fake_time).containers(ALICE))
    assert [(c.source_id, c.path, c.role, c.total_items) for c in containers] == [
        ("f-default", ("Contacts",), "default", 7),
        ("f-sup", ("Fournisseurs",), None, 3),
        ("f-eu", ("Fournisseurs", "Europe"), None, 1),
    ]
    assert query(graph.asked(f"{USER}/contacts")[0])["$count"] == "true"


def test_a_server_without_child_folders_stops_the_walk(
    graph: ScriptedGraph, fake_time: FakeTime
) -> None:
    graph.answers[f"{USER}/contacts"] = {"value": []}
    graph.answers[f"{USER}/contactFolders"] = {
        "value": [{"id": "f-sup", "displayName": "Fournisseurs", "parentFolderId": "f-default"}]
    }
    graph.answers[f"{USER}/contactFolders/f-sup/childFolders"] = httpx.Response(
        400, json={"error": {"code": "BadRequest", "message": "Resource not found for the segment"}}
    )
    graph.answers[f"{USER}/contactFolders/f-sup/contacts"] = {"value": [], "@odata.count": 0}
    containers = run(source(fake_time).containers(ALICE))
    assert [(c.source_id, c.role) for c in containers] == [
        ("f-default", "default"),
        ("f-sup", None),
    ]


def test_delta_pages_removals_and_links(graph: ScriptedGraph, fake_time: FakeTime) -> None:
    next_link = link(FOLDER_DELTA, **{"$skiptoken": "p2"})
    delta_link = link(FOLDER_DELTA, **{"$deltatoken": "d1"})
    graph.answers[FOLDER_DELTA] = [
        {
            "value": [{"id": "k1", "changeKey": "ck1"}, {"id": "k2", "changeKey": "ck2"}],
            "@odata.nextLink": next_link,
        },
        {
            "value": [{"id": "k3", "@removed": {"reason": "deleted"}}],
            "@odata.deltaLink": delta_link,
        },
    ]
    pages = run(all_pages(source(fake_time), SUPPLIERS, None))
    assert [[i.source_id for i in p.items] for p in pages] == [["k1", "k2"], []]
    assert pages[0].items[0] == Item("k1", "ck1", {})
    assert [(p.removed, p.next_link, p.delta_link) for p in pages] == [
        ((), next_link, None),
        (("k3",), None, delta_link),
    ]
    first = graph.asked(FOLDER_DELTA)[0]
    assert query(first)["$select"] == "id,changeKey"
    assert "odata.maxpagesize=1000" in first.headers["Prefer"]


def test_default_folder_reads_the_mailbox_contacts_delta(
    graph: ScriptedGraph, fake_time: FakeTime
) -> None:
    graph.answers[f"{USER}/contacts/delta()"] = {
        "value": [{"id": "k9", "changeKey": "ck9"}],
        "@odata.deltaLink": link(f"{USER}/contacts/delta()", **{"$deltatoken": "d"}),
    }
    pages = run(all_pages(source(fake_time), DEFAULT, None))
    assert [i.source_id for p in pages for i in p.items] == ["k9"]


@pytest.mark.parametrize("status, code", [(410, ""), (400, "SyncStateNotFound")])
def test_expired_delta_link_raises_cursor_expired(
    graph: ScriptedGraph, fake_time: FakeTime, status: int, code: str
) -> None:
    graph.answers[FOLDER_DELTA] = httpx.Response(status, json={"error": {"code": code}})
    with pytest.raises(CursorExpired):
        run(all_pages(source(fake_time), SUPPLIERS, link(FOLDER_DELTA, **{"$deltatoken": "old"})))


def test_fetch_contact_with_photo_and_without(graph: ScriptedGraph, fake_time: FakeTime) -> None:
    contact = {
        "id": "k1",
        "displayName": "Zoé Lefèvre",
        "emailAddresses": [{"name": "Zoé", "address": "zoe@fournisseur.test"}],
    }
    graph.answers[f"{USER}/contactFolders/f-sup/contacts/k1"] = contact
    graph.answers[f"{USER}/contactFolders/f-sup/contacts/k1/photo/$value"] = httpx.Response(
        200, content=PNG, headers={"Content-Type": "image/png"}
    )
    graph.answers[f"{USER}/contacts/k2"] = {"id": "k2", "displayName": "Sans photo"}
    contacts = source(fake_time)

    with_photo = json_of(run(contacts.fetch(SUPPLIERS, Item("k1", "ck1"))))
    assert with_photo["contact"] == contact
    assert base64.b64decode(with_photo["photo"]) == PNG and with_photo["photoType"] == "image/png"

    without = json_of(run(contacts.fetch(DEFAULT, Item("k2", "ck2"))))  # photo: 404
    assert without == {
        "contact": {"id": "k2", "displayName": "Sans photo"},
        "photo": None,
        "photoType": None,
    }
    assert graph.asked(f"{USER}/contacts/k2/photo/$value")

    with pytest.raises(SkipItem):
        run(contacts.fetch(DEFAULT, Item("gone", "ck")))


def test_listing_follows_pages(graph: ScriptedGraph, fake_time: FakeTime) -> None:
    listing = f"{USER}/contactFolders/f-sup/contacts"
    graph.answers[listing] = [
        {"value": [{"id": "k1", "changeKey": "a"}], "@odata.nextLink": link(listing, skip="1")},
        {"value": [{"id": "k2", "changeKey": "b"}]},
    ]
    items = run(source(fake_time).listing(SUPPLIERS))
    assert items == [Item("k1", "a"), Item("k2", "b")]
