"""Teams' limits: 4 requests per second per channel or team, 20 message reads per tenant."""

from __future__ import annotations

from sandbox_helpers import raw_client
from teams_helpers import channel_path

from hirondelle.sandbox.faults import Faults
from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.teams import TeamsRefusal, TeamsThrottle


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def throttle(limits: Limits) -> tuple[TeamsThrottle, FakeClock]:
    clock = FakeClock()
    return TeamsThrottle(lambda: limits, clock), clock


def test_four_requests_a_second_per_channel() -> None:
    gate, clock = throttle(Limits())
    assert [gate.admit("teams-messages:19:a") for _ in range(4)] == [None] * 4
    refusal = gate.admit("teams-messages:19:a")
    assert isinstance(refusal, TeamsRefusal)
    assert (refusal.status, refusal.code, refusal.retry_after) == (429, "TooManyRequests", 1)
    assert gate.admit("teams-messages:19:b") is None  # another channel has its own budget
    assert gate.admit("teams-channel:19:a") is not None  # its metadata shares the channel's
    clock.now += 1.0
    assert gate.admit("teams-messages:19:a") is None


def test_twenty_message_reads_a_second_per_tenant() -> None:
    gate, clock = throttle(Limits())
    for channel in range(5):
        assert all(gate.admit(f"teams-messages:19:{channel}") is None for _ in range(4))
    refusal = gate.admit("teams-messages:19:fifth")
    assert refusal is not None and refusal.limit == "ChannelMessageReads"
    assert gate.admit("teams-channel:19:other") is None  # metadata is not a message read
    assert gate.admit("teams-team:some-team") is None
    clock.now += 1.0
    assert gate.admit("teams-messages:19:fifth") is None


def test_limits_switch_and_scale_the_windows() -> None:
    gate, clock = throttle(Limits(enabled=False))
    assert all(gate.admit("teams-messages:19:a") is None for _ in range(50))
    gate, clock = throttle(Limits(scale=0.5))  # 2 requests per half second: the same rate
    assert [gate.admit("teams-team:t") is None for _ in range(3)] == [True, True, False]
    clock.now += 0.5
    assert gate.admit("teams-team:t") is None


def test_the_server_answers_429_with_retry_after(fresh: SandboxServer) -> None:
    fresh.set_limits(Limits())
    path = channel_path(fresh, 0, "General")
    with raw_client(fresh) as client:
        answers = [client.get(f"{path}/messages", params={"$top": 1}) for _ in range(8)]
        listing = client.get("teams")  # directory listings are not Teams-throttled
    refused = [a for a in answers if a.status_code == 429]
    assert refused and all(a.status_code in (200, 429) for a in answers)
    assert int(refused[0].headers["Retry-After"]) >= 1
    assert refused[0].json()["error"]["code"] == "TooManyRequests"
    assert fresh.stats()["throttled"] == len(refused)
    assert listing.status_code == 200


def test_faults_apply_to_teams_requests(fresh: SandboxServer) -> None:
    fresh.set_faults(Faults(error_rate=1.0))
    with raw_client(fresh) as client:
        answer = client.get(f"{channel_path(fresh, 0, 'General')}/messages")
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"


def test_twenty_chat_message_reads_a_second_per_tenant_and_no_per_chat_rate() -> None:
    gate, clock = throttle(Limits())
    assert all(gate.admit("teams-chat-messages:19:one@unq.gbl.spaces") is None for _ in range(20))
    refusal = gate.admit("teams-chat-messages:19:two@thread.v2")
    assert refusal is not None and refusal.limit == "ChatMessageReads"
    assert gate.admit("teams-messages:19:channel") is None  # channels count apart
    clock.now += 1.0
    assert gate.admit("teams-chat-messages:19:two@thread.v2") is None
