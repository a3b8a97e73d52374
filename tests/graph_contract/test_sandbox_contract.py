"""The sandbox serves what Microsoft documents, for every endpoint the client uses.

Each test makes the request the client makes (same path, `$select`, `$expand`, `Prefer`)
and holds the answer to the recorded documentation example in `recorded/` (each names
its Microsoft Learn page). The rules:

1. Documented and read: every field of the documented example that the client reads
   (`connectors/graph/reads.py`; with `$select`, of the selected properties) must be served,
   at the same nesting, with the same JSON type (object, array, string, number, boolean).
2. Documented and served: a field both carry has the same JSON type and nesting, whether
   the client reads it or not. null matches any type on either side: Graph sends null for
   a property without a value, and the documented examples show the same property null in
   one entity and valued in the next.
3. Served, not documented: allowed. The examples are truncated ("might be shortened for
   readability", their pages say), so the absence of a field proves nothing; the client
   side (`test_client_reads.py`) is what forbids *reading* an undocumented field.
4. Documented, not served, not read: allowed (only what the client reads must be there).
5. Paging: `@odata.nextLink` and `@odata.deltaLink` are absolute URLs on the service's
   host and root, on the path of the request (`name('key')` equals `name/key`), carrying
   a token of the documented kind; only links the page documents, never both at once; a
   delta round ends on a page with `@odata.deltaLink`.
6. Delta removals take the documented form: `@removed` with a string `reason` for
   Outlook resources, the `deleted` facet for drive items.
7. Errors: the documented status, and the envelope `{"error": {"code", "message",
   "innerError": {...}}}` with a message (json-batching shows an empty code once); 429
   carries Retry-After in seconds.

Array elements are compared with the closest documented element (same kind of delta
entry, most keys in common), so a folder is held to the documented folder and a removal
to the documented removal.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest

from hirondelle.connectors.graph.calendar import LISTING_SELECT, MASTER_SELECT
from hirondelle.connectors.graph.contacts import DELTA_SELECT as CONTACT_SELECT
from hirondelle.connectors.graph.mail import (
    DELTA_SELECT,
    FOLDER_PROPERTIES,
    FOLDER_SELECT,
    MESSAGE_PROPERTIES,
)
from hirondelle.connectors.graph.reads import READS, SOMETIMES
from hirondelle.connectors.graph.rules import SETTINGS_SELECT
from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import Mutation, Tenant
from hirondelle.tests.graph_contract.conftest import SPEC
from hirondelle.tests.graph_contract.contract import (
    body_problems,
    entities,
    error_problems,
    load,
    removed_problems,
    required_fields,
)
from hirondelle.tests.sandbox.sandbox_helpers import raw_client

IMMUTABLE = {"Prefer": 'IdType="ImmutableId"'}
WINDOW = {"startDateTime": "2015-01-01T00:00:00Z", "endDateTime": "2035-01-01T00:00:00Z"}
EXTENDED = ["singleValueExtendedProperties"]
TEAMS_PREFER = {"Prefer": "include-unknown-enum-members"}


def page_size(size: int) -> dict[str, str]:
    return {"Prefer": f'IdType="ImmutableId", odata.maxpagesize={size}'}


def fetch(
    graph: httpx.Client, path: str, params: dict[str, Any] | None = None, **headers: str
) -> dict[str, Any]:
    response = graph.get(path, params=params, headers=headers or IMMUTABLE)
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:300]}"
    body: dict[str, Any] = response.json()
    return body


def conforms(
    graph: httpx.Client,
    name: str,
    body: Any,
    select: Sequence[str] = (),
    template: str | None = None,
    expand: Sequence[str] = (),
) -> None:
    """Assert the rules of the module docstring for one served answer."""
    recorded = load(name)
    sometimes = SOMETIMES.get(recorded.resource or "", frozenset())
    required = required_fields(recorded, READS, select, expand) - sometimes
    problems = body_problems(body, recorded, required, str(graph.base_url), template)
    assert entities(body), f"{name}: nothing served to compare"
    assert not problems, f"{name} ({recorded.source}):\n" + "\n".join(problems)


def pages(graph: httpx.Client, first: dict[str, Any], **headers: str) -> Iterator[dict[str, Any]]:
    """`first` and every page its nextLinks lead to."""
    page: dict[str, Any] | None = first
    while page is not None:
        yield page
        link = page.get("@odata.nextLink")
        page = fetch(graph, link, None, **headers) if link else None


# -- ids of the tenant, found through Graph as the client finds them ------------------------


@pytest.fixture(scope="module")
def upn(graph: httpx.Client) -> str:
    return str(
        fetch(graph, "users", {"$select": "userPrincipalName"})["value"][0]["userPrincipalName"]
    )


@pytest.fixture(scope="module")
def inbox(graph: httpx.Client, upn: str) -> str:
    return str(fetch(graph, f"users/{upn}/mailFolders/inbox", {"$select": "id"})["id"])


@pytest.fixture(scope="module")
def calendar(graph: httpx.Client, upn: str) -> str:
    calendars = fetch(graph, f"users/{upn}/calendars")["value"]
    return str(next(c["id"] for c in calendars if c["isDefaultCalendar"]))


@pytest.fixture(scope="module")
def events(graph: httpx.Client, upn: str, calendar: str) -> list[dict[str, Any]]:
    first = fetch(graph, f"users/{upn}/calendars/{calendar}/events", {"$top": 1000})
    return list(first["value"])


@pytest.fixture(scope="module")
def drive(graph: httpx.Client, upn: str) -> str:
    return str(fetch(graph, f"users/{upn}/drive")["id"])


@pytest.fixture(scope="module")
def drive_items(graph: httpx.Client, drive: str) -> list[dict[str, Any]]:
    first = fetch(graph, f"drives/{drive}/root/delta", {"$top": 999})
    return [entry for page in pages(graph, first) for entry in page["value"]]


@pytest.fixture(scope="module")
def channel(graph: httpx.Client) -> tuple[str, str]:
    team = fetch(graph, "teams")["value"][0]["id"]
    channels = fetch(graph, f"teams/{team}/channels")["value"]
    return str(team), str(channels[0]["id"])


# -- directory ---------------------------------------------------------------------------------


def test_users_list(graph: httpx.Client) -> None:
    select = ["id", "userPrincipalName", "displayName", "mail"]  # as `directory_entries` asks
    first = fetch(graph, "users", {"$select": ",".join(select), "$top": 1})
    assert "@odata.nextLink" in first
    for page in pages(graph, first):
        conforms(graph, "users_list", page, select)


# -- mail ------------------------------------------------------------------------------------


def test_mail_folders_and_child_folders(graph: httpx.Client, upn: str) -> None:
    params = {
        "$select": ",".join(FOLDER_SELECT),
        "$expand": FOLDER_PROPERTIES,
        "$top": 2,
        "includeHiddenFolders": "true",
    }
    first = fetch(graph, f"users/{upn}/mailFolders", params)
    assert "@odata.nextLink" in first
    folders = []
    for page in pages(graph, first):
        conforms(graph, "mail_folders_list", page, FOLDER_SELECT, "/users/{}/mailFolders", EXTENDED)
        folders += page["value"]
    parent = next(f for f in folders if f["childFolderCount"])
    children = fetch(graph, f"users/{upn}/mailFolders/{parent['id']}/childFolders", params)
    template = "/users/{}/mailFolders/{}/childFolders"
    conforms(graph, "mail_folders_list", children, FOLDER_SELECT, template, EXTENDED)


@pytest.mark.xfail(
    strict=True,
    reason="the sandbox serves no mailFolders/delta (the client walks the folder tree "
    "instead); serving it is a new route, not a serialisation fix",
)
def test_mail_folders_delta(graph: httpx.Client, upn: str) -> None:
    conforms(graph, "mail_folders_delta", fetch(graph, f"users/{upn}/mailFolders/delta"))


def test_messages_listing_with_extended_properties(
    graph: httpx.Client, upn: str, inbox: str
) -> None:
    select = ["id", "changeKey", "internetMessageId"]
    params = {"$select": ",".join(select), "$expand": MESSAGE_PROPERTIES, "$top": 4}
    first = fetch(graph, f"users/{upn}/mailFolders/{inbox}/messages", params)
    assert "@odata.nextLink" in first
    for page in pages(graph, first):
        conforms(graph, "messages_list", page, select, expand=EXTENDED)


def test_message_get(graph: httpx.Client, upn: str, inbox: str) -> None:
    message = fetch(graph, f"users/{upn}/mailFolders/{inbox}/messages", {"$top": 1})["value"][0]
    conforms(graph, "message_get", fetch(graph, f"users/{upn}/messages/{message['id']}"))
    params = {"$select": "id", "$expand": MESSAGE_PROPERTIES}  # the $batch part of the client
    expanded = fetch(graph, f"users/{upn}/messages/{message['id']}", params)
    conforms(graph, "message_get", expanded, ["id"], expand=EXTENDED)


def test_message_value_headers(graph: httpx.Client, upn: str, inbox: str) -> None:
    message = fetch(graph, f"users/{upn}/mailFolders/{inbox}/messages", {"$top": 1})["value"][0]
    response = graph.get(f"users/{upn}/messages/{message['id']}/$value", headers=IMMUTABLE)
    recorded = load("message_value")
    assert response.status_code == recorded.status
    assert response.headers["Content-Type"].split(";")[0] == recorded.headers["Content-Type"]
    assert int(response.headers["Content-Length"]) == len(response.content) > 0
    assert b"MIME-Version" in response.content[:4096]


def test_messages_delta_round(graph: httpx.Client, upn: str, inbox: str) -> None:
    first = fetch(
        graph,
        f"users/{upn}/mailFolders/{inbox}/messages/delta",
        {"$select": ",".join(DELTA_SELECT)},
        **page_size(4),
    )
    assert "@odata.nextLink" in first
    round_ = list(pages(graph, first, **page_size(4)))
    for page in round_:
        conforms(graph, "messages_delta", page, DELTA_SELECT)
    assert "@odata.deltaLink" in round_[-1]


# -- inbox rules and automatic replies -------------------------------------------------------


def test_message_rules_list(graph: httpx.Client, upn: str) -> None:
    served = fetch(graph, f"users/{upn}/mailFolders/inbox/messageRules")
    conforms(graph, "message_rules_list", served)
    assert any("moveToFolder" in rule["actions"] for rule in served["value"])


def test_mailbox_settings_get(graph: httpx.Client, upn: str) -> None:
    params = {"$select": ",".join(SETTINGS_SELECT)}
    served = fetch(graph, f"users/{upn}/mailboxSettings", params)
    conforms(graph, "mailbox_settings_get", served, SETTINGS_SELECT)


# -- calendars -------------------------------------------------------------------------------


def test_calendars_list(graph: httpx.Client, upn: str) -> None:
    select = ["id", "name", "isDefaultCalendar"]
    first = fetch(graph, f"users/{upn}/calendars", {"$select": ",".join(select), "$top": 1})
    assert "@odata.nextLink" in first
    for page in pages(graph, first):
        conforms(graph, "calendars_list", page, select)


def test_events_listing(graph: httpx.Client, upn: str, calendar: str) -> None:
    for select in (LISTING_SELECT, MASTER_SELECT):
        params = {"$select": ",".join(select), "$top": 5}
        first = fetch(graph, f"users/{upn}/calendars/{calendar}/events", params)
        assert "@odata.nextLink" in first
        served = list(pages(graph, first))
        for page in served:
            conforms(graph, "events_list", page, select)
        assert any(e["type"] == "seriesMaster" for p in served for e in p["value"])


def test_event_get_and_instances(
    graph: httpx.Client, upn: str, events: list[dict[str, Any]]
) -> None:
    master = next(e for e in events if e["type"] == "seriesMaster" and e["recurrence"])
    single = next(e for e in events if e["type"] == "singleInstance")
    for event in (master, single):
        conforms(graph, "event_get", fetch(graph, f"users/{upn}/events/{event['id']}"))
    params = {**WINDOW, "$top": 1000}
    instances = fetch(graph, f"users/{upn}/events/{master['id']}/instances", params)
    conforms(graph, "event_instances", instances)
    occurrence = instances["value"][0]
    conforms(graph, "event_get", fetch(graph, f"users/{upn}/events/{occurrence['id']}"))


def test_calendar_view_of_another_calendar(graph: httpx.Client, upn: str) -> None:
    # The full view the client reads for every calendar but the primary one, which has
    # no delta in v1.0 (connectors/graph/calendar.py).
    from hirondelle.connectors.graph.calendar import VIEW_SELECT

    calendars = fetch(graph, f"users/{upn}/calendars")["value"]
    other = next((c["id"] for c in calendars if not c["isDefaultCalendar"]), calendars[0]["id"])
    params = {**WINDOW, "$top": 1000, "$select": ",".join(VIEW_SELECT)}
    view = fetch(graph, f"users/{upn}/calendars/{other}/calendarView", params)
    assert view["value"]
    conforms(graph, "calendar_view", view, VIEW_SELECT)


def test_calendar_view_delta_round(graph: httpx.Client, upn: str, calendar: str) -> None:
    path = f"users/{upn}/calendarView/delta"  # v1.0: the primary calendar only (event-delta)
    first = fetch(graph, path, WINDOW, **page_size(5))
    assert "@odata.nextLink" in first
    round_ = list(pages(graph, first, **page_size(5)))
    for page in round_:
        conforms(graph, "calendar_view_delta", page)
    assert "@odata.deltaLink" in round_[-1]


# -- contacts --------------------------------------------------------------------------------


def test_contact_folders_and_counts(graph: httpx.Client, upn: str) -> None:
    select = ["id", "displayName", "parentFolderId"]
    folders = fetch(graph, f"users/{upn}/contactFolders", {"$select": ",".join(select)})
    conforms(graph, "contact_folders_list", folders, select)
    default = fetch(
        graph,
        f"users/{upn}/contacts",
        {"$select": "id,parentFolderId", "$top": 1, "$count": "true"},
    )
    conforms(graph, "contacts_list", default, ["id", "parentFolderId"])
    assert isinstance(default["@odata.count"], int)
    folder = folders["value"][0]["id"]
    counted = fetch(
        graph,
        f"users/{upn}/contactFolders/{folder}/contacts",
        {"$select": "id", "$top": 1, "$count": "true"},
    )
    conforms(graph, "contacts_list", counted, ["id"], "/users/{}/contactFolders/{}/contacts")


@pytest.mark.xfail(
    strict=True,
    reason="the sandbox serves no contactFolders/delta (the client walks the folders "
    "instead); serving it is a new route, not a serialisation fix",
)
def test_contact_folders_delta(graph: httpx.Client, upn: str) -> None:
    conforms(graph, "contact_folders_delta", fetch(graph, f"users/{upn}/contactFolders/delta"))


@pytest.mark.parametrize("where", ["folder", "default"])
def test_contacts_delta_round(graph: httpx.Client, upn: str, where: str) -> None:
    if where == "folder":
        folder = fetch(graph, f"users/{upn}/contactFolders")["value"][0]["id"]
        path = f"users/{upn}/contactFolders/{folder}/contacts/delta"
        template = "/users/{}/contactFolders/{}/contacts/delta"
    else:
        path, template = f"users/{upn}/contacts/delta", "/users/{}/contacts/delta"
    params = {"$select": ",".join(CONTACT_SELECT)}
    first = fetch(graph, path, params, **page_size(2))
    assert "@odata.nextLink" in first
    round_ = list(pages(graph, first, **page_size(2)))
    for page in round_:
        conforms(graph, "contacts_delta", page, CONTACT_SELECT, template)
    assert "@odata.deltaLink" in round_[-1]


# -- drives ----------------------------------------------------------------------------------


def test_drives_and_sites(graph: httpx.Client, upn: str) -> None:
    conforms(graph, "drive_get", fetch(graph, f"users/{upn}/drive"))
    sites = fetch(graph, "sites/getAllSites")
    conforms(graph, "sites_all", sites)
    site = next(s for s in sites["value"] if not s.get("isPersonalSite"))
    conforms(graph, "site_drives", fetch(graph, f"sites/{site['id']}/drives"))


def test_drive_children(graph: httpx.Client, drive: str) -> None:
    first = fetch(graph, f"drives/{drive}/items/root/children", {"$top": 2})
    assert "@odata.nextLink" in first
    for page in pages(graph, first):
        conforms(graph, "drive_children", page, template="/drives/{}/items/{}/children")


def test_drive_item_get_with_hashes(
    graph: httpx.Client, drive: str, drive_items: list[dict[str, Any]]
) -> None:
    file = next(e for e in drive_items if "file" in e and e.get("size"))
    item = fetch(graph, f"drives/{drive}/items/{file['id']}")
    conforms(graph, "drive_item_get", item)
    assert item["file"]["hashes"]["quickXorHash"]
    conforms(graph, "drive_root_get", fetch(graph, f"drives/{drive}/root"))
    select = ["id", "name", "parentReference", "root", "package"]  # the client's parent lookup
    parent = item["parentReference"]["id"]
    params = {"$select": ",".join(select)}
    found = fetch(graph, f"drives/{drive}/items/{parent}", params)
    conforms(graph, "drive_root_get" if "root" in found else "drive_item_get", found, select)


def test_drive_delta_round(graph: httpx.Client, drive: str) -> None:
    first = fetch(graph, f"drives/{drive}/root/delta", {"$top": 5})
    assert "@odata.nextLink" in first
    round_ = list(pages(graph, first))
    for page in round_:
        conforms(graph, "drive_delta", page, template="/drives/{}/root/delta")
    assert "@odata.deltaLink" in round_[-1]
    latest = fetch(graph, f"drives/{drive}/root/delta", {"token": "latest"})
    assert not latest["value"]
    assert not body_problems(latest, load("drive_delta"), (), str(graph.base_url))


def test_drive_content_redirect(
    graph: httpx.Client, drive: str, drive_items: list[dict[str, Any]]
) -> None:
    file = next(e for e in drive_items if "file" in e and e.get("size"))
    response = graph.get(f"drives/{drive}/items/{file['id']}/content", headers=IMMUTABLE)
    recorded = load("drive_content")
    assert response.status_code == recorded.status
    location = httpx.URL(response.headers["Location"])
    assert location.scheme in ("http", "https") and location.host


def test_drive_versions_and_permissions(
    graph: httpx.Client, drive: str, drive_items: list[dict[str, Any]]
) -> None:
    file = next(e for e in drive_items if "file" in e and e.get("size"))
    versions = fetch(graph, f"drives/{drive}/items/{file['id']}/versions")
    conforms(graph, "drive_versions", versions)
    shared = [e for e in drive_items if "shared" in e] or [file]
    for item in shared:
        conforms(
            graph,
            "drive_permissions",
            fetch(graph, f"drives/{drive}/items/{item['id']}/permissions"),
        )


# -- teams -----------------------------------------------------------------------------------


def test_teams_channels_and_members(graph: httpx.Client, channel: tuple[str, str]) -> None:
    team, _ = channel
    conforms(graph, "teams_list", fetch(graph, "teams"))
    teams_filter = "resourceProvisioningOptions/Any(x:x eq 'Team')"
    select = ["id", "displayName", "description"]
    groups = fetch(graph, "groups", {"$filter": teams_filter, "$select": ",".join(select)})
    conforms(graph, "groups_teams", groups, select)
    select = ["id", "displayName", "description", "membershipType"]
    channels = fetch(graph, f"teams/{team}/channels", {"$select": ",".join(select)})
    conforms(graph, "channels_list", channels, select)
    conforms(graph, "team_members", fetch(graph, f"teams/{team}/members"))


def test_channel_messages_with_replies(graph: httpx.Client, channel: tuple[str, str]) -> None:
    team, channel_id = channel
    path = f"teams/{team}/channels/{channel_id}/messages"
    first = fetch(graph, path, {"$top": 5, "$expand": "replies"}, **TEAMS_PREFER)
    assert "@odata.nextLink" in first
    served = list(pages(graph, first, **TEAMS_PREFER))
    for page in served:
        template = "/teams/{}/channels/{}/messages"
        conforms(graph, "channel_messages", page, template=template, expand=["replies"])
    root = next(m for p in served for m in p["value"] if m.get("replies"))
    replies = fetch(graph, f"{path}/{root['id']}/replies", {"$top": 1}, **TEAMS_PREFER)
    assert "@odata.nextLink" in replies
    template = "/teams/{}/channels/{}/messages/{}/replies"
    for page in pages(graph, replies, **TEAMS_PREFER):
        conforms(graph, "message_replies", page, template=template)


def test_channel_messages_delta_round(graph: httpx.Client, channel: tuple[str, str]) -> None:
    team, channel_id = channel
    path = f"teams/{team}/channels/{channel_id}/messages/delta"
    first = fetch(graph, path, {"$top": 5, "$expand": "replies"}, **TEAMS_PREFER)
    assert "@odata.nextLink" in first
    round_ = list(pages(graph, first, **TEAMS_PREFER))
    for page in round_:
        conforms(graph, "channel_messages_delta", page, expand=["replies"])
    assert "@odata.deltaLink" in round_[-1]


def test_user_chats_with_members(graph: httpx.Client, upn: str) -> None:
    first = fetch(graph, f"users/{upn}/chats", {"$expand": "members", "$top": 2})
    assert "@odata.nextLink" in first
    for page in pages(graph, first):
        conforms(graph, "chats_list", page, template="/users/{}/chats", expand=["members"])


def test_chat_messages(graph: httpx.Client, upn: str) -> None:
    chat = fetch(graph, f"users/{upn}/chats", {"$top": 1})["value"][0]["id"]
    first = fetch(graph, f"chats/{chat}/messages", {"$top": 5}, **TEAMS_PREFER)
    assert "@odata.nextLink" in first
    for page in pages(graph, first, **TEAMS_PREFER):
        conforms(graph, "chat_messages", page, template="/chats/{}/messages")


# -- $batch ----------------------------------------------------------------------------------


def test_batch_envelope(graph: httpx.Client, upn: str, inbox: str) -> None:
    message = fetch(graph, f"users/{upn}/mailFolders/{inbox}/messages", {"$top": 1})["value"][0]
    expand = f"$select=id&$expand={MESSAGE_PROPERTIES}"
    requests: list[dict[str, Any]] = [
        {"id": "1", "method": "GET", "url": f"/users/{upn}/messages/{message['id']}?{expand}"},
        {"id": "2", "method": "GET", "url": f"/users/{upn}/messages/AAMkNOTHERE?{expand}"},
        {"id": "3", "method": "GET", "url": f"/users/{upn}/mailFolders/inbox?$select=id"},
    ]
    for request in requests:
        request["headers"] = IMMUTABLE
    response = graph.post("$batch", json={"requests": requests})
    assert response.status_code == 200
    body = response.json()
    recorded = load("batch")
    conforms(graph, "batch", body)
    answers = {part["id"]: part for part in body["responses"]}
    assert set(answers) == {"1", "2", "3"}
    assert answers["2"]["status"] == 404
    assert not error_problems(answers["2"]["body"], recorded.body["responses"][1]["body"])
    conforms(graph, "message_get", answers["1"]["body"], ["id"], expand=EXTENDED)


# -- errors and removals -----------------------------------------------------------------------


def test_not_found_envelope(graph: httpx.Client, upn: str) -> None:
    response = graph.get(f"users/{upn}/messages/AAMkNOTHERE", headers=IMMUTABLE)
    recorded = load("error_404")
    assert response.status_code == recorded.status
    assert not error_problems(response.json(), recorded.body)


@pytest.fixture(scope="module")
def changed() -> Iterator[tuple[SandboxServer, httpx.Client, dict[str, list[dict[str, Any]]]]]:
    """A sandbox of its own: a delta round per workload, deletions, the next rounds."""
    with (
        SandboxServer(Tenant.generate(SPEC), tls=False, limits=Limits(enabled=False)) as sb,
        raw_client(sb) as client,
    ):
        upn = sb.tenant.users[0].upn
        inbox = fetch(client, f"users/{upn}/mailFolders/inbox", {"$select": "id"})["id"]
        drive = fetch(client, f"users/{upn}/drive")["id"]
        starts = {
            "messages_delta": (f"users/{upn}/mailFolders/{inbox}/messages/delta", {}),
            "calendar_view_delta": (f"users/{upn}/calendarView/delta", WINDOW),
            "contacts_delta": (f"users/{upn}/contacts/delta", {}),
            "drive_delta": (f"drives/{drive}/root/delta", {}),
        }
        links = {}
        for name, (path, params) in starts.items():
            *_, last = pages(client, fetch(client, path, params))
            links[name] = last["@odata.deltaLink"]
        sb.mutate(
            Mutation(
                seed=3,
                user=upn,
                deletions=SPEC.messages,
                event_deletions=3,
                event_cancellations=2,
                contact_deletions=4,
                file_deletions=2,
                drive=drive,
            )
        )
        rounds = {name: list(pages(client, fetch(client, link))) for name, link in links.items()}
        yield sb, client, rounds


@pytest.mark.parametrize(
    "name", ["messages_delta", "calendar_view_delta", "contacts_delta", "drive_delta"]
)
def test_delta_removals_take_the_documented_form(
    changed: tuple[SandboxServer, httpx.Client, dict[str, list[dict[str, Any]]]], name: str
) -> None:
    _, client, rounds = changed
    recorded = load(name)
    removals = 0
    for page in rounds[name]:
        assert not removed_problems(page, recorded.body), removed_problems(page, recorded.body)
        removals += sum(1 for e in page["value"] if "@removed" in e or "deleted" in e)
    assert removals, f"{name}: the deletions produced no removal to check"
    assert "@odata.deltaLink" in rounds[name][-1]


def test_expired_delta_token_envelope(
    changed: tuple[SandboxServer, httpx.Client, dict[str, list[dict[str, Any]]]],
) -> None:
    sb, client, rounds = changed
    sb.expire_delta_tokens()
    recorded = load("error_410")
    for name, served in rounds.items():
        response = client.get(served[-1]["@odata.deltaLink"], headers=IMMUTABLE)
        assert response.status_code == recorded.status, f"{name}: {response.status_code}"
        assert not error_problems(response.json(), recorded.body), name


def test_throttled_envelope_and_retry_after() -> None:
    limits = Limits(concurrency=4, requests_per_window=1, window_seconds=600)
    with (
        SandboxServer(Tenant.generate(SPEC), tls=False, limits=limits) as sb,
        raw_client(sb) as client,
    ):
        upn = sb.tenant.users[0].upn
        statuses = [client.get(f"users/{upn}/mailFolders", headers=IMMUTABLE) for _ in range(2)]
    recorded = load("error_429")
    throttled = statuses[-1]
    assert throttled.status_code == recorded.status
    assert float(throttled.headers["Retry-After"]) > 0  # seconds, as the page shows "2.128"
    assert not error_problems(throttled.json(), recorded.body)
