"""`run_measured`: a command's own peak RSS, CPU time, wall time and exit code, read through
the launcher whatever the benchmark process itself holds; timeouts and Ctrl-C stop the
command with its process group; only the command's launcher is reaped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from hirondelle.bench._servers import LIVE, Finished, run_measured, stop_live

MB = 2**20
BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3:\n    pass\n"


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / MB


def ended(pid: int, deadline_s: float = 10.0) -> bool:
    """Whether `pid` ended within the deadline (a zombie counts: its new parent reaps it)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


def wait_for_line(path: Path, text: str, deadline_s: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_s
    while text not in path.read_text(encoding="utf-8"):
        assert time.monotonic() < deadline, f"{path.name} never said {text!r}"
        time.sleep(0.02)


def test_peak_rss_is_the_commands_own_not_the_benchmarks() -> None:
    held = bytearray(300 * MB)  # zero-filled: every page is touched, so resident
    assert rss_mb() >= 300
    grown = run_measured([sys.executable, "-c", "b = bytearray(50 * 2**20)"])
    floor = run_measured(["true"])  # a command that holds next to nothing
    assert len(held) == 300 * MB  # still held while both ran
    assert grown.returncode == 0 and 50 <= grown.peak_rss_mb < 150
    assert floor.returncode == 0 and floor.peak_rss_mb < 30


def test_cpu_time_is_the_commands_own_with_the_descendants_it_reaped() -> None:
    alone = run_measured([sys.executable, "-c", BURN])
    assert 0.3 <= alone.cpu_seconds < 5 and alone.seconds >= alone.cpu_seconds * 0.9
    parent = f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {BURN!r}])"
    tree = run_measured([sys.executable, "-c", parent])
    assert 0.3 <= tree.cpu_seconds < 5


def test_exit_codes_signal_deaths_and_a_command_that_cannot_start() -> None:
    assert run_measured([sys.executable, "-c", "raise SystemExit(3)"]).returncode == 3
    assert run_measured(["true"]).returncode == 0
    killed = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
    assert run_measured([sys.executable, "-c", killed]).returncode == -signal.SIGTERM
    with pytest.raises(FileNotFoundError) as missing:
        run_measured(["hirondelle-no-such-command"])
    assert missing.value.filename == "hirondelle-no-such-command"


def test_a_command_past_its_timeout_is_killed_with_its_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = (
        "import subprocess\n"
        "sleeper = subprocess.Popen(['sleep', '60'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(sleeper.pid))\n"
        "sleeper.wait()\n"
    )
    children = {child.pid for child in psutil.Process().children()}
    finished = run_measured([sys.executable, "-c", script], timeout=2.0)
    assert finished.returncode == -signal.SIGKILL
    assert 2.0 <= finished.seconds < 10
    assert ended(int(pid_file.read_text()))  # the command's own child went with it
    assert {child.pid for child in psutil.Process().children()} == children  # launcher reaped


@pytest.mark.parametrize(
    ("script", "returncode"),
    [
        ("echo ready; exec sleep 60", -signal.SIGINT),
        # SIGINT ignored: the group is killed after the launcher's grace period
        ("trap '' INT; echo ready; sleep 60", -signal.SIGKILL),
    ],
)
def test_stop_live_stops_a_running_command(tmp_path: Path, script: str, returncode: int) -> None:
    output = tmp_path / "out"
    finished: list[Finished] = []

    def run() -> None:
        with open(output, "wb") as stdout:
            finished.append(run_measured(["sh", "-c", script], stdout=stdout))

    output.touch()
    worker = threading.Thread(target=run)
    worker.start()
    try:
        wait_for_line(output, "ready")
        assert len(LIVE) == 1
        stop_live()
    finally:
        worker.join(timeout=30)
    assert not worker.is_alive() and not LIVE
    assert finished[0].returncode == returncode and finished[0].seconds < 30


def test_only_the_commands_launcher_is_reaped() -> None:
    other = subprocess.Popen(["sleep", "60"])
    try:
        assert run_measured(["true"]).returncode == 0
        assert other.poll() is None
    finally:
        other.kill()
    assert other.wait(timeout=10) == -signal.SIGKILL


def test_the_command_gets_its_environment_folder_and_signals_as_a_plain_child(
    tmp_path: Path,
) -> None:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": "kept", "MARK": "set"}
    output = tmp_path / "out"
    with open(output, "wb") as stdout:
        shown = 'pwd; echo "$MARK $PYTHONPATH"; grep -E "^Sig(Ign|Blk)" /proc/self/status'
        finished = run_measured(["sh", "-c", shown], env=env, cwd=tmp_path, stdout=stdout)
    assert finished.returncode == 0
    plain = subprocess.run(
        ["sh", "-c", 'grep -E "^Sig(Ign|Blk)" /proc/self/status'],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = output.read_text(encoding="utf-8").splitlines()
    assert lines[:2] == [str(tmp_path), "set kept"]
    assert lines[2:] == plain.stdout.splitlines()
