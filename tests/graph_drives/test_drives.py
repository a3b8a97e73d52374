"""The drive source's reading of Graph answers: owners, drives, delta paths, costs, sharing."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
import respx

from hirondelle.connectors.graph.drives import (
    ONENOTE_REASON,
    GraphDriveSource,
    SharingGrant,
    sharing_grants,
)
from hirondelle.migrator.errors import CursorExpired, SkipItem
from hirondelle.migrator.model import Container, Item, Owner, Page
from hirondelle.tests.fake_time import FakeTime
from hirondelle.tests.graph.conftest import run

from .conftest import GRAPH, drive_client, resource_units

DRIVE = f"{GRAPH}/drives/b!drive"
DELTA = f"{DRIVE}/root/delta?$top=999"
NEXT = f"{DRIVE}/root/delta?token=page2"
LATEST = f"{DRIVE}/root/delta?token=after-run"
ONEDRIVE = Container("files", "alice@contoso.test", "b!drive", ("OneDrive",), "personal")


def entry(item_id: str, name: str, parent: str | None, **facets: Any) -> dict[str, Any]:
    """A driveItem as delta returns it: no parentReference.path."""
    body: dict[str, Any] = {"id": item_id, "name": name, "eTag": f'"{{{item_id}}},1"', **facets}
    if parent:
        body["parentReference"] = {"driveId": "b!drive", "driveType": "business", "id": parent}
    return body


def file(item_id: str, name: str, parent: str, size: int = 10) -> dict[str, Any]:
    return entry(
        item_id,
        name,
        parent,
        size=size,
        cTag=f'"c:{{{item_id}}},1"',
        file={"mimeType": "application/pdf", "hashes": {"quickXorHash": "AAAA" + item_id}},
        fileSystemInfo={"lastModifiedDateTime": "2023-04-05T06:07:08Z"},
        lastModifiedDateTime="2024-01-01T00:00:00Z",
    )


FIRST_PAGE = [
    entry("R", "root", None, root={}, folder={"childCount": 4}),
    entry("F1", "Docs", "R", folder={"childCount": 2}),
    file("A", "Rapport.docx", "F2"),  # its parent only comes on the next page
]
SECOND_PAGE = [
    entry("F2", "2024", "F1", folder={"childCount": 1}),
    file("B", "notes.txt", "F1", size=0),
    entry("N", "Carnet", "R", package={"type": "oneNote"}),
    file("S", "Section.one", "N"),
    entry("X", "Shared plan.xlsx", "R", remoteItem={"id": "elsewhere"}),
    {"id": "D", "deleted": {"state": "deleted"}, "parentReference": {"id": "R"}},
]


def parent_answer(request: httpx.Request) -> httpx.Response:
    """GET of one item by id, outside delta (parentReference.path present, not relied on)."""
    item_id = request.url.path.rsplit("/", 1)[-1]
    known = {
        "F2": entry("F2", "2024", "F1"),
        "F1": entry("F1", "Docs", "R"),
        "R": entry("R", "root", None, root={}),
    }
    if item_id not in known:
        return httpx.Response(404, json={"error": {"code": "itemNotFound", "message": "gone"}})
    return httpx.Response(200, json=known[item_id])


def mock_items(mock: respx.MockRouter) -> respx.Route:
    return mock.get(url__regex=re.escape(f"{DRIVE}/items/") + r"[^/?]+\?").mock(
        side_effect=parent_answer
    )


def collect(
    fake_time: FakeTime, container: Container, cursor: str | None
) -> tuple[list[Page], int]:
    async def go() -> tuple[list[Page], int]:
        source = GraphDriveSource(drive_client(fake_time))
        try:
            pages = [page async for page in source.changes(container, cursor)]
            return pages, resource_units(source.client)
        finally:
            await source.aclose()

    return run(go())


def by_id(pages: list[Page]) -> dict[str, Item]:
    return {item.source_id: item for page in pages for item in page.items}


def test_full_delta_paths_kinds_and_costs(fake_time: FakeTime) -> None:
    with respx.mock() as mock:  # routes match in order: the link with a token first
        mock.get(NEXT).mock(
            return_value=httpx.Response(
                200, json={"value": SECOND_PAGE, "@odata.deltaLink": LATEST}
            )
        )
        mock.get(DELTA).mock(
            return_value=httpx.Response(200, json={"value": FIRST_PAGE, "@odata.nextLink": NEXT})
        )
        parents = mock_items(mock)
        pages, units = collect(fake_time, ONEDRIVE, None)
    items = by_id(pages)
    assert {key: item.meta["path"] for key, item in items.items()} == {
        "F1": "Docs",
        "A": "Docs/2024/Rapport.docx",
        "F2": "Docs/2024",
        "B": "Docs/notes.txt",
        "N": "Carnet",
        "S": "Carnet/Section.one",
        "X": "Shared plan.xlsx",
    }
    assert [items[k].meta["kind"] for k in ("F1", "A", "N", "S", "X")] == [
        "folder",
        "file",
        "package",
        "package",  # a notebook's section goes with its notebook
        "remote",
    ]
    assert items["S"].meta["packageType"] == "oneNote"
    assert dict(items["A"].meta) == {
        "kind": "file",
        "name": "Rapport.docx",
        "path": "Docs/2024/Rapport.docx",
        "parentId": "F2",
        "size": 10,
        "mtime": "2023-04-05T06:07:08Z",
        "cTag": '"c:{A},1"',
        "quickXorHash": "AAAAA",
        "mimeType": "application/pdf",
        "packageType": None,
        "webUrl": None,
        "driveType": "business",
        "shared": None,  # no shared facet: not shared
    }
    assert items["A"].version == '"{A},1"'
    assert pages[1].removed == ("D",)
    assert (pages[0].next_link, pages[0].delta_link) == (NEXT, None)
    assert (pages[1].next_link, pages[1].delta_link) == (None, LATEST)
    assert parents.call_count == 1  # F2 once; F1 and the root were known from the page
    # 2 RU for the delta without token, 1 RU for the page with one, 1 RU for the parent
    assert units == 4


def test_incremental_delta_after_a_folder_rename_and_a_move(fake_time: FakeTime) -> None:
    """A folder renamed in the same round as a change below it; an orphan went with its parent."""
    changes = [
        file("C", "moved.pdf", "F2"),  # moved into Docs/2024, which delta does not report
        file("O", "orphan.txt", "GONE"),
        entry("F1", "Documents", "R", folder={"childCount": 2}),  # renamed, after its child
        entry("B", "renamed.txt", "F1", file={}),
    ]
    with respx.mock() as mock:
        mock.get(LATEST).mock(
            return_value=httpx.Response(
                200, json={"value": changes, "@odata.deltaLink": f"{DRIVE}/root/delta?token=3"}
            )
        )
        mock_items(mock)
        pages, units = collect(fake_time, ONEDRIVE, LATEST)
    items = by_id(pages)
    assert {key: item.meta["path"] for key, item in items.items()} == {
        "C": "Documents/2024/moved.pdf",
        "F1": "Documents",
        "B": "Documents/renamed.txt",
    }
    assert pages[0].removed == ("O",)
    assert pages[0].delta_link == f"{DRIVE}/root/delta?token=3"
    assert units == 1 + 3  # the delta with a token, then F2, GONE and the root by id


def test_same_item_twice_in_a_page_keeps_the_last(fake_time: FakeTime) -> None:
    twice = [
        entry("R", "root", None, root={}),
        file("A", "old.txt", "R"),
        file("A", "new.txt", "R"),
    ]
    with respx.mock() as mock:
        mock.get(DELTA).mock(
            return_value=httpx.Response(200, json={"value": twice, "@odata.deltaLink": LATEST})
        )
        pages, _ = collect(fake_time, ONEDRIVE, None)
    assert [item.meta["path"] for item in pages[0].items] == ["new.txt"]


@pytest.mark.parametrize("code", ["resyncRequired", "resyncChangesApplyDifferences"])
def test_expired_token_is_cursor_expired(fake_time: FakeTime, code: str) -> None:
    gone = httpx.Response(
        410,
        headers={"Location": f"{DRIVE}/root/delta?token=fresh"},
        json={"error": {"code": code, "message": "Resync required."}},
    )
    with respx.mock() as mock:
        mock.get(LATEST).mock(return_value=gone)
        with pytest.raises(CursorExpired):
            collect(fake_time, ONEDRIVE, LATEST)


@pytest.mark.parametrize(
    "headers, pause",
    [
        ({"Retry-After": "9", "RateLimit-Limit": "1250", "RateLimit-Remaining": "0"}, 9.0),
        ({"RateLimit-Limit": "1250", "RateLimit-Remaining": "0", "RateLimit-Reset": "23"}, 23.0),
    ],
)
def test_throttled_delta_pauses_the_sharepoint_lane(
    fake_time: FakeTime, headers: dict[str, str], pause: float
) -> None:
    throttled = httpx.Response(
        429, headers=headers, json={"error": {"code": "activityLimitReached", "message": "slow"}}
    )
    done = httpx.Response(200, json={"value": FIRST_PAGE[:2], "@odata.deltaLink": LATEST})
    with respx.mock() as mock:
        route = mock.get(DELTA).mock(side_effect=[throttled, done])
        pages, _ = collect(fake_time, ONEDRIVE, None)
    assert route.call_count == 2
    assert pause in fake_time.sleeps
    assert [item.meta["path"] for item in pages[0].items] == ["Docs"]


def test_owners_are_users_and_sites_without_personal_sites(fake_time: FakeTime) -> None:
    users = {"value": [{"id": "u1", "userPrincipalName": "alice@contoso.test", "displayName": "A"}]}
    sites = {
        "value": [
            {"id": "h,s1,w1", "name": "Finances", "displayName": "Finances", "webUrl": "x"},
            {
                "id": "h,s2,w2",
                "name": "alice_contoso_test",
                "webUrl": "https://contoso-my.sharepoint.com/personal/alice_contoso_test",
            },
        ]
    }

    async def go() -> list[Owner]:
        source = GraphDriveSource(drive_client(fake_time))
        try:
            return await source.owners()
        finally:
            await source.aclose()

    with respx.mock() as mock:
        mock.get(url__regex=re.escape(f"{GRAPH}/users") + r"(\?|$)").mock(
            return_value=httpx.Response(200, json=users)
        )
        mock.get(f"{GRAPH}/sites/getAllSites").mock(
            return_value=httpx.Response(404, json={"error": {"code": "itemNotFound"}})
        )
        search = mock.get(f"{GRAPH}/sites?search=*").mock(
            return_value=httpx.Response(200, json=sites)
        )
        owners = run(go())
    assert search.called
    assert owners == [
        Owner("alice@contoso.test", "u1", "A"),
        Owner("site:Finances", "h,s1,w1", "Finances"),
    ]


def test_containers_of_a_user_and_of_a_site(fake_time: FakeTime) -> None:
    drive = {"id": "b!one", "name": "OneDrive", "driveType": "business", "quota": {"used": 4096}}
    libraries = {
        "value": [
            {"id": "b!docs", "name": "Documents", "driveType": "documentLibrary"},
            {"id": "b!arch", "name": "Archives", "driveType": "documentLibrary"},
        ]
    }

    async def go() -> tuple[list[Container], list[Container], Exception | None]:
        source = GraphDriveSource(drive_client(fake_time))
        try:
            mine = await source.containers(Owner("alice@contoso.test", "u1"))
            site = await source.containers(Owner("site:Finances", "h,s1,w1", "Finances"))
            try:
                await source.containers(Owner("bob@contoso.test", "u2"))
            except SkipItem as exc:
                return mine, site, exc
            return mine, site, None
        finally:
            await source.aclose()

    with respx.mock() as mock:
        mock.get(f"{GRAPH}/users/alice%40contoso.test/drive").mock(
            return_value=httpx.Response(200, json=drive)
        )
        mock.get(f"{GRAPH}/users/bob%40contoso.test/drive").mock(
            return_value=httpx.Response(404, json={"error": {"code": "ResourceNotFound"}})
        )
        mock.get(f"{GRAPH}/sites/h,s1,w1/drives").mock(
            return_value=httpx.Response(200, json=libraries)
        )
        mine, site, refused = run(go())
    assert mine == [
        Container(
            "files", "alice@contoso.test", "b!one", ("OneDrive",), "personal", size_bytes=4096
        )
    ]
    assert [(c.source_id, c.path, c.role, c.owner) for c in site] == [
        ("b!docs", ("Finances", "Documents"), "documentLibrary", "site:Finances"),
        ("b!arch", ("Finances", "Archives"), "documentLibrary", "site:Finances"),
    ]
    assert refused is not None and "no OneDrive" in str(refused)


def test_fetch_skips_what_is_not_carried_without_a_request(fake_time: FakeTime) -> None:
    async def go(kind: str) -> Any:
        source = GraphDriveSource(drive_client(fake_time))
        try:
            return await source.fetch(ONEDRIVE, Item("I", "e", {"kind": kind, "path": "p"}))
        finally:
            await source.aclose()

    with respx.mock(assert_all_called=False):  # no route: any request would fail
        assert run(go("folder")) == b""
        with pytest.raises(SkipItem, match="OneNote") as notebook:
            run(go("package"))
        with pytest.raises(SkipItem, match="remoteItem"):
            run(go("remote"))
    assert str(notebook.value) == ONENOTE_REASON


def test_permissions_become_one_record_per_principal(fake_time: FakeTime) -> None:
    answer = {
        "value": [
            {
                "id": "1",
                "roles": ["write"],
                "link": {"scope": "users", "type": "edit"},
                "grantedToIdentitiesV2": [
                    {"user": {"displayName": "Bob", "email": "bob@contoso.test"}},
                    {"user": {"displayName": "Carol", "email": "carol@fabrikam.test"}},
                ],
                "expirationDateTime": "2030-01-01T00:00:00Z",
            },
            {"id": "2", "roles": ["read"], "link": {"scope": "anonymous", "type": "view"}},
            {"id": "3", "roles": ["owner"], "grantedToV2": {"user": {"email": "a@contoso.test"}}},
            {
                "id": "4",
                "roles": ["read"],
                "grantedToV2": {"siteGroup": {"displayName": "Finances Visitors"}},
                "inheritedFrom": {"id": "R"},
            },
        ]
    }
    item = Item("A", "e", {"kind": "file", "path": "Docs/plan.xlsx"})

    async def go() -> tuple[list[SharingGrant], int]:
        source = GraphDriveSource(drive_client(fake_time))
        try:
            return await source.permissions(ONEDRIVE, item), resource_units(source.client)
        finally:
            await source.aclose()

    with respx.mock() as mock:
        mock.get(f"{DRIVE}/items/A/permissions").mock(return_value=httpx.Response(200, json=answer))
        grants, units = run(go())
    path, future = "Docs/plan.xlsx", "2030-01-01T00:00:00Z"
    assert grants == [
        SharingGrant(path, "link", "users", ("write",), "edit", future),
        SharingGrant(path, "user", "bob@contoso.test", ("write",), "edit", future),
        SharingGrant(path, "user", "carol@fabrikam.test", ("write",), "edit", future),
        SharingGrant(path, "link", "anonymous", ("read",), "view"),
        SharingGrant(path, "user", "a@contoso.test", ("owner",)),
        SharingGrant(path, "siteGroup", "Finances Visitors", ("read",), inherited=True),
    ]
    assert units == 5


def test_deprecated_granted_to_is_still_read() -> None:
    grant = {"roles": ["read"], "grantedTo": {"group": {"displayName": "Compta", "id": "g1"}}}
    assert sharing_grants("x", grant) == [SharingGrant("x", "group", "Compta", ("read",))]


def test_versions_are_listed_at_two_units(fake_time: FakeTime) -> None:
    answer = {
        "value": [
            {"id": "2.0", "lastModifiedDateTime": "2024-02-01T00:00:00Z", "size": 20,
             "lastModifiedBy": {"user": {"displayName": "Alice"}}},
            {"id": "1.0", "lastModifiedDateTime": "2024-01-01T00:00:00Z", "size": 10},
        ]
    }  # fmt: skip

    async def go() -> tuple[list[Any], int]:
        source = GraphDriveSource(drive_client(fake_time))
        try:
            versions = await source.versions(ONEDRIVE, Item("A", "e", {"path": "a"}))
            return versions, resource_units(source.client)
        finally:
            await source.aclose()

    with respx.mock() as mock:
        mock.get(f"{DRIVE}/items/A/versions").mock(return_value=httpx.Response(200, json=answer))
        versions, units = run(go())
    assert [(v.version_id, v.size, v.modified_by) for v in versions] == [
        ("2.0", 20, "Alice"),
        ("1.0", 10, ""),
    ]
    assert units == 2
