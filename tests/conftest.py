"""Fixtures shared by every test suite: real servers, started once per session on demand,
and a fake clock."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from hirondelle.tests.fake_time import FakeTime
from hirondelle.tests.servers import (
    ApacheDavServer,
    CyrusServer,
    DovecotServer,
    ImapReadBack,
    LighttpdDavServer,
    MailUser,
    NginxDavServer,
    PostgresServer,
    RadicaleServer,
    RcloneDavServer,
    RedisServer,
    SabreDavServer,
    ServerUnavailable,
    SynapseServer,
    WebDavServer,
    WsgiDavServer,
    XandikosServer,
    cyrus_server,
    dav_server,
    dovecot_server,
    postgres_server,
    radicale_server,
    redis_server,
    synapse_python,
    synapse_server,
    webdav_server,
)

# The suite shares two cores with the real servers it starts: a property test whose inputs
# are slow to generate on a busy machine is still a valid test, not a failure.
settings.register_profile(
    "shared-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("shared-machine")

ALICE = MailUser("alice@example.test", "alice-pw")
BOB = MailUser("bob@example.test", "bob-pw")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (pyproject.toml's default): two test processes per core, eight at most
    (each starts its own servers). Most tests wait on servers and on the processes they
    start rather than compute, so one process per core would leave the cores idle; `-n N`
    chooses another number, `-n 0` runs one."""
    return min(8, 2 * len(os.sched_getaffinity(0)))


@pytest.fixture
def fake_time() -> FakeTime:
    """A clock that moves only when the code under test sleeps."""
    return FakeTime()


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """One Dovecot for the whole run: alice and bob, master user `admin`, quota plugin on."""
    with dovecot_server({ALICE.login: ALICE.password, BOB.login: BOB.password}) as server:
        yield server


@pytest.fixture(scope="session")
def cyrus() -> Iterator[CyrusServer]:
    """One Cyrus IMAP for the whole run: "." as hierarchy separator, `admin` as the
    administrator and proxy that logs in as any user (SASL PLAIN authorization id)."""
    with cyrus_server() as server:
        yield server


@pytest.fixture
def imap_server(request: pytest.FixtureRequest) -> ImapReadBack:
    """The IMAP server of the test: Dovecot, unless `both_imap_servers` (tests/servers/imap.py)
    asks for each in turn."""
    server: ImapReadBack = request.getfixturevalue(getattr(request, "param", "dovecot"))
    return server


@pytest.fixture
def mail_user(dovecot: DovecotServer) -> MailUser:
    """A fresh mailbox of its own for one test, on the shared Dovecot."""
    return dovecot.new_user()


@pytest.fixture(scope="session")
def radicale() -> Iterator[RadicaleServer]:
    """One Radicale (CalDAV and CardDAV) for the whole run; `new_user()` gives fresh users."""
    with radicale_server() as server:
        yield server


@pytest.fixture(scope="session")
def xandikos() -> Iterator[XandikosServer]:
    """One Xandikos (CalDAV and CardDAV, multi-user, https) for the whole run."""
    with dav_server(XandikosServer) as server:
        assert isinstance(server, XandikosServer)
        yield server


@pytest.fixture(scope="session")
def apache_dav() -> Iterator[WebDavServer]:
    """One Apache mod_dav for the whole run; `new_user()` gives a user with an empty folder."""
    with webdav_server(ApacheDavServer) as server:
        yield server


@pytest.fixture(scope="session")
def rclone_dav() -> Iterator[WebDavServer]:
    """One `rclone serve webdav` (keeps `X-OC-Mtime`) for the whole run."""
    with webdav_server(RcloneDavServer) as server:
        yield server


@pytest.fixture(scope="session")
def wsgidav_dav() -> Iterator[WebDavServer]:
    """One wsgidav (mtime by PROPPATCH of `getlastmodified`) for the whole run."""
    with webdav_server(WsgiDavServer) as server:
        yield server


@pytest.fixture(scope="session")
def sabre_dav() -> Iterator[WebDavServer]:
    """One SabreDAV (Nextcloud's DAV engine, on PHP's built-in server) for the whole run."""
    with webdav_server(SabreDavServer) as server:
        yield server


@pytest.fixture(scope="session")
def lighttpd_dav() -> Iterator[WebDavServer]:
    """One lighttpd with mod_webdav for the whole run."""
    with webdav_server(LighttpdDavServer) as server:
        yield server


@pytest.fixture(scope="session")
def nginx_dav() -> Iterator[WebDavServer]:
    """One nginx with its dav and dav-ext modules for the whole run."""
    with webdav_server(NginxDavServer) as server:
        yield server


@pytest.fixture(scope="session")
def synapse() -> Iterator[SynapseServer]:
    """One Synapse (Matrix) for the whole run, the tool's application service registered.

    Synapse lives in its own virtualenv: when it is missing the tests fail, naming
    `.ci/install-synapse`, the script that installs it.
    """
    try:
        synapse_python()
    except ServerUnavailable as error:
        pytest.fail(str(error))
    with synapse_server() as server:
        yield server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One private PostgreSQL for the whole run; `new_database()` gives a fresh database."""
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def redis() -> Iterator[RedisServer]:
    """One Redis (the cluster tests' broker) for the whole run; each state has its queue."""
    with redis_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """A fresh, empty state database: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.sqlite"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()
