"""What the seeded messages hold: hosted contents, system events, files, hostile HTML..."""

from __future__ import annotations

import re
from typing import Any

import httpx
from teams_helpers import PREFER_ALL, SMALL, channel_path, every_page

from hirondelle.sandbox.drive_wire import item_json
from hirondelle.sandbox.server import SandboxServer
from hirondelle.sandbox.tenant import Tenant

HOSTED = re.compile(r"/hostedContents/([^/]+)/\$value")


def showcase(sb: SandboxServer, client: httpx.Client, **headers: str) -> list[dict[str, Any]]:
    """Every root of the first channel of the first team, replies expanded."""
    path = channel_path(sb, 0, "General")
    found, _ = every_page(client, f"{path}/messages", {"$top": 50, "$expand": "replies"}, **headers)
    return found


def test_inline_images_are_hosted_contents_with_their_bytes(
    sb: SandboxServer, client: httpx.Client
) -> None:
    path = channel_path(sb, 0, "General")
    roots = showcase(sb, client)
    with_images = [m for m in roots if HOSTED.search(m["body"]["content"])]
    replies = [r for m in roots for r in m["replies"] if HOSTED.search(r["body"]["content"])]
    assert with_images and replies
    for message in with_images + replies:
        where = f"{message['replyToId']}/replies/{message['id']}" if message["replyToId"] else ""
        base = f"{path}/messages/{where or message['id']}/hostedContents"
        listed = client.get(base).json()["value"]
        in_body = HOSTED.findall(message["body"]["content"])
        assert [h["id"] for h in listed] == in_body
        assert all(h["contentBytes"] is None and h["contentType"] is None for h in listed)
        image = client.get(f"{base}/{in_body[0]}/$value")
        assert image.headers["Content-Type"] == "image/png"
        assert image.content.startswith(b"\x89PNG\r\n\x1a\n") and len(image.content) > 100
    assert (
        client.get(f"{path}/messages/{with_images[0]['id']}/hostedContents/nope").status_code == 404
    )


def test_system_events_read_unknown_future_value_unless_preferred(
    sb: SandboxServer, client: httpx.Client
) -> None:
    plain = {m["id"]: m for m in showcase(sb, client)}
    preferred = {m["id"]: m for m in showcase(sb, client, **PREFER_ALL)}
    events = [i for i, m in preferred.items() if m["messageType"] == "systemEventMessage"]
    assert len(events) == 2
    for message_id in events:
        assert plain[message_id]["messageType"] == "unknownFutureValue"
        assert plain[message_id]["eventDetail"] == preferred[message_id]["eventDetail"]
        assert plain[message_id]["from"] is None
        assert plain[message_id]["body"]["content"] == "<systemEventMessage/>"
    others = set(plain) - set(events)
    assert all(plain[i]["messageType"] == "message" for i in others)


def test_reference_attachments_point_at_the_sites_files(
    sb: SandboxServer, client: httpx.Client
) -> None:
    drives = sb.tenant.drives
    site = drives.site("ProjetHirondelle")
    library = drives.site_drives(site.id)[0]
    urls = {item_json(i, drives, {})["webUrl"] for i in drives.items(library.id)}
    references = [
        a for m in showcase(sb, client) for a in m["attachments"] if a["contentType"] == "reference"
    ]
    present = [a for a in references if a["contentUrl"] in urls]
    missing = [a for a in references if a["contentUrl"] not in urls]
    assert len(present) == 2 and len(missing) == 1  # one file that no longer exists
    assert missing[0]["contentUrl"].startswith(library.web_url)
    for message in showcase(sb, client):
        for attachment in message["attachments"]:
            assert f'<attachment id="{attachment["id"]}">' in message["body"]["content"]


def test_the_showcase_holds_every_kind_of_message(sb: SandboxServer, client: httpx.Client) -> None:
    roots = showcase(sb, client)
    bodies = [m["body"]["content"] for m in roots]
    hostile = next(b for b in bodies if "<script>" in b)
    for piece in ("<iframe", "onerror=", "https://evil.example/x.png", "javascript:"):
        assert piece in hostile
    assert any("<codeblock" in b for b in bodies)
    assert max(len(b.encode()) for b in bodies) > 64 * 1024
    assert any(m["body"]["contentType"] == "text" for m in roots)
    assert any(m["importance"] == "urgent" and m["subject"] for m in roots)
    bot = next(m for m in roots if m["from"] and m["from"]["application"])
    assert bot["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    custom = [r for m in roots for r in m["reactions"] if r["reactionType"] == "custom"]
    assert custom and HOSTED.search(custom[0]["reactionContentUrl"])
    messages = roots + [r for m in roots for r in m["replies"]]
    deleted = [m for m in messages if m["deletedDateTime"]]
    assert deleted and all(m["body"]["content"] == "" for m in deleted)
    edited = [m for m in messages if m["lastEditedDateTime"]]
    assert edited and all(m["etag"] != m["id"] for m in edited)
    assert any("é" in b and re.search("[\U0001f300-\U0001faff]", b) for b in bodies)


def test_generation_is_deterministic() -> None:
    def fingerprint() -> list[tuple[str, str, str]]:
        data = Tenant.generate(SMALL).teams
        return sorted((m.channel_id, m.source_id, m.body) for m in data.all_messages())

    assert fingerprint() == fingerprint()
