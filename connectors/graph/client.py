"""One Microsoft Graph client per run: credential, HTTP pool, SDK adapter, budgets.

Every request goes through the owner's budget (`MailboxBudget.run`), carries the
same headers and ends in the one error table (`errors.to_error`):

- JSON requests are built with msgraph-sdk request builders (or an absolute next
  or delta link, or a formatted path) and sent with plain httpx, with a token from
  the credential (azure-identity): the raw JSON costs microseconds where the SDK's
  typed models cost ~31 ms per message, and the kiota adapter and middleware chain
  cost more CPU than httpx itself (the mail benchmark's profile). What of that chain
  matters is done here: the token for the Graph host only, the User-Agent, a
  `client-request-id` per request, `$`-names in the query left unencoded; no
  retries behind the budget's back (it owns them), no redirects followed.
- `$value` content is streamed with plain httpx too, and checked against Content-Length;
  but a message's, alone or in `$batch`es (most of a mail run's bytes), is read through
  the links' client (aiohttp, `links.py`), at a quarter of httpx's CPU.

Traffic is decorated as Microsoft asks ISVs to ("ISV|Company|App/Version"):
https://learn.microsoft.com/en-us/sharepoint/dev/general-development/how-to-avoid-getting-throttled-or-blocked-in-sharepoint-online#how-to-decorate-your-http-traffic
and asks for immutable ids, which survive moves between folders:
https://learn.microsoft.com/en-us/graph/outlook-immutable-id
"""

from __future__ import annotations

import asyncio
import binascii
import functools
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urljoin, urlsplit

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from kiota_abstractions.authentication import AnonymousAuthenticationProvider
from kiota_abstractions.request_information import RequestInformation
from msgraph import GraphRequestAdapter, GraphServiceClient

from ...migrator.errors import FatalError, Retriable
from .answers import (
    UnexpectedAnswer,
    check_length,
    file_batch_parts,
    json_error,
    raise_for_answer,
    read_answer,
    sorted_failures,
)
from .auth import GraphSettings, RenewableCredential, make_credential
from .budget import MailboxBudget
from .clouds import token_scope
from .errors import Call, Throttled, TokenRefused
from .wire import decoded_name, http_client, loads, path_of, tls_context, user_agent

IMMUTABLE_IDS = 'IdType="ImmutableId"'
TENANT = "(tenant)"  # the budget lane of tenant-wide requests such as /users
BATCH_LIMIT = 20  # https://learn.microsoft.com/en-us/graph/json-batching
BATCH_PARALLEL = 4  # parts of one batch Graph runs at once

if TYPE_CHECKING:
    from .links import LinkAnswer, LinkClient


log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Target:
    """A request to send: SDK request information, or an absolute URL (a link from
    Graph, or one formatted here); POSTed with `content` when it has some."""

    request: RequestInformation | str
    prefer: tuple[str, ...] = ()
    content: bytes | None = None


class GraphClient:
    """The connection to Graph shared by every workload of a run."""

    def __init__(
        self,
        settings: GraphSettings,
        budgets: MailboxBudget,
        *,
        mailboxes: int = 1,
        credential: AsyncTokenCredential | None = None,
        links: LinkClient | None = None,
    ) -> None:
        self.settings = settings
        self.budgets = budgets
        self.graph_url = settings.graph_url.rstrip("/")
        self._host = urlsplit(self.graph_url).hostname or ""
        self._graph_prefix = self.graph_url + "/"  # a URL under it is on the Graph host
        self._scope = token_scope(self.graph_url)
        self._owns_credential = credential is None
        self._credential = credential if credential is not None else make_credential(settings)
        self._tls = tls_context(settings.ca_file)
        self._http = http_client(settings.ca_file, mailboxes, tls=self._tls)
        self._owner_pools: dict[str, httpx.AsyncClient] = {}
        self._links = links  # download links' own client (`links.py`), made on first use
        self._link_connections = 2 * max(4, 4 * mailboxes)  # Graph and download hosts
        self._owner_pool_limit = 2 * max(1, mailboxes)
        self._closing: set[asyncio.Future[None]] = set()
        # The SDK builds requests (`sdk`'s request builders); it never sends them, so its
        # adapter needs no credential: `_send_json` adds the token.
        self.adapter = GraphRequestAdapter(AnonymousAuthenticationProvider(), client=self._http)
        self.adapter.base_url = self.graph_url
        self.sdk = GraphServiceClient(request_adapter=self.adapter)

    async def get_json(
        self,
        target: RequestInformation | str,
        owner: str,
        call: Call | None = None,
        *,
        prefer: Sequence[str] = (),
        cost: int = 1,
    ) -> dict[str, Any]:
        """One JSON answer, through the owner's budget, with retries.

        `cost` is what the request counts against the budget's window (SharePoint
        resource units for drive requests; one request elsewhere).
        """
        sent = Target(target, tuple(prefer))
        described = call or Call(what=f"GET {path_of(target)}")
        return await self.budgets.run(
            owner, lambda: self._renewing(lambda: self._send_json(sent, described)), cost=cost
        )

    async def pages(
        self,
        first: RequestInformation | str,
        owner: str,
        call: Call,
        *,
        prefer: Sequence[str] = (),
        cost: int = 1,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every page of a collection, following `@odata.nextLink`; each page costs `cost`."""
        target: RequestInformation | str | None = first
        while target is not None:
            page = await self.get_json(target, owner, call, prefer=prefer, cost=cost)
            yield page
            target = page.get("@odata.nextLink")

    async def batch_get(
        self, owner: str, paths: Mapping[str, str], call: Call
    ) -> dict[str, dict[str, Any] | None]:
        """GET many paths (relative to the version root) with `$batch`, 20 at a time.

        Returns each key's JSON body, or None where Graph answered 404. Parts that
        were throttled or failed passingly are sent again in the next batch.
        """
        answers = await self._batch_all(owner, paths, call)
        return {
            key: body if isinstance(body, dict) or body is None else {}
            for key, body in answers.items()
        }

    async def batch_bytes(
        self, owner: str, paths: Mapping[str, str], call: Call
    ) -> dict[str, bytes | Retriable | None]:
        """GET many binary bodies (such as `$value`s) with `$batch`, 20 at a time.

        Graph carries a part's body that is not JSON as a base64 string
        (https://learn.microsoft.com/en-us/graph/json-batching#response-format); it is
        decoded here. None where Graph answered 404; retries as for `batch_get`, but a
        part still failing after them holds its last error, so that one item Graph keeps
        refusing (a damaged message answers 500 every time) fails alone, not its batch.
        """
        answers = await self._batch_all(owner, paths, call, keep_failures=True, links=True)
        decoded: dict[str, bytes | Retriable | None] = {}
        for key, body in answers.items():
            if body is None or isinstance(body, Retriable):
                decoded[key] = body
            elif isinstance(body, str):
                # In C, the alphabet checked as it decodes: `b64decode(validate=True)`
                # checks it with a regular expression first, twice the cost.
                decoded[key] = binascii.a2b_base64(body, strict_mode=True)
            else:
                raise UnexpectedAnswer(f"{call.what}: a $batch part held no base64 body")
        return decoded

    async def _batch_all(
        self,
        owner: str,
        paths: Mapping[str, str],
        call: Call,
        *,
        keep_failures: bool = False,
        links: bool = False,
    ) -> dict[str, Any]:
        """`links`: sent through the links' client (`_send_linked`), not httpx."""
        answers: dict[str, Any] = {}
        keys = list(paths)
        for start in range(0, len(keys), BATCH_LIMIT):
            chunk = {key: paths[key] for key in keys[start : start + BATCH_LIMIT]}
            answers.update(await self._batch_chunk(owner, chunk, call, keep_failures, links))
        return answers

    async def stream_bytes(self, url: str, owner: str, call: Call | None = None) -> bytes:
        """The body of `url` (a `$value`), streamed and checked against Content-Length."""
        described = call or Call(what=f"GET {path_of(url)}", item=True)
        return await self.budgets.run(
            owner, lambda: self._renewing(lambda: self._stream_once(url, described, owner))
        )

    async def message_bytes(self, url: str, owner: str, call: Call) -> bytes:
        """`stream_bytes` of a message's `$value`, read through the links' client (aiohttp,
        `links.py`): a mail run reads hundreds of them, some of megabytes."""
        return await self.budgets.run(
            owner, lambda: self._renewing(lambda: self._message_once(url, call))
        )

    async def download_location(self, url: str, call: Call) -> str:
        """GET a driveItem `/content` with the Graph token; return where its 302 points.

        Graph answers 302 Found to a pre-authenticated, short-lived URL that needs no
        Authorization header (and may refuse one):
        https://learn.microsoft.com/en-us/graph/api/driveitem-get-content#response
        Sent through the links' client with the token of this client's credential: once
        per file, the SDK's transport cost more CPU than the download of a small file
        (`links.py`). Not budgeted here: the caller runs it inside `budgets.run` with the
        download's cost.
        """
        return await self._renewing(lambda: self._location_once(url, call))

    async def _renewing(self, send: Callable[[], Awaitable[T]]) -> T:
        """`send()`; when Graph refuses the token, once more with a fresh one."""
        credential = self._credential
        seen = credential.generation if isinstance(credential, RenewableCredential) else -1
        try:
            return await send()
        except TokenRefused as refused:
            if not isinstance(credential, RenewableCredential):
                raise
            log.warning("Graph refused the access token: asking for a fresh one (%s)", refused)
            credential.renew(seen)
            return await send()

    async def _location_once(self, url: str, call: Call) -> str:
        self._check_host(url)
        with sorted_failures(call, UnexpectedAnswer):
            headers = await self._token_headers()
            async with self._link_client().stream(url, headers) as response:
                # Read the (empty) body even of a redirect: a response left unread may
                # close its connection, and every file would pay a new TLS handshake.
                body = await response.aread()
                location = response.headers.get("Location")
                status = response.status_code
                if 300 <= status < 400 and location:
                    # an absolute Location, as Microsoft documents it, is the link itself:
                    # https://learn.microsoft.com/en-us/graph/api/driveitem-get-content#response
                    absolute = location.startswith(("https://", "http://"))
                    return location if absolute else urljoin(url, location)
                if 200 <= status < 300:
                    raise UnexpectedAnswer(f"{call.what}: HTTP {status}, not 302")
                raise_for_answer(read_answer(response, body), call)
                raise UnexpectedAnswer(f"{call.what}: HTTP {status}")

    @asynccontextmanager
    async def download_stream(
        self, url: str, call: Call, headers: Mapping[str, str]
    ) -> AsyncIterator[LinkAnswer]:
        """A streamed GET of a pre-authenticated download URL, never with the Graph token,
        through the links' own client (aiohttp: see `links.py`).

        A failed answer, and a transport failure while the caller reads the body,
        come out as the table's error (`call.link` marks an expired link).
        Not budgeted here: the caller runs it inside `budgets.run`.
        """
        with sorted_failures(call):
            async with self._link_client().stream(url, headers) as response:
                if not 200 <= response.status_code < 300:
                    raise_for_answer(read_answer(response, await response.aread()), call)
                yield response

    def _link_client(self) -> LinkClient:
        if self._links is None:
            from .links import AiohttpLinks  # imported by the files and mail workloads only

            self._links = AiohttpLinks(self._tls, self._link_connections, user_agent())
        return self._links

    async def aclose(self) -> None:
        """Close the HTTP pools and the credential's own session."""
        await self._http.aclose()
        if self._links is not None:
            await self._links.aclose()
        for pool in self._owner_pools.values():
            await pool.aclose()
        self._owner_pools.clear()
        await asyncio.gather(*self._closing, return_exceptions=True)
        if self._owns_credential:
            await self._credential.close()

    async def _token_headers(self) -> dict[str, str]:
        """The Graph token and immutable ids, which every request to Graph carries."""
        token = await self._credential.get_token(self._scope)
        return {"Authorization": f"Bearer {token.token}", "Prefer": IMMUTABLE_IDS}

    async def _json_headers(self, target: Target) -> dict[str, str]:
        return {
            **await self._token_headers(),
            "Prefer": ", ".join((IMMUTABLE_IDS, *target.prefer)),  # RFC 7240, 2
            "Accept": "application/json",
            # Microsoft asks for it on every request, to find one in its logs:
            # https://learn.microsoft.com/en-us/graph/best-practices-concept#reliability-and-support
            "client-request-id": str(uuid.uuid4()),
        }

    async def _send_json(self, target: Target, call: Call) -> dict[str, Any]:
        url = self._url_of(target)
        self._check_host(url)
        with sorted_failures(call):
            headers = await self._json_headers(target)
            if target.content is None:
                response = await self._http.get(url, headers=headers)
            else:
                headers["Content-Type"] = "application/json"
                response = await self._http.post(url, headers=headers, content=target.content)
        if not response.is_success:
            raise json_error(response, call)
        if not response.content:
            return {}
        return json.loads(response.content)

    async def _send_linked(self, target: Target, call: Call) -> dict[str, Any]:
        """`_send_json` of a POST through the links' client (aiohttp), for the `$batch`es
        of `$value`s: the same host check, headers, error table and no redirects, at a
        quarter of httpx's CPU per byte read (`links.py`)."""
        url = self._url_of(target)
        self._check_host(url)
        with sorted_failures(call):
            headers = await self._json_headers(target)
            headers["Content-Type"] = "application/json"
            link = self._link_client().send("POST", url, headers, target.content)
            async with link as response:
                body = await response.aread()
                if not 200 <= response.status_code < 300:
                    raise json_error(read_answer(response, body), call)
        return loads(body) if body else {}

    def _url_of(self, target: Target) -> str:
        """The absolute URL of `target`, query names spelled `$select` (as kiota's
        ParametersNameDecodingHandler sends them) rather than `%24select`."""
        if isinstance(target.request, str):
            return target.request
        target.request.path_parameters["baseurl"] = self.graph_url
        url = str(target.request.url)
        base, mark, query = url.partition("?")
        if "%" not in query:
            return url
        return base + mark + "&".join(decoded_name(part) for part in query.split("&"))

    async def _batch_chunk(
        self, owner: str, paths: Mapping[str, str], call: Call, keep_failures: bool, links: bool
    ) -> dict[str, Any]:
        """Each part's answer; parts failing passingly are sent again, up to the budget's
        attempts. Then their last error is raised, or with `keep_failures` is their answer."""
        answers: dict[str, Any] = {}
        pending = dict(paths)
        for attempt in range(1, self.budgets.attempts + 1):
            # Graph sends up to four parts of a batch on at once, each counted against the
            # mailbox's concurrency: the batch holds that many of the owner's slots
            # (https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits).
            retry, error = await self.budgets.run(
                owner,
                functools.partial(self._send_batch, owner, pending, call, answers, links),
                cost=len(pending),
                parallel=min(len(pending), BATCH_PARALLEL),
            )
            if not retry:
                return answers
            pending = {key: pending[key] for key in retry if key in pending}
            if attempt < self.budgets.attempts and not isinstance(error, Throttled):
                await self.budgets.backoff(attempt, error.retry_after if error else None)
        failure = error or Retriable(f"{call.what}: $batch parts kept failing")
        if not keep_failures:
            raise failure
        answers.update(dict.fromkeys(pending, failure))
        return answers

    async def _send_batch(
        self,
        owner: str,
        paths: Mapping[str, str],
        call: Call,
        answers: dict[str, Any],
        links: bool,
    ) -> tuple[list[str], Retriable | None]:
        """Post one batch and file its parts while its slots are still held, so that
        throttled parts count against the lane as a throttled request does."""
        envelope = await self._post_batch(paths, call, links)
        return self._sort_parts(owner, paths, envelope, call, answers)

    async def _post_batch(
        self, paths: Mapping[str, str], call: Call, links: bool
    ) -> dict[str, Any]:
        parts = [
            {"id": key, "method": "GET", "url": path, "headers": {"Prefer": IMMUTABLE_IDS}}
            for key, path in paths.items()
        ]
        content = json.dumps({"requests": parts}).encode()
        target = Target(f"{self.graph_url}/$batch", content=content)
        described = replace(call, what=f"$batch: {call.what}")
        send = self._send_linked if links else self._send_json
        return await self._renewing(lambda: send(target, described))

    def _sort_parts(
        self,
        owner: str,
        paths: Mapping[str, str],
        envelope: Mapping[str, Any],
        call: Call,
        answers: dict[str, Any],
    ) -> tuple[list[str], Retriable | None]:
        """File each part's answer (`file_batch_parts`); return the keys to send again and
        the last passing error. Throttled parts pause the lane once for the whole batch
        (with the longest Retry-After any part gave), not once per part."""
        retry, last, throttled = file_batch_parts(paths, envelope, call, answers)
        if throttled:
            waits = [t.retry_after for t in throttled if t.retry_after is not None]
            self.budgets.report_throttled(owner, max(waits) if waits else None)
        return retry, last

    def _owner_http(self, owner: str) -> httpx.AsyncClient:
        """A small pool per owner for `stream_bytes` (contact photos, Teams hosted
        contents; a message's `$value` goes through the links' client instead).

        httpcore scans every pooled connection on each request; one shared pool of
        4 x mailboxes connections cost a fifth of the CPU of a mail run when messages
        were read here (measured by the benchmark's profile). Pools of idle owners are
        closed beyond a few.
        """
        pool = self._owner_pools.pop(owner, None)
        if pool is None:
            pool = http_client(self.settings.ca_file, 1, tls=self._tls)
        self._owner_pools[owner] = pool  # most recently used last
        while len(self._owner_pools) > self._owner_pool_limit:
            idle = self._owner_pools.pop(next(iter(self._owner_pools)))
            self._closing.add(asyncio.ensure_future(idle.aclose()))
        return pool

    async def _stream_once(self, url: str, call: Call, owner: str = "") -> bytes:
        self._check_host(url)
        with sorted_failures(call):
            headers = await self._token_headers()
            async with self._owner_http(owner).stream("GET", url, headers=headers) as response:
                if not response.is_success:
                    await response.aread()
                    raise_for_answer(response, call)
                chunks = [chunk async for chunk in response.aiter_bytes()]
                check_length(response)
                return b"".join(chunks)

    async def _message_once(self, url: str, call: Call) -> bytes:
        self._check_host(url)
        with sorted_failures(call):
            headers = await self._token_headers()
            async with self._link_client().send("GET", url, headers) as response:
                # A body shorter than its Content-Length raises aiohttp's
                # ClientPayloadError, a transport failure.
                body = await response.aread()
                if not 200 <= response.status_code < 300:
                    raise_for_answer(read_answer(response, body), call)
                return body

    def _check_host(self, url: str) -> None:
        """Tokens go to the configured Graph host only, whatever a link says. A URL under
        `source.graph_url` is on its host: no parse (once a file on a drive)."""
        if url.startswith(self._graph_prefix):
            return
        host = urlsplit(url).hostname or ""
        if host.lower() != self._host.lower():
            raise FatalError(f"refusing to send a Graph token to {host!r} (not source.graph_url)")
