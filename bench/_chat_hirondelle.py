"""The measured side of the chat benchmark: `hirondelle run` into Synapse as an application service.

The configuration points `[source]` at the sandbox child and `[targets.chat]` (the channel
workload) or `[targets.chats]` (the chats workload) at the homeserver in `appservice` mode;
the sandbox's public test secret and the application service token are read from
environment variables, never written in the file. A fresh `room_alias_prefix` per run keeps
each run's rooms apart on a shared homeserver. What landed is read back from the rooms
afterwards (`sent_events`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from hirondelle.bench._hirondelle import (
    STATE_TABLE,
    RunReport,
    run_env,
    run_workload,
    source_table,
    write_tables,
)
from hirondelle.bench._servers import BenchError, SandboxEndpoint
from hirondelle.connectors.matrix_wire import CLIENT, TEAMS_KEY, path_part

AS_TOKEN_ENV = "HIRONDELLE_BENCH_AS_TOKEN"
EVENT_TYPES = ("m.room.message", "m.reaction")
HISTORY_PAGE = 1000


@dataclass(frozen=True)
class Homeserver:
    """Where the application service talks to, and as whom."""

    url: str
    server_name: str
    as_token: str

    def client(self, timeout: float = 60.0) -> httpx.Client:
        """A client carrying the application service token (never logged)."""
        headers = {"Authorization": f"Bearer {self.as_token}", "User-Agent": "hirondelle-bench"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)


def write_config(
    directory: Path,
    endpoint: SandboxEndpoint,
    homeserver: Homeserver,
    alias_prefix: str,
    workers: int = 1,
    workload: str = "chat",
) -> Path:
    """`hirondelle.toml` in `directory`: the sandbox's Teams channels (`workload` "chat") or
    chats ("chats") into Synapse, appservice mode."""
    tables: dict[str, Mapping[str, object]] = {
        "source": source_table(endpoint),
        "state": STATE_TABLE,
        "run": {"workers": workers},
        f"targets.{workload}": {
            "kind": "matrix",
            "mode": "appservice",
            "homeserver": homeserver.url,
            "server_name": homeserver.server_name,
            "room_alias_prefix": alias_prefix,
            "as_token_env": AS_TOKEN_ENV,
        },
    }
    return write_tables(directory, tables)


def run_chat(
    config: Path,
    endpoint: SandboxEndpoint,
    homeserver: Homeserver,
    timeout: float,
    wrapper: list[str] | None = None,
    workload: str = "chat",
) -> RunReport:
    """`hirondelle run --json` on `config` in a child process; `workload`'s tally, measured."""
    env = run_env(endpoint, {AS_TOKEN_ENV: homeserver.as_token})
    return run_workload(config, workload, env, timeout, wrapper)


def channel_room(homeserver: Homeserver, alias_prefix: str) -> str:
    """The id of the one channel room this run made (not the team's space)."""
    found = message_rooms(homeserver, alias_prefix)
    if len(found) != 1:
        raise BenchError(f"expected one channel room with prefix {alias_prefix}, found {found}")
    return found[0]


def message_rooms(homeserver: Homeserver, alias_prefix: str) -> list[str]:
    """The rooms (not spaces) this run made, whose alias has `alias_prefix`, in the order
    they were created."""
    made: list[tuple[int, str]] = []
    with homeserver.client() as client:
        joined = client.get(f"{CLIENT}/joined_rooms").raise_for_status().json()["joined_rooms"]
        for room in joined:
            created = _created_at(client, str(room), alias_prefix)
            if created is not None:
                made.append((created, str(room)))
    return [room for _, room in sorted(made)]


def _created_at(client: httpx.Client, room: str, alias_prefix: str) -> int | None:
    """When `room` was made, if it is a room (not a space) with an alias of the prefix."""
    answer = client.get(f"{CLIENT}/rooms/{path_part(room)}/state/m.room.canonical_alias")
    if answer.status_code != 200:
        return None
    alias = str(answer.json().get("alias") or "")
    if not alias.startswith(f"#{alias_prefix}"):
        return None
    state = client.get(f"{CLIENT}/rooms/{path_part(room)}/state").raise_for_status().json()
    create = next(e for e in state if e["type"] == "m.room.create")
    if create["content"].get("type") == "m.space":
        return None
    return int(create["origin_server_ts"])


def room_timeline(client: httpx.Client, room: str) -> Iterator[dict[str, Any]]:
    """Every message and reaction event of the room, oldest first."""
    params: dict[str, str | int] = {"dir": "f", "limit": HISTORY_PAGE}
    params["filter"] = json.dumps({"types": list(EVENT_TYPES), "lazy_load_members": True})
    while True:
        answer = client.get(f"{CLIENT}/rooms/{path_part(room)}/messages", params=params)
        page = answer.raise_for_status().json()
        yield from page.get("chunk", [])
        if not page.get("chunk") or not page.get("end"):
            return
        params["from"] = page["end"]


def sent_events(homeserver: Homeserver, room: str) -> list[dict[str, Any]]:
    """The events hirondelle sent into `room` (they carry the Teams id), oldest first."""
    with homeserver.client() as client:
        return [e for e in room_timeline(client, room) if TEAMS_KEY in (e.get("content") or {})]
