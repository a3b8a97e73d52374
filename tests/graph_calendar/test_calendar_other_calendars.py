"""Calendars other than the primary one: read through full plain views, never through delta.

Graph v1.0 documents calendarView/delta for the primary calendar only
(https://learn.microsoft.com/en-us/graph/api/event-delta, "HTTP request"); any calendar's
plain view is documented (https://learn.microsoft.com/en-us/graph/api/calendar-list-calendarview).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from kiota_abstractions.api_error import APIError

from hirondelle.connectors.graph.calendar import GraphCalendarSource
from hirondelle.migrator.model import Container, Page
from hirondelle.tests.fake_time import FakeTime
from hirondelle.tests.graph.conftest import run

from .conftest import USER, ScriptedGraph, link, query
from .test_calendar_source import ALICE, FIRST_SLICE, master, occurrence, removed, single, source

PROJECTS = Container("calendar", ALICE.upn, "c2", ("Projets",))
VIEW = f"{USER}/calendars/c2/calendarView"
EVENTS = f"{USER}/calendars/c2/events"
SECOND_SLICE = "2024-12-31"


def exception(event_id: str, master_id: str, day: str, change_key: str) -> dict[str, Any]:
    return {**occurrence(event_id, master_id, day), "type": "exception", "changeKey": change_key}


def view_pages(slices: dict[str, list[dict[str, Any]]], page: int = 2) -> Any:
    """Answer the plain view slice by slice (startDateTime), `page` entries at a time."""

    def answer(request: httpx.Request) -> httpx.Response:
        params = query(request)
        token = params.get("$skiptoken") or f"{params['startDateTime'][:10]}:0"
        key, offset = token.split(":")
        entries = slices.get(key, [])
        start = int(offset)
        body: dict[str, Any] = {"value": entries[start : start + page]}
        if start + page < len(entries):
            body["@odata.nextLink"] = link(VIEW, **{"$skiptoken": f"{key}:{start + page}"})
        return httpx.Response(200, json=body)

    return answer


def tenant(**changes: Any) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """Slice 1: singles A and B, series M (an occurrence and an exception); slice 2: M's
    second occurrence and series Q. With `changes`, the calendar after a few edits."""
    a = single("A", changes.get("a", "ck-a"))
    m_instances = [
        occurrence("M1", "M", "2023-03-06", changes.get("m_etag", 'W/"ck-m"')),
        exception("M2", "M", "2023-03-13", changes.get("m2", "ck-m2")),
    ]
    later = [occurrence("M3", "M", "2025-03-03", changes.get("m_etag", 'W/"ck-m"'))]
    q = [occurrence("Q1", "Q", "2025-06-02", 'W/"ck-q"')]
    first = [a, *([] if changes.get("no_b") else [single("B", "ck-b")]), *m_instances]
    second = [*later, *([] if changes.get("no_q") else q)]
    if changes.get("cancel_m3"):
        second = [entry for entry in second if entry["id"] != "M3"]
    masters = [master("M", changes.get("m", "ck-m"))]
    if not changes.get("no_q"):
        masters.append(master("Q", "ck-q"))
    listing = {"value": [single("A", "ck-a"), single("B", "ck-b"), *masters]}
    return {FIRST_SLICE[:10]: first, SECOND_SLICE: second}, listing


def answer(graph: ScriptedGraph, **changes: Any) -> None:
    slices, listing = tenant(**changes)
    graph.answers[VIEW] = view_pages(slices)
    graph.answers[EVENTS] = listing


async def pages_of(calendar: GraphCalendarSource, cursor: str | None) -> list[Page]:
    try:
        return [page async for page in calendar.changes(PROJECTS, cursor)]
    finally:
        await calendar.aclose()


def delta_requests(graph: ScriptedGraph) -> list[httpx.Request]:
    return [r for r in graph.requests if "delta" in r.url.path]


def test_first_round_lists_every_single_and_series_without_delta(
    graph: ScriptedGraph, fake_time: FakeTime
) -> None:
    answer(graph)
    pages = run(pages_of(source(fake_time), None))

    assert not delta_requests(graph)
    assert len(pages) == 1 and pages[0].removed == () and pages[0].delta_link
    items = {item.source_id: item for item in pages[0].items}
    assert sorted(items) == ["A", "B", "M", "Q"]
    assert items["A"].version == "ck-a" and items["A"].meta["iCalUId"] == "uid-A"
    assert items["M"].version.startswith("ck-m#") and items["M"].meta["type"] == "seriesMaster"
    cursor = json.loads(pages[0].delta_link or "")
    assert cursor["links"] == [None, None] and cursor["masters"] == {}
    assert cursor["known"] == {item.source_id: item.version for item in items.values()}
    views = graph.asked(VIEW)
    starts = [query(r)["startDateTime"] for r in views if "startDateTime" in query(r)]
    assert starts[0] == FIRST_SLICE and len(starts) == 2  # one view per slice
    assert len(views) == 3  # slice 1 in two pages of two entries, slice 2 in one
    assert all(query(r).get("$top") == "1000" for r in views if "startDateTime" in query(r))
    assert len(graph.asked(EVENTS)) == 1  # the masters' changeKeys, once


def test_next_round_emits_what_changed_and_removes_what_is_gone(
    graph: ScriptedGraph, fake_time: FakeTime
) -> None:
    answer(graph)
    cursor = run(pages_of(source(fake_time), None))[-1].delta_link
    before = json.loads(cursor or "")["known"]

    # A edited; B deleted; M's exception edited (M's own changeKey unchanged) and its
    # occurrence of 2025 cancelled; series Q deleted.
    answer(graph, a="ck-a2", no_b=True, m2="ck-m2b", cancel_m3=True, no_q=True)
    pages = run(pages_of(source(fake_time), cursor))

    items = {item.source_id: item for page in pages for item in page.items}
    assert sorted(items) == ["A", "M"] and items["A"].version == "ck-a2"
    assert items["M"].version.startswith("ck-m#") and items["M"].version != before["M"]
    assert set(pages[-1].removed) == {"B", "Q"}
    assert json.loads(pages[-1].delta_link or "")["known"].keys() == {"A", "M"}
    assert not delta_requests(graph)


def test_a_quiet_round_emits_nothing(graph: ScriptedGraph, fake_time: FakeTime) -> None:
    answer(graph)
    cursor = run(pages_of(source(fake_time), None))[-1].delta_link
    pages = run(pages_of(source(fake_time), cursor))
    assert [(page.items, page.removed) for page in pages] == [((), ())]
    assert json.loads(pages[-1].delta_link or "") == json.loads(cursor or "")


def test_a_master_gone_between_the_view_and_its_listing_waits_for_the_next_round(
    graph: ScriptedGraph, fake_time: FakeTime
) -> None:
    answer(graph)
    cursor = run(pages_of(source(fake_time), None))[-1].delta_link
    slices, listing = tenant(m="ck-m9")
    graph.answers[VIEW] = view_pages(slices)
    graph.answers[EVENTS] = {"value": [e for e in listing["value"] if e["id"] != "M"]}
    pages = run(pages_of(source(fake_time), cursor))
    assert [i.source_id for p in pages for i in p.items] == [] and pages[-1].removed == ()
    known = json.loads(pages[-1].delta_link or "")["known"]
    assert known["M"] == json.loads(cursor or "")["known"]["M"]


def earlier_cursor(links: list[str | None]) -> str:
    """A cursor written when every calendar was read through delta: links, masters."""
    state = {
        "v": 1,
        "start": "2022-01-01T00:00:00Z",
        "end": "2028-01-01T00:00:00Z",
        "links": links,
        "masters": {"M": "ck-m", "GONE": "ck-g"},
    }
    return json.dumps(state)


OLD_DELTA = f"{USER}/calendars/c2/calendarView/delta"


@pytest.mark.parametrize(
    ("answer_of_graph", "removed_ids"),
    [
        # What Graph answers a delta it does not support on events
        # (github.com/microsoftgraph/msgraph-metadata/issues/608), and a 501.
        (
            httpx.Response(
                400,
                json={
                    "error": {
                        "code": "BadRequest",
                        "message": "Unsupported request: Change tracking is not supported "
                        "against 'microsoft.graph.event'.",
                    }
                },
            ),
            {"GONE"},
        ),
        (httpx.Response(501, json={"error": {"code": "NotImplemented"}}), {"GONE"}),
        (httpx.Response(410, json={"error": {"code": "syncStateNotFound"}}), {"GONE"}),
        # A tenant that still follows them: their deletions are carried too.
        ({"value": [removed("OLD"), removed("A")], "@odata.deltaLink": "x"}, {"GONE", "OLD"}),
    ],
)
def test_an_earlier_delta_cursor_never_fails_the_calendar(
    graph: ScriptedGraph, fake_time: FakeTime, answer_of_graph: Any, removed_ids: set[str]
) -> None:
    answer(graph)
    graph.answers[OLD_DELTA] = answer_of_graph
    cursor = earlier_cursor([link(OLD_DELTA, **{"$deltatoken": "d1"}), None])
    pages = run(pages_of(source(fake_time), cursor))

    assert len(graph.asked(OLD_DELTA)) == 1
    assert sorted(i.source_id for p in pages for i in p.items) == ["A", "B", "M", "Q"]
    assert set(pages[-1].removed) == removed_ids
    after = json.loads(pages[-1].delta_link or "")
    assert after["links"] == [None, None] and set(after["known"]) == {"A", "B", "M", "Q"}


def test_an_earlier_delta_cursor_other_failures_still_surface(
    graph: ScriptedGraph, fake_time: FakeTime
) -> None:
    answer(graph)
    graph.answers[OLD_DELTA] = httpx.Response(409, json={"error": {"code": "Conflict"}})
    cursor = earlier_cursor([link(OLD_DELTA, **{"$deltatoken": "d1"}), None])
    with pytest.raises(APIError) as raised:
        run(pages_of(source(fake_time), cursor))
    assert raised.value.response_status_code == 409
