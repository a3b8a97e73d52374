"""A real HTTP server on localhost that answers Graph requests as a test scripts them:
for the paths the client reads through aiohttp (`links.py`), which respx cannot play."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Answer:
    """What the server answers one request: a status, headers, and a JSON or raw body."""

    status: int = 200
    json: Any = None
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False  # the connection closed after it (a body cut short of its length)

    def wire(self) -> bytes:
        body = json.dumps(self.json).encode() if self.json is not None else self.content
        headers = {"Content-Length": str(len(body)), **self.headers}
        if self.json is not None:
            headers.setdefault("Content-Type", "application/json")
        head = f"HTTP/1.1 {self.status} Scripted\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        return (head + "\r\n").encode() + body


@dataclass(frozen=True)
class Request:
    """One request the server received."""

    method: str
    target: str
    headers: dict[str, str]  # names in lower case
    body: bytes


Script = Callable[[Request], Answer]


@asynccontextmanager
async def scripted_graph(script: Script) -> AsyncIterator[tuple[str, list[Request]]]:
    """The Graph root (`http://127.0.0.1:<port>/v1.0`) of a server answering each request
    with `script(request)`, and the requests it received, in order. Runs in the caller's
    event loop, connections kept alive as aiohttp expects."""
    received: list[Request] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                method, target, _ = line.decode().split(" ", 2)
                head = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (h.partition(":") for h in head if h)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Request(method, target, headers, body)
                received.append(request)
                answer = script(request)
                writer.write(answer.wire())
                await writer.drain()
                if answer.close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1.0", received
    finally:
        server.close()
