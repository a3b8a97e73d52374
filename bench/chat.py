"""Chat benchmark: one Teams channel (the `chat` workload) or two Teams chats (the `chats`
workload, `--chats`) from the Graph sandbox into Synapse with hirondelle, against a raw loop
sending the same events through the same application service.

    python -m hirondelle.bench.chat --quick           # a channel of 150 posts with replies
    python -m hirondelle.bench.chat                   # a channel of 2,000 posts with replies
    python -m hirondelle.bench.chat --chats --quick   # two chats of 150 messages each
    python -m hirondelle.bench.chat --chats           # two chats of 1,000 messages each

Both sides write into one fresh Synapse (`.ci/install-synapse`), started here:

1. hirondelle: a sandbox child serves a team whose one channel holds `--posts` posts
   with 0 to `--replies` replies each (mentions, reactions, edits, deletions); with
   `--chats`, three users with a one-to-one chat and a group chat of `--messages`
   messages each (the same mix) and no team. `python -m hirondelle.cli -c FILE run
   --json` (a measured child) copies them in `appservice` mode: the channel into a room,
   the chats into a direct room and a private room. Its events are counted in the rooms
   afterwards: every message and reaction that carries a Teams id.
2. raw loop: the same events, same order, same senders and timestamps, sent one at a
   time with plain httpx (`PUT .../send/{type}/{txn}?user_id=...&ts=...`) into a fresh
   room per room of hirondelle's, the rooms one after the other in the order hirondelle
   made them (hirondelle writes each channel or chat in order, one event at a time).

`ratio_vs_raw` is hirondelle's events/s (whole run, process start to exit) over the
raw loop's. Synapse's access log splits hirondelle's run into its phases (start and
Graph reads before the first event, then the sending) to show where the time goes.
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from hirondelle.bench._chat_hirondelle import (
    Homeserver,
    channel_room,
    message_rooms,
    run_chat,
    sent_events,
    write_config,
)
from hirondelle.bench._chat_raw import RawRun, replay_rooms
from hirondelle.bench._chat_sandbox import ChannelShape, ChatsShape
from hirondelle.bench._chat_synapse import AccessLog, Traffic, start_synapse, synapse_process
from hirondelle.bench._hirondelle import RunReport
from hirondelle.bench._servers import (
    SandboxProcess,
    guarded_run,
    machine_busy_seconds,
    stop_live,
    tree_cpu_seconds,
)
from hirondelle.connectors.matrix_wire import TEAMS_KEY
from hirondelle.migrator.coordinator import default_workers
from hirondelle.tests.servers import SYNAPSE_AS_TOKEN

QUICK_POSTS = 150
QUICK_MESSAGES = 150  # per chat
CHATS = 2  # a one-to-one and a group chat


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hirondelle.bench.chat",
        description="Benchmark hirondelle's chat copy (Graph sandbox to Synapse) against a raw "
        "loop through the same application service.",
    )
    parser.add_argument("--posts", type=int, default=2000, help="root posts (default 2,000)")
    parser.add_argument(
        "--replies", type=int, default=2, help="at most this many replies per post (default 2)"
    )
    parser.add_argument(
        "--chats",
        action="store_true",
        help="measure the chats workload: a one-to-one and a group chat, no channel",
    )
    parser.add_argument(
        "--messages", type=int, default=1000, help="with --chats: messages per chat (1,000)"
    )
    parser.add_argument("--seed", type=int, default=7, help="tenant seed (default 7)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_POSTS} posts, or with --chats {QUICK_MESSAGES} messages per chat",
    )
    parser.add_argument("--no-raw", action="store_true", help="skip the raw loop")
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="hirondelle's worker processes (default: the core count); one channel is "
        "written in order by one worker, as the raw loop writes it",
    )
    parser.add_argument(
        "--profile", type=Path, help="profile hirondelle's side into FILE (slows it)"
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per measured run")
    args = parser.parse_args(argv)
    if args.quick:
        args.posts, args.messages = QUICK_POSTS, QUICK_MESSAGES
    if args.posts < 2 or args.replies < 0:
        parser.error("--posts must be at least 2 and --replies not negative")
    if args.messages < 1:
        parser.error("--messages must be at least 1")
    args.workload = "chats" if args.chats else "chat"
    return args


def say(line: str) -> None:
    print(line, flush=True)


class Bench:
    """The run's shared parts: options, temporary folder, Synapse, and the clean-up stack."""

    def __init__(self, args: argparse.Namespace, work: Path, stack: ExitStack) -> None:
        self.args, self.work, self.stack = args, work, stack
        self.synapse = start_synapse()
        stack.callback(self.synapse.stop)
        self.synapse_process = synapse_process(self.synapse)
        self.access = AccessLog(self.synapse)
        self.homeserver = Homeserver(self.synapse.url, self.synapse.server_name, SYNAPSE_AS_TOKEN)

    def hirondelle(self) -> tuple[dict[str, Any], list[list[dict[str, Any]]]]:
        """Copy the channel or the chats with `hirondelle run`; its figures and the events
        it sent, room by room in the order it made the rooms."""
        args = self.args
        shape: ChannelShape | ChatsShape = (
            ChatsShape(args.messages, args.seed)
            if args.chats
            else ChannelShape(args.posts, args.replies, args.seed)
        )
        sandbox = SandboxProcess(shape, self.work / "sandbox.log")
        self.stack.callback(sandbox.stop)
        endpoint = sandbox.start()
        prefix = f"m365_bench{uuid.uuid4().hex[:6]}_"
        config = write_config(
            self.work / "hirondelle", endpoint, self.homeserver, prefix, args.workers, args.workload
        )
        sandbox_process = psutil.Process(sandbox.pid)
        sandbox_cpu, synapse_cpu = tree_cpu_seconds(sandbox_process), self._synapse_cpu()
        busy = machine_busy_seconds()
        self.access.mark()
        started = datetime.now()
        report = run_chat(
            config, endpoint, self.homeserver, args.timeout, self._wrapper(), args.workload
        )
        traffic = Traffic.of(self.access.since_mark())
        busy = machine_busy_seconds() - busy
        sandbox_cpu = tree_cpu_seconds(sandbox_process) - sandbox_cpu
        synapse_cpu = self._synapse_cpu() - synapse_cpu
        stats = sandbox.stats()
        sandbox.stop()
        rooms = (
            message_rooms(self.homeserver, prefix)
            if args.chats
            else [channel_room(self.homeserver, prefix)]
        )
        by_room = [sent_events(self.homeserver, room) for room in rooms]
        events = [event for room_events in by_room for event in room_events]
        figures = _hirondelle_figures(report, events, traffic, started)
        other = busy - report.finished.cpu_seconds - sandbox_cpu - synapse_cpu
        figures |= (
            {
                "rooms": len(rooms),
                "room_events": [len(e) for e in by_room],
                "send_rooms_at_once": round(traffic.rooms_at_once, 2),
            }
            if args.chats
            else {"source_posts": _source_posts(events)}
        )
        figures |= {
            "graph_requests": int(stats["requests"]),
            "sandbox_cpu_s": round(sandbox_cpu, 1),
            "synapse_cpu_s": round(synapse_cpu, 1),
            "other_cpu_s": round(max(0.0, other), 1),
        }
        _say_hirondelle(figures)
        return figures, by_room

    def raw(self, rooms: list[list[dict[str, Any]]]) -> dict[str, Any]:
        """Replay each room's events with the raw loop, room after room; its figures."""
        synapse_cpu = self._synapse_cpu()
        self.access.mark()
        run = replay_rooms(self.homeserver, rooms)
        traffic = Traffic.of(self.access.since_mark())
        synapse_cpu = self._synapse_cpu() - synapse_cpu
        figures = _raw_figures(run, traffic, synapse_cpu)
        say(
            f"  raw loop: {run.events} events in {run.seconds:.1f} s: "
            f"{run.events_per_s:.1f} events/s (room and joins set up in "
            f"{run.setup_seconds:.1f} s, not counted); Synapse CPU {synapse_cpu:.1f} s, "
            f"{traffic.send_server_seconds:.1f} s spent answering the event PUTs"
        )
        return figures

    def _synapse_cpu(self) -> float:
        return tree_cpu_seconds(self.synapse_process)

    def _wrapper(self) -> list[str] | None:
        if self.args.profile is None:
            return None
        report = str(self.args.profile.resolve())
        return [sys.executable, "-m", "hirondelle.bench._profile", report]


def _source_posts(events: list[dict[str, Any]]) -> int:
    """Root posts among the events: Teams ids without a reply part."""
    ids = {str(e["content"][TEAMS_KEY]) for e in events}
    return sum("/" not in teams_id for teams_id in ids)


def _hirondelle_figures(
    report: RunReport, events: list[dict[str, Any]], traffic: Traffic, started: datetime
) -> dict[str, Any]:
    finished = report.finished
    kinds = Counter(str(e["type"]) for e in events)
    first = (traffic.first_send - started).total_seconds() if traffic.first_send else 0.0
    span = traffic.send_span
    return {
        "events": len(events),
        "messages": kinds["m.room.message"],
        "reactions": kinds["m.reaction"],
        "copied": report.copied,
        "skipped": report.skipped,
        "failed": report.failed,
        "seconds": round(finished.seconds, 2),
        "events_per_s": round(len(events) / finished.seconds, 2),
        "peak_rss_mb": round(finished.peak_rss_mb, 1),
        "cpu_s": round(finished.cpu_seconds, 1),
        "first_event_after_s": round(first, 2),
        "send_phase_s": round(span, 2),
        "send_phase_events_per_s": round((traffic.sends - 1) / span, 2) if span else None,
        "synapse_requests": traffic.requests,
        "synapse_event_puts": traffic.sends,
        "synapse_busy_s": round(traffic.server_seconds, 2),
        "synapse_send_busy_s": round(traffic.send_server_seconds, 2),
    }


def _raw_figures(run: RawRun, traffic: Traffic, synapse_cpu: float) -> dict[str, Any]:
    return {
        "raw_events": run.events,
        "raw_seconds": round(run.seconds, 2),
        "raw_events_per_s": round(run.events_per_s, 2),
        "raw_setup_s": round(run.setup_seconds, 2),
        "raw_synapse_cpu_s": round(synapse_cpu, 1),
        "raw_synapse_busy_s": round(traffic.send_server_seconds, 2),
    }


def _say_hirondelle(figures: dict[str, Any]) -> None:
    say(
        f"  hirondelle: {figures['copied']} items copied, {figures['skipped']} skipped, "
        f"{figures['failed']} failed; {figures['events']} events in the room "
        f"({figures['messages']} messages, {figures['reactions']} reactions) in "
        f"{figures['seconds']:.1f} s: {figures['events_per_s']:.1f} events/s, "
        f"peak RSS {figures['peak_rss_mb']:.0f} MB"
    )
    say(
        f"    first event {figures['first_event_after_s']:.1f} s after start "
        f"({figures['graph_requests']} Graph requests), then {figures['send_phase_s']:.1f} s "
        f"of sending: {figures['send_phase_events_per_s']} events/s"
    )
    say(
        f"    CPU: hirondelle {figures['cpu_s']:.1f} s, sandbox {figures['sandbox_cpu_s']:.1f} s,"
        f" Synapse {figures['synapse_cpu_s']:.1f} s (requests took "
        f"{figures['synapse_busy_s']:.1f} s, the event PUTs "
        f"{figures['synapse_send_busy_s']:.1f} s), anything else {figures['other_cpu_s']:.1f} s"
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Both sides, with Synapse, the sandbox and the temporary folder cleaned up on the way out."""
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hirondelle-bench-")))
        stack.callback(stop_live)
        bench = Bench(args, work, stack)
        result: dict[str, Any]
        if args.chats:
            result = {"workload": "chats", "chats": CHATS, "messages_per_chat": args.messages}
            say(f"a one-to-one and a group chat of {args.messages} messages each, into Synapse")
        else:
            result = {"posts": args.posts, "replies_per_post": args.replies}
            say(f"channel of {args.posts} posts, 0 to {args.replies} replies each, into Synapse")
        result["workers"] = args.workers
        figures, rooms = bench.hirondelle()
        result |= figures
        if not args.no_raw:
            result |= bench.raw(rooms)
    return result


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The headline figures first, then everything else."""
    raw = result.get("raw_events_per_s")
    ratio = round(result["events_per_s"] / raw, 3) if raw else None
    send = result.get("send_phase_events_per_s")
    headline = {
        "events_per_s": result["events_per_s"],
        "ratio_vs_raw": ratio,
        "send_phase_ratio_vs_raw": round(send / raw, 3) if raw and send else None,
    }
    return {**headline, **result}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    result = guarded_run(lambda: run(args))
    if isinstance(result, int):
        return result
    result["bench_seconds"] = round(time.perf_counter() - started, 1)
    final = summary(result)
    say(
        f"hirondelle {final['events_per_s']} events/s, raw loop "
        f"{final.get('raw_events_per_s')} events/s: ratio {final['ratio_vs_raw']}"
    )
    print(json.dumps(final), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
