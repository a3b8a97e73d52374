"""Files benchmark: a OneDrive from the Graph sandbox into WebDAV with hirondelle, against
rclone copying the same files from local disk into the same server.

    python -m hirondelle.bench.files --quick    # 1,000 small files and a 200 MB file
    python -m hirondelle.bench.files            # 5,000 small files and a 2 GB file

Two phases, each measured on both sides in the same run, into one `rclone serve
webdav` (a fresh folder per side and phase):

1. Small files: a sandbox child serves one user's OneDrive with `--files` files (the
   sandbox's log-uniform mix, 100 B to 2.5 MB, about 250 KB on average). hirondelle
   copies it (`python -m hirondelle.cli -c FILE run --json`, a measured child); the same
   bytes, written to local disk first (untimed), are copied by `rclone copy`.
   A raw client (`_files_floor`: aiohttp, delta, download, PUT; no state, no checks)
   then copies the same OneDrive from the same sandbox into a fresh account, measured
   the same way: the floor any Python client reaches on the same servers (`--no-floor`).
2. One large file: the same with a OneDrive holding a `--large-bytes` file (and the
   sandbox's few showcase files, carried by both sides).

Both sides run `--concurrency` transfers at once (hirondelle's `run.fetch_concurrency`,
rclone's `--transfers`). The sandbox throttles nothing and hirondelle's SharePoint budget
is set to `--units-per-minute`, so both measure speed, not Graph's limits. The last line
printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from hirondelle.bench._files_hirondelle import TARGET_FOLDER, FilesRun, run_files, write_config
from hirondelle.bench._files_peer import (
    DavAccount,
    FileSet,
    count_tree,
    rclone_binary,
    rclone_copy,
    write_local,
)
from hirondelle.bench._files_sandbox import DriveShape
from hirondelle.bench._servers import (
    Finished,
    SandboxEndpoint,
    SandboxProcess,
    child_serving,
    cpu_seconds,
    guarded_run,
    machine_busy_seconds,
    run_floor_client,
    stop_live,
    tree_cpu_seconds,
)
from hirondelle.migrator.coordinator import default_workers
from hirondelle.sandbox.tenant import Tenant
from hirondelle.tests.servers import MailUser, RcloneDavServer

MB = 1_000_000
DRIVE_FOLDER = f"{TARGET_FOLDER}/OneDrive"  # where hirondelle puts a user's OneDrive


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hirondelle.bench.files",
        description="Benchmark hirondelle's files copy (Graph sandbox to WebDAV) against rclone.",
    )
    parser.add_argument("--files", type=int, default=5000, help="small files (default 5,000)")
    parser.add_argument(
        "--large-bytes", type=int, default=2_000_000_000, help="the large file (default 2 GB)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=4, help="transfers at once, both sides (default 4)"
    )
    parser.add_argument("--seed", type=int, default=7, help="tenant seed (default 7)")
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="hirondelle's worker processes (default: the core count); one OneDrive is "
        "one owner, moved by one worker, with --concurrency downloads like rclone's transfers",
    )
    parser.add_argument("--quick", action="store_true", help="1,000 small files, a 200 MB file")
    parser.add_argument(
        "--units-per-minute",
        type=int,
        default=1_000_000,
        help="hirondelle's SharePoint budget (default 1,000,000: out of the way)",
    )
    parser.add_argument(
        "--uploads",
        type=int,
        default=4,
        help="hirondelle's files uploaded at once per owner ([targets.files] uploads, default 4)",
    )
    parser.add_argument("--no-peer", action="store_true", help="skip rclone")
    parser.add_argument(
        "--no-floor", action="store_true", help="skip the raw client's floor on small files"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="sample hirondelle's stacks into FILE-small / FILE-large (slows it)",
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per measured run")
    args = parser.parse_args(argv)
    if args.quick:
        args.files, args.large_bytes = 1000, 200_000_000
    for name in ("files", "large_bytes", "concurrency", "units_per_minute", "workers", "uploads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def say(line: str) -> None:
    print(line, flush=True)


@dataclass(frozen=True)
class Side:
    """One side's copy of one phase: how long, what it used, what landed."""

    finished: Finished
    stored: FileSet

    @property
    def files_per_s(self) -> float:
        return self.stored.files / self.finished.seconds

    @property
    def mb_per_s(self) -> float:
        return self.stored.bytes / MB / self.finished.seconds

    def figures(self, prefix: str) -> dict[str, float]:
        return {
            f"{prefix}files_per_s": round(self.files_per_s, 1),
            f"{prefix}mb_per_s": round(self.mb_per_s, 2),
            f"{prefix}seconds": round(self.finished.seconds, 2),
            f"{prefix}peak_rss_mb": round(self.finished.peak_rss_mb, 1),
            f"{prefix}cpu_s": round(self.finished.cpu_seconds, 1),
            f"{prefix}files": self.stored.files,
            f"{prefix}mb": round(self.stored.bytes / MB, 1),
        }


class Bench:
    """The run's shared parts: its options, temporary folder, WebDAV server and clean-up."""

    def __init__(self, args: argparse.Namespace, work: Path, stack: ExitStack) -> None:
        self.args, self.work, self.stack = args, work, stack
        self.server = RcloneDavServer(
            spare_users=6, start_timeout=30
        )  # an account per side and phase
        stack.callback(self.server.stop)
        self.server.start()

    # -- one phase ------------------------------------------------------------------------

    def phase(self, name: str, shape: DriveShape, peer: bool = True) -> dict[str, Any]:
        """Copy one OneDrive with hirondelle, then (with `peer`) its local twin with rclone."""
        sandbox = SandboxProcess(shape, self.work / f"sandbox-{name}.log")
        self.stack.callback(sandbox.stop)
        sandbox.launch()
        tenant = Tenant.generate(shape.spec())  # the same bytes the sandbox serves
        local_dir = self.work / f"local-{name}"
        local = write_local(tenant, local_dir)
        say(
            f"{name}: {local.files} files, {local.bytes / MB:.1f} MB written to local disk "
            f"for rclone (not timed)"
            + (f"; {local.left_out} left out (names over 255 bytes)" if local.left_out else "")
        )
        figures: dict[str, Any] = {f"{name}_source_files": local.files}
        figures.update(self._hirondelle(name, sandbox, tenant.users[0].upn, local))
        if name == "small" and not self.args.no_floor:
            figures.update(self._floor(name, sandbox, tenant.users[0].upn, local))
        sandbox.stop()
        if peer and not self.args.no_peer:
            figures.update(self._rclone(name, local_dir, local))
        shutil.rmtree(local_dir, ignore_errors=True)
        return figures

    def _hirondelle(
        self, name: str, sandbox: SandboxProcess, upn: str, local: FileSet
    ) -> dict[str, Any]:
        endpoint = sandbox.ready()
        user = self.server.new_user()
        account = DavAccount(self.server.url, user.login, user.password, "")
        args = self.args
        run = FilesRun(
            upn, account, args.concurrency, args.units_per_minute, args.workers, args.uploads
        )
        config = write_config(self.work / f"hirondelle-{name}", endpoint, run)
        sandbox_process, server_process = psutil.Process(sandbox.pid), self._server_process()
        sandbox_cpu, server_cpu = tree_cpu_seconds(sandbox_process), cpu_seconds(server_process)
        busy = machine_busy_seconds()
        report = run_files(config, endpoint, self.args.timeout, self._wrapper(name))
        busy = machine_busy_seconds() - busy
        sandbox_cpu = tree_cpu_seconds(sandbox_process) - sandbox_cpu
        server_cpu = cpu_seconds(server_process) - server_cpu
        side = Side(report.finished, self._collect(user))
        other = max(0.0, busy - side.finished.cpu_seconds - sandbox_cpu - server_cpu)
        requests = int(sandbox.stats()["requests"])
        say(
            f"  hirondelle: {report.copied} items copied, {report.skipped} skipped, "
            f"{report.failed} failed; {side.stored.files} files, {side.stored.bytes / MB:.1f} "
            f"MB on the target in {side.finished.seconds:.1f} s: {side.files_per_s:.1f} files/s,"
            f" {side.mb_per_s:.1f} MB/s, peak RSS {side.finished.peak_rss_mb:.0f} MB"
        )
        say(
            f"    CPU: hirondelle {side.finished.cpu_seconds:.1f} s, sandbox {sandbox_cpu:.1f} s,"
            f" rclone serve {server_cpu:.1f} s, kernel and anything else {other:.1f} s; "
            f"{requests} Graph requests"
        )
        _check(side.stored, local, "hirondelle's target")
        return {
            **side.figures(f"{name}_"),
            f"{name}_copied": report.copied,
            f"{name}_skipped": report.skipped,
            f"{name}_failed": report.failed,
            f"{name}_sandbox_cpu_s": round(sandbox_cpu, 1),
            f"{name}_server_cpu_s": round(server_cpu, 1),
            f"{name}_other_cpu_s": round(other, 1),
            f"{name}_graph_requests": requests,
        }

    def _floor(
        self, name: str, sandbox: SandboxProcess, upn: str, local: FileSet
    ) -> dict[str, Any]:
        """The raw client's copy of the same OneDrive from the same sandbox (after
        hirondelle's) into a fresh account, measured like hirondelle."""
        assert sandbox.endpoint is not None
        endpoint, user = sandbox.endpoint, self.server.new_user()
        sandbox_process, server_process = psutil.Process(sandbox.pid), self._server_process()
        sandbox_cpu, server_cpu = tree_cpu_seconds(sandbox_process), cpu_seconds(server_process)
        requests, busy = int(sandbox.stats()["requests"]), machine_busy_seconds()
        account = DavAccount(
            self.server.url_for(user.login), user.login, user.password, DRIVE_FOLDER
        )
        directory = self.work / f"floor-{name}"
        finished, failed = run_floor(
            endpoint, upn, account, self.args.concurrency, directory, self.args.timeout
        )
        busy = machine_busy_seconds() - busy
        sandbox_cpu = tree_cpu_seconds(sandbox_process) - sandbox_cpu
        server_cpu = cpu_seconds(server_process) - server_cpu
        requests = int(sandbox.stats()["requests"]) - requests
        side = Side(finished, self._collect(user))
        other = max(0.0, busy - finished.cpu_seconds - sandbox_cpu - server_cpu)
        say(
            f"  floor (raw client): {side.stored.files} files, {side.stored.bytes / MB:.1f} MB "
            f"on the target ({failed} failed) in {finished.seconds:.1f} s: "
            f"{side.files_per_s:.1f} files/s, {side.mb_per_s:.1f} MB/s, peak RSS "
            f"{finished.peak_rss_mb:.0f} MB"
        )
        say(
            f"    CPU: client {finished.cpu_seconds:.1f} s, sandbox {sandbox_cpu:.1f} s, rclone "
            f"serve {server_cpu:.1f} s, kernel and anything else {other:.1f} s; {requests} "
            f"Graph requests"
        )
        _check(side.stored, local, "the floor's target")
        return {
            **side.figures(f"floor_{name}_"),
            f"floor_{name}_failed": failed,
            f"floor_{name}_sandbox_cpu_s": round(sandbox_cpu, 1),
            f"floor_{name}_server_cpu_s": round(server_cpu, 1),
            f"floor_{name}_other_cpu_s": round(other, 1),
            f"floor_{name}_graph_requests": requests,
        }

    def _rclone(self, name: str, local_dir: Path, local: FileSet) -> dict[str, Any]:
        user = self.server.new_user()
        url = self.server.url_for(user.login)
        account = DavAccount(url, user.login, user.password, DRIVE_FOLDER)
        server_process = self._server_process()
        server_cpu, busy = cpu_seconds(server_process), machine_busy_seconds()
        finished = rclone_copy(
            local_dir,
            account,
            self.args.concurrency,
            self.work / f"rclone-{name}",
            self.args.timeout,
        )
        busy = machine_busy_seconds() - busy
        server_cpu = cpu_seconds(server_process) - server_cpu
        side = Side(finished, self._collect(user))
        other = max(0.0, busy - finished.cpu_seconds - server_cpu)
        say(
            f"  rclone: {side.stored.files} files, {side.stored.bytes / MB:.1f} MB on the target "
            f"in {side.finished.seconds:.1f} s: {side.files_per_s:.1f} files/s, "
            f"{side.mb_per_s:.1f} MB/s, peak RSS {side.finished.peak_rss_mb:.0f} MB; CPU rclone "
            f"{side.finished.cpu_seconds:.1f} s, rclone serve {server_cpu:.1f} s, kernel and "
            f"anything else {other:.1f} s"
        )
        _check(side.stored, local, "rclone's target")
        return {
            **side.figures(f"rclone_{name}_"),
            f"rclone_{name}_server_cpu_s": round(server_cpu, 1),
            f"rclone_{name}_other_cpu_s": round(other, 1),
        }

    # -- helpers --------------------------------------------------------------------------

    def _collect(self, user: MailUser) -> FileSet:
        """Count what the user's drive folder holds, then empty it (disk space)."""
        folder = self.server.path_of(user.login, DRIVE_FOLDER)
        stored = count_tree(folder)
        shutil.rmtree(self.server.path_of(user.login, TARGET_FOLDER), ignore_errors=True)
        return stored

    def _server_process(self) -> psutil.Process:
        return child_serving(self.server.data_dir)

    def _wrapper(self, name: str) -> list[str] | None:
        profile = self.args.profile
        if profile is None:
            return None
        report = profile.resolve().with_name(f"{profile.name}-{name}")
        return [sys.executable, "-m", "hirondelle.bench._profile", str(report)]


def run_floor(
    endpoint: SandboxEndpoint,
    upn: str,
    account: DavAccount,
    fetches: int,
    directory: Path,
    timeout: float,
) -> tuple[Finished, int]:
    """`python -m hirondelle.bench._files_floor` copying `upn`'s OneDrive into `account`
    (below its folder), measured; its figures and the files that failed."""
    settings = {
        "FLOOR_DAV_URL": account.url,
        "FLOOR_DAV_FOLDER": account.folder,
        "FLOOR_DAV_LOGIN": account.login,
        "FLOOR_DAV_PASSWORD": account.password,
        "FLOOR_FETCHES": str(fetches),
    }
    finished, output = run_floor_client(
        "_files_floor", [upn], endpoint, settings, directory, timeout
    )
    return finished, int(json.loads(output)["failed"])


def _check(stored: FileSet, local: FileSet, where: str) -> None:
    if stored.files < local.files or stored.bytes < local.bytes:
        say(
            f"    WARNING: {where} holds {stored.files} files, {stored.bytes} bytes; "
            f"{local.files} files, {local.bytes} bytes expected"
        )


def ratios(result: dict[str, Any]) -> dict[str, float | None]:
    """hirondelle over rclone: files/s on small files, MB/s on the large one."""
    return {
        "small_ratio_vs_rclone": _ratio(result, "small_files_per_s", "rclone_small_files_per_s"),
        "large_ratio_vs_rclone": _ratio(result, "large_mb_per_s", "rclone_large_mb_per_s"),
    }


def _ratio(result: dict[str, Any], ours: str, theirs: str) -> float | None:
    if ours not in result or not result.get(theirs):
        return None
    return round(result[ours] / result[theirs], 3)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Both phases, with every server and temporary folder cleaned up on the way out."""
    rclone_binary()
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hirondelle-bench-")))
        stack.callback(stop_live)
        bench = Bench(args, work, stack)
        result: dict[str, Any] = {
            "files_per_drive": args.files,
            "large_bytes": args.large_bytes,
            "concurrency": args.concurrency,
            "workers": args.workers,
            "units_per_minute": args.units_per_minute,
            "server": "rclone serve webdav",
        }
        result.update(bench.phase("startup", DriveShape(0, 0, args.seed), peer=False))
        result.update(bench.phase("small", DriveShape(args.files, 0, args.seed)))
        result.update(bench.phase("large", DriveShape(0, args.large_bytes, args.seed)))
    return result


def net_figures(result: dict[str, Any]) -> dict[str, float]:
    """hirondelle's CPU per small file, whole and net of start-up: the small phase's CPU
    less the start-up phase's (the same run on a OneDrive of the showcase files only:
    imports, worker processes, sign-in, state), over the files it adds."""
    figures: dict[str, float] = {}
    files, cpu = result.get("small_files"), result.get("small_cpu_s")
    if not files or cpu is None:
        return figures
    figures["small_cpu_ms_per_file"] = round(1000 * cpu / files, 2)
    base_files, base_cpu = result.get("startup_files"), result.get("startup_cpu_s")
    if base_files is not None and base_cpu is not None and files > base_files:
        net = 1000 * (cpu - base_cpu) / (files - base_files)
        figures["small_net_cpu_ms_per_file"] = round(net, 2)
    return figures


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The headline figures first, then everything else."""
    headline = {
        **ratios(result),
        "files_per_s": result.get("small_files_per_s"),
        "mb_per_s": result.get("large_mb_per_s"),
        "peak_rss_mb": max(result.get("small_peak_rss_mb", 0), result.get("large_peak_rss_mb", 0)),
        "floor_small_ratio_vs_rclone": _ratio(
            result, "floor_small_files_per_s", "rclone_small_files_per_s"
        ),
        **net_figures(result),
    }
    return {**headline, **result}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = guarded_run(lambda: run(args))
    if isinstance(result, int):
        return result
    print(json.dumps(summary(result)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
