"""Fixtures shared by every test suite: real servers, started once per session on demand."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hirondelle.tests.servers import (
    DovecotServer,
    MailUser,
    RadicaleServer,
    dovecot_server,
    radicale_server,
)

ALICE = MailUser("alice@example.test", "alice-pw")
BOB = MailUser("bob@example.test", "bob-pw")


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """One Dovecot for the whole run: alice and bob, master user `admin`, quota plugin on."""
    with dovecot_server({ALICE.login: ALICE.password, BOB.login: BOB.password}) as server:
        yield server


@pytest.fixture
def mail_user(dovecot: DovecotServer) -> MailUser:
    """A fresh mailbox of its own for one test, on the shared Dovecot."""
    return dovecot.new_user()


@pytest.fixture(scope="session")
def radicale() -> Iterator[RadicaleServer]:
    """One Radicale (CalDAV and CardDAV) for the whole run; `new_user()` gives fresh users."""
    with radicale_server() as server:
        yield server
