"""A scripted Graph for the calendar and contacts sources: answers by path, records requests."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
import respx

HOST = "https://graph.test"
USER = "/v1.0/users/alice@contoso.test"
Answer = dict[str, Any] | httpx.Response | Callable[[httpx.Request], httpx.Response]


@dataclass
class ScriptedGraph:
    """Answers GETs from a table keyed by decoded path (no query); records what was asked.

    A key may hold a list of answers, given one per request in turn (the last repeats).
    """

    answers: dict[str, Answer | list[Answer]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = unquote(request.url.path)
        answer = self.answers.get(path)
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if answer is None:
            return httpx.Response(404, json={"error": {"code": "ErrorItemNotFound"}})
        if callable(answer):
            return answer(request)
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=answer)

    def asked(self, path: str) -> list[httpx.Request]:
        """The requests made to `path` (decoded, without query), in order."""
        return [r for r in self.requests if unquote(r.url.path) == path]


def query(request: httpx.Request) -> dict[str, str]:
    """The request's query parameters, one value each."""
    return {key: values[0] for key, values in parse_qs(urlsplit(str(request.url)).query).items()}


def link(path: str, **params: str) -> str:
    """An absolute Graph link (a next or delta link) to `path` with `params`."""
    text = "&".join(f"{key}={value}" for key, value in params.items())
    return f"{HOST}{path}" + (f"?{text}" if text else "")


def json_of(content: bytes) -> Any:
    return json.loads(content.decode("utf-8"))


@pytest.fixture
def graph() -> Iterator[ScriptedGraph]:
    """Every GET to the test Graph host goes through one `ScriptedGraph`."""
    scripted = ScriptedGraph()
    with respx.mock(assert_all_called=False) as mock:
        mock.get(url__startswith=HOST).mock(side_effect=scripted)
        yield scripted
