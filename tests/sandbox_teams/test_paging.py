"""Paging of channel messages and of a thread of 1,200 replies, over raw HTTP."""

from __future__ import annotations

import httpx
import pytest
from teams_helpers import channel_path, every_page

from hirondelle.sandbox.server import SandboxServer


def big_thread(sb: SandboxServer) -> tuple[str, str]:
    """The Chantier channel's path and the id of its post with 1,200 replies."""
    data = sb.tenant.teams
    team = data.teams[0]
    channel = next(c for c in data.channels(team.id) if c.display_name == "Chantier")
    root = max(data.roots(channel.id), key=lambda r: len(data.replies(channel.id, r.id)))
    return channel_path(sb, 0, "Chantier"), root.id


def test_roots_page_newest_first_each_exactly_once(sb: SandboxServer, client: httpx.Client) -> None:
    path = channel_path(sb, 0, "General")
    roots, _ = every_page(client, f"{path}/messages", {"$top": 7})
    ids = [int(m["id"]) for m in roots]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids) == 30
    assert all(m["replyToId"] is None and "replies" not in m for m in roots)
    default = client.get(f"{path}/messages").json()
    assert len(default["value"]) == 20 and "@odata.nextLink" in default


@pytest.mark.parametrize("top", [0, 51])
def test_top_outside_one_to_fifty_is_refused(
    sb: SandboxServer, client: httpx.Client, top: int
) -> None:
    response = client.get(f"{channel_path(sb, 0, 'General')}/messages", params={"$top": top})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"


def test_expanded_replies_stop_at_1000_and_link_to_the_rest(
    sb: SandboxServer, client: httpx.Client
) -> None:
    path, root_id = big_thread(sb)
    roots, _ = every_page(client, f"{path}/messages", {"$top": 50, "$expand": "replies"})
    root = next(m for m in roots if m["id"] == root_id)
    assert len(root["replies"]) == root["replies@odata.count"] == 1000
    rest, _ = every_page(client, root["replies@odata.nextLink"])
    ids = [int(r["id"]) for r in root["replies"] + rest]
    assert len(ids) == len(set(ids)) == 1200
    assert ids == sorted(ids, reverse=True)  # newest first, the link continues with older ones
    small = [m for m in roots if m["id"] != root_id]
    assert all("replies@odata.nextLink" not in m for m in small)


def test_a_long_thread_pages_its_replies_fifty_at_a_time(
    sb: SandboxServer, client: httpx.Client
) -> None:
    path, root_id = big_thread(sb)
    pages = 0
    url: str | None = f"{path}/messages/{root_id}/replies?$top=50"
    seen: list[str] = []
    while url:
        page = client.get(url).json()
        assert len(page["value"]) <= 50
        seen += [r["id"] for r in page["value"]]
        url, pages = page.get("@odata.nextLink"), pages + 1
    assert pages == 24 and len(set(seen)) == 1200
    assert all(r.startswith("1") for r in seen)


def test_single_messages_and_replies(sb: SandboxServer, client: httpx.Client) -> None:
    path, root_id = big_thread(sb)
    root = client.get(f"{path}/messages/{root_id}").json()
    assert root["id"] == root_id and root["replyToId"] is None
    reply_id = client.get(f"{path}/messages/{root_id}/replies?$top=1").json()["value"][0]["id"]
    reply = client.get(f"{path}/messages/{root_id}/replies/{reply_id}").json()
    assert reply["replyToId"] == root_id
    assert client.get(f"{path}/messages/{reply_id}").status_code == 404  # roots only
    unknown = client.get(f"{path}/messages/42")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NotFound"


def test_next_links_keep_the_page_size_and_the_expanded_replies(
    sb: SandboxServer, client: httpx.Client
) -> None:
    """Graph's next links carry the request's options: every page is expanded alike."""
    path = channel_path(sb, 0, "General")
    first = client.get(f"{path}/messages", params={"$top": 7, "$expand": "replies"}).json()
    second = client.get(first["@odata.nextLink"]).json()
    assert len(second["value"]) == 7
    assert all("replies" in m for m in second["value"])
