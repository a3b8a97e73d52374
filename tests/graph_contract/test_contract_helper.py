"""The comparison helper fails where it must: a missing field, a wrong type, a bad link."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hirondelle.tests.graph_contract.contract import (
    Recorded,
    all_recorded,
    body_problems,
    error_problems,
    link_problems,
    load,
    removed_problems,
    required_fields,
    shape_problems,
)

BASE = "https://graph.test/v1.0"
DOCUMENTED: dict[str, Any] = {
    "id": "AAMk1=",
    "isRead": True,
    "flag": {"flagStatus": "notFlagged"},
    "categories": ["Blue"],
    "size": 12,
    "from": None,
}


def recorded_delta(**links: tuple[str, ...]) -> Recorded:
    body = {
        "value": [
            dict(DOCUMENTED),
            {"id": "AAMk2=", "@removed": {"reason": "deleted"}},
        ]
    }
    return Recorded(
        "delta",
        "https://learn.microsoft.com/en-us/graph/delta-query-messages",
        "GET /users/{id}/mailFolders/{id}/messages/delta",
        "message",
        200,
        body,
        links or {"@odata.nextLink": ("$skiptoken",), "@odata.deltaLink": ("$deltatoken",)},
    )


def served_page(**extra: Any) -> dict[str, Any]:
    return {"value": [copy.deepcopy(DOCUMENTED)], **extra}


def test_a_conforming_answer_has_no_problem() -> None:
    link = f"{BASE}/users/u1/mailFolders('f1')/messages/delta?$skiptoken=abc"
    page = served_page(**{"@odata.nextLink": link})
    page["value"][0]["extra"] = {"undocumented": 1}  # served, not documented: allowed
    page["value"][0]["from"] = {"emailAddress": {}}  # documented null: any type
    assert not body_problems(page, recorded_delta(), {"id", "isRead", "flag.flagStatus"}, BASE)


def test_a_missing_field_the_client_reads_fails() -> None:
    served = copy.deepcopy(DOCUMENTED)
    del served["flag"]["flagStatus"]
    assert shape_problems(served, DOCUMENTED, {"flag.flagStatus"}) == [
        "$.flag.flagStatus: missing (read by the client)"
    ]
    del served["isRead"]
    assert "$.isRead: missing (read by the client)" in shape_problems(
        served, DOCUMENTED, {"isRead"}
    )


def test_a_missing_field_the_client_does_not_read_is_allowed() -> None:
    served = {k: v for k, v in DOCUMENTED.items() if k != "size"}
    assert not shape_problems(served, DOCUMENTED, {"id"})


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("isRead", "true", "$.isRead: string, documented boolean"),
        ("size", "12", "$.size: string, documented number"),
        ("categories", "Blue", "$.categories: string, documented array"),
        ("flag", "notFlagged", "$.flag: string, documented object"),
    ],
)
def test_a_wrong_type_fails(field: str, value: Any, expected: str) -> None:
    served = dict(DOCUMENTED, **{field: value})
    assert shape_problems(served, DOCUMENTED) == [expected]


def test_a_wrong_type_inside_an_array_element_fails() -> None:
    documented = {"value": [{"id": "a", "flag": {"flagStatus": "flagged"}}]}
    served = {"value": [{"id": "a", "flag": {"flagStatus": 1}}]}
    assert shape_problems(served, documented) == [
        "$.value[0].flag.flagStatus: number, documented string"
    ]


def test_elements_are_held_to_the_closest_documented_element() -> None:
    documented = [{"id": "f", "file": {}}, {"id": "d", "folder": {"childCount": 1}}]
    assert not shape_problems([{"id": "x", "folder": {"childCount": 2}}], documented, {"folder"})
    assert shape_problems([{"id": "x", "folder": 3}], documented, {"folder"}) == [
        "$[0].folder: number, documented object"
    ]


@pytest.mark.parametrize(
    "link, problem",
    [
        ("/users/u1/mailFolders/f1/messages/delta?$skiptoken=a", "not an absolute http(s) URL"),
        ("https://elsewhere.test/v1.0/users/u1/mailFolders/f1/messages/delta?$skiptoken=a",
         "not on the service's host"),
        ("https://graph.test/beta/users/u1/mailFolders/f1/messages/delta?$skiptoken=a",
         "not under the service root"),
        ("https://graph.test/v1.0/users/u1/mailFolders/f1/messages?$skiptoken=a", "path"),
        ("https://graph.test/v1.0/users/u1/mailFolders/f1/messages/delta?$skip=10",
         "carries none of $skiptoken"),
    ],
)  # fmt: skip
def test_a_wrong_paging_link_fails(link: str, problem: str) -> None:
    problems = link_problems({"@odata.nextLink": link}, recorded_delta(), BASE)
    assert len(problems) == 1 and problem in problems[0], problems


def test_link_rules_on_the_whole_page() -> None:
    recorded = recorded_delta()
    next_link = f"{BASE}/users/u1/mailFolders/f1/messages/delta?$skiptoken=a"
    delta_link = f"{BASE}/users/u1/mailFolders/f1/messages/delta?$deltatoken=b"
    both = {"@odata.nextLink": next_link, "@odata.deltaLink": delta_link}
    assert link_problems(both, recorded, BASE) == [
        "both @odata.nextLink and @odata.deltaLink on one page"
    ]
    only_next = recorded_delta(**{"@odata.nextLink": ("$skiptoken",)})
    assert "not documented" in link_problems({"@odata.deltaLink": delta_link}, only_next, BASE)[0]
    assert "documented string" in link_problems({"@odata.nextLink": 3}, recorded, BASE)[0]


def test_a_drive_link_may_carry_its_token_as_a_function_argument() -> None:
    recorded = load("drive_delta")
    for link in (
        f"{BASE}/drives/b!1/root/delta(token='abc')",
        f"{BASE}/drives/b!1/root/delta?token=abc",
    ):
        assert not link_problems({"@odata.deltaLink": link}, recorded, BASE), link
    tokenless = {"@odata.deltaLink": f"{BASE}/drives/b!1/root/delta"}
    assert "carries none of token" in link_problems(tokenless, recorded, BASE)[0]


def test_removals_must_take_the_documented_form() -> None:
    documented = recorded_delta().body
    good = {"value": [{"id": "x", "@removed": {"reason": "deleted"}}]}
    assert not removed_problems(good, documented)
    bad_reason = {"value": [{"id": "x", "@removed": {"reason": 1}}]}
    assert removed_problems(bad_reason, documented) == [
        "$.removed[0].@removed.reason: number, documented string"
    ]
    drive_style = {"value": [{"id": "x", "deleted": {"state": "deleted"}}]}
    assert "no '@removed'" in removed_problems(drive_style, documented)[0]


def test_the_error_envelope_is_checked() -> None:
    documented = load("error_404").body
    assert not error_problems(copy.deepcopy(documented), documented)
    assert error_problems({"message": "oops"}, documented)
    no_inner = {"error": {"code": "NotFound", "message": "Gone."}}
    assert error_problems(no_inner, documented) == [
        "$.error.innerError: missing (read by the client)"
    ]
    empty_code = {"error": {"code": "", "message": "Gone.", "innerError": {}}}
    assert not error_problems(empty_code, documented)  # documented (json-batching)
    no_message = {"error": {"code": "NotFound", "message": "", "innerError": {}}}
    assert error_problems(no_message, documented) == ["$.error.message: empty"]
    numeric_code = {"error": {"code": 404, "message": "Gone.", "innerError": {}}}
    assert error_problems(numeric_code, documented) == ["$.error.code: number, documented string"]


def test_required_fields_follow_select_and_expand() -> None:
    recorded = load("message_get")
    reads = {"message": {"id", "isRead", "flag.flagStatus", "singleValueExtendedProperties"}}
    assert required_fields(recorded, reads) == {"id", "isRead", "flag.flagStatus"}
    assert required_fields(recorded, reads, ["isRead"]) == {"id", "isRead"}
    expanded = required_fields(recorded, reads, ["id"], ["singleValueExtendedProperties"])
    assert expanded == {"id", "singleValueExtendedProperties"}


def test_every_recording_cites_its_page_and_declares_its_links() -> None:
    for recorded in all_recorded():
        assert recorded.source.startswith("https://learn.microsoft.com/"), recorded.name
        assert recorded.method in ("GET", "POST"), recorded.name
        body = recorded.body if isinstance(recorded.body, dict) else {}
        for key in ("@odata.nextLink", "@odata.deltaLink"):
            if key in body and recorded.name != "annotations":
                assert key in recorded.links, f"{recorded.name}: {key} not declared"
