"""A scripted Graph for the Teams source: canned channel messages, a fake clock, a source."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import respx

from hirondelle.connectors.graph.teams import GraphTeamsSource, TeamsSettings
from hirondelle.migrator.model import Container, Page
from hirondelle.tests.fake_time import FakeTime
from hirondelle.tests.graph.conftest import make_budget, make_client
from hirondelle.tests.graph_calendar.conftest import HOST, ScriptedGraph

TEAM = "team-1"
CHANNEL = "19:general@thread.tacv2"
CHANNEL_PATH = f"/v1.0/teams/{TEAM}/channels/{CHANNEL}"
MESSAGES = f"{CHANNEL_PATH}/messages"
DELTA = f"{MESSAGES}/delta()"
START = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
CONTAINER = Container("chat", "team:Projet", CHANNEL, ("Projet", "Général"), role="standard")


def when(n: int) -> str:
    """A Graph timestamp `n` minutes after a fixed start."""
    moment = START + timedelta(minutes=n, milliseconds=n % 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def message(
    message_id: str,
    minute: int,
    *,
    reply_to: str | None = None,
    body: str = "Bonjour 👋",
    replies: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A chatMessage as Graph returns it (the fields the source and mapper read)."""
    entry: dict[str, Any] = {
        "id": message_id,
        "replyToId": reply_to,
        "etag": message_id,
        "messageType": "message",
        "createdDateTime": when(minute),
        "lastModifiedDateTime": when(minute),
        "lastEditedDateTime": None,
        "deletedDateTime": None,
        "subject": None,
        "from": {"user": {"id": f"user-{message_id}", "displayName": "Élodie Martin"}},
        "body": {"contentType": "html", "content": f"<p>{body}</p>"},
        "attachments": [],
        "mentions": [],
        "reactions": [],
    }
    if replies is not None:
        entry["replies"] = replies
        entry["replies@odata.count"] = len(replies)
    entry.update(extra)
    return entry


def page(values: list[dict[str, Any]], **links: str) -> dict[str, Any]:
    """A collection page; `next` and `delta` become the OData links."""
    answer: dict[str, Any] = {"value": values}
    if "next" in links:
        answer["@odata.nextLink"] = links["next"]
    if "delta" in links:
        answer["@odata.deltaLink"] = links["delta"]
    return answer


def by_query(answers: dict[str, dict[str, Any]]) -> Any:
    """Answer a path by one query parameter's value (`""` when absent): paged links."""

    def answer(request: Any) -> Any:
        import httpx

        token = request.url.params.get("$skiptoken") or request.url.params.get("$deltatoken")
        return httpx.Response(200, json=answers[token or ""])

    return answer


def url(path: str, **params: str) -> str:
    text = "&".join(f"{key}={value}" for key, value in params.items())
    return f"{HOST}{path}" + (f"?{text}" if text else "")


def items_of(pages: list[Page]) -> list[str]:
    return [item.source_id for p in pages for item in p.items]


def content_of(data: bytes) -> Any:
    return json.loads(data.decode("utf-8"))


@pytest.fixture
def graph() -> Iterator[ScriptedGraph]:
    scripted = ScriptedGraph()
    with respx.mock(assert_all_called=False) as mock:
        mock.get(url__startswith=HOST).mock(side_effect=scripted)
        yield scripted


def make_source(
    fake_time: FakeTime, clock: Callable[[], datetime] | None = None, **settings: Any
) -> GraphTeamsSource:
    """A source whose channel and tenant budgets run on the fake clock (and whose cursor
    times come from `clock`, when given)."""
    client = make_client(
        make_budget(fake_time, concurrency=4, requests_per_window=4, window_seconds=1.0)
    )
    tenant = make_budget(fake_time, concurrency=20, requests_per_window=20, window_seconds=1.0)
    source = GraphTeamsSource(client, TeamsSettings(**settings), tenant=tenant)
    if clock is not None:
        source.clock = clock
    return source


@pytest.fixture
def teams_graph(graph: ScriptedGraph) -> ScriptedGraph:
    """The scripted Graph with one team ("Projet") holding a standard and a private channel."""
    graph.answers["/v1.0/teams"] = page([{"id": TEAM, "displayName": "Projet"}])
    graph.answers[f"/v1.0/teams/{TEAM}/channels"] = page(
        [
            {"id": CHANNEL, "displayName": "Général", "membershipType": "standard"},
            {
                "id": "19:secret@thread.tacv2",
                "displayName": "Direction",
                "description": "Privé",
                "membershipType": "private",
            },
        ]
    )
    return graph
