"""The server's Sieve extensions are read at most once per failure window: a server that
accepts connections and never greets costs one `timeout`, not one per owner, and the
workload reads them in a worker thread, never on the event loop (`workloads.rules`)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from hirondelle.connectors.managesieve import ManageSieveSettings, ManageSieveTarget
from hirondelle.migrator.errors import Retriable
from hirondelle.workloads.rules import extensions_of


@pytest.fixture
def silent() -> Iterator[socket.socket]:
    """A listening socket nobody answers on: the connection is made, no greeting comes."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener


def test_a_server_that_never_greets_is_dialled_once_per_window(
    silent: socket.socket, tmp_path: Path
) -> None:
    passwords = tmp_path / "passwords"
    passwords.write_text("a@example.test:secret\n", encoding="utf-8")
    passwords.chmod(0o600)
    target = ManageSieveTarget(
        ManageSieveSettings(
            host="127.0.0.1",
            port=silent.getsockname()[1],
            security="plain",
            password_file=passwords,
            timeout=0.4,
        )
    )

    async def three_owners() -> None:
        for _ in range(3):
            with pytest.raises(Retriable, match="Sieve extensions of the ManageSieve server"):
                await asyncio.to_thread(extensions_of, target)

    asyncio.run(three_owners())
    # one timeout for the three owners: the server was dialled once, not three times
    # (connections are counted where they land, not timed: the machine may be loaded)
    silent.setblocking(False)
    dialled = 0
    while True:
        try:
            connection, _ = silent.accept()
        except BlockingIOError:
            break
        connection.close()
        dialled += 1
    assert dialled == 1


def test_a_server_that_resets_during_the_greeting_is_waited_for(
    silent: socket.socket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Dovecot going down accepts and resets: the engine must wait for it
    # (`run.target_wait_seconds`) as for a refused connection, not fail the owner. The
    # reset is made to land while the greeting is read (a real one races the connect).
    from hirondelle.connectors import managesieve_settings
    from hirondelle.migrator.errors import Unreachable

    def reset(*_: object) -> dict[str, str]:
        raise ConnectionResetError(104, "Connection reset by peer")

    monkeypatch.setattr(managesieve_settings, "_greeting", reset)
    settings = ManageSieveSettings(
        host="127.0.0.1", port=silent.getsockname()[1], security="plain",
        password_file=tmp_path / "unused", timeout=5,
    )  # fmt: skip
    with pytest.raises(Unreachable, match="lost during the greeting"):
        managesieve_settings.dial(settings)
