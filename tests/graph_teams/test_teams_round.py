"""The round that reads every Teams thread again, a few pages a sync, against a scripted Graph.

Delta lists root posts only and a new reply does not bring its root back
(https://learn.microsoft.com/en-us/graph/api/chatmessage-delta); replies are read through
the channel's listing with `$expand=replies`, 50 threads a page
(https://learn.microsoft.com/en-us/graph/api/channel-list-messages).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from hirondelle.migrator.model import Page
from hirondelle.tests.fake_time import FakeTime
from hirondelle.tests.graph_calendar.conftest import ScriptedGraph

from .conftest import DELTA, MESSAGES, by_query, items_of, make_source, message, page, url
from .test_teams_source import collect

NOON = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)


def hours() -> Iterator[datetime]:
    """The cursor clock: one hour later at each sync."""
    moment = NOON
    while True:
        yield moment
        moment += timedelta(hours=1)


def script_three_pages(graph: ScriptedGraph, old_replies: list[dict[str, Any]]) -> None:
    """Six threads, newest first, two a page; thread 100 (the oldest) holds `old_replies`."""
    roots = [message(str(n), n // 10, replies=[]) for n in (600, 500, 400, 300, 200)]
    roots.append(message("100", 10, replies=old_replies))
    graph.answers[MESSAGES] = by_query(
        {
            "": page(roots[0:2], next=url(MESSAGES, **{"$skiptoken": "p2"})),
            "p2": page(roots[2:4], next=url(MESSAGES, **{"$skiptoken": "p3"})),
            "p3": page(roots[4:6]),
        }
    )
    graph.answers[DELTA] = lambda request: httpx.Response(
        200, json=page([], delta=url(DELTA, **{"$deltatoken": "d"}))
    )


def message_reads(graph: ScriptedGraph, since: int) -> int:
    return sum(1 for r in graph.requests[since:] if "/messages" in r.url.path)


def test_a_new_reply_to_the_oldest_thread_is_read_within_the_documented_syncs(
    teams_graph: ScriptedGraph, fake_time: FakeTime
) -> None:
    script_three_pages(teams_graph, [])
    clock = hours()
    settings: dict[str, Any] = {"reread_pages": 1, "reply_window_threads": 1}
    first = collect(make_source(fake_time, clock=lambda: next(clock), **settings))
    assert first[-1].unchecked is None  # the first pass read every thread
    reply = message("110", 11, reply_to="100")
    script_three_pages(teams_graph, [reply])  # delta does not report thread 100
    notes: list[str | None] = []
    cursor, found = first[-1].delta_link, []
    for _ in range(3):  # ceil(6 threads / (2 a page x 1 page a sync)) syncs
        asked = len(teams_graph.requests)
        pages = collect(make_source(fake_time, clock=lambda: next(clock), **settings), cursor)
        # delta (1 page) + the round (reread_pages = 1) + the window (at most 1 thread)
        assert message_reads(teams_graph, asked) <= 1 + 1 + 1
        cursor, notes = pages[-1].delta_link, [*notes, pages[-1].unchecked]
        found.append("100/110" in items_of(pages))
    assert found == [False, False, True]
    state = json.loads(cursor or "")["round"]
    assert state["next"] is None and state["checked"] == "2024-06-03T13:00:00Z"  # sync 1
    assert state["threads"] == 6
    assert all(notes) and "2024-06-03 12:00 UTC" in (notes[0] or "")  # the first pass
    assert "2 of about 6" in (notes[0] or "") and "2024-06-03 13:00 UTC" in (notes[2] or "")


def test_a_stored_round_link_the_listing_refuses_starts_the_round_again(
    teams_graph: ScriptedGraph, fake_time: FakeTime
) -> None:
    script_three_pages(teams_graph, [])
    first = collect(make_source(fake_time))
    state = json.loads(first[-1].delta_link or "")
    state["round"].update(next=url(MESSAGES, **{"$skiptoken": "stale"}), started=None, read=4)
    refused = {"error": {"code": "BadRequest", "message": "Invalid skip token."}}
    answers = teams_graph.answers[MESSAGES]
    teams_graph.answers[MESSAGES] = lambda request: (
        httpx.Response(400, json=refused)
        if request.url.params.get("$skiptoken") == "stale"
        else answers(request)  # type: ignore[operator]  # the scripted answer is callable here
    )
    pages: list[Page] = collect(make_source(fake_time, reread_pages=1), json.dumps(state))
    assert {"600", "500"} <= set(items_of(pages))  # from the newest thread
    again = json.loads(pages[-1].delta_link or "")["round"]
    assert again["next"].endswith("$skiptoken=p2") and again["read"] == 2


def test_with_reread_pages_0_every_sync_reads_every_thread_and_says_nothing(
    teams_graph: ScriptedGraph, fake_time: FakeTime
) -> None:
    script_three_pages(teams_graph, [])
    first = collect(make_source(fake_time, reread_pages=1))
    script_three_pages(teams_graph, [message("110", 11, reply_to="100")])
    pages = collect(make_source(fake_time, reread_pages=0), first[-1].delta_link)
    assert "100/110" in items_of(pages) and pages[-1].unchecked is None
    assert json.loads(pages[-1].delta_link or "")["round"]["next"] is None
