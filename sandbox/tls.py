"""Throwaway certificates for the sandbox: a CA, a server certificate, an app certificate.

azure-identity refuses a plain-http authority, so the sandbox serves HTTPS with a
server certificate for 127.0.0.1 and localhost signed by a CA made on the spot.
The registered app's certificate (for `CertificateCredential`) is an RSA key pair
written as one PEM holding the certificate and the private key, the layout
azure-identity reads. Everything lives in a directory the caller owns and removes.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = dt.timedelta(days=30)


@dataclass(frozen=True)
class SandboxPki:
    """Paths of the PEM files, plus the app certificate's public key for verification."""

    ca_file: Path
    server_cert_file: Path
    server_key_file: Path
    client_cert_file: Path  # certificate AND private key of the registered app
    client_public_key: rsa.RSAPublicKey

    def server_context(self) -> ssl.SSLContext:
        """A server-side TLS context presenting the sandbox's server certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.server_cert_file, self.server_key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client-side TLS context trusting only the throwaway CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))


def create_pki(directory: Path) -> SandboxPki:
    """Create the CA, the server certificate and the app certificate under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _ca_certificate(ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _server_certificate(server_key.public_key(), ca_key, ca_cert)
    client_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client_cert = _client_certificate(client_key)

    pki = SandboxPki(
        ca_file=directory / "sandbox-ca.pem",
        server_cert_file=directory / "sandbox-server.pem",
        server_key_file=directory / "sandbox-server-key.pem",
        client_cert_file=directory / "sandbox-app.pem",
        client_public_key=client_key.public_key(),
    )
    _write(pki.ca_file, _cert_pem(ca_cert))
    _write(pki.server_cert_file, _cert_pem(server_cert) + _cert_pem(ca_cert))
    _write(pki.server_key_file, _key_pem(server_key))
    _write(pki.client_cert_file, _cert_pem(client_cert) + _key_pem(client_key))
    return pki


def _ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = _name("Hirondelle sandbox CA")
    builder = (
        _base_builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return builder.sign(key, hashes.SHA256())


def _server_certificate(
    public_key: ec.EllipticCurvePublicKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
) -> x509.Certificate:
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    builder = (
        _base_builder(_name("127.0.0.1"), ca_cert.subject, public_key)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    return builder.sign(ca_key, hashes.SHA256())


def _client_certificate(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = _name("hirondelle-sandbox app")
    builder = _base_builder(name, name, key.public_key()).add_extension(
        x509.BasicConstraints(ca=False, path_length=None), critical=True
    )
    return builder.sign(key, hashes.SHA256())


def _base_builder(
    subject: x509.Name, issuer: x509.Name, public_key: CertificatePublicKeyTypes
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    path.chmod(0o600)
