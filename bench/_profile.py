"""Run a module as `__main__` under cProfile and a stack sampler; write a text report.

    python -m hirondelle.bench._profile REPORT MODULE [ARGS...]

cProfile sees the main thread only (the event loop, where the Python work of a
migration runs): its top functions by own and by cumulative time lead the report.
The other threads (the target's blocking IMAP calls) are sampled from
`sys._current_frames()` every few milliseconds: each sample counts the innermost
frame ("self") and every distinct function on the stack ("inclusive"). Samples are
taken when the sampler gets the GIL, so they favour frames that release it (system
calls): read them as where threads wait, not as exact CPU shares.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import runpy
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType

INTERVAL_S = 0.005
TOP = 30
IDLE = frozenset({"select", "wait", "_wait_for_tstate_lock", "acquire", "get", "poll", "recv"})


class Sampler:
    """Counts, per thread name, the innermost and the inclusive functions of each sample."""

    def __init__(self) -> None:
        self.samples: Counter[str] = Counter()
        self.own: Counter[tuple[str, str]] = Counter()
        self.inclusive: Counter[tuple[str, str]] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(INTERVAL_S):
            names = {thread.ident: _role(thread.name) for thread in threading.enumerate()}
            main = threading.main_thread().ident
            for ident, frame in sys._current_frames().items():
                if ident not in (me, main):
                    self._count(names.get(ident, "other"), frame)

    def _count(self, role: str, frame: FrameType) -> None:
        self.samples[role] += 1
        self.own[(role, _where(frame))] += 1
        seen: set[str] = set()
        current: FrameType | None = frame
        while current is not None:
            seen.add(_where(current))
            current = current.f_back
        for where in seen:
            self.inclusive[(role, where)] += 1

    def report(self, seconds: float) -> str:
        lines = [f"wall {seconds:.1f} s, one sample every {INTERVAL_S * 1000:.0f} ms per thread"]
        for role, total in self.samples.most_common():
            lines.append(f"\n== {role}: {total} samples")
            busy = sum(
                n for (r, where), n in self.own.items() if r == role and _func(where) not in IDLE
            )
            lines.append(f"   not in an idle wait: {busy / total:.1%}")
            lines.append("   -- self (innermost frame)")
            lines += _top(self.own, role, total)
            lines.append("   -- inclusive")
            lines += _top(self.inclusive, role, total)
        return "\n".join(lines) + "\n"


def _role(name: str) -> str:
    """Thread names without their numbers: `target_3` and `target_5` are one role."""
    return name.rstrip("0123456789_-") or name


def _where(frame: FrameType) -> str:
    code = frame.f_code
    parts = Path(code.co_filename).parts
    return f"{'/'.join(parts[-2:])}:{code.co_name}"


def _func(where: str) -> str:
    return where.rsplit(":", 1)[-1]


def _top(counter: Counter[tuple[str, str]], role: str, total: int) -> list[str]:
    rows = sorted(((n, w) for (r, w), n in counter.items() if r == role), reverse=True)
    return [f"   {n / total:6.1%}  {where}" for n, where in rows[:TOP]]


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit("usage: python -m hirondelle.bench._profile REPORT MODULE [ARGS...]")
    report, module = Path(sys.argv[1]), sys.argv[2]
    sys.argv = [module, *sys.argv[3:]]
    sampler, profile = Sampler(), cProfile.Profile()
    started = time.perf_counter()
    sampler.start()
    profile.enable()
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        profile.disable()
        profile.dump_stats(report.with_name(report.name + ".pstats"))  # for pstats / snakeviz
        sampler.stop()
        text = _main_thread(profile) + sampler.report(time.perf_counter() - started)
        report.write_text(text, encoding="utf-8")


def _main_thread(profile: cProfile.Profile) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    out.write("== main thread (cProfile), by own time\n")
    stats.sort_stats("tottime").print_stats(TOP)
    out.write("== main thread (cProfile), by cumulative time\n")
    stats.sort_stats("cumulative").print_stats(TOP + 20)
    return out.getvalue()


if __name__ == "__main__":
    main()
