"""The parts of a `$batch` each stand for one item: a part the answer leaves out is asked
again, never taken for a 404 (a message taken for gone would be skipped, not migrated),
and a part that keeps failing fails its own item only."""

from __future__ import annotations

import base64
import json

import httpx
import respx

from hirondelle.connectors.graph.errors import Call
from hirondelle.connectors.graph.mail import GraphMailSource
from hirondelle.migrator.errors import Retriable
from hirondelle.migrator.model import Container, Item
from hirondelle.tests.fake_time import FakeTime

from .conftest import GRAPH, make_budget, make_client, run

MIME = {"a": b"Subject: a\r\n\r\nfirst\r\n", "b": b"Subject: b\r\n\r\nsecond\r\n"}


def test_a_part_missing_from_the_answer_is_asked_again(fake_time: FakeTime) -> None:
    client = make_client(make_budget(fake_time))
    asked: list[list[str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        keys = [part["id"] for part in json.loads(request.content)["requests"]]
        asked.append(keys)
        answered = keys[:1] if len(asked) == 1 else keys  # the first answer leaves one out
        responses = [
            {"id": key, "status": 200, "body": base64.b64encode(MIME[key]).decode()}
            for key in answered
        ]
        return httpx.Response(200, json={"responses": responses})

    paths = {"a": "/users/u/messages/a/$value", "b": "/users/u/messages/b/$value"}
    with respx.mock(assert_all_called=False) as mock:
        mock.post(f"{GRAPH}/$batch").mock(side_effect=answer)
        bodies = run(client.batch_bytes("u", paths, Call("MIME", item=True)))
    assert bodies == MIME
    assert asked == [["a", "b"], ["b"]]


def test_a_message_that_keeps_failing_fails_alone(fake_time: FakeTime) -> None:
    """Graph answers 500 for some damaged messages every time: that one message fails,
    the others of its batch are carried (a group failed whole would fail again each run)."""
    client = make_client(make_budget(fake_time, attempts=3))
    source = GraphMailSource(client)
    inbox = Container("mail", "u", "inbox-id", ("Inbox",), "inbox", ("inbox",), 2)
    items = [Item(key, "ck", {"size": len(body)}) for key, body in MIME.items()]

    def answer(request: httpx.Request) -> httpx.Response:
        responses = [
            {"id": part["id"], "status": 200, "body": base64.b64encode(MIME["a"]).decode()}
            if part["id"] == "0"
            else {"id": part["id"], "status": 500, "body": {"error": {"code": "InternalError"}}}
            for part in json.loads(request.content)["requests"]
        ]
        return httpx.Response(200, json={"responses": responses})

    with respx.mock(assert_all_called=False) as mock:
        mock.post(f"{GRAPH}/$batch").mock(side_effect=answer)
        first, second = run(source.fetch_many(inbox, items))
    assert first == MIME["a"]
    assert isinstance(second, Retriable)
