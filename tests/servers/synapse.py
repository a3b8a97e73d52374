"""Synapse, a Matrix homeserver, from its own virtualenv (`.ci/install-synapse`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import tempfile
import time
import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hirondelle.tests.servers.accounts import unique_name
from hirondelle.tests.servers.process import (
    HOST,
    Server,
    ServerUnavailable,
    check_running,
    free_port,
    poll,
    running,
    spawn,
)

SYNAPSE_VENV_ENV = "HIRONDELLE_SYNAPSE_VENV"
SYNAPSE_AS_TOKEN = "as-token-for-tests"
SYNAPSE_HS_TOKEN = "hs-token-for-tests"


def synapse_python() -> Path:
    """The Python of the dedicated Synapse virtualenv, or `ServerUnavailable` saying how to
    install it."""
    default = Path.home() / ".cache" / "hirondelle" / "synapse-venv"
    venv = Path(os.environ.get(SYNAPSE_VENV_ENV) or default)
    python = venv / "bin" / "python"
    if not python.exists():
        raise ServerUnavailable(
            f"Synapse is not installed in {venv} (${SYNAPSE_VENV_ENV}): "
            "run .ci/install-synapse to create that virtualenv"
        )
    return python


@dataclass(frozen=True)
class MatrixAccount:
    """An ordinary account on the test homeserver and its access token."""

    user_id: str
    access_token: str


class SynapseServer(Server):
    """A Synapse homeserver for one test session, in its own temporary directory.

    SQLite, one client listener on 127.0.0.1, generous rate limits, and an application
    service registered from `registration_yaml` (as token `SYNAPSE_AS_TOKEN`, puppets
    `@_m365_...`, aliases `#m365_...`, real users non-exclusively). `new_user()` registers
    ordinary accounts through the shared-secret admin API. Extra homeserver settings go in
    `options`.
    """

    name = "Synapse"
    start_timeout = 90
    stop_timeout = 20
    server_name = "localhost"

    def __init__(
        self, *, options: Mapping[str, object] | None = None, start_timeout: float | None = None
    ) -> None:
        super().__init__(start_timeout)
        self._options = dict(options or {})
        self._secret = uuid.uuid4().hex

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Write the configuration, start Synapse, return once `/health` answers."""
        python = synapse_python()
        self.root = Path(tempfile.mkdtemp(prefix="hirondelle-synapse-"))
        self.port = free_port()
        self._write_config()
        log = self.root / "synapse.log"
        command = [str(python), "-m", "synapse.app.homeserver", "--config-path", "homeserver.yaml"]
        self._process = spawn(command, log)
        deadline = time.monotonic() + self._start_timeout
        poll(self._ready, deadline, "Synapse did not start", log)

    def _ready(self) -> bool:
        check_running(self._process, "synapse", self.root / "synapse.log")
        conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
        try:
            conn.request("GET", "/health")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def _write_config(self) -> None:
        from hirondelle.connectors.matrix import MatrixSettings, registration_yaml

        # masquerade_real_users: the service may act for real users too (their m.direct)
        settings = MatrixSettings(
            self.url, self.server_name, as_token_env="UNUSED", masquerade_real_users=True
        )
        registration = registration_yaml(settings, SYNAPSE_AS_TOKEN, SYNAPSE_HS_TOKEN)
        (self.root / "appservice.yaml").write_text(registration, encoding="utf-8")
        seed = base64.b64encode(os.urandom(32)).decode("ascii").rstrip("=")
        (self.root / "signing.key").write_text(f"ed25519 a_test {seed}\n", encoding="utf-8")
        lots = {"per_second": 1000, "burst_count": 1000}
        config: dict[str, object] = {
            "server_name": self.server_name,
            "pid_file": str(self.root / "homeserver.pid"),
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": [HOST],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {"name": "sqlite3", "args": {"database": str(self.root / "hs.db")}},
            "media_store_path": str(self.root / "media"),
            "signing_key_path": str(self.root / "signing.key"),
            "registration_shared_secret": self._secret,
            "macaroon_secret_key": uuid.uuid4().hex,
            "form_secret": uuid.uuid4().hex,
            "report_stats": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "enable_metrics": False,
            "app_service_config_files": [str(self.root / "appservice.yaml")],
            "rc_message": lots,
            "rc_registration": lots,
            "rc_login": {"address": lots, "account": lots, "failed_attempts": lots},
            "rc_joins": {"local": lots, "remote": lots},
            "rc_joins_per_room": lots,
            "rc_invites": {"per_room": lots, "per_user": lots, "per_issuer": lots},
            "rc_admin_redaction": lots,
            "rc_room_creation": lots,
            **self._options,
        }
        # JSON is YAML: no YAML writer needed.
        text = json.dumps(config, indent=1)
        (self.root / "homeserver.yaml").write_text(text, encoding="utf-8")

    # -- accounts and reading back ------------------------------------------------------------

    def request(self, method: str, path: str, token: str | None = None, body: object = None) -> Any:
        """One client-server API call for the tests' own setup and assertions."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            conn.request(method, path, json.dumps(body) if body is not None else None, headers)
            response = conn.getresponse()
            answer = json.loads(response.read() or b"{}")
        finally:
            conn.close()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {answer}")
        return answer

    def new_user(self, *, admin: bool = False) -> MatrixAccount:
        """A fresh account (shared-secret registration), e.g. a Tchap-style bot or a real user."""
        name = unique_name()
        password = uuid.uuid4().hex
        nonce = str(self.request("GET", "/_synapse/admin/v1/register")["nonce"])
        role = b"admin" if admin else b"notadmin"
        message = b"\x00".join([nonce.encode(), name.encode(), password.encode(), role])
        mac = hmac.new(self._secret.encode(), message, hashlib.sha1).hexdigest()
        body = {"nonce": nonce, "username": name, "password": password, "admin": admin, "mac": mac}
        answer = self.request("POST", "/_synapse/admin/v1/register", body=body)
        return MatrixAccount(str(answer["user_id"]), str(answer["access_token"]))

    def room_events(self, room_id: str, token: str = SYNAPSE_AS_TOKEN) -> list[dict[str, object]]:
        """Every timeline event of a room, oldest first, as the token's user sees them."""
        events: list[dict[str, object]] = []
        path = f"/_matrix/client/v3/rooms/{room_id}/messages?dir=f&limit=1000"
        since = ""
        while True:
            answer = self.request("GET", path + since, token)
            chunk = answer.get("chunk") or []
            assert isinstance(chunk, list)
            events.extend(chunk)
            end = answer.get("end")
            if not chunk or not end:
                return events
            since = f"&from={end}"

    def room_state(self, room_id: str, token: str = SYNAPSE_AS_TOKEN) -> list[dict[str, object]]:
        """The room's current state events."""
        return list(self.request("GET", f"/_matrix/client/v3/rooms/{room_id}/state", token))


def synapse_server(**options: Any) -> AbstractContextManager[SynapseServer]:
    """Start a `SynapseServer` for the duration of the block (options as its constructor)."""
    return running(SynapseServer(**options))
