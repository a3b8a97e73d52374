"""The chat benchmark's homeserver: a fresh Synapse, its process, and what its access log says.

Synapse logs one "Processed request" line per request at INFO level, with the time the
request ended, the seconds the server spent on it, the status and the path. Reading
the lines a phase added tells, without touching the client, how many requests each
side made, when the first and the last event was sent, and how much of the wall time
the homeserver itself was busy answering.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psutil

from hirondelle.bench._servers import BenchError, child_process
from hirondelle.tests.servers import ServerUnavailable, SynapseServer

START_DEADLINE_S = 120.0
_ACCESS = re.compile(
    r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - synapse\.access\.\S+ .*?"
    r"Processed request: (?P<seconds>[\d.]+)sec/.*? (?P<status>\d{3}) "
    r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+"'
)


def start_synapse() -> SynapseServer:
    """A fresh homeserver with the application service registered; `BenchError` if absent."""
    server = SynapseServer(start_timeout=START_DEADLINE_S)
    try:
        server.start()
    except ServerUnavailable as exc:
        server.stop()
        raise BenchError(str(exc)) from None
    except BaseException:
        server.stop()
        raise
    return server


def synapse_process(server: SynapseServer) -> psutil.Process:
    """The homeserver's process, found among this process's children by its folder."""

    def runs_synapse(child: psutil.Process) -> bool:
        command = " ".join(child.cmdline())
        return "synapse.app.homeserver" in command and Path(child.cwd()) == Path(server.root)

    return child_process(runs_synapse, f"no Synapse process runs in {server.root}")


@dataclass(frozen=True)
class Request:
    """One line of the access log."""

    at: datetime  # when the answer was sent (the homeserver's local time)
    seconds: float  # how long the homeserver took
    status: int
    method: str
    path: str

    @property
    def is_send(self) -> bool:
        return self.method == "PUT" and "/send/" in self.path

    @property
    def room(self) -> str:
        """The room a request names in its path (still URL-encoded), or ""."""
        _, found, rest = self.path.partition("/rooms/")
        return rest.split("/", 1)[0] if found else ""


def parse_access(lines: Iterable[str]) -> list[Request]:
    """The requests of the access log lines among `lines`; other lines are ignored."""
    found = []
    for line in lines:
        match = _ACCESS.match(line)
        if match:
            found.append(
                Request(
                    at=datetime.strptime(match["at"], "%Y-%m-%d %H:%M:%S,%f"),
                    seconds=float(match["seconds"]),
                    status=int(match["status"]),
                    method=match["method"],
                    path=match["path"],
                )
            )
    return found


class AccessLog:
    """Reads what the homeserver logged since the last `mark`."""

    def __init__(self, server: SynapseServer) -> None:
        self.path = Path(server.root) / "synapse.log"
        self._offset = 0

    def mark(self) -> None:
        self._offset = self.path.stat().st_size

    def since_mark(self) -> list[Request]:
        with open(self.path, "rb") as log:
            log.seek(self._offset)
            text = log.read().decode("utf-8", errors="replace")
        return parse_access(text.splitlines())


@dataclass(frozen=True)
class Traffic:
    """One side's requests as the homeserver saw them."""

    requests: int
    sends: int
    first_send: datetime | None
    last_send: datetime | None
    server_seconds: float  # summed over every request
    send_server_seconds: float  # summed over the event PUTs
    room_send_spans: float = 0.0  # each room's first to last event PUT, summed over rooms

    @classmethod
    def of(cls, requests: list[Request]) -> Traffic:
        sends = [r for r in requests if r.is_send]
        by_room: dict[str, list[datetime]] = {}
        for send in sends:
            by_room.setdefault(send.room, []).append(send.at)
        return cls(
            requests=len(requests),
            sends=len(sends),
            first_send=min((r.at for r in sends), default=None),
            last_send=max((r.at for r in sends), default=None),
            server_seconds=sum(r.seconds for r in requests),
            send_server_seconds=sum(r.seconds for r in sends),
            room_send_spans=sum((max(at) - min(at)).total_seconds() for at in by_room.values()),
        )

    @property
    def send_span(self) -> float:
        """Seconds from the first event PUT's answer to the last one's."""
        if self.first_send is None or self.last_send is None:
            return 0.0
        return (self.last_send - self.first_send).total_seconds()

    @property
    def rooms_at_once(self) -> float:
        """How many rooms were being sent to at once, on average over the send phase."""
        return self.room_send_spans / self.send_span if self.send_span else 0.0
