"""Teams chats in the chat archive: a directory per chat beside the teams', found again by
the chat id when the topic changes, `chat.json`, and a transcript naming the members,
with quoted replies and its Content-Security-Policy."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hirondelle.connectors.archive_chat import (
    CHAT_FILE,
    EVENTS_FILE,
    TRANSCRIPT_FILE,
    ChatArchiveTarget,
    read_lines,
)
from hirondelle.mappings.chat import ChatContext
from hirondelle.mappings.chat_members import ChatInfo
from hirondelle.migrator.model import Container, Owner
from hirondelle.tests.matrix.chats import (
    chat_container,
    chat_document,
    chat_owner,
    chat_payload,
    member,
)

CONTEXT = ChatContext("archive.invalid")
ALICE, BOB, ZOE = member("Alice", "owner"), member("Bob"), member("Zoé", left=True)
GROUP = ChatInfo("19:group-archive@thread.v2", "group", "Équipe <projet>", (ALICE, BOB, ZOE))


def test_a_chat_is_archived_beside_the_teams_with_its_members_and_replies(tmp_path: Path) -> None:
    archive = ChatArchiveTarget(tmp_path / "archive", chats={GROUP.chat_id: GROUP})
    session = archive.open(chat_owner())
    folder = session.ensure_container(chat_container(GROUP))
    assert folder.startswith("chats/Équipe <projet>-")
    documents = [
        chat_document(GROUP, "1", "On commence ?", ALICE, 1),
        chat_document(GROUP, "2", "Oui !", BOB, 2, quote=("1", ALICE, "On commence ?")),
        chat_document(GROUP, "3", "Et ça ?", BOB, 3, quote=("0", ZOE, "ancien message")),
    ]
    refs = [session.put(folder, chat_payload(d, CONTEXT)) for d in documents]
    channel = Container("chat", "team:T", "c1", ("T", "Général"))
    team_session = archive.open(Owner("team:T", "t1", "T"))
    team_session.ensure_container(channel)  # a team's channel beside: no collision
    session.close()

    directory = archive.payload / folder
    described = json.loads((directory / CHAT_FILE).read_text("utf-8"))
    assert described["chat_id"] == GROUP.chat_id and described["kind"] == "group"
    assert [m["name"] for m in described["members"]] == ["Alice", "Bob", "Zoé"]
    lines = read_lines(directory / EVENTS_FILE)
    assert [line["teams_id"] for line in lines] == ["1", "2", "3"]
    assert lines[1]["content"]["m.relates_to"] == {"m.in_reply_to": {"event_id": refs[0].ref}}
    assert "m.relates_to" not in lines[2]["content"]  # the quoted message is not archived
    assert lines[2]["content"]["body"].startswith("Zoé\nancien message")
    assert (archive.payload / "T" / "Général").is_dir()

    page = (directory / TRANSCRIPT_FILE).read_text("utf-8")
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp is not None and "default-src 'none'" in csp.group(1)
    assert "script-src" not in csp.group(1)  # scripts fall under default-src 'none'
    assert "<h1>Équipe &lt;projet&gt;</h1>" in page
    assert "Members: Alice, Bob, Zoé (left the chat)" in page
    assert f'<a href="#{refs[0].ref}">In reply to Alice</a>' in page
    assert "ancien message" in page


def test_a_renamed_chat_keeps_its_directory_and_another_member_finds_it(tmp_path: Path) -> None:
    renamed = ChatInfo(GROUP.chat_id, "group", "Nouveau nom", GROUP.members)
    chats = {GROUP.chat_id: GROUP}
    archive = ChatArchiveTarget(tmp_path / "archive", chats=chats)
    folder = archive.open(chat_owner()).ensure_container(chat_container(GROUP))
    chats[GROUP.chat_id] = renamed
    other = archive.open(chat_owner("bob@example.test"))
    assert other.ensure_container(chat_container(renamed, "bob@example.test")) == folder
    other.put(folder, chat_payload(chat_document(renamed, "9", "salut", BOB, 9), CONTEXT))
    other.close()
    described = json.loads((archive.payload / folder / CHAT_FILE).read_text("utf-8"))
    assert described["label"] == "Nouveau nom"
    assert "<h1>Nouveau nom</h1>" in (archive.payload / folder / TRANSCRIPT_FILE).read_text()
    assert len(list((archive.payload / "chats").iterdir())) == 1


def test_members_found_to_have_left_while_reading_reach_chat_json_and_the_transcript(
    tmp_path: Path,
) -> None:
    """The source learns of a member who left only from the messages it reads, after the
    chat's directory was made: at close `chat.json` and the transcript's header name them;
    a later session that reads no message of theirs keeps them."""
    before = ChatInfo("19:left-later@thread.v2", "group", "Départs", (ALICE, BOB))
    chats = {before.chat_id: before}
    archive = ChatArchiveTarget(tmp_path / "archive", chats=chats)
    session = archive.open(chat_owner())
    folder = session.ensure_container(chat_container(before))
    chats[before.chat_id] = ChatInfo(before.chat_id, "group", "Départs", (ALICE, BOB, ZOE))
    session.put(folder, chat_payload(chat_document(before, "1", "Au revoir", ZOE, 1), CONTEXT))
    session.close()
    directory = archive.payload / folder
    described = json.loads((directory / CHAT_FILE).read_text("utf-8"))
    assert [(m["name"], m["left"]) for m in described["members"]][-1] == ("Zoé", True)
    assert "Zoé (left the chat)" in (directory / TRANSCRIPT_FILE).read_text("utf-8")

    chats[before.chat_id] = before  # a sync of another process: only the current members
    later = ChatArchiveTarget(tmp_path / "archive", chats=chats).open(chat_owner())
    later.ensure_container(chat_container(before))
    later.put(folder, chat_payload(chat_document(before, "2", "Encore", BOB, 2), CONTEXT))
    later.close()
    described = json.loads((directory / CHAT_FILE).read_text("utf-8"))
    assert [m["name"] for m in described["members"]] == ["Alice", "Bob", "Zoé"]
    assert "Zoé (left the chat)" in (directory / TRANSCRIPT_FILE).read_text("utf-8")
