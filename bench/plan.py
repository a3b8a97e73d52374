"""Plan benchmark: `hirondelle plan --json` over a generated tenant of many users.

    python -m hirondelle.bench.plan --quick   # 1,000 users
    python -m hirondelle.bench.plan           # 10,000 users

`hirondelle sandbox serve --users N --messages M` runs in its own process over HTTPS with
throttling off; the time from its start to its banner and its resident memory then are
the sandbox's generation figures. `python -m hirondelle.cli -c FILE plan --json` then
runs as a measured child (wall time from start to exit, imports included; CPU and peak
RSS from `wait4`) against archive targets for every workload, so nothing but Graph is
reached. Graph requests are the sandbox's `/_sandbox/stats` counter after the run less
before it. The sandbox's CPU time over the plan and what the rest of the machine used
meanwhile (`other_cpu_s`: a busy machine skews the figures) are printed too. The last
line printed is one JSON object: `users`, `seconds`, `cpu_s`,
`peak_rss_mb`, `requests`, then every other figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from hirondelle.bench._hirondelle import STATE_TABLE, run_env, source_table, write_tables
from hirondelle.bench._servers import (
    BenchError,
    SandboxEndpoint,
    SandboxProcess,
    SandboxShape,
    guarded_run,
    machine_busy_seconds,
    run_measured,
    stop_live,
    tree_cpu_seconds,
)

QUICK_USERS = 1000
FULL_USERS = 10_000
WORKLOADS = ("mail", "calendar", "contacts", "files", "chat")
FILES_UNITS_PER_MINUTE = 1_000_000


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hirondelle.bench.plan",
        description="Measure `hirondelle plan --json` over a large generated sandbox tenant.",
    )
    parser.add_argument("--users", type=int, help=f"users (default {FULL_USERS:,})")
    parser.add_argument("--messages", type=int, default=5, help="messages per user (default 5)")
    parser.add_argument("--seed", type=int, default=7, help="tenant seed (default 7)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_USERS:,} users")
    parser.add_argument("--deep", action="store_true", help="run `plan --deep` instead")
    parser.add_argument(
        "--source",
        choices=("auto", "reports", "graph"),
        default="auto",
        help="`plan --source` (default auto: the usage reports)",
    )
    parser.add_argument("--profile", type=Path, help="profile the plan into FILE (slows it)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds for the plan")
    args = parser.parse_args(argv)
    if args.users is None:
        args.users = QUICK_USERS if args.quick else FULL_USERS
    if args.users < 1 or args.messages < 0:
        parser.error("--users must be at least 1 and --messages not negative")
    return args


def say(line: str) -> None:
    print(line, flush=True)


def write_config(directory: Path, endpoint: SandboxEndpoint) -> Path:
    """`hirondelle.toml` with the sandbox as source and an archive target per workload."""
    # the tenant-wide SharePoint budget (1,200 units a minute by default) would pace the
    # drive listings of thousands of OneDrives: kept out of a speed figure
    source = source_table(endpoint, files_units_per_minute=FILES_UNITS_PER_MINUTE)
    tables: dict[str, Mapping[str, object]] = {"source": source, "state": STATE_TABLE}
    for workload in WORKLOADS:
        tables[f"targets.{workload}"] = {"kind": "archive", "path": f"archive/{workload}"}
    return write_tables(directory, tables)


@dataclass(frozen=True)
class Generation:
    """How long the sandbox took from its start to its banner, and its memory then."""

    seconds: float
    rss_mb: float


def start_sandbox(args: argparse.Namespace, work: Path, stack: ExitStack) -> SandboxProcess:
    shape = SandboxShape(users=args.users, messages=args.messages, seed=args.seed)
    sandbox = SandboxProcess(shape, work / "sandbox.log")
    stack.callback(sandbox.stop)
    return sandbox


def generation(sandbox: SandboxProcess) -> Generation:
    started = time.perf_counter()
    sandbox.start()
    seconds = time.perf_counter() - started
    rss = psutil.Process(sandbox.pid).memory_info().rss / 2**20
    return Generation(seconds, rss)


def measure_plan(args: argparse.Namespace, sandbox: SandboxProcess, work: Path) -> dict[str, Any]:
    """The measured `plan --json` child and the Graph requests it made."""
    assert sandbox.endpoint is not None
    config = write_config(work, sandbox.endpoint)
    env = run_env(sandbox.endpoint, {})
    wrapper = [sys.executable, "-m"]
    if args.profile is not None:
        wrapper = [*wrapper, "hirondelle.bench._profile", str(args.profile.resolve())]
    command = [*wrapper, "hirondelle.cli", "-c", str(config), "plan", "--json"]
    command += ["--source", args.source]
    if args.deep:
        command.append("--deep")
    before = int(sandbox.stats()["requests"])
    server = psutil.Process(sandbox.pid)
    sandbox_cpu, machine_cpu = tree_cpu_seconds(server), machine_busy_seconds()
    out_path, log_path = work / "plan.json", work / "plan.log"
    with open(out_path, "wb") as stdout, open(log_path, "wb") as stderr:
        finished = run_measured(
            command, env=env, cwd=work, stdout=stdout, stderr=stderr, timeout=args.timeout
        )
    requests = int(sandbox.stats()["requests"]) - before
    sandbox_cpu = tree_cpu_seconds(server) - sandbox_cpu
    other_cpu = machine_busy_seconds() - machine_cpu - sandbox_cpu - finished.cpu_seconds
    if finished.returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-1500:]
        raise BenchError(f"hirondelle plan exited with {finished.returncode}: {tail}")
    with open(out_path, encoding="utf-8") as answer:
        plan = json.load(answer)
    return {
        "seconds": round(finished.seconds, 1),
        "cpu_s": round(finished.cpu_seconds, 1),
        "peak_rss_mb": round(finished.peak_rss_mb, 1),
        "requests": requests,
        "requests_per_user": round(requests / args.users, 2),
        "sandbox_cpu_s": round(sandbox_cpu, 1),
        "other_cpu_s": round(max(0.0, other_cpu), 1),
        "plan_owners": plan["owners"],
        "plan_items": plan["items"],
        "plan_findings": len(plan["findings"]),
        "plan_counted": sorted({row["counted"] for row in plan["containers"]}),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The sandbox, then the plan; every child and the temporary folder go on the way out."""
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hirondelle-bench-")))
        stack.callback(stop_live)
        say(f"sandbox of {args.users:,} users, {args.messages} messages each")
        sandbox = start_sandbox(args, work, stack)
        made = generation(sandbox)
        say(f"sandbox ready in {made.seconds:.1f} s, {made.rss_mb:.0f} MB; planning")
        figures = measure_plan(args, sandbox, work)
        sandbox_rss = psutil.Process(sandbox.pid).memory_info().rss / 2**20
    return {
        "users": args.users,
        **figures,
        "sandbox_generation_s": round(made.seconds, 1),
        "sandbox_rss_mb_ready": round(made.rss_mb, 1),
        "sandbox_rss_mb_after": round(sandbox_rss, 1),
        "deep": args.deep,
        "source": args.source,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = guarded_run(lambda: run(args))
    if isinstance(result, int):
        return result
    say(
        f"plan of {result['users']:,} users: {result['seconds']} s, {result['cpu_s']} s CPU, "
        f"{result['peak_rss_mb']} MB, {result['requests']:,} Graph requests"
    )
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
