"""Download links go through the proxy the environment names, as Graph's requests do
(httpx honours HTTP_PROXY, HTTPS_PROXY and NO_PROXY): behind a proxy, a file that
Graph lists must also be downloadable."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable

import pytest

from hirondelle.connectors.graph.links import AiohttpLinks

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _server(body: bytes, lines: list[bytes]) -> Handler:
    """An HTTP server that notes each request line and answers `body`."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lines.append(await reader.readline())
        await reader.readuntil(b"\r\n\r\n")
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        writer.write(head.encode() + body)
        await writer.drain()
        writer.close()

    return answer


async def _read(
    link: str, no_proxy: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[bytes, list[bytes], list[bytes]]:
    """The body read from `link` ("{origin}" is the local origin's address), and the
    request lines the proxy and the origin received."""
    proxied: list[bytes] = []
    direct: list[bytes] = []
    proxy = await asyncio.start_server(_server(b"proxied", proxied), "127.0.0.1", 0)
    origin = await asyncio.start_server(_server(b"direct", direct), "127.0.0.1", 0)
    for name in ("no_proxy", "NO_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.sockets[0].getsockname()[1]}")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    url = link.format(origin=f"127.0.0.1:{origin.sockets[0].getsockname()[1]}")
    links = AiohttpLinks(ssl.create_default_context(), 2, "test")
    try:
        async with links.stream(url, {}) as answer:
            body = await answer.aread()
    finally:
        await links.aclose()
        proxy.close()
        origin.close()
    return body, proxied, direct


def test_a_link_is_read_through_the_environment_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    link = "http://download.invalid/file?tempauth=abc"  # a name only the proxy can reach
    body, proxied, direct = asyncio.run(_read(link, "localhost", monkeypatch))
    assert (body, proxied, direct) == (b"proxied", [f"GET {link} HTTP/1.1\r\n".encode()], [])


def test_a_host_in_no_proxy_is_reached_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    body, proxied, direct = asyncio.run(_read("http://{origin}/file", "127.0.0.1", monkeypatch))
    assert (body, proxied, direct) == (b"direct", [], [b"GET /file HTTP/1.1\r\n"])
