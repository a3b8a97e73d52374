"""How Hirondelle signs in to Microsoft Graph as an application (client credentials).

The settings name where the secret lives (an environment variable, a file, or a
PEM certificate with its key), never the secret itself. `make_credential` reads
it once and hands it to azure-identity; errors name the setting to fix and never
carry the secret's text.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import CertificateCredential, ClientSecretCredential

from ...migrator.errors import ConfigError
from ...migrator.secret_files import read_secret_bytes
from .clouds import sign_in_host

DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
REUSE_SECONDS = 30.0  # how long a token is served again before azure-identity is asked
# azure-identity refreshes a token this long before it expires (DEFAULT_REFRESH_OFFSET)
REFRESH_MARGIN = 300.0


@dataclass(frozen=True, slots=True)
class GraphSettings:
    """The `[source]` table: which tenant and app, which Graph, and ONE secret source."""

    tenant_id: str
    client_id: str
    graph_url: str = DEFAULT_GRAPH_URL
    authority: str | None = None  # None: graph_url's cloud's; "127.0.0.1:PORT" for the sandbox
    ca_file: str | None = None  # an extra CA to trust (None: the system's)
    client_secret_env: str | None = None
    client_secret_file: str | None = None
    certificate_file: str | None = None
    certificate_password_env: str | None = None

    def __post_init__(self) -> None:
        if not self.tenant_id:
            raise ConfigError("source.tenant_id", "is required")
        if not self.client_id:
            raise ConfigError("source.client_id", "is required")
        sources = [self.client_secret_env, self.client_secret_file, self.certificate_file]
        if sum(1 for source in sources if source) != 1:
            raise ConfigError(
                "source",
                "set exactly one of client_secret_env, client_secret_file or certificate_file",
            )


class RenewableCredential(AsyncTokenCredential):
    """The app's credential, replaced by a fresh one on demand: azure-identity serves its
    cached token until it nears expiry, so a token Graph refused (revoked, or the
    tenant's keys rolled) is only left behind by asking a new credential."""

    def __init__(self, factory: Callable[[], AsyncTokenCredential]) -> None:
        self._factory = factory
        self._current = factory()
        self._retired: list[AsyncTokenCredential] = []
        self.generation = 0  # how many times it was renewed
        # scopes -> (token, until when it is served again without asking azure-identity)
        self._served: dict[tuple[str, ...], tuple[AccessToken, float]] = {}

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """The token for `scopes`. Asked of azure-identity at most every `REUSE_SECONDS`
        (its every answer searched MSAL's cache, a cost on every Graph request), and only
        while the token has more than `REFRESH_MARGIN` to run: azure-identity's own
        refresh, due that long before expiry, is then at most `REUSE_SECONDS` late."""
        if kwargs:  # claims, another tenant...: azure-identity decides
            return await self._current.get_token(*scopes, **kwargs)
        now = time.time()
        served = self._served.get(scopes)
        if served is not None and now < served[1]:
            return served[0]
        generation = self.generation
        token = await self._current.get_token(*scopes)
        if generation == self.generation:  # not renewed during the fetch: its token stands
            until = min(now + REUSE_SECONDS, token.expires_on - REFRESH_MARGIN)
            self._served[scopes] = (token, until)
        return token

    def renew(self, seen: int) -> None:
        """A fresh credential, unless one was made since generation `seen` was read (many
        requests refused at once renew it once)."""
        if seen == self.generation:
            self._retired.append(self._current)
            self._current = self._factory()
            self._served.clear()
            self.generation += 1

    async def close(self) -> None:
        for credential in (*self._retired, self._current):
            await credential.close()
        self._retired.clear()

    async def __aexit__(self, *args: object) -> None:
        await self.close()


def make_credential(settings: GraphSettings) -> RenewableCredential:
    """The app's credential (azure-identity), built from the settings, renewable."""
    return RenewableCredential(lambda: _credential(settings))


def _credential(settings: GraphSettings) -> AsyncTokenCredential:
    """An azure-identity async credential for the app, built from the settings."""
    options: dict[str, str] = {}
    authority = settings.authority or sign_in_host(settings.graph_url)
    if authority:
        options["authority"] = authority
    if settings.ca_file:
        options["connection_verify"] = settings.ca_file
    if settings.certificate_file:
        return _certificate_credential(settings, options)
    secret = _read_client_secret(settings)
    return ClientSecretCredential(settings.tenant_id, settings.client_id, secret, **options)


def _read_client_secret(settings: GraphSettings) -> str:
    if settings.client_secret_env:
        secret = _env_value(settings.client_secret_env, "source.client_secret_env")
        return secret
    path = settings.client_secret_file or ""
    secret = _file_bytes(path, "source.client_secret_file").decode("utf-8", "replace").strip()
    if not secret:
        raise ConfigError("source.client_secret_file", f"the file {path} is empty")
    return secret


def _certificate_credential(
    settings: GraphSettings, options: dict[str, str]
) -> AsyncTokenCredential:
    path = settings.certificate_file or ""
    pem = _file_bytes(path, "source.certificate_file")
    password: bytes | None = None
    if settings.certificate_password_env:
        password = _env_value(
            settings.certificate_password_env, "source.certificate_password_env"
        ).encode()
    try:
        return CertificateCredential(
            settings.tenant_id,
            settings.client_id,
            certificate_data=pem,
            password=password,
            **options,
        )
    except (ValueError, TypeError):
        # The library's message may quote the file; keep only our own words.
        raise ConfigError(
            "source.certificate_file",
            f"{path} is not a PEM certificate with its private key (or the password is wrong)",
        ) from None


def _env_value(name: str, setting: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise ConfigError(setting, f"the environment variable {name} is not set or empty")
    return value


def _file_bytes(path: str, setting: str) -> bytes:
    return read_secret_bytes(Path(path), setting)
