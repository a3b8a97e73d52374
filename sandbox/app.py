"""The sandbox's aiohttp application: Graph's request pipeline, `$batch` and the control routes.

Each Graph request (a `$batch` sub-request included) passes the same pipeline: bearer
token, injected faults, the owning service's throttle (`service.Gate`), then the service
(mail, calendars and contacts, drives, Teams, usage reports). Fault injection acts on
whole HTTP requests, and its errors on each `$batch` part too (Graph answers a part 503
as it does a request: a client that sends most of its reads in batches must still meet
them). `server.SandboxServer` runs this application.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web

from hirondelle.sandbox.auth import AppRegistration, TokenIssuer, add_auth_routes
from hirondelle.sandbox.calendar import CalendarService, MediaResponse
from hirondelle.sandbox.chats import ChatsService
from hirondelle.sandbox.control import ControlError, read_control
from hirondelle.sandbox.drive import DriveService
from hirondelle.sandbox.faults import Fate, FaultInjector, Faults
from hirondelle.sandbox.mail import GraphRequest, GraphResponse, MailService
from hirondelle.sandbox.odata import JSON, GraphError, error_body
from hirondelle.sandbox.reports import ReportsService
from hirondelle.sandbox.resource_units import ResourceUnitLimits, ResourceUnitThrottle
from hirondelle.sandbox.rules import RulesService
from hirondelle.sandbox.service import Service
from hirondelle.sandbox.teams import TeamsService
from hirondelle.sandbox.tenant import Mutation
from hirondelle.sandbox.throttle import Limits, MailboxThrottle

if TYPE_CHECKING:
    from hirondelle.sandbox.tenant import Tenant

MAX_BATCH = 20  # https://learn.microsoft.com/en-us/graph/json-batching
BATCH_PARALLEL = 4  # parts Graph sends on at once (throttling-limits, Outlook service limits)
CHUNK = 64 * 1024


@dataclass
class _Stats:
    requests: int = 0
    throttled: int = 0
    batches: int = 0
    unauthorized: int = 0  # requests refused with 401 (a missing, expired or revoked token)
    faults: Counter[str] = field(default_factory=Counter)
    user_agents: Counter[str] = field(default_factory=Counter)
    by_mailbox: dict[str, Counter[str]] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "throttled": self.throttled,
            "batches": self.batches,
            "unauthorized": self.unauthorized,
            "faults": dict(self.faults),
            "user_agents": dict(self.user_agents),
            "by_mailbox": {
                mailbox: {k: c[k] for k in ("requests", "throttled", "peak_in_flight")}
                for mailbox, c in self.by_mailbox.items()
            },
        }


class SandboxApp:
    """The aiohttp application and the state its handlers share (one event loop)."""

    def __init__(self, tenant: Tenant, app: AppRegistration, limits: Limits, faults: Faults):
        self.tenant = tenant
        self.issuer = TokenIssuer(app)
        self.throttle = MailboxThrottle(limits)  # Outlook: mail, calendars, contacts
        self.injector = FaultInjector(faults)
        self.mail = MailService(tenant, self.throttle)
        # Served in order: the first that owns a request's path answers it.
        self.services: list[Service] = [self.mail, CalendarService(tenant, self.throttle)]
        self.stats = _Stats()
        # SharePoint: OneDrive and libraries, with their own resource-unit budget per tenant.
        units = ResourceUnitLimits(enabled=limits.enabled, scale=limits.scale)
        self.drive = DriveService(
            tenant, ResourceUnitThrottle(units), self._draw_fate, self.stats.faults
        )
        self.services.insert(0, self.drive)  # before mail, which answers any short path
        self.teams = TeamsService(tenant, self.throttle)
        self.services.insert(0, self.teams)  # groups, teams, channels
        self.services.insert(0, ChatsService(tenant, self.teams))  # before mail's /users
        self.reports = ReportsService(tenant)  # usage reports, tenant-wide
        self.services.insert(0, self.reports)
        # Inbox rules and mailbox settings, before mail, which answers any mailFolders path.
        self.services.insert(0, RulesService(tenant, self.throttle))

    def build(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        add_auth_routes(app, self.issuer)
        app.router.add_post("/_sandbox/mutate", self._control_mutate)
        app.router.add_post("/_sandbox/faults", self._control_faults)
        app.router.add_post("/_sandbox/limits", self._control_limits)
        app.router.add_get("/_sandbox/stats", self._control_stats)
        app.router.add_post("/_sandbox/expire-delta-tokens", self._control_expire)
        app.router.add_post("/_sandbox/revoke-tokens", self._control_revoke)
        app.router.add_route("*", "/v1.0/{tail:.*}", self._graph)
        app.router.add_get(
            "/_download/{ticket}", self.drive.downloads.download
        )  # pre-authenticated
        app.router.add_get("/_reports/{ticket}", self.reports.download)  # pre-authenticated
        return app

    def _draw_fate(self) -> Fate:
        return self.injector.draw()  # `set_faults` replaces the injector: look it up each time

    # -- the Graph pipeline ---------------------------------------------------------

    async def _graph(self, request: web.Request) -> web.StreamResponse:
        self.stats.user_agents[request.headers.get("User-Agent", "")] += 1
        client_id = request.headers.get("client-request-id")
        if not self.issuer.is_valid(request.headers.get("Authorization")):
            self.stats.unauthorized += 1
            message = "Access token is empty or not one this service issued."
            return _error(GraphError(401, "InvalidAuthenticationToken", message), client_id)
        fate = self.injector.draw()
        if fate is Fate.RESET:
            return self._reset(request)
        if fate is Fate.ERROR:
            self.stats.faults["error"] += 1
            error = GraphError(503, "ServiceUnavailable", "The service is temporarily unavailable.")
            error.headers["Retry-After"] = "1"
            return _error(error, client_id)
        slow = self.injector.faults.slow_seconds
        graph_request = await self._graph_request(request)
        if graph_request.segments == ["$batch"] and request.method == "POST":
            return await self._batch(request, graph_request)  # each part is slowed alone
        try:
            service = self._service(graph_request)
            async with self._admitted(service, graph_request):
                await asyncio.sleep(slow)  # holding the mailbox's concurrency slot
                response = service.handle(graph_request)
                if response.mime is not None:
                    return await self._stream_mime(request, response, fate is Fate.TRUNCATE)
                return _json_response(response)
        except GraphError as error:
            return _error(error, client_id)

    async def _graph_request(self, request: web.Request) -> GraphRequest:
        raw_path = request.raw_path.split("?", 1)[0]
        tail = raw_path[len("/v1.0") :]
        base = f"{request.scheme}://{request.host}/v1.0"
        return GraphRequest.create(request.method, tail, dict(request.query), request.headers, base)

    def _service(self, graph_request: GraphRequest) -> Service:
        for service in self.services:
            if service.owns(graph_request):
                return service
        path = "/".join(graph_request.segments)
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{path}'.")

    @contextlib.asynccontextmanager
    async def _admitted(self, service: Service, graph_request: GraphRequest) -> AsyncIterator[None]:
        """Count the request against its gate's key; refuse with 429 over a limit."""
        gate = service.gate(graph_request)
        mailbox = gate.key if gate else None
        self.stats.requests += 1
        counters: Counter[str] = Counter()
        if mailbox:
            counters = self.stats.by_mailbox.setdefault(mailbox, Counter())
        counters["requests"] += 1
        refusal = gate.throttle.admit(mailbox) if gate and mailbox else None
        if refusal is not None:
            self.stats.throttled += 1
            counters["throttled"] += 1
            # Observed Outlook wording; the status and Retry-After are documented at
            # https://learn.microsoft.com/en-us/graph/throttling
            message = f"Application is over its {refusal.limit} limit."
            headers = dict(getattr(refusal, "headers", {}))
            if refusal.retry_after is not None:
                headers["Retry-After"] = str(refusal.retry_after)
            raise GraphError(
                getattr(refusal, "status", 429),  # SharePoint's refusals carry their own
                getattr(refusal, "code", "ApplicationThrottled"),
                getattr(refusal, "message", message),
                headers,
            )
        counters["in_flight"] += 1
        counters["peak_in_flight"] = max(counters["peak_in_flight"], counters["in_flight"])
        try:
            yield
        finally:
            counters["in_flight"] -= 1
            if gate and mailbox:
                gate.throttle.release(mailbox)

    async def _stream_mime(
        self, request: web.Request, response: GraphResponse, truncate: bool
    ) -> web.StreamResponse:
        """Send the MIME bytes chunk by chunk; a truncation fault stops halfway and closes."""
        assert response.mime is not None
        user_id, message_id = response.mime
        size = self.tenant.message(user_id, message_id).size
        stream = web.StreamResponse(status=200, headers=response.headers)
        stream.content_type = "text/plain"
        stream.content_length = size
        await stream.prepare(request)
        limit = size // 2 if truncate else size
        chunks = self._mime_chunks(user_id, message_id)
        sent = 0
        while sent < limit:
            chunk = await asyncio.to_thread(next, chunks, b"")
            if not chunk:
                break
            await stream.write(chunk[: limit - sent])
            sent += len(chunk)
        if truncate:
            self.stats.faults["truncate"] += 1
            if request.transport is not None:
                request.transport.close()
            raise asyncio.CancelledError  # the connection is gone: nothing more to send
        await stream.write_eof()
        return stream

    def _mime_chunks(self, user_id: str, message_id: str) -> Iterator[bytes]:
        """The tenant's own chunked reader when it has one, else slices of `mime()`."""
        reader = getattr(self.tenant, "mime_chunks", None)
        if reader is not None:
            return iter(reader(user_id, message_id, CHUNK))
        mime = memoryview(self.tenant.mime(user_id, message_id))
        return (bytes(mime[i : i + CHUNK]) for i in range(0, len(mime), CHUNK))

    def _reset(self, request: web.Request) -> web.StreamResponse:
        self.stats.faults["reset"] += 1
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError  # no response at all: the peer sees a reset

    async def _batch(self, request: web.Request, envelope: GraphRequest) -> web.StreamResponse:
        """JSON batching (https://learn.microsoft.com/en-us/graph/json-batching).

        Each part is routed and throttled on its own, as its own request: it sees its
        own headers only (a `Prefer` on the envelope does not reach the parts). Graph
        dispatches up to four parts at once, whatever mailbox they target, so a batch
        holds up to four of a mailbox's concurrency slots and its parts are refused
        with 429 when other requests hold the rest ("Outlook service limits" in
        https://learn.microsoft.com/en-us/graph/throttling-limits). Parts with
        `dependsOn` run in order, and a part whose dependency failed answers 424.
        """
        self.stats.batches += 1
        client_id = request.headers.get("client-request-id")
        try:
            body = await request.json()
            steps = body["requests"]
            if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
                raise TypeError("requests is not a list of objects")
        except (ValueError, KeyError, TypeError):
            return _error(GraphError(400, "BadRequest", "Invalid batch payload."), client_id)
        if len(steps) > MAX_BATCH:
            message = f"The number of batch requests exceeds the limit of {MAX_BATCH}."
            return _error(GraphError(400, "BadRequest", message), client_id)
        ids = [str(step.get("id")) for step in steps]
        if len(set(ids)) != len(ids):
            return _error(GraphError(400, "BadRequest", "Batch request ids must be unique."))
        if any(step.get("dependsOn") for step in steps):
            answers = await self._batch_in_order(steps, envelope)
        else:
            dispatch = asyncio.Semaphore(BATCH_PARALLEL)

            async def dispatched(step: Mapping[str, Any]) -> JSON:
                async with dispatch:
                    return await self._batch_step(step, envelope)

            answers = list(await asyncio.gather(*(dispatched(step) for step in steps)))
        return web.json_response({"responses": answers})

    async def _batch_in_order(
        self, steps: list[Mapping[str, Any]], envelope: GraphRequest
    ) -> list[JSON]:
        """Parts one after the other; a failed dependency fails its dependants with 424."""
        failed: set[str] = set()
        answers: list[JSON] = []
        for step in steps:
            depends = [str(d) for d in step.get("dependsOn") or []]
            if failed.intersection(depends):
                error = GraphError(424, "FailedDependency", "A dependency of this request failed.")
                answer = _part_error(str(step.get("id")), error)
            else:
                answer = await self._batch_step(step, envelope)
            if not 200 <= int(answer["status"]) < 300:
                failed.add(str(step.get("id")))
            answers.append(answer)
        return answers

    async def _batch_step(self, step: Mapping[str, Any], envelope: GraphRequest) -> JSON:
        parts = urlsplit("/" + str(step.get("url", "")).lstrip("/"))
        sub = GraphRequest.create(
            str(step.get("method", "GET")).upper(),
            parts.path,
            dict(parse_qsl(parts.query, keep_blank_values=True)),
            {str(k): str(v) for k, v in (step.get("headers") or {}).items()},
            envelope.base_url,
        )
        answer: JSON = {"id": str(step.get("id"))}
        try:
            if self.injector.draw() is Fate.ERROR:  # a reset or a cut body is the envelope's
                self.stats.faults["error"] += 1
                unavailable = GraphError(503, "ServiceUnavailable", "The service is busy.")
                unavailable.headers["Retry-After"] = "1"
                raise unavailable
            if sub.segments == ["$batch"]:
                raise GraphError(400, "BadRequest", "Nested batch requests are not supported.")
            service = self._service(sub)
            async with self._admitted(service, sub):
                await asyncio.sleep(self.injector.faults.slow_seconds)  # holding its slot
                response = service.handle(sub)
                if response.mime is not None:
                    mime = await asyncio.to_thread(self.tenant.mime, *response.mime)
                    headers = {**response.headers, "Content-Type": "text/plain"}
                    body: Any = base64.b64encode(mime).decode("ascii")
                    return {**answer, "status": 200, "headers": headers, "body": body}
                if isinstance(response, MediaResponse):  # binary bodies travel base64-encoded
                    media = base64.b64encode(response.content).decode("ascii")
                    return {**answer, "status": 200, "headers": response.headers, "body": media}
                headers = {**response.headers, "Content-Type": "application/json"}
                return {
                    **answer,
                    "status": response.status,
                    "headers": headers,
                    "body": response.body,
                }
        except GraphError as error:
            return _part_error(answer["id"], error)

    # -- control endpoints (no auth: for a sandbox in another process) -------------------

    async def _control_mutate(self, request: web.Request) -> web.Response:
        try:
            mutation = read_control(await request.read(), Mutation)
            if mutation.user is not None:
                self.tenant.user(mutation.user)
        except ControlError as exc:
            return _refused(str(exc))
        except KeyError:
            return _refused(f"user: no user has the id or name {mutation.user!r}")
        return web.json_response(asdict(self.tenant.mutate(mutation)))

    async def _control_faults(self, request: web.Request) -> web.Response:
        try:
            self.injector = FaultInjector(read_control(await request.read(), Faults))
        except ControlError as exc:
            return _refused(str(exc))
        return web.json_response(asdict(self.injector.faults))

    async def _control_limits(self, request: web.Request) -> web.Response:
        try:
            self.throttle.configure(read_control(await request.read(), Limits))
        except ControlError as exc:
            return _refused(str(exc))
        return web.json_response(asdict(self.throttle.limits))

    async def _control_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.snapshot())

    async def _control_expire(self, request: web.Request) -> web.Response:
        self.expire_delta_tokens()
        return web.json_response({"expired_below": self.mail.expired_below})

    async def _control_revoke(self, request: web.Request) -> web.Response:
        return web.json_response({"revoked": self.issuer.revoke_all()})

    def expire_delta_tokens(self) -> None:
        """Every workload's delta tokens (and mail's skip tokens) issued so far expire."""
        self.tenant.expire_delta_tokens()
        self.mail.expire_delta_tokens()


def _refused(reason: str) -> web.Response:
    """A control request refused: 400 with the reason (see `sandbox/control.py`)."""
    return web.json_response({"error": reason}, status=400)


def _json_response(response: GraphResponse) -> web.Response:
    if isinstance(response, MediaResponse):  # binary content such as a contact photo
        return web.Response(body=response.content, status=response.status, headers=response.headers)
    if response.body is None:  # a redirect such as a report's 302 to its download
        return web.Response(status=response.status, headers=response.headers)
    return web.json_response(response.body, status=response.status, headers=response.headers)


def _part_error(part_id: str, error: GraphError) -> JSON:
    """A `$batch` part's error answer, in the same envelope as a whole request's."""
    headers = {**error.headers, "Content-Type": "application/json"}
    body = error_body(error.code, error.message, headers.get("client-request-id"))
    return {"id": part_id, "status": error.status, "headers": headers, "body": body}


def _error(error: GraphError, client_request_id: str | None = None) -> web.Response:
    body = error_body(error.code, error.message, client_request_id)
    return web.json_response(body, status=error.status, headers=error.headers)
