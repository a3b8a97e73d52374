"""Batch parts refused 429 without Retry-After back off longer each time.

The batch itself answers 200: its refused parts must still count as a throttled request
(https://learn.microsoft.com/en-us/graph/throttling#best-practices-to-handle-throttling).
"""

from __future__ import annotations

import httpx
import pytest
import respx

from hirondelle.connectors.graph.errors import Call
from hirondelle.migrator.errors import Retriable
from hirondelle.tests.fake_time import FakeTime

from .conftest import make_budget, make_client, run


def test_batch_concurrency_refusals_back_off_exponentially(fake_time: FakeTime) -> None:
    budgets = make_budget(fake_time, attempts=6)
    client = make_client(budgets)

    def answer(request: httpx.Request) -> httpx.Response:
        import json

        parts = json.loads(request.content)["requests"]
        return httpx.Response(
            200,
            json={
                "responses": [
                    {
                        "id": p["id"],
                        "status": 429,
                        "headers": {},
                        "body": {
                            "error": {"code": "ApplicationThrottled", "message": "concurrency"}
                        },
                    }
                    for p in parts
                ]
            },
        )

    with respx.mock(assert_all_called=False) as mock:
        mock.post("https://graph.test/v1.0/$batch").mock(side_effect=answer)
        with pytest.raises(Retriable):
            run(
                client.batch_get(
                    "alice", {"a": "/users/a/messages/1", "b": "/users/a/messages/2"}, Call("props")
                )
            )
    # refusals in a row without Retry-After: the pauses grow (0.5-1 s, then doubling)
    assert max(fake_time.sleeps) >= 8.0
    assert fake_time.sleeps == sorted(fake_time.sleeps)
