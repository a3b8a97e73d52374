"""Mail benchmark: Graph sandbox to Dovecot with hirondelle, against mbsync Dovecot to Dovecot.

    python -m hirondelle.bench.mail --quick        # 4 x 250 messages, under two minutes
    python -m hirondelle.bench.mail                # 20 mailboxes x 1,000 messages

It starts everything it measures and stops it again, even on Ctrl-C:

1. Speed: the sandbox serves a generated tenant from its own process (HTTPS, throttling
   off); `hirondelle run` copies it into a fresh Dovecot through the IMAP target, as a
   child process whose wall time, peak RSS and CPU time are measured.
2. Floor, same run: a minimal raw client (`_mail_floor`: aiohttp, `$batch`es of `$value`s,
   pipelined APPENDs, no state and no checks) copies the same tenant from a fresh sandbox
   into a fresh Dovecot, as concurrently as hirondelle and measured the same way: what
   any Python client reaches against the same servers on the same machine.
3. Peer, same run: the same MIME bytes are appended to a source Dovecot (not timed), then
   one mbsync process per mailbox, `--concurrency` at once, copies them into another
   fresh Dovecot.
4. Budget use: a smaller tenant behind the sandbox's scaled per-mailbox limits, with
   hirondelle's budget set to the same limits; the sandbox's counters say how much of
   the permitted rate was used and how many requests were refused (429).

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from hirondelle.bench._hirondelle import Budget, run_hirondelle, watch_budget
from hirondelle.bench._hirondelle import write_config as write_hirondelle_config
from hirondelle.bench._peer import MbsyncRun, mbsync_configs, populate, run_mbsync
from hirondelle.bench._servers import (
    Finished,
    SandboxEndpoint,
    SandboxProcess,
    SandboxShape,
    cpu_seconds,
    dovecot_master,
    guarded_run,
    machine_busy_seconds,
    message_count,
    require_tools,
    run_floor_client,
    start_dovecot,
    stop_live,
    tree_cpu_seconds,
)
from hirondelle.migrator.coordinator import default_workers
from hirondelle.migrator.workload import RunOptions
from hirondelle.sandbox.tenant import Tenant, TenantSpec
from hirondelle.tests.servers import DovecotServer

USER_PASSWORD = "bench-user-pw"  # the users' own password; everyone logs in as the master user
MB = 1_000_000


@dataclass(frozen=True)
class Corpus:
    """The generated tenant both sides copy."""

    mailboxes: int
    messages: int  # per mailbox
    large: int  # messages with a 40 MB attachment, tenant-wide
    seed: int

    def spec(self) -> TenantSpec:
        return TenantSpec(
            seed=self.seed, users=self.mailboxes, messages=self.messages, large_messages=self.large
        )

    def shape(self, scale: float | None) -> SandboxShape:
        return SandboxShape(self.mailboxes, self.messages, self.large, self.seed, scale)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hirondelle.bench.mail",
        description="Benchmark hirondelle's mail copy (Graph sandbox to Dovecot) against mbsync.",
    )
    parser.add_argument("--mailboxes", type=int, default=20, help="mailboxes (default 20)")
    parser.add_argument("--messages", type=int, default=1000, help="messages per mailbox")
    parser.add_argument(
        "--concurrency", type=int, default=8, help="mailboxes at once, both sides (default 8)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="hirondelle's worker processes (default: the core count); the mailboxes at "
        "once (--concurrency) are shared among them",
    )
    parser.add_argument(
        "--large", type=int, default=0, help="messages with a 40 MB attachment (default 0)"
    )
    parser.add_argument("--seed", type=int, default=7, help="tenant seed (default 7)")
    parser.add_argument("--quick", action="store_true", help="4 x 250 and a budget run of 4 x 150")
    parser.add_argument("--budget-mailboxes", type=int, default=4)
    parser.add_argument("--budget-messages", type=int, default=300)
    parser.add_argument(
        "--scale", type=float, default=0.02, help="sandbox throttling scale (0.02: 200 req / 12 s)"
    )
    parser.add_argument("--no-budget", action="store_true", help="skip the budget-use run")
    parser.add_argument("--no-peer", action="store_true", help="skip mbsync")
    parser.add_argument(
        "--no-floor", action="store_true", help="skip the raw client's floor (same servers)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="also sample hirondelle's stacks into this file (slows it; figures then indicative)",
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per measured run")
    args = parser.parse_args(argv)
    if args.quick:
        args.mailboxes, args.messages = 4, 250
        args.budget_mailboxes, args.budget_messages = 4, 150
    for name in (
        "mailboxes",
        "messages",
        "concurrency",
        "workers",
        "budget_mailboxes",
        "budget_messages",
    ):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 0 < args.scale <= 1:
        parser.error("--scale must be in (0, 1]")
    return args


def say(line: str) -> None:
    print(line, flush=True)


# -- the speed run --------------------------------------------------------------------------


def measure_speed(args: argparse.Namespace, work: Path, stack: ExitStack) -> dict[str, Any]:
    """Copy the corpus with hirondelle, then with mbsync; return both sides' figures."""
    corpus = Corpus(args.mailboxes, args.messages, args.large, args.seed)
    sandbox = SandboxProcess(corpus.shape(None), work / "sandbox-speed.log")
    stack.callback(sandbox.stop)
    sandbox.launch()
    tenant = Tenant.generate(corpus.spec())  # the same bytes the sandbox serves
    sandbox.ready()
    logins = [user.upn for user in tenant.users]
    source = _dovecot(stack, logins)
    started = time.perf_counter()
    count, size = populate(source, tenant)
    say(
        f"corpus: {corpus.mailboxes} mailboxes x {corpus.messages} = {count} messages, "
        f"{size / MB:.1f} MB, {corpus.large} large (source Dovecot filled in "
        f"{time.perf_counter() - started:.1f} s, not timed)"
    )
    figures: dict[str, Any] = {"messages": count, "mb": round(size / MB, 1)}
    figures.update(_hirondelle_side(args, work, stack, sandbox, logins, count, size))
    sandbox.stop()
    if not args.no_floor:
        figures.update(_floor_side(args, work, stack, corpus, logins, count, size))
    figures.update(_fixed_cost(args, work, stack, count, figures))
    if not args.no_peer:
        figures.update(_mbsync_side(args, work, stack, source, logins, count, size))
        mbsync = figures["mbsync_msgs_per_s"]
        figures["ratio_vs_mbsync"] = round(figures["msgs_per_s"] / mbsync, 3)
        if not args.no_floor:
            figures["floor_ratio_vs_mbsync"] = round(figures["floor_msgs_per_s"] / mbsync, 3)
    source.stop()
    return figures


def per_worker(args: argparse.Namespace) -> int:
    """Owners each worker moves at once: the mailboxes at once, shared among the workers,
    so both sides move `--concurrency` mailboxes at once."""
    return max(1, -(-args.concurrency // args.workers))


def _dovecot(stack: ExitStack, logins: Sequence[str]) -> DovecotServer:
    server = start_dovecot(logins, USER_PASSWORD)
    stack.callback(server.stop)
    return server


def _hirondelle_side(
    args: argparse.Namespace,
    work: Path,
    stack: ExitStack,
    sandbox: SandboxProcess,
    logins: Sequence[str],
    count: int,
    size: int,
) -> dict[str, Any]:
    assert sandbox.endpoint is not None
    target = _dovecot(stack, logins)
    config = write_hirondelle_config(
        work / "hirondelle", sandbox.endpoint, target, per_worker(args), workers=args.workers
    )
    sandbox_process, dovecot = psutil.Process(sandbox.pid), dovecot_master(target)
    sandbox_cpu, dovecot_cpu = cpu_seconds(sandbox_process), tree_cpu_seconds(dovecot)
    busy = machine_busy_seconds()
    report = run_hirondelle(config, sandbox.endpoint, target, args.timeout, _wrapper(args))
    busy = machine_busy_seconds() - busy
    sandbox_cpu = cpu_seconds(sandbox_process) - sandbox_cpu
    dovecot_cpu = tree_cpu_seconds(dovecot) - dovecot_cpu
    other_cpu = max(0.0, busy - report.finished.cpu_seconds - sandbox_cpu - dovecot_cpu)
    stored = _stored(target, logins)
    requests = int(sandbox.stats()["requests"])
    seconds = report.finished.seconds
    say(
        f"hirondelle: {report.copied} copied, {report.skipped} skipped, {report.failed} failed, "
        f"{stored} on the target, in {seconds:.1f} s: {count / seconds:.1f} msg/s, "
        f"{size / MB / seconds:.2f} MB/s, peak RSS {report.finished.peak_rss_mb:.0f} MB"
    )
    say(
        f"  CPU: hirondelle {report.finished.cpu_seconds:.1f} s "
        f"({1000 * report.finished.cpu_seconds / max(count, 1):.2f} ms a message, "
        f"{args.workers} worker(s)), sandbox {sandbox_cpu:.1f} s, "
        f"target Dovecot {dovecot_cpu:.1f} s, anything else {other_cpu:.1f} s (other load "
        f"skews the figures); {requests} Graph requests "
        f"({requests / max(count, 1):.2f} per message)"
    )
    _check(stored, count, "hirondelle's target")
    target.stop()
    return {
        "msgs_per_s": round(count / seconds, 1),
        "mb_per_s": round(size / MB / seconds, 2),
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(report.finished.peak_rss_mb, 1),
        "copied": report.copied,
        "skipped": report.skipped,
        "failed": report.failed,
        "on_target": stored,
        "hirondelle_cpu_s": round(report.finished.cpu_seconds, 2),
        "hirondelle_cpu_ms_per_msg": round(1000 * report.finished.cpu_seconds / max(count, 1), 2),
        "sandbox_cpu_s": round(sandbox_cpu, 1),
        "dovecot_cpu_s": round(dovecot_cpu, 1),
        "other_cpu_s": round(other_cpu, 1),
        "graph_requests": requests,
    }


@dataclass(frozen=True)
class FloorRun:
    """The raw client's copy: its process's figures and its workers' tallies."""

    finished: Finished
    appended: int
    failed: int


def run_floor(
    endpoint: SandboxEndpoint,
    target: DovecotServer,
    logins: Sequence[str],
    workers: int,
    mailboxes: int,
    directory: Path,
    timeout: float,
) -> FloorRun:
    """`python -m hirondelle.bench._mail_floor` over `logins`, measured like hirondelle:
    `workers` processes, `mailboxes` at once in each, the migration's fetches in flight."""
    settings = {
        "FLOOR_IMAP_HOST": target.host,
        "FLOOR_IMAP_PORT": str(target.port),
        "FLOOR_MASTER_USER": target.master_user,
        "FLOOR_MASTER_PASSWORD": target.master_password,
        "FLOOR_WORKERS": str(workers),
        "FLOOR_MAILBOXES": str(mailboxes),
        "FLOOR_FETCHES": str(RunOptions().fetch_concurrency),
    }
    finished, output = run_floor_client(
        "_mail_floor", logins, endpoint, settings, directory, timeout
    )
    tallies = [json.loads(line) for line in output.splitlines()]
    return FloorRun(
        finished,
        appended=sum(int(tally["appended"]) for tally in tallies),
        failed=sum(int(tally["failed"]) for tally in tallies),
    )


def _floor_side(
    args: argparse.Namespace,
    work: Path,
    stack: ExitStack,
    corpus: Corpus,
    logins: Sequence[str],
    count: int,
    size: int,
) -> dict[str, Any]:
    """The raw client's copy of the same tenant, from a fresh sandbox (none of its caches
    warmed by hirondelle's run) into a fresh Dovecot, measured as hirondelle is."""
    sandbox = SandboxProcess(corpus.shape(None), work / "sandbox-floor.log")
    stack.callback(sandbox.stop)
    endpoint = sandbox.start()
    target = _dovecot(stack, logins)
    sandbox_process, dovecot = psutil.Process(sandbox.pid), dovecot_master(target)
    sandbox_cpu, dovecot_cpu = cpu_seconds(sandbox_process), tree_cpu_seconds(dovecot)
    busy = machine_busy_seconds()
    floor = run_floor(
        endpoint, target, logins, args.workers, per_worker(args), work / "floor", args.timeout
    )
    busy = machine_busy_seconds() - busy
    sandbox_cpu = cpu_seconds(sandbox_process) - sandbox_cpu
    dovecot_cpu = tree_cpu_seconds(dovecot) - dovecot_cpu
    finished, appended, failed = floor.finished, floor.appended, floor.failed
    requests = int(sandbox.stats()["requests"])
    sandbox.stop()
    stored = _stored(target, logins)
    target.stop()
    seconds, cpu = finished.seconds, finished.cpu_seconds
    other_cpu = max(0.0, busy - cpu - sandbox_cpu - dovecot_cpu)
    say(
        f"floor (raw client): {appended} appended, {failed} failed, {stored} on the target, "
        f"in {seconds:.1f} s: {count / seconds:.1f} msg/s, {size / MB / seconds:.2f} MB/s, "
        f"peak RSS {finished.peak_rss_mb:.0f} MB"
    )
    say(
        f"  CPU: client {cpu:.1f} s ({1000 * cpu / max(count, 1):.2f} ms a message), sandbox "
        f"{sandbox_cpu:.1f} s, target Dovecot {dovecot_cpu:.1f} s, anything else "
        f"{other_cpu:.1f} s; {requests} Graph requests"
    )
    _check(stored, count, "the floor's target")
    return {
        "floor_msgs_per_s": round(count / seconds, 1),
        "floor_seconds": round(seconds, 2),
        "floor_cpu_s": round(cpu, 2),
        "floor_cpu_ms_per_msg": round(1000 * cpu / max(count, 1), 2),
        "floor_peak_rss_mb": round(finished.peak_rss_mb, 1),
        "floor_on_target": stored,
        "floor_failed": failed,
        "floor_sandbox_cpu_s": round(sandbox_cpu, 1),
        "floor_dovecot_cpu_s": round(dovecot_cpu, 1),
        "floor_other_cpu_s": round(other_cpu, 1),
        "floor_graph_requests": requests,
    }


def _fixed_cost(
    args: argparse.Namespace, work: Path, stack: ExitStack, count: int, speed: dict[str, Any]
) -> dict[str, Any]:
    """The same command over the same mailboxes and folders holding no message: what a
    run costs whatever it copies (process start, imports, workers, folder walks and one
    delta request per folder), so that the rest, per message, is the steady-state cost."""
    empty = Corpus(args.mailboxes, 0, 0, args.seed)
    sandbox = SandboxProcess(empty.shape(None), work / "sandbox-empty.log")
    stack.callback(sandbox.stop)
    endpoint = sandbox.start()
    logins = [user.upn for user in Tenant.generate(empty.spec()).users]
    target = _dovecot(stack, logins)
    config = write_hirondelle_config(
        work / "hirondelle-empty", endpoint, target, per_worker(args), workers=args.workers
    )
    busy = machine_busy_seconds()
    report = run_hirondelle(config, endpoint, target, args.timeout)
    busy = machine_busy_seconds() - busy
    sandbox.stop()
    target.stop()
    cpu, seconds = report.finished.cpu_seconds, report.finished.seconds
    net_cpu = max(0.0, speed["hirondelle_cpu_s"] - cpu)
    net_seconds = max(1e-3, speed["seconds"] - seconds)
    say(
        f"  fixed cost (same mailboxes, no message): {cpu:.1f} s CPU in {seconds:.1f} s "
        f"(machine busy {busy:.1f} s); beyond it {1000 * net_cpu / max(count, 1):.2f} ms "
        f"CPU a message, {count / net_seconds:.1f} msg/s"
    )
    return {
        "hirondelle_startup_cpu_s": round(cpu, 2),
        "hirondelle_startup_seconds": round(seconds, 2),
        "hirondelle_cpu_ms_per_msg_net": round(1000 * net_cpu / max(count, 1), 2),
        "msgs_per_s_net": round(count / net_seconds, 1),
        "startup_machine_busy_s": round(busy, 1),
    }


def _mbsync_side(
    args: argparse.Namespace,
    work: Path,
    stack: ExitStack,
    source: DovecotServer,
    logins: Sequence[str],
    count: int,
    size: int,
) -> dict[str, Any]:
    target = _dovecot(stack, logins)
    password = work / "mbsync" / "master-password"
    password.parent.mkdir(parents=True, exist_ok=True)
    password.write_text(source.master_password + "\n", encoding="utf-8")
    password.chmod(0o600)
    password.chmod(0o600)
    configs = mbsync_configs(work / "mbsync", logins, source, target, password)
    busy = machine_busy_seconds()
    run: MbsyncRun = run_mbsync(configs, args.concurrency, work / "mbsync")
    busy = machine_busy_seconds() - busy
    stored = _stored(target, logins)
    say(
        f"mbsync: {run.processes} processes, {args.concurrency} at once, {stored} on the "
        f"target in {run.seconds:.1f} s: {count / run.seconds:.1f} msg/s, "
        f"{size / MB / run.seconds:.2f} MB/s, peak RSS {run.peak_rss_mb:.0f} MB per process, "
        f"CPU {run.cpu_seconds:.1f} s (machine busy {busy:.1f} s), {run.failures} failed"
    )
    _check(stored, count, "mbsync's target")
    target.stop()
    return {
        "mbsync_msgs_per_s": round(count / run.seconds, 1),
        "mbsync_mb_per_s": round(size / MB / run.seconds, 2),
        "mbsync_seconds": round(run.seconds, 2),
        "mbsync_peak_rss_mb": round(run.peak_rss_mb, 1),
        "mbsync_cpu_s": round(run.cpu_seconds, 1),
        "mbsync_cpu_ms_per_msg": round(1000 * run.cpu_seconds / max(count, 1), 2),
        "mbsync_machine_busy_s": round(busy, 1),
        "mbsync_failures": run.failures,
    }


def _stored(server: DovecotServer, logins: Sequence[str]) -> int:
    return sum(message_count(server, login)[0] for login in logins)


def _check(stored: int, expected: int, where: str) -> None:
    if stored != expected:
        say(f"  WARNING: {where} holds {stored} messages, {expected} expected")


def _wrapper(args: argparse.Namespace) -> list[str] | None:
    if args.profile is None:
        return None
    return [sys.executable, "-m", "hirondelle.bench._profile", str(args.profile.resolve())]


# -- the budget run -------------------------------------------------------------------------


def measure_budget(args: argparse.Namespace, work: Path, stack: ExitStack) -> dict[str, Any]:
    """A smaller copy behind the sandbox's scaled limits: how much of the budget is used."""
    corpus = Corpus(args.budget_mailboxes, args.budget_messages, 0, args.seed)
    budget = Budget.scaled(args.scale)
    sandbox = SandboxProcess(corpus.shape(args.scale), work / "sandbox-budget.log")
    stack.callback(sandbox.stop)
    endpoint = sandbox.start()
    logins = [user.upn for user in Tenant.generate(corpus.spec()).users]
    target = _dovecot(stack, logins)
    config = write_hirondelle_config(
        work / "budget", endpoint, target, per_worker(args), budget=budget, workers=args.workers
    )
    report, watch = watch_budget(
        sandbox, lambda: run_hirondelle(config, endpoint, target, args.timeout)
    )
    figures = watch.figures(budget)
    say(
        f"budget: {corpus.mailboxes} mailboxes x {corpus.messages}, scale {args.scale} "
        f"({budget.requests} requests / {budget.seconds:g} s per mailbox, "
        f"{budget.rate:.2f}/s): {figures['budget_requests_per_mailbox']:.0f} requests per "
        f"mailbox in {figures['budget_span_s']:.1f} s, used {figures['budget_used']:.1%} "
        f"(of the sliding window's most: {figures['budget_used_of_window_max']:.1%}), "
        f"throttled {figures['throttled_share']:.2%}; {report.copied} copied, "
        f"{report.failed} failed in {report.finished.seconds:.1f} s"
    )
    sandbox.stop()
    target.stop()
    return {**figures, "budget_copied": report.copied, "budget_failed": report.failed}


# -- entry point ----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement, with every server and temp dir cleaned up on the way out."""
    require_tools()
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hirondelle-bench-")))
        stack.callback(stop_live)
        result: dict[str, Any] = {
            "mailboxes": args.mailboxes,
            "messages_per_mailbox": args.messages,
            "large_messages": args.large,
            "concurrency": args.concurrency,
            "workers": args.workers,
        }
        result.update(measure_speed(args, work, stack))
        if not args.no_budget:
            result.update(measure_budget(args, work, stack))
            result["scale"] = args.scale
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = guarded_run(lambda: run(args))
    if isinstance(result, int):
        return result
    keys: tuple[str, ...] = ("msgs_per_s", "mb_per_s", "ratio_vs_mbsync")
    keys += ("floor_ratio_vs_mbsync", "budget_used", "throttled_share")
    ordered = {key: result.get(key) for key in (*keys, "peak_rss_mb")}
    print(json.dumps({**ordered, **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
