"""Credentials: one secret source, errors that name the setting and never show the secret."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, cast

import pytest
import trustme
from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import CertificateCredential, ClientSecretCredential

from hirondelle.connectors.graph import auth
from hirondelle.connectors.graph.auth import GraphSettings, RenewableCredential, make_credential
from hirondelle.migrator.errors import ConfigError

from .conftest import run

SECRET = "s3cr3t-value-never-shown"


def settings(**secret: str) -> GraphSettings:
    return GraphSettings(tenant_id="tenant", client_id="client", **secret)


def test_exactly_one_secret_source() -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        settings()
    with pytest.raises(ConfigError, match="exactly one"):
        settings(client_secret_env="A", client_secret_file="b")


def test_a_missing_environment_variable_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HIRONDELLE_NO_SUCH_VAR", raising=False)
    with pytest.raises(ConfigError) as caught:
        make_credential(settings(client_secret_env="HIRONDELLE_NO_SUCH_VAR"))
    assert caught.value.setting == "source.client_secret_env"
    assert "HIRONDELLE_NO_SUCH_VAR" in str(caught.value)


def test_an_unreadable_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        make_credential(settings(client_secret_file=str(tmp_path / "absent")))
    assert caught.value.setting == "source.client_secret_file"


def test_a_secret_from_env_or_file_builds_a_client_secret_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HIRONDELLE_TEST_SECRET", SECRET)
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    secret_file.chmod(0o600)
    for options in ({"client_secret_env": "HIRONDELLE_TEST_SECRET"},
                    {"client_secret_file": str(secret_file)}):  # fmt: skip
        credential = make_credential(settings(**options))
        assert isinstance(credential._current, ClientSecretCredential)
        assert SECRET not in repr(credential) and SECRET not in repr(credential._current)
        run(credential.close())


def test_a_bad_certificate_is_a_config_error_without_its_content(tmp_path: Path) -> None:
    pem = tmp_path / "app.pem"
    pem.write_text(f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n")
    pem.chmod(0o600)
    with pytest.raises(ConfigError) as caught:
        make_credential(settings(certificate_file=str(pem)))
    assert caught.value.setting == "source.certificate_file"
    assert SECRET not in str(caught.value) and caught.value.__cause__ is None


def test_a_certificate_with_its_key_builds_a_certificate_credential(tmp_path: Path) -> None:
    pem = tmp_path / "app.pem"
    issued = trustme.CA().issue_cert("app.test", key_type=trustme.KeyType.RSA)  # RS256 needs RSA
    issued.private_key_and_cert_chain_pem.write_to_path(str(pem))
    pem.chmod(0o600)
    credential = make_credential(settings(certificate_file=str(pem)))
    assert isinstance(credential._current, CertificateCredential)
    run(credential.close())


class _Counting:
    """An azure-identity credential stand-in: a token lasting `lifetime` s, calls counted."""

    def __init__(self, clock: list[float], lifetime: float) -> None:
        self.clock, self.lifetime, self.calls = clock, lifetime, 0

    async def get_token(self, *scopes: str, **options: Any) -> AccessToken:
        self.calls += 1
        return AccessToken(f"token-{self.calls}", int(self.clock[0] + self.lifetime))

    async def close(self) -> None:
        return None


def test_a_token_is_served_again_for_a_while_then_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1_000_000.0]
    monkeypatch.setattr(auth.time, "time", lambda: clock[0])
    made: list[_Counting] = []

    def factory(lifetime: float) -> RenewableCredential:
        def make() -> AsyncTokenCredential:
            made.append(_Counting(clock, lifetime))
            return cast(AsyncTokenCredential, made[-1])

        return RenewableCredential(make)

    async def scenario() -> None:
        credential = factory(3600)
        first = await credential.get_token("scope")
        assert (await credential.get_token("scope")) is first and made[0].calls == 1
        await credential.get_token("other-scope")  # each scope its own token
        await credential.get_token("scope", claims="challenge")  # options: always asked
        assert made[0].calls == 3
        clock[0] += auth.REUSE_SECONDS + 1
        await credential.get_token("scope")
        assert made[0].calls == 4
        credential.renew(credential.generation)  # a refused token is never served again
        assert (await credential.get_token("scope")).token == "token-1" and made[1].calls == 1
        # a token near its expiry is left to azure-identity's refresh, asked every time
        short = factory(auth.REFRESH_MARGIN - 1)
        await short.get_token("scope")
        await short.get_token("scope")
        assert made[2].calls == 2

    run(scenario())


class _Fetching:
    """A credential whose token is fetched over the network: `get_token` waits on `gate`."""

    def __init__(self, name: str, gate: asyncio.Event | None) -> None:
        self.name, self.gate = name, gate

    async def get_token(self, *scopes: str, **options: Any) -> AccessToken:
        if self.gate is not None:
            await self.gate.wait()
        return AccessToken(f"token-of-{self.name}", int(time.time() + 3600))

    async def close(self) -> None:
        return None


def test_a_token_fetched_by_a_renewed_credential_is_not_served_again() -> None:
    """A fetch that was under way when a refused token renewed the credential ends with the
    old credential's token: it is that caller's, but no later request may be served it (the
    request that renewed retries once, and a second refusal ends the run)."""

    async def scenario() -> None:
        gate = asyncio.Event()
        made: list[_Fetching] = []

        def make() -> AsyncTokenCredential:
            made.append(_Fetching(f"credential-{len(made)}", gate if not made else None))
            return cast(AsyncTokenCredential, made[-1])

        credential = RenewableCredential(make)
        under_way = asyncio.create_task(credential.get_token("scope"))
        await asyncio.sleep(0)  # the fetch waits on the old credential
        credential.renew(credential.generation)  # meanwhile a request's token was refused
        gate.set()
        assert (await under_way).token == "token-of-credential-0"
        assert (await credential.get_token("scope")).token == "token-of-credential-1"

    run(scenario())
