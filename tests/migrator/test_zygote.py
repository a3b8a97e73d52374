"""The local workers' fork server is forked from the command's process: a worker finds
what the command imported and defined, none of its signal handlers, and the server ends
with the block."""

from __future__ import annotations

import json
import multiprocessing.forkserver
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

COMMAND = """
import gc, json, multiprocessing, multiprocessing.forkserver, os, signal, sys, threading, time
from hirondelle.migrator import zygote

COMMAND_PID = os.getpid()  # a worker that ran this file again would hold its own pid


def probe(queue):
    queue.put({
        "command_pid": COMMAND_PID,
        "grandparent": int(open(f"/proc/{os.getppid()}/stat").read().split(")")[1].split()[1]),
        "sigterm_default": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
        "preloaded": "colorsys" in sys.modules,
        "threads": threading.active_count(),
        "frozen": gc.get_freeze_count(),
    })


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: None)  # as the command's own handler
    if sys.argv[1] == "thread":
        threading.Thread(target=time.sleep, args=(5,), daemon=True).start()
    with zygote.forked(["colorsys"], wanted=sys.argv[1] != "unwanted"):
        context = multiprocessing.get_context("forkserver")
        queue = context.SimpleQueue()
        worker = context.Process(target=probe, args=(queue,))
        worker.start()
        server = multiprocessing.forkserver._forkserver._forkserver_pid
        seen = queue.get()
        worker.join()
        server_line = open(f"/proc/{server}/cmdline", "rb").read()
        seen["server_runs_this_file"] = server_line == open("/proc/self/cmdline", "rb").read()
    seen["pid"] = os.getpid()
    seen["command_frozen"] = gc.get_freeze_count()
    seen["server_left"] = multiprocessing.forkserver._forkserver._forkserver_pid is not None
    try:
        os.kill(server, 0)
        seen["server_gone"] = False
    except ProcessLookupError:
        seen["server_gone"] = True
    print(json.dumps(seen))
"""


def run_command(tmp_path: Path, mode: str) -> dict[str, object]:
    script = tmp_path / "command.py"
    script.write_text(COMMAND, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), mode], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    seen: dict[str, object] = json.loads(done.stdout)
    return seen


def test_a_worker_is_forked_from_the_command_with_default_signals(tmp_path: Path) -> None:
    seen = run_command(tmp_path, "wanted")
    assert seen["command_pid"] == seen["pid"]  # the command's module, not run again
    assert seen["grandparent"] == seen["pid"]  # worker -> fork server -> command
    assert seen["server_runs_this_file"] is True  # no new interpreter
    assert seen["preloaded"] is True
    assert seen["sigterm_default"] is True  # a worker ends on SIGTERM, as a fresh one
    assert seen["threads"] == 1
    # the command's objects (its modules) are out of the collector's sight, the worker's too
    assert all(isinstance(n, int) and n > 10_000 for n in (seen["frozen"], seen["command_frozen"]))
    assert seen["server_left"] is False and seen["server_gone"] is True


def test_with_a_thread_running_multiprocessing_starts_its_own_server(tmp_path: Path) -> None:
    seen = run_command(tmp_path, "thread")
    assert seen["server_runs_this_file"] is False  # multiprocessing's own interpreter
    assert seen["command_pid"] != seen["pid"]  # that one ran this file again
    assert seen["sigterm_default"] is True


def test_unwanted_forks_nothing(tmp_path: Path) -> None:
    seen = run_command(tmp_path, "unwanted")
    assert seen["server_runs_this_file"] is False
    frozen = seen["command_frozen"]  # its exit does not walk its modules either
    assert isinstance(frozen, int) and frozen > 10_000


def test_a_fork_refused_leaves_the_server_to_multiprocessing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No process to spare (EAGAIN, ENOMEM): the workers come from multiprocessing's own
    server as before, the command does not end on an internal error."""
    from hirondelle.migrator import zygote

    def refused() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(zygote.threading, "active_count", lambda: 1)
    monkeypatch.setattr(zygote.os, "fork", refused)
    server: Any = multiprocessing.forkserver._forkserver  # private fields: not in the stubs
    assert server._forkserver_pid is None
    assert zygote.start([]) is False
    assert server._forkserver_pid is None and server._forkserver_alive_fd is None
