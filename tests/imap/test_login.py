"""Logging in: per-user passwords, master user, refusals, TLS verification."""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from hirondelle.connectors import credentials
from hirondelle.connectors.imap import ImapSettings, ImapTarget, read_password_file
from hirondelle.migrator.errors import ConfigError, FatalError, OwnerFailed, Unreachable
from hirondelle.migrator.model import Owner
from hirondelle.migrator.registry import settings_of
from hirondelle.tests.servers import (
    MASTER_PASSWORD,
    DovecotServer,
    ImapReadBack,
    MailUser,
    dovecot_server,
    free_port,
    issue_tls,
)


def owner(user: MailUser) -> Owner:
    return Owner(upn=user.login, source_id="x")


def test_a_wrong_password_fails_that_owner_and_names_the_setting(
    dovecot: DovecotServer, mail_user: MailUser, tmp_path: Path
) -> None:
    wrong = MailUser(mail_user.login, "not-the-password-123")
    settings = ImapSettings(
        host=dovecot.host,
        port=dovecot.port,
        security="plain",
        password_file=dovecot.password_file(tmp_path / "passwords", wrong),
    )
    with pytest.raises(OwnerFailed) as raised:
        ImapTarget(settings).open(owner(mail_user))
    message = str(raised.value)
    assert "targets.mail.password_file" in message and mail_user.login in message
    assert wrong.password not in message and wrong.password not in repr(raised.value.__cause__)


def test_a_server_that_is_down_is_unreachable(mail_user: MailUser, tmp_path: Path) -> None:
    """Nothing could be sent: the engine waits for the server (`run.target_wait_seconds`)."""
    (tmp_path / "passwords").write_text(f"{mail_user.login}:{mail_user.password}\n")
    (tmp_path / "passwords").chmod(0o600)
    settings = ImapSettings(
        host="127.0.0.1", port=free_port(), security="plain", password_file=tmp_path / "passwords"
    )
    with pytest.raises(Unreachable, match="cannot be reached"):
        ImapTarget(settings).open(owner(mail_user))


def test_a_missing_password_fails_that_owner(dovecot: DovecotServer, tmp_path: Path) -> None:
    (tmp_path / "passwords").write_text("someone@example.test:pw\n")
    (tmp_path / "passwords").chmod(0o600)
    settings = ImapSettings(
        host=dovecot.host, port=dovecot.port, security="plain", password_file=tmp_path / "passwords"
    )
    with pytest.raises(OwnerFailed, match="no password for nobody@example.test"):
        ImapTarget(settings).open(Owner(upn="nobody@example.test", source_id="x"))


@pytest.mark.parametrize(
    ("imap_server", "master_login"),
    [("dovecot", "separator"), ("dovecot", "authzid"), ("cyrus", "authzid")],
    indirect=["imap_server"],
)
def test_master_user_logs_in_as_each_user(
    imap_server: ImapReadBack, master_login: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dovecot's "user*admin" form, and the SASL PLAIN authorization id (RFC 4616) that
    Dovecot's master users and Cyrus's admins/proxyservers both take."""
    user = imap_server.new_user()
    monkeypatch.setenv("HIRONDELLE_TEST_MASTER", imap_server.master_password)
    settings = ImapSettings(
        host=imap_server.host,
        port=imap_server.port,
        security="plain",
        master_user=imap_server.master_user,
        master_password_env="HIRONDELLE_TEST_MASTER",
        master_login=master_login,
    )
    session = ImapTarget(settings).open(
        Owner(upn="ignored", source_id="x", target_login=user.login)
    )
    from hirondelle.migrator.model import Payload

    session.put("INBOX", Payload("s", b"Subject: master\r\n\r\nhi\r\n", "sha256:x", {}))
    session.close()
    assert [m.content for m in imap_server.read_mailbox(user.login, "INBOX")] == [
        b"Subject: master\r\n\r\nhi\r\n"
    ]


@pytest.mark.parametrize(
    ("imap_server", "master_login", "password"),
    [
        ("dovecot", "separator", "wrong-master-pw"),
        ("cyrus", "authzid", "wrong-master-pw"),
        ("cyrus", "separator", MASTER_PASSWORD),  # Cyrus knows no "user*admin" form
    ],
    indirect=["imap_server"],
)
def test_a_refused_master_login_names_the_master_settings(
    imap_server: ImapReadBack, master_login: str, password: str, tmp_path: Path
) -> None:
    (tmp_path / "master").write_text(f"{password}\n")
    (tmp_path / "master").chmod(0o600)
    settings = ImapSettings(
        host=imap_server.host,
        port=imap_server.port,
        security="plain",
        master_user=imap_server.master_user,
        master_password_file=tmp_path / "master",
        master_login=master_login,
    )
    with pytest.raises(FatalError, match="targets.mail.master_password_file") as raised:
        ImapTarget(settings).open(owner(imap_server.new_user()))
    assert password not in str(raised.value)


def test_an_unknown_master_login_form_is_refused() -> None:
    with pytest.raises(ConfigError, match="separator, authzid") as raised:
        ImapSettings(
            host="imap.example.org",
            master_user="admin",
            master_password_env="X",
            master_login="login*admin",
        )
    assert raised.value.setting == "targets.mail.master_login"


def test_plain_text_is_refused_for_a_remote_host() -> None:
    with pytest.raises(ConfigError) as raised:
        ImapSettings(host="imap.example.org", port=143, security="plain", password_file=Path("p"))
    assert raised.value.setting == "targets.mail.security"


def test_settings_need_one_way_to_log_in() -> None:
    with pytest.raises(ConfigError, match="password_file or master_user"):
        ImapSettings(host="imap.example.org")
    with pytest.raises(ConfigError, match="master_password_env"):
        ImapSettings(host="imap.example.org", master_user="admin")


def test_settings_from_a_toml_table() -> None:
    settings = settings_of(
        ImapSettings,
        {
            "host": "imap.example.org",
            "port": 143,
            "security": "starttls",
            "password_file": Path("/srv/pw.csv"),
            "max_message_bytes": 10,
        },
        "targets.mail",
    )
    assert settings.password_file == Path("/srv/pw.csv") and settings.port == 143


def test_password_file_formats(tmp_path: Path) -> None:
    path = tmp_path / "passwords"
    path.write_text(
        "# comment\nlogin,password\n"
        "alice@example.test:pa:ss,word\n"
        'bob@example.test,"pa,ss:word"\n'
        "\n"
        "carol@example.test,é€\n"
    )
    path.chmod(0o600)
    passwords = read_password_file(path, "targets.mail.password_file")
    assert passwords == {
        "alice@example.test": "pa:ss,word",
        "bob@example.test": "pa,ss:word",
        "carol@example.test": "é€",
    }
    assert "pa:ss" not in repr(passwords)


def test_unreadable_password_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        read_password_file(tmp_path / "missing", "targets.mail.password_file")
    assert raised.value.setting == "targets.mail.password_file"


@pytest.fixture(scope="module")
def tls_dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DovecotServer, Path]]:
    """A Dovecot with a certificate for 127.0.0.1 from a throwaway CA; yields the CA file."""
    tls, ca = issue_tls(tmp_path_factory.mktemp("tls"), "127.0.0.1", "localhost")
    with dovecot_server({"tls@example.test": "tls-pw"}, tls=tls) as server:
        yield server, ca


def tls_settings(server: DovecotServer, tmp_path: Path, ca: Path, security: str) -> ImapSettings:
    port = server.tls_port if security == "tls" else server.port
    assert port is not None
    (tmp_path / "pw").write_text("tls@example.test:tls-pw\n")
    (tmp_path / "pw").chmod(0o600)
    return ImapSettings(
        host=server.host, port=port, security=security, ca_file=ca, password_file=tmp_path / "pw"
    )


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_tls_with_the_right_ca(
    tls_dovecot: tuple[DovecotServer, Path], tmp_path: Path, security: str
) -> None:
    server, ca = tls_dovecot
    target = ImapTarget(tls_settings(server, tmp_path, ca, security))
    assert target.check() == []
    target.open(Owner(upn="tls@example.test", source_id="x")).close()


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_tls_with_a_wrong_ca_is_fatal(
    tls_dovecot: tuple[DovecotServer, Path], tmp_path: Path, security: str
) -> None:
    server, _ = tls_dovecot
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    target = ImapTarget(tls_settings(server, tmp_path, other_ca, security))
    with pytest.raises(FatalError, match="targets.mail.ca_file"):
        target.open(Owner(upn="tls@example.test", source_id="x"))
    (finding,) = target.check()
    assert "certificate" in finding


def test_connections_share_one_tls_context_and_plain_ones_make_none(
    tls_dovecot: tuple[DovecotServer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, ca = tls_dovecot
    made: list[str | None] = []
    create = ssl.create_default_context

    def counted(*args: Any, cafile: str | None = None, **kw: Any) -> ssl.SSLContext:
        made.append(cafile)
        return create(*args, cafile=cafile, **kw)

    monkeypatch.setattr(ssl, "create_default_context", counted)
    credentials.tls_context.cache_clear()
    settings = tls_settings(server, tmp_path, ca, "tls")
    for _ in range(3):
        ImapTarget(settings).open(Owner(upn="tls@example.test", source_id="x")).close()
    plain = dataclasses.replace(settings, security="plain", port=server.port)
    ImapTarget(plain).open(Owner(upn="tls@example.test", source_id="x")).close()
    assert made == [str(ca)]
