"""Client assertions, plain-http mode and the control endpoints."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sandbox_helpers import make_tenant, raw_client, trust

from hirondelle.sandbox.auth import verify_jwt
from hirondelle.sandbox.server import SandboxServer


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def signed_jwt(key: rsa.RSAPrivateKey, algorithm: str, claims: dict[str, object]) -> str:
    head = _b64(json.dumps({"alg": algorithm, "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    signed = f"{head}.{body}".encode()
    if algorithm == "PS256":
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        signature = key.sign(signed, pss, hashes.SHA256())
    else:
        signature = key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{_b64(signature)}"


@pytest.mark.parametrize("algorithm", ["RS256", "PS256"])
def test_jwt_verifies_with_the_right_key_only(algorithm: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = signed_jwt(key, algorithm, {"iss": "app", "exp": time.time() + 60})
    assert verify_jwt(token, key.public_key())[1]["iss"] == "app"
    with pytest.raises(InvalidSignature):
        verify_jwt(token, other.public_key())


def test_plain_http_mode_and_control_endpoints() -> None:
    with SandboxServer(make_tenant(), tls=False) as server:
        assert server.graph_url.startswith("http://") and server.ca_file is None
        root = f"http://{server.authority}/_sandbox"
        user = server.tenant.users[0]
        with raw_client(server) as client:
            assert client.get("users").status_code == 200
            seq = server.tenant.seq
            result = httpx.post(f"{root}/mutate", json={"new": 2, "user": user.upn}).json()
            assert len(result["new"]) == 2 and server.tenant.seq > seq
            httpx.post(f"{root}/faults", json={"error_rate": 1.0}).raise_for_status()
            assert client.get("users").status_code == 503
            httpx.post(f"{root}/faults", json={}).raise_for_status()
            httpx.post(f"{root}/limits", json={"requests_per_window": 1}).raise_for_status()
            assert client.get(f"users/{user.id}").status_code == 200
            assert client.get(f"users/{user.id}").status_code == 429
            httpx.post(f"{root}/expire-delta-tokens").raise_for_status()
        stats = httpx.get(f"{root}/stats").json()
    assert stats["throttled"] == 1
    assert stats["by_mailbox"][user.upn.lower()] == {
        "requests": 2,
        "throttled": 1,
        "peak_in_flight": 1,
    }
    assert stats["faults"] == {"error": 1}
    assert any("python-httpx" in agent for agent in stats["user_agents"])


def test_token_endpoint_rejects_an_unknown_client(sb: SandboxServer) -> None:
    form = {"client_id": "someone-else", "client_secret": "x", "grant_type": "client_credentials"}
    url = f"https://{sb.authority}/{sb.tenant_id}/oauth2/v2.0/token"
    response = httpx.post(url, data=form, verify=trust(sb))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_token_endpoint_refuses_any_scope_but_graphs_default(sb: SandboxServer) -> None:
    # Client credentials ask for the resource identifier with the .default suffix
    # (https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow);
    # Entra ID refuses any other scope with 400 invalid_scope, AADSTS70011 InvalidScope
    # (https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes).
    url = f"https://{sb.authority}/{sb.tenant_id}/oauth2/v2.0/token"
    form = {
        "client_id": sb.client_id,
        "client_secret": sb.client_secret,
        "grant_type": "client_credentials",
    }
    for good in (
        "https://graph.microsoft.com/.default",
        "00000003-0000-0000-c000-000000000000/.default",
    ):
        answer = httpx.post(url, data=form | {"scope": good}, verify=trust(sb))
        assert answer.status_code == 200 and answer.json()["access_token"], good
    for wrong in (
        "https://graph.microsoft.us/.default",
        "https://graph.microsoft.com/Mail.Read",
        "https://graph.microsoft.com/.default offline_access",
        "",
    ):
        refused = httpx.post(url, data=form | {"scope": wrong}, verify=trust(sb))
        assert refused.status_code == 400, wrong
        body = refused.json()
        assert body["error"] == "invalid_scope" and body["error_codes"] == [70011]
        assert body["error_description"].startswith("AADSTS70011:")


@pytest.mark.parametrize(
    ("endpoint", "body", "reason"),
    [
        ("mutate", b"", "send a JSON object of Mutation fields"),
        ("mutate", b"{new: 1}", "the body is not JSON"),
        ("mutate", b"[1, 2]", "send a JSON object of Mutation fields"),
        ("mutate", b'{"neww": 1}', "unknown field(s) neww; known: seed, new,"),
        ("mutate", b'{"new": "3"}', 'new must be int, not "3"'),
        ("mutate", b'{"new": true}', "new must be int, not true"),
        ("mutate", b'{"new": -1}', "new must not be negative"),
        ("mutate", b'{"user": "nobody@example.test"}', "no user has the id or name"),
        ("faults", b'{"error_rate": 2}', "error_rate is a probability per request, at most 1"),
        ("limits", b'{"enabled": "no"}', 'enabled must be bool, not "no"'),
        ("limits", b'{"scale": NaN}', "scale must be a finite number"),
        ("limits", b'{"window_seconds": Infinity}', "window_seconds must be a finite number"),
        ("limits", b'{"concurrency": 0}', "concurrency must be more than 0"),
    ],
)
def test_control_requests_with_a_bad_body_are_refused_with_the_reason(
    sb: SandboxServer, endpoint: str, body: bytes, reason: str
) -> None:
    seq = sb.tenant.seq
    answer = httpx.post(
        f"https://{sb.authority}/_sandbox/{endpoint}", content=body, verify=trust(sb)
    )
    assert answer.status_code == 400
    assert reason in answer.json()["error"]
    assert sb.tenant.seq == seq  # nothing changed
