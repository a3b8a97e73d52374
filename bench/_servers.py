"""Processes the benchmarks start and measure: the Graph sandbox, Dovecot, any command.

The sandbox runs as `python -m hirondelle.cli sandbox serve` in its own process (its
own interpreter, so it never shares the migration's GIL); what it needs to be reached
is parsed from the lines it prints. Every child is started in a session of its own,
so a Ctrl-C reaches the benchmark only, which then stops each child by its PID.
`run_measured` runs one command to its end through a small launcher process
(`_launcher.py`), which reaps it with `wait4` and reports the command's own peak RSS and
CPU time: read from this process, a child's peak RSS would start from this process's own.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any, Protocol

import psutil

from hirondelle.tests.servers import DovecotServer

READY_DEADLINE_S = 120.0  # generating 20,000 messages takes a few seconds on a slow machine
STOP_DEADLINE_S = 10.0
LIVE: set[subprocess.Popen[Any]] = set()  # launchers of measured commands not yet reaped
LAUNCHER = Path(__file__).resolve().with_name("_launcher.py")
_BANNER = {
    "graph_url": re.compile(r"^Graph URL:\s+(\S+)"),
    "authority": re.compile(r"^Authority:\s+(\S+)"),
    "ca_file": re.compile(r"^CA file:\s+(\S+)"),
    "tenant_id": re.compile(r"^Tenant id:\s+(\S+)"),
    "client_id": re.compile(r"^Client id:\s+(\S+)"),
    "client_secret": re.compile(r"^Client secret:\s+(\S+)"),
}


class BenchError(RuntimeError):
    """The benchmark cannot run or a measured run failed; the message says why."""


def require_tools() -> None:
    """Fail early, naming the package, when a server or peer tool is missing."""
    missing = [
        f"{tool} (apt-get install {package})"
        for tool, package in (("dovecot", "dovecot-imapd"), ("mbsync", "isync"))
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists()
    ]
    if missing:
        raise BenchError("missing: " + ", ".join(missing))
    if os.geteuid() != 0:
        raise BenchError("Dovecot's mail belongs to the vmail user: run the benchmark as root")


# -- the Graph sandbox in a child process -----------------------------------------------------


@dataclass(frozen=True)
class SandboxEndpoint:
    """What a client needs to reach the sandbox, as `serve_forever` printed it."""

    graph_url: str
    authority: str
    ca_file: str
    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)  # the sandbox's public test value, still never logged

    @property
    def base_url(self) -> str:
        return self.graph_url.removesuffix("/v1.0")


def parse_banner(lines: Sequence[str]) -> SandboxEndpoint:
    """The endpoint from the sandbox's startup lines; `BenchError` if a line is missing."""
    found: dict[str, str] = {}
    for line in lines:
        for key, pattern in _BANNER.items():
            match = pattern.match(line.strip())
            if match:
                found[key] = match.group(1)
    missing = sorted(set(_BANNER) - set(found))
    if missing:
        raise BenchError(f"the sandbox did not print {', '.join(missing)}")
    if not found["graph_url"].startswith("https://"):
        raise BenchError("the sandbox must serve HTTPS (azure-identity refuses http)")
    return SandboxEndpoint(**found)


@dataclass(frozen=True)
class SandboxShape:
    """The tenant and limits a sandbox process serves."""

    users: int
    messages: int
    large: int = 0
    seed: int = 7
    scale: float | None = None  # None: throttling off

    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "hirondelle.cli", "sandbox", "serve", "--port", "0"]
        argv += ["--users", str(self.users), "--messages", str(self.messages)]
        argv += ["--large", str(self.large), "--seed", str(self.seed), "--tls"]
        if self.scale is None:
            return [*argv, "--no-throttle"]
        return [*argv, "--scale", repr(self.scale)]


class SandboxCommand(Protocol):
    """What a sandbox child runs: a command line that prints `serve_forever`'s banner."""

    def argv(self) -> list[str]: ...


class SandboxProcess:
    """`hirondelle sandbox serve` (or any `SandboxCommand`) as a child process, stopped by
    its PID."""

    def __init__(self, shape: SandboxCommand, log_path: Path) -> None:
        self.shape = shape
        self.log_path = log_path
        self.process: subprocess.Popen[str] | None = None
        self.endpoint: SandboxEndpoint | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()

    def start(self) -> SandboxEndpoint:
        """Start it and return once it printed its endpoint (the port is then open)."""
        self.launch()
        return self.ready()

    def launch(self) -> None:
        """Start the process; `ready` waits for its endpoint (generation takes seconds)."""
        self.process = subprocess.Popen(
            self.shape.argv(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._drain, daemon=True).start()

    def ready(self) -> SandboxEndpoint:
        """The endpoint, once the sandbox printed it; `BenchError` past the deadline."""
        banner: list[str] = []
        deadline = time.monotonic() + READY_DEADLINE_S
        while not any(line.startswith("Control:") for line in banner):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError(f"the sandbox did not start within {READY_DEADLINE_S:.0f} s")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise BenchError(f"the sandbox exited: see {self.log_path}")
            banner.append(line)
        self.endpoint = parse_banner(banner)
        return self.endpoint

    def _drain(self) -> None:
        """Copy the child's output to the log (the secret line excepted) and the queue."""
        assert self.process is not None and self.process.stdout is not None
        with open(self.log_path, "w", encoding="utf-8") as log:
            for line in self.process.stdout:
                self._lines.put(line)
                log.write("Client secret: (hidden)\n" if "secret" in line.lower() else line)
                log.flush()
        self._lines.put(None)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stats(self) -> dict[str, Any]:
        """`GET /_sandbox/stats`: requests and throttled answers, in total and per mailbox."""
        assert self.endpoint is not None
        context = ssl.create_default_context(cafile=self.endpoint.ca_file)
        url = f"{self.endpoint.base_url}/_sandbox/stats"
        with urllib.request.urlopen(url, context=context, timeout=10) as answer:
            stats: dict[str, Any] = json.load(answer)
        return stats

    def stop(self) -> None:
        stop_process(self.process)


def stop_process(process: subprocess.Popen[Any] | None) -> None:
    """Terminate one child by its PID, kill it if it lingers, and reap it."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)  # the sandbox and the CLI both end cleanly on SIGINT
    try:
        process.wait(timeout=STOP_DEADLINE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_DEADLINE_S)


def stop_live() -> None:
    """Stop every measured child still running (on Ctrl-C, from the main thread)."""
    for process in list(LIVE):
        LIVE.discard(process)
        try:
            stop_process(process)
        except (OSError, subprocess.SubprocessError):
            continue


# -- Dovecot ----------------------------------------------------------------------------------


def start_dovecot(logins: Sequence[str], password: str) -> DovecotServer:
    """A fresh Dovecot whose users are `logins` (its master user logs in as any of them)."""
    server = DovecotServer(dict.fromkeys(logins, password), spare_users=0, start_timeout=30)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    return server


def dovecot_master(server: DovecotServer) -> psutil.Process:
    """The Dovecot master process of `server`, found among this process's children."""
    config = str(server.root / "dovecot.conf")
    return child_process(
        lambda child: config in child.cmdline(), f"no Dovecot process runs {config}"
    )


def child_process(matches: Callable[[psutil.Process], bool], missing: str) -> psutil.Process:
    """The child of this process that `matches`; `BenchError(missing)` when none does."""
    for child in psutil.Process().children():
        try:
            if matches(child):
                return child
        except psutil.Error:
            continue
    raise BenchError(missing)


def cpu_seconds(process: psutil.Process) -> float:
    """CPU seconds of one process (user and system), without its children."""
    times = process.cpu_times()
    return times.user + times.system


def tree_cpu_seconds(process: psutil.Process) -> float:
    """CPU seconds of a process, its living descendants and its reaped children."""
    total = 0.0
    for member in [process, *process.children(recursive=True)]:
        try:
            times = member.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has been busy (not idle, not waiting on I/O)."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def message_count(server: DovecotServer, login: str) -> tuple[int, int]:
    """(messages, bytes) over every folder of `login`, as Dovecot counts them."""
    command = ["doveadm", "-c", str(server.root / "dovecot.conf"), "-f", "flow"]
    command += ["mailbox", "status", "-u", login, "-t", "messages vsize", "*"]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    if done.returncode != 0:
        raise BenchError(f"doveadm mailbox status {login}: {done.stderr.strip()}")
    fields = dict(part.split("=", 1) for part in done.stdout.split())
    return int(fields.get("messages", 0)), int(fields.get("vsize", 0))


# -- a measured command -----------------------------------------------------------------------


@dataclass(frozen=True)
class Finished:
    """How a measured command ended and what it used."""

    returncode: int
    seconds: float
    peak_rss_mb: float
    cpu_seconds: float


def run_measured(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdout: IO[Any] | int | None = subprocess.DEVNULL,
    stderr: IO[Any] | int | None = subprocess.DEVNULL,
    timeout: float = 3600.0,
) -> Finished:
    """Run `argv` to its end; wall time, its own peak RSS and CPU time (from `wait4`).

    The command runs under `_launcher.py` (a Python without site or environment, a few
    megabytes): on Linux a process's peak RSS survives exec, so a command this process
    started itself would report at least this process's peak. The launcher reaps only its
    own child (this process reaps only the launcher, by PID) and reports the command's
    exit code (negative for a signal), CPU time and peak RSS, its reaped descendants
    included, and its wall time from start to exit. A command still running after
    `timeout` seconds is killed, with the descendants in its process group; a command that
    cannot be executed raises `OSError`, as `subprocess.Popen` does.
    """
    report_read, report_write = os.pipe()
    try:
        process = subprocess.Popen(
            [sys.executable, "-S", "-I", str(LAUNCHER), str(report_write), repr(timeout)]
            + [repr(STOP_DEADLINE_S / 2), *argv],
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            pass_fds=(report_write,),
        )
    except BaseException:
        os.close(report_read)
        raise
    finally:
        os.close(report_write)
    LIVE.add(process)
    try:
        with open(report_read, "rb") as report:
            line = report.read().decode()  # written once the command is reaped, then EOF
        process.wait()
    except BaseException:
        stop_process(process)  # the launcher passes SIGINT on to the command's group
        raise
    finally:
        LIVE.discard(process)
    return launcher_report(line, argv[0], process.returncode)


def launcher_report(line: str, command: str, launcher_code: int) -> Finished:
    """What `_launcher.py` wrote: the command's figures; `OSError` if it did not start."""
    match line.split():
        case ["exit", code, maxrss_kb, user, system, seconds]:
            return Finished(
                returncode=int(code),
                seconds=float(seconds),
                peak_rss_mb=int(maxrss_kb) / 1024,  # kilobytes on Linux
                cpu_seconds=float(user) + float(system),
            )
        case ["exec", errno]:
            raise OSError(int(errno), os.strerror(int(errno)), command)
    raise BenchError(f"the launcher of {command} exited with {launcher_code} and no report")


def run_floor_client(
    module: str,
    arguments: Sequence[str],
    endpoint: SandboxEndpoint,
    settings: Mapping[str, str],
    directory: Path,
    timeout: float,
) -> tuple[Finished, str]:
    """`python -m hirondelle.bench.<module> ARGUMENTS`, a raw floor client, measured: the
    sandbox's endpoint and `settings` in its `FLOOR_*` variables, its output and log in
    `directory`. Its figures and what it printed; `BenchError` if it failed."""
    env = {
        **os.environ,
        "FLOOR_GRAPH_URL": endpoint.graph_url,
        "FLOOR_AUTHORITY": endpoint.authority,
        "FLOOR_TENANT_ID": endpoint.tenant_id,
        "FLOOR_CLIENT_ID": endpoint.client_id,
        "FLOOR_CLIENT_SECRET": endpoint.client_secret,
        "FLOOR_CA_FILE": endpoint.ca_file,
        **settings,
    }
    directory.mkdir(parents=True, exist_ok=True)
    output, log = directory / "floor.json", directory / "floor.log"
    with open(output, "wb") as stdout, open(log, "wb") as stderr:
        finished = run_measured(
            [sys.executable, "-m", f"hirondelle.bench.{module}", *arguments],
            env=env,
            stdout=stdout,
            stderr=stderr,
            timeout=timeout,
        )
    if finished.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-1500:]
        raise BenchError(f"the floor client exited with {finished.returncode}: {tail}")
    return finished, output.read_text(encoding="utf-8")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def guarded_run(work: Callable[[], dict[str, Any]]) -> dict[str, Any] | int:
    """A benchmark's figures, or its exit status when it failed (2) or was stopped (130).

    Ctrl-C and SIGTERM both unwind through the clean-up, even when this process was started
    with SIGINT ignored (a background job); the children then get the default.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return work()
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; servers stopped and temporary files removed", file=sys.stderr)
        return 130


def child_serving(data_dir: Path) -> psutil.Process:
    """The child of this process that serves `data_dir` (its command line names it)."""
    data = str(data_dir)
    return child_process(lambda child: data in child.cmdline(), f"no server serves {data}")
