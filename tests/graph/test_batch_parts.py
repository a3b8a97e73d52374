"""The parts of a `$batch` each stand for one item: a part the answer leaves out is asked
again, never taken for a 404 (a message taken for gone would be skipped, not migrated),
and a part that keeps failing fails its own item only.

The `$batch`es of `$value`s are read through aiohttp (`links.py`): a real server on
localhost plays Graph here."""

from __future__ import annotations

import base64
import json

from hirondelle.connectors.graph.client import loads
from hirondelle.connectors.graph.errors import Call
from hirondelle.connectors.graph.mail import GraphMailSource
from hirondelle.migrator.errors import FatalError, Retriable
from hirondelle.migrator.model import Container, Item
from hirondelle.tests.fake_time import FakeTime

from .conftest import make_budget, make_client, run
from .scripted import Answer, Request, scripted_graph

MIME = {"a": b"Subject: a\r\n\r\nfirst\r\n", "b": b"Subject: b\r\n\r\nsecond\r\n"}


def test_a_part_missing_from_the_answer_is_asked_again(fake_time: FakeTime) -> None:
    asked: list[list[str]] = []

    def answer(request: Request) -> Answer:
        keys = [part["id"] for part in json.loads(request.body)["requests"]]
        asked.append(keys)
        answered = keys[:1] if len(asked) == 1 else keys  # the first answer leaves one out
        responses = [
            {"id": key, "status": 200, "body": base64.b64encode(MIME[key]).decode()}
            for key in answered
        ]
        return Answer(json={"responses": responses})

    paths = {"a": "/users/u/messages/a/$value", "b": "/users/u/messages/b/$value"}

    async def fetch() -> tuple[dict[str, bytes | Retriable | None], list[Request]]:
        async with scripted_graph(answer) as (graph, received):
            client = make_client(make_budget(fake_time), graph_url=graph)
            try:
                return await client.batch_bytes("u", paths, Call("MIME", item=True)), received
            finally:
                await client.aclose()

    bodies, received = run(fetch())
    assert bodies == MIME
    assert asked == [["a", "b"], ["b"]]
    # The same request as httpx sent: the token, JSON both ways, immutable ids, traced.
    for request in received:
        assert (request.method, request.target) == ("POST", "/v1.0/$batch")
        assert request.headers["authorization"] == "Bearer test-token"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["accept"] == "application/json"
        assert 'IdType="ImmutableId"' in request.headers["prefer"]
        assert request.headers["user-agent"].startswith("ISV|Hirondelle|hirondelle/")
        assert len(request.headers["client-request-id"]) == 36


def test_a_message_that_keeps_failing_fails_alone(fake_time: FakeTime) -> None:
    """Graph answers 500 for some damaged messages every time: that one message fails,
    the others of its batch are carried (a group failed whole would fail again each run)."""
    inbox = Container("mail", "u", "inbox-id", ("Inbox",), "inbox", ("inbox",), 2)
    items = [Item(key, "ck", {"size": len(body)}) for key, body in MIME.items()]

    def answer(request: Request) -> Answer:
        responses = [
            {"id": part["id"], "status": 200, "body": base64.b64encode(MIME["a"]).decode()}
            if part["id"] == "0"
            else {"id": part["id"], "status": 500, "body": {"error": {"code": "InternalError"}}}
            for part in json.loads(request.body)["requests"]
        ]
        return Answer(json={"responses": responses})

    async def fetch() -> list[object]:
        async with scripted_graph(answer) as (graph, _):
            client = make_client(make_budget(fake_time, attempts=3), graph_url=graph)
            try:
                return list(await GraphMailSource(client).fetch_many(inbox, items))
            finally:
                await client.aclose()

    first, second = run(fetch())
    assert first == MIME["a"]
    assert isinstance(second, Retriable)


def test_a_throttled_batch_waits_as_graph_asks(fake_time: FakeTime) -> None:
    """The `$batch` itself refused 429 with Retry-After: the lane waits that long, then
    the batch is sent again (https://learn.microsoft.com/en-us/graph/throttling)."""
    answers = [
        Answer(429, json={"error": {"code": "TooManyRequests"}}, headers={"Retry-After": "7"}),
        Answer(json={"responses": [{"id": "a", "status": 200, "body": "YQ=="}]}),
    ]
    budgets = make_budget(fake_time)

    async def fetch() -> dict[str, bytes | Retriable | None]:
        async with scripted_graph(lambda _: answers.pop(0)) as (graph, _):
            client = make_client(budgets, graph_url=graph)
            try:
                return await client.batch_bytes("u", {"a": "/a/$value"}, Call("MIME"))
            finally:
                await client.aclose()

    assert run(fetch()) == {"a": b"a"}
    assert fake_time.sleeps == [7]
    assert budgets.stats()["u"]["throttled"] == 1


def test_a_refused_batch_goes_through_the_error_table(fake_time: FakeTime) -> None:
    """A 403 on the `$batch` is the table's error naming the permission to grant."""
    refused = Answer(403, json={"error": {"code": "ErrorAccessDenied", "message": "no"}})

    async def fetch() -> None:
        async with scripted_graph(lambda _: refused) as (graph, _):
            client = make_client(make_budget(fake_time), graph_url=graph)
            try:
                await client.batch_bytes("u", {"a": "/a/$value"}, Call("MIME of u"))
            finally:
                await client.aclose()

    try:
        run(fetch())
    except FatalError as error:
        assert "Mail.Read" in str(error)
    else:
        raise AssertionError("a refused $batch was taken for an answer")


def test_no_token_leaves_for_another_host_in_a_batch(fake_time: FakeTime) -> None:
    client = make_client(make_budget(fake_time), graph_url="http://127.0.0.1:9/v1.0")
    client.graph_url = "http://evil.test/v1.0"  # a root that is not the configured host
    try:
        run(client.batch_bytes("u", {"a": "/a/$value"}, Call("MIME")))
    except FatalError as error:
        assert "evil.test" in str(error)
    else:
        raise AssertionError("the token was sent to another host")


def test_a_batch_answer_orjson_refuses_is_read_as_json_reads_it() -> None:
    """Graph's JSON may escape half an emoji (a subject cut mid-character): orjson refuses
    a lone surrogate, json takes it; the answer is read either way."""
    body = b'{"responses": [{"id": "a", "status": 200, "body": "YQ=="}], "x": "\\ud83d"}'
    assert loads(body) == json.loads(body)
