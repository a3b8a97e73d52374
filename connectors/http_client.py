"""The one way the httpx-based targets (CalDAV/CardDAV, Matrix) open an HTTP client.

Certificates are verified against the settings' CA file or the system store (the context
is shared, `credentials.tls_context`); proxies come from the environment (HTTP_PROXY,
HTTPS_PROXY, NO_PROXY: httpx's `trust_env`); the password, when there is one, only
travels in the Basic authentication header. The WebDAV target's client is urllib3's
(`webdav_chunked.DavHttp`, for its lower CPU cost) with the same TLS context and proxies.
"""

from __future__ import annotations

import httpx

from .credentials import Login
from .target_settings import TargetSettings

USER_AGENT = "hirondelle"


def http_client(
    settings: TargetSettings, *, login: Login | None = None, base_url: str = ""
) -> httpx.Client:
    """A client with the settings' TLS context and timeout, logged in as `login` (Basic)."""
    return httpx.Client(
        base_url=base_url,
        auth=httpx.BasicAuth(login.auth_user, login.password) if login is not None else None,
        verify=settings.tls(),
        timeout=settings.timeout,
        headers={"User-Agent": USER_AGENT},
    )
