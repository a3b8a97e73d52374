"""ManageSieve over STARTTLS on a real Dovecot: the certificate is verified against
`ca_file`, a wrong CA stops the run naming that setting, and a server that offers no
STARTTLS is not spoken to in clear text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from hirondelle.connectors.managesieve import ManageSieveSettings, ManageSieveTarget
from hirondelle.migrator.errors import FatalError
from hirondelle.migrator.model import Owner
from hirondelle.tests.servers import DovecotServer, dovecot_server, issue_tls

LOGIN = "tls@example.test"


@pytest.fixture(scope="module")
def tls_dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DovecotServer, Path]]:
    """A Dovecot with a certificate for 127.0.0.1 from a throwaway CA; yields the CA file."""
    tls, ca = issue_tls(tmp_path_factory.mktemp("tls"), "127.0.0.1")
    with dovecot_server({LOGIN: "tls-pw"}, tls=tls, spare_users=0) as server:
        yield server, ca


def settings(server: DovecotServer, tmp_path: Path, ca: Path) -> ManageSieveSettings:
    (tmp_path / "pw").write_text(f"{LOGIN}:tls-pw\n")
    (tmp_path / "pw").chmod(0o600)
    return ManageSieveSettings(
        host=server.host, port=server.sieve_port, ca_file=ca, password_file=tmp_path / "pw"
    )


def test_starttls_with_the_right_ca(
    tls_dovecot: tuple[DovecotServer, Path], tmp_path: Path
) -> None:
    server, ca = tls_dovecot
    target = ManageSieveTarget(settings(server, tmp_path, ca))
    assert target.check() == []
    session = target.open(Owner(upn=LOGIN, source_id="x"))
    assert session.scripts() == {}
    session.close()


def test_starttls_with_a_wrong_ca_is_fatal(
    tls_dovecot: tuple[DovecotServer, Path], tmp_path: Path
) -> None:
    server, _ = tls_dovecot
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    target = ManageSieveTarget(settings(server, tmp_path, other_ca))
    with pytest.raises(FatalError, match="certificate.*targets.rules.ca_file"):
        target.open(Owner(upn=LOGIN, source_id="x"))
    [finding] = target.check()
    assert "certificate" in finding
