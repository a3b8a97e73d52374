"""SharePoint resource units: costs per call, 429 with Retry-After and RateLimit headers."""

from __future__ import annotations

from sandbox_drive_helpers import client

from hirondelle.sandbox.drive import resource_units
from hirondelle.sandbox.mail import GraphRequest
from hirondelle.sandbox.resource_units import (
    ResourceUnitLimits,
    ResourceUnitThrottle,
    units_per_minute,
)
from hirondelle.sandbox.server import SandboxServer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def request(path: str, **query: str) -> GraphRequest:
    return GraphRequest.create("GET", path, query, {}, "http://sandbox/v1.0")


def test_documented_costs_per_call() -> None:
    assert resource_units(request("/drives/d/items/i/content")) == 1
    assert resource_units(request("/drives/d/root/delta", token="abc")) == 1
    assert resource_units(request("/drives/d/root/delta(token='abc')")) == 1
    assert resource_units(request("/drives/d/root/delta")) == 2
    assert resource_units(request("/drives/d/items/i/children")) == 2
    assert resource_units(request("/drives/d/items/i")) == 1
    assert resource_units(request("/drives/d/items/i/permissions")) == 5
    assert resource_units(request("/drives/d/items/i", **{"$expand": "permissions"})) == 5
    assert [units_per_minute(n) for n in (10, 3_000, 60_000)] == [1_200, 2_400, 6_000]


def test_over_the_budget_refusals_count_and_say_when_to_come_back() -> None:
    clock = FakeClock()
    throttle = ResourceUnitThrottle(ResourceUnitLimits(units_per_window=10), clock)
    assert throttle.charge("t", 5) is None
    assert throttle.rate_limit_headers("t") == {}  # under 80 %: no headers
    clock.now += 30
    assert throttle.charge("t", 3) is None
    assert throttle.rate_limit_headers("t") == {
        "RateLimit-Limit": "10",
        "RateLimit-Remaining": "2",
        "RateLimit-Reset": "30",
    }
    refusal = throttle.charge("t", 5)
    assert refusal is not None and refusal.status == 429
    assert refusal.code == "activityLimitReached"
    assert refusal.retry_after == 60  # the refused 5 count too: all but them must leave
    assert refusal.headers["RateLimit-Remaining"] == "0"
    clock.now += 60
    assert throttle.charge("t", 5) is None


def test_the_sandbox_throttles_drive_requests_by_resource_units(mutable: SandboxServer) -> None:
    mutable.set_resource_units(ResourceUnitLimits(units_per_window=10, window_seconds=60))
    drive = mutable.tenant.drives.drives[0]
    with client(mutable) as graph:
        answers = [graph.get(f"drives/{drive.id}/root/children") for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert "RateLimit-Remaining" not in answers[2].headers
    assert answers[4].headers["RateLimit-Remaining"] == "0"
    refused = answers[5]
    assert refused.json()["error"]["code"] == "activityLimitReached"
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["RateLimit-Limit"] == "10"
    sharepoint = mutable.stats()["by_mailbox"]["sharepoint"]
    assert (sharepoint["requests"], sharepoint["throttled"]) == (6, 1)
