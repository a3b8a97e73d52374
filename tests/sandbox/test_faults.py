"""Fault injection: 503 errors, connection resets, truncated bodies, slow answers."""

from __future__ import annotations

import time

import httpx
import pytest
from sandbox_helpers import raw_client

from hirondelle.sandbox.faults import Fate, FaultInjector, Faults
from hirondelle.sandbox.server import SandboxServer


def test_fates_are_deterministic_from_the_seed() -> None:
    faults = Faults(error_rate=0.3, reset_rate=0.2, truncate_rate=0.2, seed=42)
    first = [FaultInjector(faults).draw() for _ in range(1)]
    one, two = FaultInjector(faults), FaultInjector(faults)
    sequence = [one.draw() for _ in range(200)]
    assert sequence == [two.draw() for _ in range(200)]
    assert first[0] == sequence[0]
    assert {Fate.NORMAL, Fate.ERROR, Fate.RESET, Fate.TRUNCATE} == set(sequence)
    other = FaultInjector(Faults(error_rate=0.3, reset_rate=0.2, truncate_rate=0.2, seed=43))
    assert [other.draw() for _ in range(200)] != sequence


def test_error_rate_answers_503_with_retry_after(sb: SandboxServer) -> None:
    sb.set_faults(Faults(error_rate=1.0))
    with raw_client(sb) as client:
        response = client.get("users")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "ServiceUnavailable"


def test_error_rate_reaches_the_parts_of_a_batch(sb: SandboxServer) -> None:
    """A client that reads through `$batch` meets the injected errors in its parts."""
    faults = next(  # a seed whose first draw, the envelope's, is not a fault
        Faults(error_rate=0.5, seed=seed)
        for seed in range(100)
        if FaultInjector(Faults(error_rate=0.5, seed=seed)).draw() is Fate.NORMAL
    )
    sb.set_faults(faults)
    before = sb.stats()["faults"].get("error", 0)
    user = sb.tenant.users[0]
    parts = [{"id": str(n), "method": "GET", "url": f"/users/{user.id}"} for n in range(20)]
    with raw_client(sb) as client:
        response = client.post("$batch", json={"requests": parts})
    assert response.status_code == 200
    answers = response.json()["responses"]
    refused = [a for a in answers if a["status"] == 503]
    assert 0 < len(refused) < len(answers)
    assert all(a["headers"]["Retry-After"] == "1" for a in refused)
    assert sb.stats()["faults"]["error"] - before == len(refused)


def test_reset_rate_closes_the_connection_without_an_answer(sb: SandboxServer) -> None:
    sb.set_faults(Faults(reset_rate=1.0))
    with raw_client(sb) as client, pytest.raises(httpx.TransportError):
        client.get("users")
    sb.set_faults(Faults())
    with raw_client(sb) as client:
        assert client.get("users").status_code == 200  # the server itself is fine


def test_truncate_rate_sends_fewer_bytes_than_content_length(sb: SandboxServer) -> None:
    user = sb.tenant.users[0]
    message = sb.tenant.messages(user.id, sb.tenant.folder(user.id, "inbox").id)[0]
    sb.set_faults(Faults(truncate_rate=1.0))
    with raw_client(sb) as client:
        with client.stream("GET", f"users/{user.id}/messages/{message.id}/$value") as response:
            assert int(response.headers["Content-Length"]) == message.size
            received = bytearray()
            with pytest.raises(httpx.TransportError):
                for chunk in response.iter_raw():
                    received += chunk
    assert 0 < len(received) < message.size
    assert sb.stats()["faults"]["truncate"] >= 1


def test_slow_seconds_delays_each_answer(sb: SandboxServer) -> None:
    sb.set_faults(Faults(slow_seconds=0.3))
    with raw_client(sb) as client:
        started = time.monotonic()
        assert client.get("users").status_code == 200
    assert time.monotonic() - started >= 0.3
