"""The error table: each Graph failure lands in exactly one engine error kind."""

from __future__ import annotations

import email.utils

import pytest

from hirondelle.connectors.graph.errors import (
    Call,
    Failure,
    ProtectedApiRefused,
    Throttled,
    parse_retry_after,
    to_error,
)
from hirondelle.migrator.errors import CursorExpired, FatalError, Retriable, SkipItem

MAIL = Call("read folder", permission="Mail.Read")


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_is_retriable_with_its_delay(status: int) -> None:
    error = to_error(Failure(status, retry_after=7.0), MAIL)
    assert isinstance(error, Throttled)
    assert error.retry_after == 7.0


@pytest.mark.parametrize("status", [500, 502, 504])
def test_server_errors_are_retriable_but_not_throttling(status: int) -> None:
    error = to_error(Failure(status), MAIL)
    assert isinstance(error, Retriable)
    assert not isinstance(error, Throttled)


def test_a_reset_connection_is_retriable() -> None:
    assert isinstance(to_error(Failure(None, detail="ReadError"), MAIL), Retriable)


def test_forbidden_names_the_permission_to_grant() -> None:
    users = to_error(
        Failure(403, "Authorization_RequestDenied"), Call("list users", "User.Read.All")
    )
    mail = to_error(Failure(403, "ErrorAccessDenied"), MAIL)
    assert isinstance(users, FatalError) and "User.Read.All" in str(users)
    assert isinstance(mail, FatalError) and "Mail.Read" in str(mail)


def test_unauthorized_names_the_credential_settings() -> None:
    error = to_error(Failure(401, "InvalidAuthenticationToken"), MAIL)
    assert isinstance(error, FatalError)
    assert "source.client_secret_env" in str(error)


def test_not_found_skips_an_item_only() -> None:
    assert isinstance(to_error(Failure(404, "ErrorItemNotFound"), Call("m", item=True)), SkipItem)
    assert to_error(Failure(404, "ErrorItemNotFound"), MAIL) is None


@pytest.mark.parametrize(
    ("status", "code"), [(410, ""), (410, "syncStateNotFound"), (400, "SyncStateNotFound")]
)
def test_an_expired_delta_link_asks_for_a_new_enumeration(status: int, code: str) -> None:
    assert isinstance(to_error(Failure(status, code), Call("delta", cursor=True)), CursorExpired)


def test_gone_without_a_cursor_and_other_client_errors_propagate() -> None:
    assert to_error(Failure(410), MAIL) is None
    assert to_error(Failure(400, "BadRequest"), Call("delta", cursor=True)) is None


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert parse_retry_after({"Retry-After": "12"}) == 12.0
    assert parse_retry_after({"retry-after": "3.5"}) == 3.5
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after({"Retry-After": date}, now=1_000_000) == pytest.approx(30.0)
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None


def test_a_protected_api_refusal_points_at_microsofts_approval_not_a_permission() -> None:
    # The refusal an unapproved app meets (github.com/leeford/Backup-TeamsChat/issues/12);
    # the approval process: https://learn.microsoft.com/en-us/graph/teams-protected-apis
    message = (
        "Invoked API requires Protected API access in application-only context when not "
        "using Resource Specific Consent. Visit https://docs.microsoft.com/en-us/graph/"
        "teams-protected-apis for more details."
    )
    call = Call("messages of Projet/Général", "ChannelMessage.Read.All")
    error = to_error(Failure(403, "Forbidden", message=message), call)
    assert isinstance(error, ProtectedApiRefused) and isinstance(error, FatalError)
    text = str(error)
    assert "https://learn.microsoft.com/en-us/graph/teams-protected-apis" in text
    assert "approv" in text and "Grant the application permission" not in text
    plain = to_error(Failure(403, "Forbidden", message="Missing role permissions."), call)
    assert "Grant the application permission ChannelMessage.Read.All" in str(plain)
