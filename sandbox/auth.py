"""The sandbox's OAuth 2.0 token endpoint (client credentials) and access-token check.

It answers what azure-identity and MSAL ask of Microsoft Entra ID: a token
request with a client secret or a signed client assertion (JWT, RS256 or PS256,
checked against the registered certificate's public key), the tenant's OpenID
configuration and the instance discovery document. Access tokens are random
opaque strings; /v1.0 accepts only those it issued and that have not expired.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

TOKEN_LIFETIME_SECONDS = 3600
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SANDBOX_TENANT_ID = "9f2c1a4e-5b7d-4c3e-8a61-0d4e5f6a7b8c"
SANDBOX_CLIENT_ID = "hirondelle-sandbox"
# A fixed, public test value: the sandbox holds no real data.
SANDBOX_CLIENT_SECRET = "sandbox-secret-not-for-production"
# The client credentials grant asks for the resource's identifier with the `.default` suffix
# (https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow,
# "scope"): the sandbox is the global Graph, named by its URI or its application id.
GRAPH_SCOPES = frozenset(
    {"https://graph.microsoft.com/.default", "00000003-0000-0000-c000-000000000000/.default"}
)
# Any other scope is refused as Entra ID does, 400 invalid_scope with AADSTS70011 InvalidScope
# (https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes).
INVALID_SCOPE = (
    "AADSTS70011: The provided request must include a 'scope' input parameter. The provided "
    "value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
)


@dataclass
class AppRegistration:
    """The one app the sandbox knows, with its secret and certificate key."""

    tenant_id: str = SANDBOX_TENANT_ID
    client_id: str = SANDBOX_CLIENT_ID
    client_secret: str = SANDBOX_CLIENT_SECRET
    public_key: rsa.RSAPublicKey | None = None


@dataclass
class TokenIssuer:
    """Issues access tokens to the registered app and checks bearer tokens."""

    app: AppRegistration
    issued: dict[str, float] = field(default_factory=dict)  # token -> expiry (monotonic)

    def issue(self) -> str:
        token = secrets.token_urlsafe(32)
        self.issued[token] = time.monotonic() + TOKEN_LIFETIME_SECONDS
        return token

    def is_valid(self, authorization: str | None) -> bool:
        """True for `Bearer <token>` with a token this issuer gave out and not expired."""
        if not authorization or not authorization.lower().startswith("bearer "):
            return False
        expiry = self.issued.get(authorization[7:].strip())
        return expiry is not None and expiry > time.monotonic()

    def revoke_all(self) -> int:
        """Every token issued so far is refused from now on (as when an admin revokes the
        app's sessions or the tenant rolls its keys); new ones can be issued. How many."""
        count = len(self.issued)
        self.issued.clear()
        return count

    def check_client(self, form: dict[str, str], token_url: str) -> str | None:
        """Return None when the form authenticates the app, else the AADSTS reason."""
        if form.get("client_id") != self.app.client_id:
            return "AADSTS700016: Application not found in the directory."
        if "client_secret" in form:
            if hmac.compare_digest(form["client_secret"], self.app.client_secret):
                return None
            return "AADSTS7000215: Invalid client secret provided."
        if form.get("client_assertion_type") == ASSERTION_TYPE and "client_assertion" in form:
            return self._check_assertion(form["client_assertion"], token_url)
        return "AADSTS7000218: The request body must contain client_assertion or client_secret."

    def _check_assertion(self, assertion: str, token_url: str) -> str | None:
        key = self.app.public_key
        if key is None:
            return "AADSTS700027: No certificate is registered for the application."
        try:
            header, claims = verify_jwt(assertion, key)
        except (ValueError, InvalidSignature):
            return "AADSTS700027: Client assertion contains an invalid signature."
        if claims.get("iss") != self.app.client_id or claims.get("sub") != self.app.client_id:
            return "AADSTS700023: Client assertion issuer or subject is not the client id."
        if urlsplit(str(claims.get("aud", ""))).path != urlsplit(token_url).path:
            return "AADSTS700024: Client assertion audience is not the token endpoint."
        if float(claims.get("exp", 0)) < time.time():
            return "AADSTS700024: Client assertion is expired."
        return None


def verify_jwt(token: str, key: rsa.RSAPublicKey) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check an RS256 or PS256 compact JWT against `key`; return its header and claims."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWT")
    header = json.loads(_b64url_decode(parts[0]))
    claims = json.loads(_b64url_decode(parts[1]))
    signed = f"{parts[0]}.{parts[1]}".encode("ascii")
    signature = _b64url_decode(parts[2])
    algorithm = header.get("alg")
    if algorithm == "RS256":
        key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
    elif algorithm == "PS256":
        # RFC 7518 section 3.5: PSS with MGF1 and a salt as long as the hash.
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        key.verify(signature, signed, pss, hashes.SHA256())
    else:
        raise ValueError(f"unsupported JWT algorithm {algorithm!r}")
    return header, claims


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    """An Entra ID error body: `error_codes` holds the AADSTS number of the description."""
    codes = [int(code) for code in re.findall(r"^AADSTS(\d+)", description)]
    body = {"error": error, "error_description": description, "error_codes": codes}
    return web.json_response(body, status=status)


def add_auth_routes(app: web.Application, issuer: TokenIssuer) -> None:
    """Register the token, OpenID configuration and instance discovery endpoints."""

    async def token(request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if tenant not in (issuer.app.tenant_id, "organizations", "common"):
            return _oauth_error(
                400, "invalid_request", f"AADSTS90002: Tenant '{tenant}' not found."
            )
        form = {key: str(value) for key, value in (await request.post()).items()}
        if form.get("grant_type") != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type", "AADSTS70003: Unsupported grant.")
        reason = issuer.check_client(form, str(request.url))
        if reason is not None:
            return _oauth_error(401, "invalid_client", reason)
        scope = form.get("scope", "")
        if scope.strip().lower() not in GRAPH_SCOPES:
            return _oauth_error(400, "invalid_scope", INVALID_SCOPE.format(scope=scope))
        # kiota asks again with a `claims` field (continuous access evaluation): same answer.
        body = {
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_SECONDS,
            "ext_expires_in": TOKEN_LIFETIME_SECONDS,
            "access_token": issuer.issue(),
        }
        return web.json_response(body)

    async def openid_configuration(request: web.Request) -> web.Response:
        base = f"{request.scheme}://{request.host}/{request.match_info['tenant']}"
        body = {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "issuer": f"{base}/v2.0",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token"],
        }
        return web.json_response(body)

    async def instance_discovery(request: web.Request) -> web.Response:
        host = request.host
        body = {
            "tenant_discovery_endpoint": (
                f"{request.scheme}://{host}/{issuer.app.tenant_id}"
                "/v2.0/.well-known/openid-configuration"
            ),
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }
        return web.json_response(body)

    app.router.add_post("/{tenant}/oauth2/v2.0/token", token)
    app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration)
    app.router.add_get("/common/discovery/instance", instance_discovery)
