"""The sandbox HTTP server: a local Microsoft Graph (mail part) over a synthetic tenant.

A real aiohttp server speaking Graph's wire format, so that the msgraph SDK,
azure-identity and the migration engine run against it unchanged. The application
(the request pipeline, `$batch`, the control routes) is `app.SandboxApp`.
`SandboxServer` runs it on its own event loop in a daemon thread for tests and the
demo; `serve_forever` backs `hirondelle sandbox serve`.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aiohttp import web

from hirondelle.sandbox.app import SandboxApp
from hirondelle.sandbox.auth import AppRegistration
from hirondelle.sandbox.faults import FaultInjector, Faults
from hirondelle.sandbox.resource_units import ResourceUnitLimits
from hirondelle.sandbox.tenant import Mutation
from hirondelle.sandbox.throttle import Limits
from hirondelle.sandbox.tls import SandboxPki, create_pki

if TYPE_CHECKING:
    from hirondelle.sandbox.tenant import Tenant

__all__ = ["Faults", "Limits", "SandboxServer", "serve_forever"]

READY_DEADLINE_SECONDS = 10.0


class SandboxServer:
    """The sandbox on its own event loop in a daemon thread; a context manager."""

    def __init__(
        self,
        tenant: Tenant,
        *,
        tls: bool = True,
        limits: Limits | None = None,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.tenant = tenant
        self.tls = tls
        self.host = host
        self._requested_port = port
        self._directory = Path(tempfile.mkdtemp(prefix="hirondelle-sandbox-"))
        self._pki: SandboxPki = create_pki(self._directory)
        self.app = AppRegistration(public_key=self._pki.client_public_key)
        self._state = SandboxApp(tenant, self.app, limits or Limits(), faults or Faults())
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start serving; return once the port accepts connections."""
        self._thread.start()
        self.port = self._call(self._start_site())
        _wait_for_port(self.host, self.port, READY_DEADLINE_SECONDS)

    def stop(self) -> None:
        """Stop serving, end the loop thread and remove the certificates."""
        if self._thread.is_alive():
            if self._runner is not None:
                self._call(self._runner.cleanup())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if not self._loop.is_running():
            self._loop.close()
        shutil.rmtree(self._directory, ignore_errors=True)

    async def _start_site(self) -> int:
        self._runner = web.AppRunner(self._state.build(), access_log=None, handle_signals=False)
        await self._runner.setup()
        context = self._pki.server_context() if self.tls else None
        site = web.TCPSite(self._runner, self.host, self._requested_port, ssl_context=context)
        await site.start()
        return int(self._runner.addresses[0][1])

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    # -- what callers read ------------------------------------------------------------

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def graph_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.authority}/v1.0"

    @property
    def tenant_id(self) -> str:
        return self.app.tenant_id

    @property
    def client_id(self) -> str:
        return self.app.client_id

    @property
    def client_secret(self) -> str:
        return self.app.client_secret

    @property
    def ca_file(self) -> str | None:
        return str(self._pki.ca_file) if self.tls else None

    @property
    def client_cert_file(self) -> str:
        return str(self._pki.client_cert_file)

    # -- control ----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters so far: requests, throttled, by_mailbox, user_agents, faults, batches."""
        return self._on_loop(self._state.stats.snapshot)

    def set_faults(self, faults: Faults) -> None:
        self._on_loop(lambda: setattr(self._state, "injector", FaultInjector(faults)))

    def set_limits(self, limits: Limits) -> None:
        self._on_loop(lambda: self._state.throttle.configure(limits))

    def set_resource_units(self, limits: ResourceUnitLimits) -> None:
        """SharePoint's resource-unit budget for drive requests, counted afresh."""
        self._on_loop(lambda: self._state.drive.throttle.configure(limits))

    def set_protected_apis(self, approved: bool) -> None:
        """Whether Microsoft approved the app for Teams' protected APIs (channel messages)."""
        self._on_loop(lambda: setattr(self._state.teams, "protected_apis_approved", approved))

    def set_reports(self, *, forbidden: bool = False, concealed: bool = False) -> None:
        """Usage reports refused (an app without Reports.Read.All), or names concealed."""
        reports = self._state.reports

        def switch() -> None:
            reports.forbidden, reports.concealed = forbidden, concealed

        self._on_loop(switch)

    def mutate(self, mutation: Mutation) -> Any:
        """Mutate the tenant on the server's loop, between two requests."""
        return self._on_loop(lambda: self.tenant.mutate(mutation))

    def expire_delta_tokens(self) -> None:
        """Every delta and skip token issued so far becomes expired (410 Gone)."""
        self._on_loop(self._state.expire_delta_tokens)

    def revoke_tokens(self) -> int:
        """Every access token issued so far is refused with 401 from now on."""
        return int(self._on_loop(self._state.issuer.revoke_all))

    def _on_loop(self, action: Any) -> Any:
        async def run() -> Any:
            return action()

        return self._call(run())


def _wait_for_port(host: str, port: int, deadline_seconds: float) -> None:
    deadline = time.monotonic() + deadline_seconds
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def serve_forever(
    tenant: Tenant,
    host: str = "127.0.0.1",
    port: int = 8443,
    tls: bool = True,
    limits: Limits | None = None,
    faults: Faults | None = None,
    *,
    reports_forbidden: bool = False,
    conceal_names: bool = False,
) -> None:
    """Serve until interrupted, printing what a client needs to connect."""
    with SandboxServer(tenant, tls=tls, limits=limits, faults=faults, host=host, port=port) as sb:
        sb.set_reports(forbidden=reports_forbidden, concealed=conceal_names)
        print(f"Graph URL:      {sb.graph_url}")
        print(f"Authority:      {sb.authority}")
        print(f"CA file:        {sb.ca_file or '(plain http)'}")
        print(f"Tenant id:      {sb.tenant_id}")
        print(f"Client id:      {sb.client_id}")
        print(f"Client secret:  {sb.client_secret}  (a fixed public test value)")
        print(f"App cert + key: {sb.client_cert_file}")
        print("Control:        POST /_sandbox/mutate | faults | limits | expire-delta-tokens,")
        print("                GET /_sandbox/stats. Press Ctrl-C to stop.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
