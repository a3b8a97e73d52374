"""The Matrix target in bot mode (Tchap: one ordinary account) against a real Synapse."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hirondelle.connectors.matrix import MatrixSettings, MatrixTarget
from hirondelle.migrator.errors import FatalError
from hirondelle.tests.matrix.payloads import BASE_TS, TEAMS_KEY, channel, chat_payload, team
from hirondelle.tests.servers import MatrixAccount, SynapseServer


def _messages(synapse: SynapseServer, room: str, token: str) -> list[dict[str, Any]]:
    events = synapse.room_events(room, token)
    return [e for e in events if e["type"] in ("m.room.message", "m.reaction")]


def test_bot_sends_everything_as_itself_with_the_mapper_prefix(
    synapse: SynapseServer, bot_target: Callable[..., MatrixTarget], bot_account: MatrixAccount
) -> None:
    session = bot_target().open(team("Gov", "team-gov"))
    general = channel("Gov", "General", "ch-gov")
    room = session.ensure_container(general)
    assert session.ensure_container(general) == room
    body = "Alice Example (2020-09-13 12:26):\nbonjour"
    root = session.put(room, chat_payload("b1", body, reactions=["👍", "👍"]))  # two likers
    session.put(room, chat_payload("b1/r", "Bob (2020-09-13 12:30):\nsalut", root="b1"))

    events = _messages(synapse, room, bot_account.access_token)
    assert {e["sender"] for e in events} == {bot_account.user_id}
    messages = [e for e in events if e["type"] == "m.room.message"]
    assert messages[0]["content"]["body"].startswith("Alice Example (2020-09-13 12:26):")
    assert messages[0]["origin_server_ts"] != BASE_TS  # no `ts` outside an application service
    assert messages[1]["content"]["m.relates_to"]["event_id"] == root.ref
    assert len([e for e in events if e["type"] == "m.reaction"]) == 1  # one account, one 👍

    fresh = bot_target().open(team("Gov", "team-gov"))
    assert fresh.find(room, chat_payload("b1", body, reactions=["👍", "👍"]), frozenset()) is None
    # the second 👍 could never land (one account): find declines, put completes harmlessly
    assert fresh.put(room, chat_payload("b1", body, reactions=["👍", "👍"])) == root
    assert [
        e["content"][TEAMS_KEY] for e in _messages(synapse, room, bot_account.access_token)
    ] == [
        "b1",
        "b1",
        "b1/r",
    ]


def test_bot_rate_limit_spaces_requests(bot_target: Callable[..., MatrixTarget]) -> None:
    session = bot_target(bot_rate=10.0).open(team("Gov", "team-gov"))
    room = session.ensure_container(channel("Gov", "Slow", "ch-slow"))
    started = time.monotonic()
    for number in range(6):
        session.put(room, chat_payload(f"s{number}", "x"))
    # the first may go at once, the others wait 0.1 s each (plus the joined-members read)
    assert time.monotonic() - started >= 0.5


def test_encrypted_room_is_a_fatal_error(
    synapse: SynapseServer, bot_target: Callable[..., MatrixTarget], bot_account: MatrixAccount
) -> None:
    target = bot_target()
    general = channel("Gov", "Secret", "ch-secret")
    room = target.open(team("Gov", "team-gov")).ensure_container(general)
    encryption = {"algorithm": "m.megolm.v1.aes-sha2"}
    path = f"/_matrix/client/v3/rooms/{room}/state/m.room.encryption/"
    synapse.request("PUT", path, bot_account.access_token, encryption)
    with pytest.raises(FatalError, match="must be unencrypted for history import"):
        target.open(team("Gov", "team-gov")).ensure_container(general)


def test_a_refused_token_is_fatal_and_names_the_setting(
    synapse: SynapseServer, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("not-a-token\n", encoding="utf-8")
    token.chmod(0o600)
    settings = MatrixSettings(synapse.url, "localhost", mode="bot", access_token_file=token)
    target = MatrixTarget(settings)
    with pytest.raises(FatalError, match=r"targets\.chat\.access_token_file"):
        target.open(team("Gov", "team-gov"))
    assert any("access_token_file" in finding for finding in target.check())


def test_check_is_clean_with_a_good_token(bot_target: Callable[..., MatrixTarget]) -> None:
    assert bot_target().check() == []
