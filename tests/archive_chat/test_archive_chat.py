"""The chat archive target: events as JSON lines, idempotent puts, crash recovery, transcript.

Payloads come from the real mapper run on the chatMessage fixtures of the mapping tests
(modelled on Microsoft's documented examples, see tests/mappings_chat/data/messages.json).
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hirondelle.connectors.archive_chat import (
    EVENTS_FILE,
    TRANSCRIPT_FILE,
    ChatArchiveTarget,
    main_event_id,
    read_lines,
)
from hirondelle.mappings.chat import ChatContext, map_chat_message
from hirondelle.migrator.errors import FatalError, SkipItem
from hirondelle.migrator.model import Container, Entry, Item, Owner, Payload, TargetRef

FIXTURES: dict[str, Any] = json.loads(
    (Path(__file__).parent.parent / "mappings_chat" / "data" / "messages.json").read_text("utf-8")
)
JANE = "ef1c916a-3135-4417-ba27-8eb7bd084193"
CONTEXT = ChatContext("localhost", users={JANE: "@jane:localhost"})
TEAM = Owner("team:Projet Hirondelle", "fbe2bf47", "Projet Hirondelle")
CHANNEL = Container("chat", TEAM.upn, "19:4a95f7d8@thread.tacv2", ("Projet Hirondelle", "Général"))


def payload_of(name: str, context: ChatContext = CONTEXT) -> Payload:
    document = copy.deepcopy(FIXTURES[name])
    message = document["message"]
    root = message.get("replyToId")
    source_id = f"{root}/{message['id']}" if root else message["id"]
    item = Item(source_id, "1", {"rootId": root or message["id"]})
    return map_chat_message(item, json.dumps(document).encode(), context)


def lines_of(root: Path) -> list[dict[str, Any]]:
    return read_lines(root / "Projet Hirondelle" / "Général" / EVENTS_FILE)


@pytest.fixture
def archive(tmp_path: Path) -> ChatArchiveTarget:
    return ChatArchiveTarget(tmp_path / "archive")


def test_put_writes_one_line_per_event_with_placeholders_resolved(
    archive: ChatArchiveTarget,
) -> None:
    session = archive.open(TEAM)
    folder = session.ensure_container(CHANNEL)
    root = session.put(folder, payload_of("mention"))
    reply = session.put(folder, payload_of("reply_with_reactions"))
    assert root == TargetRef("Général", main_event_id("1616965872395"))
    lines = lines_of(archive.payload)
    assert [line["type"] for line in lines] == ["m.room.message"] * 2 + ["m.reaction"] * 6
    thread = lines[1]["content"]["m.relates_to"]
    assert thread["event_id"] == root.ref and thread["m.in_reply_to"]["event_id"] == root.ref
    assert {line["content"]["m.relates_to"]["event_id"] for line in lines[2:]} == {reply.ref}
    assert lines[1]["origin_server_ts"] == 1616989510408
    assert lines[2]["sender"] == "@jane:localhost"
    assert len({line["event_id"] for line in lines}) == len(lines)


def test_inline_images_go_to_the_media_folder(archive: ChatArchiveTarget) -> None:
    session = archive.open(TEAM)
    folder = session.ensure_container(CHANNEL)
    payload = payload_of("inline_images")
    session.put(folder, payload)
    (line,) = lines_of(archive.payload)
    html = line["content"]["formatted_body"]
    assert "mxc://hirondelle/" not in html and html.count('src="mxc://archive/') == 2
    media = sorted((archive.payload / "Projet Hirondelle" / "Général" / "media").iterdir())
    assert [path.read_bytes() for path in media] == sorted(
        entry["data"] for entry in payload.attrs["media"]
    )
    session.close()
    transcript = (archive.payload / "Projet Hirondelle" / "Général" / TRANSCRIPT_FILE).read_text()
    for path in media:
        assert f'src="media/{path.name}"' in transcript


def test_second_put_and_new_session_write_nothing_twice(archive: ChatArchiveTarget) -> None:
    payloads = [payload_of(name) for name in ("mention", "reply_with_reactions", "edited")]
    session = archive.open(TEAM)
    folder = session.ensure_container(CHANNEL)
    refs = [session.put(folder, payload) for payload in payloads]
    before = lines_of(archive.payload)
    again = archive.open(TEAM)
    assert [again.find(folder, payload, frozenset()) for payload in payloads] == refs
    assert [again.put(folder, payload) for payload in payloads] == refs
    assert lines_of(archive.payload) == before
    assert again.find(folder, payloads[0], frozenset({refs[0].ref})) is None
    assert sorted(again.listing(folder), key=lambda e: e.fingerprint) == [
        Entry(refs[0], "teams:1616965872395", -1),
        Entry(refs[1], "teams:1616965872395/1616989510408", -1),
        Entry(refs[2], "teams:1617000000004", -1),
    ]


def test_interrupted_put_is_completed_and_a_torn_line_cut(archive: ChatArchiveTarget) -> None:
    session = archive.open(TEAM)
    folder = session.ensure_container(CHANNEL)
    payload = payload_of("reply_with_reactions")
    ref = session.put(folder, payload)
    path = archive.payload / "Projet Hirondelle" / "Général" / EVENTS_FILE
    whole = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(whole[:3]) + whole[3][:25])  # a crash in the 4th line
    fresh = archive.open(TEAM)
    assert fresh.find(folder, payload, frozenset()) is None  # incomplete: put again
    assert fresh.put(folder, payload) == ref
    assert path.read_bytes() == b"".join(whole)


def test_update_appends_an_edit_and_remove_a_redaction(archive: ChatArchiveTarget) -> None:
    session = archive.open(TEAM)
    folder = session.ensure_container(CHANNEL)
    ref = session.put(folder, payload_of("mention"))
    document = copy.deepcopy(FIXTURES["mention"])
    document["message"]["body"]["content"] = "Hello again"
    document["message"]["lastEditedDateTime"] = "2021-03-28T22:00:00Z"
    edited = map_chat_message(Item("1616965872395", "2"), json.dumps(document).encode(), CONTEXT)
    assert session.update(ref, edited) == ref
    assert session.update(ref, edited) == ref  # the same edit once
    edit = lines_of(archive.payload)[-1]
    assert edit["content"]["m.relates_to"] == {"rel_type": "m.replace", "event_id": ref.ref}
    assert edit["content"]["m.new_content"]["body"] == "Hello again (edited)"
    assert edit["content"]["body"] == "* Hello again (edited)"
    assert len(lines_of(archive.payload)) == 2
    session.close()
    transcript = (archive.payload / "Projet Hirondelle" / "Général" / TRANSCRIPT_FILE).read_text()
    assert "Hello again" in transcript and "Hello World" not in transcript
    session.remove(ref)
    session.remove(ref)
    assert [line["type"] for line in lines_of(archive.payload)][-1] == "m.room.redaction"
    assert len(lines_of(archive.payload)) == 3
    assert session.listing(folder) == []
    session.close()
    transcript = (archive.payload / "Projet Hirondelle" / "Général" / TRANSCRIPT_FILE).read_text()
    assert "Hello again" not in transcript


def test_transcript_shows_authors_times_threads_reactions_and_safe_html(
    archive: ChatArchiveTarget,
) -> None:
    session = archive.open(TEAM)
    folder = session.ensure_container(CHANNEL)
    for name in ("mention", "reply_with_reactions", "hostile", "members_added", "deleted"):
        session.put(folder, payload_of(name))
    session.close()
    transcript = (archive.payload / "Projet Hirondelle" / "Général" / TRANSCRIPT_FILE).read_text()
    assert "<title>Projet Hirondelle / Général</title>" in transcript
    assert "<strong>Robin Kline</strong>" in transcript
    assert '<time datetime="2021-03-28T21:11:12.395000+00:00">2021-03-28 21:11 UTC' in transcript
    root_at = transcript.index("Hello World")
    thread_at = transcript.index('<section class="thread">')
    assert root_at < thread_at < transcript.index("Bien reçu, merci")
    assert "<span>👍 2</span>" in transcript and "<span>❤️ 1</span>" in transcript
    assert 'class="message notice"' in transcript and "This message was deleted" in transcript
    lowered = transcript.lower()
    assert "<script" not in lowered and "onclick" not in lowered and "javascript:" not in lowered


def test_hostile_html_written_by_hand_is_sanitized_in_the_transcript(
    archive: ChatArchiveTarget,
) -> None:
    content = {
        "msgtype": "m.text",
        "body": "x",
        "format": "org.matrix.custom.html",
        "formatted_body": '<img src="https://evil.example/x" onerror="alert(1)"><script>1</script>',
        "fi.hirondelle.teams_id": "h1",
    }
    events = json.dumps({"events": [{"type": "m.room.message", "content": content}]}).encode()
    attrs = {"sender": "@eve:hs", "sender_name": "<b>Eve</b>", "ts": 0, "root": None}
    session = archive.open(TEAM)
    folder = session.ensure_container(CHANNEL)
    session.put(folder, Payload("h1", events, "teams:h1", attrs))
    session.close()
    transcript = (archive.payload / "Projet Hirondelle" / "Général" / TRANSCRIPT_FILE).read_text()
    assert "evil.example" not in transcript and "<script>1" not in transcript
    assert "&lt;b&gt;Eve&lt;/b&gt;" in transcript


def test_split_message_parts_are_archived_in_order(archive: ChatArchiveTarget) -> None:
    document = copy.deepcopy(FIXTURES["mention"])
    document["message"]["body"]["content"] = "<p>" + "mot " * 40_000 + "</p>"
    payload = map_chat_message(Item("big", "1"), json.dumps(document).encode(), CONTEXT)
    session = archive.open(TEAM)
    folder = session.ensure_container(CHANNEL)
    session.put(folder, payload)
    lines = lines_of(archive.payload)
    assert [line["part"] for line in lines] == list(range(1, len(lines) + 1))
    assert len(lines) >= 3
    assert [entry.fingerprint for entry in session.listing(folder)] == ["teams:big"]
    session.close()
    transcript = (archive.payload / "Projet Hirondelle" / "Général" / TRANSCRIPT_FILE).read_text()
    assert transcript.count("mot ") >= 40_000 - 10


def test_move_is_refused_and_bad_names_are_errors(archive: ChatArchiveTarget) -> None:
    session = archive.open(TEAM)
    ref = TargetRef("Général", "$x")
    assert session.move(ref, "Général") == ref
    with pytest.raises(SkipItem):
        session.move(ref, "Autre")
    with pytest.raises(SkipItem):
        session.listing("..")
    with pytest.raises(FatalError):
        archive.open(Owner("team:", "t0", ""))
    assert archive.check() == []


CHILD = """
import json, sys
from pathlib import Path
from hirondelle.connectors.archive_chat import ChatArchiveTarget
from hirondelle.migrator.model import Container, Owner, Payload

root, count = Path(sys.argv[1]), int(sys.argv[2])
owner = Owner("team:Projet Hirondelle", "fbe2bf47", "Projet Hirondelle")
channel = Container("chat", owner.upn, "c", ("Projet Hirondelle", "Général"))
session = ChatArchiveTarget(root).open(owner)
folder = session.ensure_container(channel)
for number in range(count):
    source_id = f"m{number:05d}"
    content = {"msgtype": "m.text", "body": "message " + str(number) + " " + "x" * 1000,
               "fi.hirondelle.teams_id": source_id}
    reaction = {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$SELF", "key": "👍"},
                "fi.hirondelle.teams_id": source_id}
    events = [{"type": "m.room.message", "content": content},
              {"type": "m.reaction", "content": reaction, "sender": "@a:hs"}]
    data = json.dumps({"events": events}).encode()
    attrs = {"sender": "@b:hs", "sender_name": "B", "ts": number, "root": None}
    session.put(folder, Payload(source_id, data, "teams:" + source_id, attrs))
"""


def test_kill_during_a_channel_import_then_resume_has_no_duplicate_and_no_gap(
    tmp_path: Path,
) -> None:
    count = 1000
    root = tmp_path / "archive"
    events = root / "data" / "Projet Hirondelle" / "Général" / EVENTS_FILE
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(count)])
    deadline = time.monotonic() + 60
    while not (events.exists() and events.stat().st_size > 50_000):
        assert child.poll() is None, "the import ended before it could be interrupted"
        assert time.monotonic() < deadline, "the import did not start"
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    interrupted = len(read_lines(events))
    assert 0 < interrupted < 2 * count
    resume = subprocess.run([sys.executable, "-c", CHILD, str(root), str(count)], timeout=120)
    assert resume.returncode == 0
    lines = read_lines(events)
    messages = [line["teams_id"] for line in lines if line["type"] == "m.room.message"]
    assert messages == [f"m{number:05d}" for number in range(count)]
    assert len({line["event_id"] for line in lines}) == len(lines) == 2 * count
    assert events.read_bytes().endswith(b"\n")
