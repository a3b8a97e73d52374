"""Owners packed into waves that each fit a migration window, under the plan's estimate.

The assumption is the plan's own (`migrator.plan.estimate_seconds`): within a wave, the owners'
jobs (one per owner and workload) run `owner_concurrency` at a time, each at most at its
workload's Graph budget rate; waves run one after the other, each in its own window. Packing
is first-fit decreasing: the longest owners first, each into the first wave it still fits in.
An owner longer than the window alone gets a wave of its own, marked as such (a window cannot
split one mailbox's first copy; a run resumes where the window closed it, and the next window
finishes it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..migrator.plan import estimate_seconds, parallel_seconds


@dataclass
class Wave:
    owners: list[str] = field(default_factory=list)
    jobs: list[float] = field(default_factory=list)  # seconds of each job at its rate
    longest: float = 0.0  # its longest job, and all its jobs' seconds added up
    total: float = 0.0
    items: int = 0
    bytes: int = 0
    seconds: float = 0.0
    over_window: bool = False  # one owner alone takes longer than the window


@dataclass(frozen=True)
class OwnerLoad:
    owner: str
    jobs: tuple[float, ...]  # seconds of each of its jobs (a workload each) at its rate
    items: int
    bytes: int


def pack_waves(owners: list[OwnerLoad], window_seconds: float, concurrency: int) -> list[Wave]:
    """The owners in as few waves as first-fit decreasing finds, each within the window."""
    waves: list[Wave] = []
    for load in sorted(owners, key=lambda o: (-sum(o.jobs), o.owner)):
        longest, total = max(load.jobs, default=0.0), sum(load.jobs)
        for wave in waves:
            if wave.over_window:
                continue
            # the wave's jobs and the owner's, from the wave's totals
            seconds = parallel_seconds(max(wave.longest, longest), wave.total + total, concurrency)
            if seconds <= window_seconds:
                _add(wave, load, seconds)
                break
        else:
            wave = Wave()
            seconds = estimate_seconds(load.jobs, concurrency)
            _add(wave, load, seconds)
            wave.over_window = seconds > window_seconds
            waves.append(wave)
    return waves


def _add(wave: Wave, load: OwnerLoad, seconds: float) -> None:
    wave.owners.append(load.owner)
    wave.jobs.extend(load.jobs)
    wave.longest = max(wave.longest, *load.jobs) if load.jobs else wave.longest
    wave.total += sum(load.jobs)
    wave.items += load.items
    wave.bytes += load.bytes
    wave.seconds = seconds


def parse_window(text: str) -> float:
    """`48h`, `90m`, `2d`, `3600s` (or bare seconds) as seconds; ValueError otherwise."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    unit = units.get(text[-1:]) if text else None
    number = float(text[:-1] if unit else text)
    seconds = number * (unit or 1)
    if not seconds > 0:
        raise ValueError(text)
    return seconds
