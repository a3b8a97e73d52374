"""The Graph client against mocked answers (respx for httpx; for what aiohttp reads, a real
server on localhost): retries, headers, truncation, the error table."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx
from kiota_abstractions.api_error import APIError

from hirondelle.connectors.graph.client import GraphClient, user_agent
from hirondelle.connectors.graph.errors import Call
from hirondelle.connectors.graph.mail import GraphMailSource
from hirondelle.migrator.errors import CursorExpired, FatalError, Retriable, SkipItem
from hirondelle.migrator.model import Container, Item
from hirondelle.tests.fake_time import FakeTime

from .conftest import GRAPH, make_budget, make_client, run
from .scripted import Answer, Request, scripted_graph

USERS = {"value": [{"id": "u1", "userPrincipalName": "alice@contoso.test", "displayName": "A"}]}
INBOX = Container("mail", "alice@contoso.test", "folder-1", ("Boîte de réception",), "inbox")
MESSAGE = Item("message-1", "ck1")


def graph_error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"error": {"code": code, "message": "from the service"}}
    return httpx.Response(status, json=body, headers=headers)


async def owners_with(client: GraphClient) -> list[Any]:
    try:
        return await GraphMailSource(client).owners()
    finally:
        await client.aclose()


def test_429_with_retry_after_then_success(fake_time: FakeTime) -> None:
    budgets = make_budget(fake_time)
    with respx.mock() as mock:
        route = mock.get(path="/v1.0/users").mock(
            side_effect=[
                graph_error(429, "TooManyRequests", {"Retry-After": "3"}),
                httpx.Response(200, json=USERS),
            ]
        )
        owners = run(owners_with(make_client(budgets)))
    assert [owner.upn for owner in owners] == ["alice@contoso.test"]
    assert route.call_count == 2
    assert fake_time.sleeps == [3]
    assert budgets.stats()["(tenant)"]["throttled"] == 1


def test_503_backs_off_and_is_not_retried_by_the_sdk(fake_time: FakeTime) -> None:
    budgets = make_budget(fake_time, attempts=3)
    with respx.mock() as mock:
        route = mock.get(path="/v1.0/users").mock(
            return_value=graph_error(503, "ServiceUnavailable", {"Retry-After": "2"})
        )
        with pytest.raises(Retriable):
            run(owners_with(make_client(budgets)))
    # One HTTP request per budget attempt: kiota's RetryHandler is not in the chain.
    assert route.call_count == 3
    assert budgets.limit("(tenant)") == 1


def test_every_request_carries_the_user_agent_and_immutable_ids(fake_time: FakeTime) -> None:
    with respx.mock() as mock:
        route = mock.get(path="/v1.0/users").mock(return_value=httpx.Response(200, json=USERS))

        async def owners() -> None:
            client = make_client(make_budget(fake_time))
            await GraphMailSource(client).owners()
            await client.aclose()

        run(owners())
        listing = route.calls.last.request
    assert user_agent() == "ISV|Hirondelle|hirondelle/0.1.0"
    assert listing.headers["User-Agent"] == user_agent()
    assert 'IdType="ImmutableId"' in listing.headers["Prefer"]
    assert listing.headers["Authorization"] == "Bearer test-token"
    # JSON requests go out as the SDK's middleware sent them: a fresh client-request-id,
    # query names spelled with `$`.
    assert len(listing.headers["client-request-id"]) == 36
    assert listing.url.query.decode().startswith("$select=")
    # A `$value` (read through aiohttp: a real server plays Graph) carries the same.
    (value,) = fetch_value(fake_time, [Answer(content=b"MIME")])[1]
    assert value.target == "/v1.0/users/alice@contoso.test/messages/message-1/$value"
    assert value.headers["user-agent"] == user_agent()
    assert 'IdType="ImmutableId"' in value.headers["prefer"]
    assert value.headers["authorization"] == "Bearer test-token"


def fetch_value(
    fake_time: FakeTime, answers: list[Answer], attempts: int = 4
) -> tuple[bytes | Exception, list[Request]]:
    """INBOX's MESSAGE fetched from a server answering `answers` in turn: its content or
    the error it raised, and the requests the server received."""

    async def fetch() -> tuple[bytes | Exception, list[Request]]:
        async with scripted_graph(lambda _: answers.pop(0)) as (graph, received):
            client = make_client(make_budget(fake_time, attempts=attempts), graph_url=graph)
            try:
                return await GraphMailSource(client).fetch(INBOX, MESSAGE), received
            except Exception as error:  # noqa: BLE001 - the test looks at it
                return error, received
            finally:
                await client.aclose()

    return run(fetch())


def cut_short(mime: bytes, sent: int) -> Answer:
    """An answer announcing `mime` whose connection closes after `sent` bytes of it."""
    return Answer(content=mime[:sent], headers={"Content-Length": str(len(mime))}, close=True)


def error_answer(status: int, code: str) -> Answer:
    return Answer(status, json={"error": {"code": code, "message": "from the service"}})


def test_a_truncated_value_is_retried(fake_time: FakeTime) -> None:
    mime = b"From: a@b\r\n\r\nhello"
    content, received = fetch_value(fake_time, [cut_short(mime, 5), Answer(content=mime)])
    assert content == mime
    assert len(received) == 2


def test_a_value_that_stays_truncated_is_retriable(fake_time: FakeTime) -> None:
    mime = b"x" * 100
    error, received = fetch_value(fake_time, [cut_short(mime, 10)] * 2, attempts=2)
    assert isinstance(error, Retriable) and "ClientPayloadError" in str(error)
    assert len(received) == 2


def test_a_photo_that_stays_truncated_is_retriable(fake_time: FakeTime) -> None:
    """`stream_bytes` (photos, inline images: through httpx) checks Content-Length too."""
    photo_url = f"{GRAPH}/users/alice%40contoso.test/photo/$value"
    short = httpx.Response(200, content=b"x" * 10, headers={"Content-Length": "100"})
    with respx.mock() as mock:
        mock.get(photo_url).mock(return_value=short)
        client = make_client(make_budget(fake_time, attempts=2))
        with pytest.raises(Retriable, match="10 of 100"):
            run(client.stream_bytes(photo_url, "alice@contoso.test"))


def test_a_missing_message_is_skipped(fake_time: FakeTime) -> None:
    error, _ = fetch_value(fake_time, [error_answer(404, "ErrorItemNotFound")])
    assert isinstance(error, SkipItem)


def test_an_expired_delta_link_raises_cursor_expired(fake_time: FakeTime) -> None:
    link = f"{GRAPH}/users/alice%40contoso.test/mailFolders/folder-1/messages/delta?$deltatoken=old"
    with respx.mock() as mock:
        mock.get(url__startswith=link).mock(
            return_value=graph_error(410, "syncStateNotFound", {"Location": link})
        )

        async def consume() -> None:
            source = GraphMailSource(make_client(make_budget(fake_time)))
            async for _ in source.changes(INBOX, link):
                pass

        with pytest.raises(CursorExpired):
            run(consume())


def test_forbidden_users_names_user_read_all(fake_time: FakeTime) -> None:
    with respx.mock() as mock:
        mock.get(path="/v1.0/users").mock(
            return_value=graph_error(403, "Authorization_RequestDenied")
        )
        with pytest.raises(FatalError, match="User.Read.All"):
            run(owners_with(make_client(make_budget(fake_time))))


def test_forbidden_mail_names_mail_read(fake_time: FakeTime) -> None:
    error, _ = fetch_value(fake_time, [error_answer(403, "ErrorAccessDenied")])
    assert isinstance(error, FatalError) and "Mail.Read" in str(error)


def test_a_reset_connection_is_retried(fake_time: FakeTime) -> None:
    with respx.mock() as mock:
        route = mock.get(path="/v1.0/users").mock(
            side_effect=[httpx.ReadError("reset by peer"), httpx.Response(200, json=USERS)]
        )
        assert len(run(owners_with(make_client(make_budget(fake_time))))) == 1
    assert route.call_count == 2


def test_unknown_client_errors_propagate(fake_time: FakeTime) -> None:
    with respx.mock() as mock:
        mock.get(path="/v1.0/users").mock(return_value=graph_error(400, "BadRequest"))
        with pytest.raises(Exception) as caught:
            run(owners_with(make_client(make_budget(fake_time))))
    assert not isinstance(caught.value, Retriable | FatalError | SkipItem)
    # The SDK's error, with the status its callers look at (an unsupported delta's 400).
    assert isinstance(caught.value, APIError) and caught.value.response_status_code == 400
    assert "BadRequest" in str(caught.value)


def test_no_token_leaves_for_another_host(fake_time: FakeTime) -> None:
    client = make_client(make_budget(fake_time))
    with pytest.raises(FatalError, match="evil.test"):
        run(client.get_json("https://evil.test/v1.0/users", "(tenant)", Call("list users")))


@pytest.mark.parametrize("status", [400, 404, 416])
def test_a_link_answer_the_table_does_not_know_is_an_unexpected_answer(status: int) -> None:
    """A links' answer carries no request: an unknown failure must still be the client's
    own error, never httpx's `raise_for_status` (a RuntimeError without a request)."""
    from types import SimpleNamespace

    from hirondelle.connectors.graph.answers import (
        UnexpectedAnswer,
        raise_for_answer,
        read_answer,
    )

    answer = SimpleNamespace(status_code=status, headers={"Content-Type": "text/plain"})
    with pytest.raises(UnexpectedAnswer, match=f"HTTP {status}"):
        raise_for_answer(read_answer(answer, b"no"), Call("usage report"))
