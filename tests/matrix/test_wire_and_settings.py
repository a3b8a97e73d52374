"""The Matrix target's settings, registration file and error table (no server needed)."""

from __future__ import annotations

import re

import httpx
import pytest

from hirondelle.connectors.matrix import MatrixSettings, registration_yaml
from hirondelle.connectors.matrix_wire import MatrixConnection, RateLimiter, slug
from hirondelle.migrator.errors import ConfigError, FatalError, Refused, Retriable, SkipItem


def _connection(status: int, body: dict[str, object], headers: dict[str, str] | None = None):
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers or {})

    client = httpx.Client(base_url="http://127.0.0.1:1", transport=httpx.MockTransport(answer))
    return MatrixConnection(client, "secret-token", "targets.chat.as_token_env", RateLimiter(None))


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, {"errcode": "M_UNKNOWN_TOKEN"}, FatalError),
        (403, {"errcode": "M_FORBIDDEN"}, FatalError),
        (429, {"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 2500}, Retriable),
        (502, {}, Retriable),
        (413, {"errcode": "M_TOO_LARGE"}, SkipItem),
    ],
)
def test_error_table(status: int, body: dict[str, object], expected: type[Exception]) -> None:
    with pytest.raises(expected) as raised:
        _connection(status, body).call("PUT", "/_matrix/client/v3/rooms/x/send/m.room.message/1")
    assert "secret-token" not in str(raised.value)
    if expected is FatalError:
        assert "targets.chat.as_token_env" in str(raised.value)
    if status == 429:
        assert raised.value.retry_after == 2.5  # type: ignore[attr-defined]  # a RateLimited, checked by the status


def test_retry_after_header_and_other_client_errors() -> None:
    with pytest.raises(Retriable) as raised:
        _connection(429, {}, {"Retry-After": "3"}).call("GET", "/x")
    assert raised.value.retry_after == 3.0
    with pytest.raises(Refused):  # a failure of that item, kept and counted
        _connection(400, {"errcode": "M_BAD_JSON"}).call("PUT", "/x", item=True)
    with pytest.raises(FatalError):
        _connection(400, {"errcode": "M_BAD_JSON"}).call("PUT", "/x")


def test_connection_reset_is_retriable() -> None:
    def reset(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset", request=request)

    client = httpx.Client(base_url="http://127.0.0.1:1", transport=httpx.MockTransport(reset))
    connection = MatrixConnection(client, "t", "hint", RateLimiter(None))
    with pytest.raises(Retriable):
        connection.call("GET", "/x")


def test_plain_http_only_on_loopback() -> None:
    with pytest.raises(ConfigError, match=r"targets\.chat\.homeserver"):
        MatrixSettings("http://matrix.example.org", "example.org", as_token_env="T")
    MatrixSettings("http://127.0.0.1:8008", "localhost", as_token_env="T")
    MatrixSettings("https://matrix.example.org", "example.org", as_token_env="T")


def test_each_mode_needs_its_token_setting() -> None:
    with pytest.raises(ConfigError, match=r"targets\.chat\.access_token_env"):
        MatrixSettings("https://m.example.org", "example.org", mode="bot", as_token_env="T")
    with pytest.raises(ConfigError, match=r"targets\.chat\.mode"):
        MatrixSettings("https://m.example.org", "example.org", mode="puppet", as_token_env="T")
    with pytest.raises(ConfigError, match=r"targets\.chat\.deleted"):
        MatrixSettings("https://m.example.org", "example.org", as_token_env="T", deleted="x")


def test_missing_token_variable_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HIRONDELLE_NO_SUCH_TOKEN", raising=False)
    settings = MatrixSettings(
        "https://m.example.org", "e.org", as_token_env="HIRONDELLE_NO_SUCH_TOKEN"
    )
    with pytest.raises(ConfigError, match="HIRONDELLE_NO_SUCH_TOKEN"):
        settings.read_token()


def test_registration_claims_the_puppet_and_alias_namespaces() -> None:
    settings = MatrixSettings("https://m.example.org", "example.org", as_token_env="T")
    text = registration_yaml(settings, "as-secret", "hs-secret")
    assert "\nurl: null\n" in text and "rate_limited: false" in text
    assert 'as_token: "as-secret"' in text and 'hs_token: "hs-secret"' in text
    assert '\nsender_localpart: "hirondelle"\n' in text
    regexes = re.findall(r'regex: "(.*)"', text)
    user_regex = regexes[0].replace("\\\\", "\\")
    assert re.fullmatch(user_regex, "@_m365_0123abcd:example.org")
    assert not re.fullmatch(user_regex, "@alice:example.org")
    assert not re.fullmatch(user_regex, "@_m365_x:exampleXorg")  # the dot is escaped
    assert "exclusive: false" not in text  # real users only with masquerade_real_users


def test_slugs_are_ascii_alias_parts() -> None:
    assert slug("Ventes Équipe / Général") == "ventes-equipe-general"
    assert slug("日本") == "x"


def test_rate_limiter_spaces_calls() -> None:
    import time

    limiter = RateLimiter(20.0)
    started = time.monotonic()
    for _ in range(5):
        limiter.wait()
    assert time.monotonic() - started >= 0.19
