"""Pre-authenticated download links (where a driveItem's `/content` redirects), and that
redirect itself, read through aiohttp.

Graph's JSON requests go through httpx (`GraphClient`, with the SDK's request builders
and sign-in), but for the bytes of messages: the `$batch`es of `$value`s
(`GraphClient.batch_bytes`), which carry a mail run's bytes as JSON, and single messages'
(`GraphClient.message_bytes`). Measured on the mail benchmark, httpx's reading of them
cost a quarter of a worker's CPU. A file's bytes come from a link that takes no token, where
what counts is the client's own cost per request and per byte: measured on the same
streams from the sandbox (`bench/http_clients.py`, figures in bench/README.md), aiohttp
spent 0.69 ms of CPU per small file and 0.86 s per GB where httpx spent 1.87 ms and
3.78 s, at two to three times the rate. So the `/content` redirect and the download both
go through here, behind `LinkClient`, the few members `download` uses; the Graph token
comes from the client's credential, only for the Graph host, and a failed answer goes
back through the client's one error table.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import aiohttp

CONNECT_S = 30.0
READ_S = 100.0  # between two reads of a body, as the Graph client's httpx timeout


class LinkAnswer(Protocol):
    """An answer whose body has not been read yet."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...  # names case-insensitive

    def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]: ...

    async def aread(self) -> bytes: ...


class LinkClient(Protocol):
    """Streamed GETs of download links, without redirects or content decoding."""

    def stream(
        self, url: str, headers: Mapping[str, str]
    ) -> AbstractAsyncContextManager[LinkAnswer]: ...

    def send(
        self, method: str, url: str, headers: Mapping[str, str], content: bytes | None = None
    ) -> AbstractAsyncContextManager[LinkAnswer]: ...

    async def aclose(self) -> None: ...


class _AiohttpAnswer:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    @property
    def status_code(self) -> int:
        return self._response.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    async def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        content = self._response.content
        chunks = content.iter_chunked(chunk_size) if chunk_size else content.iter_any()
        async for chunk in chunks:
            yield chunk

    async def aread(self) -> bytes:
        return await self._response.read()


class AiohttpLinks:
    """A keep-alive pool of `connections` for download links, TLS verified with `tls`;
    its session is made on first use, inside the event loop that uses it.

    The proxies of the environment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY) are honoured as
    httpx honours them for Graph's own requests: a network that reaches Graph only
    through a proxy reaches the download hosts through it too. They are read once, not
    through aiohttp's `trust_env`, which would also send ~/.netrc credentials to links."""

    def __init__(self, tls: ssl.SSLContext, connections: int, user_agent: str) -> None:
        self._tls, self._connections, self._user_agent = tls, connections, user_agent
        self._session: aiohttp.ClientSession | None = None
        self._proxies = getproxies()
        self._proxy_of: dict[tuple[str, str], str | None] = {}  # per scheme and host

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._tls, limit=self._connections)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(sock_connect=CONNECT_S, sock_read=READ_S),
                headers={"User-Agent": self._user_agent},
                auto_decompress=False,  # byte offsets must be offsets in the file
                cookie_jar=aiohttp.DummyCookieJar(),  # links take no cookies
            )
        return self._session

    @asynccontextmanager
    async def stream(self, url: str, headers: Mapping[str, str]) -> AsyncIterator[LinkAnswer]:
        proxy = self._proxy_for(url)
        async with self._open().get(
            url, headers=dict(headers), allow_redirects=False, proxy=proxy
        ) as answer:
            yield _AiohttpAnswer(answer)

    @asynccontextmanager
    async def send(
        self, method: str, url: str, headers: Mapping[str, str], content: bytes | None = None
    ) -> AsyncIterator[LinkAnswer]:
        """A Graph request (a `$batch`, a `$value`), its answer's body decoded as httpx
        decoded it (gzip or deflate when Graph compressed it): not a file's bytes at an
        offset, which `stream` reads as they are."""
        proxy = self._proxy_for(url)
        async with self._open().request(
            method,
            url,
            headers=dict(headers),
            data=content,
            allow_redirects=False,
            proxy=proxy,
            auto_decompress=True,
        ) as answer:
            yield _AiohttpAnswer(answer)

    def _proxy_for(self, url: str) -> str | None:
        """The proxy the environment names for `url`'s scheme, unless NO_PROXY lists its host."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname or "")
        if key not in self._proxy_of:
            proxy = self._proxies.get(key[0])
            self._proxy_of[key] = None if proxy is None or proxy_bypass(key[1]) else proxy
        return self._proxy_of[key]

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
