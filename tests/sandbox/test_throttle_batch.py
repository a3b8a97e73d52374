"""Per-mailbox throttling (concurrency and window) and JSON batching."""

from __future__ import annotations

import asyncio
import time

import httpx
from sandbox_helpers import access_token, raw_client, trust

from hirondelle.sandbox.faults import Faults
from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.throttle import MailboxThrottle


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_window_refuses_until_the_oldest_request_leaves_it() -> None:
    clock = FakeClock()
    throttle = MailboxThrottle(Limits(scale=0.01), clock)  # 100 requests per 6 s
    for _ in range(100):
        assert throttle.admit("a@x") is None
        throttle.release("a@x")
    refusal = throttle.admit("a@x")
    assert refusal is not None and refusal.limit == "MailboxRequests"
    assert refusal.retry_after == 6
    assert throttle.admit("b@x") is None  # another mailbox is not affected
    clock.now += 6.0
    assert throttle.admit("a@x") is None


def test_concurrency_limit_frees_a_slot_on_release() -> None:
    throttle = MailboxThrottle(Limits(concurrency=2), FakeClock())
    assert throttle.admit("a@x") is None and throttle.admit("a@x") is None
    refusal = throttle.admit("a@x")
    # A concurrency refusal may come without Retry-After: clients back off on their own
    # (https://learn.microsoft.com/en-us/graph/throttling#best-practices-to-handle-throttling).
    assert refusal is not None
    assert (refusal.limit, refusal.retry_after) == ("MailboxConcurrency", None)
    throttle.release("a@x")
    assert throttle.admit("a@x") is None
    assert MailboxThrottle(Limits(enabled=False, concurrency=0)).admit("a@x") is None


def test_fifth_concurrent_request_to_a_mailbox_gets_429(sb: SandboxServer) -> None:
    sb.set_limits(Limits())
    sb.set_faults(Faults(slow_seconds=0.6))
    user = sb.tenant.users[0]
    token = access_token(sb)

    async def burst() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(verify=trust(sb), headers=headers, timeout=10) as client:
            url = f"{sb.graph_url}/users/{user.id}/mailFolders/inbox"
            return await asyncio.gather(*(client.get(url) for _ in range(6)))

    before = sb.stats()["throttled"]
    responses = asyncio.run(burst())
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 200, 200, 429, 429]
    refused = [r for r in responses if r.status_code == 429]
    for response in refused:
        assert "Retry-After" not in response.headers
        error = response.json()["error"]
        assert error["code"] == "ApplicationThrottled"
        assert "MailboxConcurrency" in error["message"]
    stats = sb.stats()
    assert stats["throttled"] - before == 2
    assert stats["by_mailbox"][user.upn.lower()]["throttled"] >= 2


def test_window_with_scale_refuses_then_admits_again(sb: SandboxServer) -> None:
    sb.set_limits(Limits(requests_per_window=10_000, window_seconds=600, scale=0.0005))  # 5 / 0.3 s
    user = sb.tenant.users[1]
    with raw_client(sb) as client:
        statuses = [client.get(f"users/{user.id}").status_code for _ in range(7)]
        assert statuses[:5] == [200] * 5 and 429 in statuses[5:]
        deadline = time.monotonic() + 5
        while client.get(f"users/{user.id}").status_code == 429:
            assert time.monotonic() < deadline, "the window never reopened"


def test_batch_mixes_ok_not_found_and_throttled_answers(sb: SandboxServer) -> None:
    sb.set_limits(Limits(requests_per_window=5, window_seconds=60))
    first, second = sb.tenant.users
    steps = [
        {"id": str(n), "method": "GET", "url": f"/users/{first.id}/mailFolders/inbox"}
        for n in range(7)
    ]
    steps.append({"id": "missing", "method": "GET", "url": f"users/{second.upn}/messages/nope"})
    steps.append({"id": "all", "method": "GET", "url": "/users?$select=id"})
    with raw_client(sb) as client:
        answers = client.post("$batch", json={"requests": steps}).json()["responses"]
    by_id = {a["id"]: a for a in answers}
    statuses = [by_id[str(n)]["status"] for n in range(7)]
    assert statuses == [200] * 5 + [429] * 2
    for n in (5, 6):
        assert int(by_id[str(n)]["headers"]["Retry-After"]) >= 1
        assert by_id[str(n)]["body"]["error"]["code"] == "ApplicationThrottled"
    assert by_id["0"]["body"]["id"] == sb.tenant.folder(first.id, "inbox").id
    assert by_id["missing"]["status"] == 404
    assert by_id["missing"]["body"]["error"]["code"] == "ErrorItemNotFound"
    assert by_id["all"]["status"] == 200
    assert {u["id"] for u in by_id["all"]["body"]["value"]} == {first.id, second.id}


def test_batch_of_more_than_twenty_is_400(sb: SandboxServer) -> None:
    steps = [{"id": str(n), "method": "GET", "url": "/users"} for n in range(21)]
    with raw_client(sb) as client:
        response = client.post("$batch", json={"requests": steps})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"


def _batch_of(sb: SandboxServer, count: int, headers: dict[str, str] | None = None) -> list[dict]:
    user = sb.tenant.users[0]
    url = f"/users/{user.id}/mailFolders/inbox"
    return [
        {"id": str(n), "method": "GET", "url": url, **({"headers": headers} if headers else {})}
        for n in range(count)
    ]


def test_batch_parts_run_four_at_a_time_against_the_mailbox(sb: SandboxServer) -> None:
    # "Microsoft Graph dispatches up to four individual requests from a batch to the Outlook
    # service simultaneously": https://learn.microsoft.com/en-us/graph/throttling-limits
    # (Outlook service limits) and https://learn.microsoft.com/en-us/graph/json-batching
    sb.set_limits(Limits())
    sb.set_faults(Faults(slow_seconds=0.2))
    mailbox = sb.tenant.users[0].upn.lower()
    started = time.monotonic()
    with raw_client(sb) as client:
        answers = client.post("$batch", json={"requests": _batch_of(sb, 8)}).json()["responses"]
    elapsed = time.monotonic() - started
    assert [a["status"] for a in answers] == [200] * 8
    assert sb.stats()["by_mailbox"][mailbox]["peak_in_flight"] == 4
    assert 0.35 < elapsed < 1.5  # two waves of four parts, not eight one by one


def test_batch_parts_beyond_the_free_slots_get_429(sb: SandboxServer) -> None:
    # A batch counts part by part against the mailbox's 4 concurrent requests: with two
    # requests already in flight, at most two of its parts run and the others get 429.
    sb.set_limits(Limits())
    sb.set_faults(Faults(slow_seconds=0.4))
    user = sb.tenant.users[0]
    token = access_token(sb)

    async def together() -> tuple[list[httpx.Response], httpx.Response]:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(verify=trust(sb), headers=headers, timeout=10) as client:
            url = f"{sb.graph_url}/users/{user.id}/mailFolders/inbox"
            singles = [asyncio.ensure_future(client.get(url)) for _ in range(2)]
            await asyncio.sleep(0.1)  # the two singles hold their slots (slow_seconds)
            batch = await client.post(f"{sb.graph_url}/$batch", json={"requests": _batch_of(sb, 6)})
            return list(await asyncio.gather(*singles)), batch

    singles, batch = asyncio.run(together())
    assert [r.status_code for r in singles] == [200, 200]
    statuses = sorted(a["status"] for a in batch.json()["responses"])
    assert statuses.count(429) >= 2 and statuses.count(200) >= 2
    refused = [a for a in batch.json()["responses"] if a["status"] == 429]
    assert all("MailboxConcurrency" in a["body"]["error"]["message"] for a in refused)


def test_batch_parts_see_their_own_headers_only(sb: SandboxServer) -> None:
    # A Prefer header applies to the request that carries it: in a batch, each part's own
    # headers (https://learn.microsoft.com/en-us/graph/outlook-immutable-id#how-it-works).
    prefer = {"Prefer": 'IdType="ImmutableId"'}
    with raw_client(sb) as client:
        envelope = client.post("$batch", json={"requests": _batch_of(sb, 1)}, headers=prefer)
        part = client.post("$batch", json={"requests": _batch_of(sb, 1, prefer)})
    assert "Preference-Applied" not in envelope.json()["responses"][0]["headers"]
    assert part.json()["responses"][0]["headers"]["Preference-Applied"] == 'IdType="ImmutableId"'


def test_batch_dependent_part_of_a_failed_one_answers_424(sb: SandboxServer) -> None:
    # "If an individual request fails, any request that depends on that request fails with
    # status code 424 (Failed Dependency)": https://learn.microsoft.com/en-us/graph/json-batching
    user = sb.tenant.users[0]
    steps = [
        {"id": "1", "method": "GET", "url": f"/users/{user.id}/messages/nope"},
        {"id": "2", "method": "GET", "url": f"/users/{user.id}", "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": f"/users/{user.id}"},
    ]
    with raw_client(sb) as client:
        answers = client.post("$batch", json={"requests": steps}).json()["responses"]
    assert [a["status"] for a in answers] == [404, 424, 200]
