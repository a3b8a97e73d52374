"""A `$batch` answer that leaves out a part says nothing about that part: it is asked
again, never taken for a 404 (a message taken for gone would be skipped, not migrated).
"""

from __future__ import annotations

import base64
import json

import httpx
import respx

from hirondelle.connectors.graph.errors import Call

from .conftest import GRAPH, FakeTime, make_budget, make_client, run

MIME = {"a": b"Subject: a\r\n\r\nfirst\r\n", "b": b"Subject: b\r\n\r\nsecond\r\n"}


def test_a_part_missing_from_the_answer_is_asked_again(fake_time: FakeTime) -> None:
    client = make_client(make_budget(fake_time))
    asked: list[list[str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        keys = [part["id"] for part in json.loads(request.content)["requests"]]
        asked.append(keys)
        answered = keys[:1] if len(asked) == 1 else keys  # the first answer leaves one out
        responses = [
            {"id": key, "status": 200, "body": base64.b64encode(MIME[key]).decode()}
            for key in answered
        ]
        return httpx.Response(200, json={"responses": responses})

    paths = {"a": "/users/u/messages/a/$value", "b": "/users/u/messages/b/$value"}
    with respx.mock(assert_all_called=False) as mock:
        mock.post(f"{GRAPH}/$batch").mock(side_effect=answer)
        bodies = run(client.batch_bytes("u", paths, Call("MIME", item=True)))
    assert bodies == MIME
    assert asked == [["a", "b"], ["b"]]
