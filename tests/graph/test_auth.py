"""Credentials: one secret source, errors that name the setting and never show the secret."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme
from azure.identity.aio import CertificateCredential, ClientSecretCredential

from hirondelle.connectors.graph.auth import GraphSettings, make_credential
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
