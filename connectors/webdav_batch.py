"""Several files of one batch uploaded at once on one WebDAV session.

A WebDAV file costs two round trips (PUT to a part file, then MOVE; one PUT on
Nextcloud), which the server answers one after the other on a connection: one file
at a time left a drive of small files waiting on the network (the files benchmark's
target thread was busy 30 % of the time). `put_many` therefore runs up to
`[targets.files] uploads` puts at once, each on its own pooled connection of the
session's HTTP client (urllib3's pool is thread-safe: https://pypi.org/project/urllib3/).

Every file keeps its own part file and MOVE, so each still appears whole or not at all.
What must stay in order does: folders are made first, one after the other; files whose
final names could be one name on the server (equal once Unicode-normalised and
case-folded: NFC/NFD or case twins) go one after the other, so a twin is always decided
against a finished file; until the session knows whether the server keeps `X-OC-Mtime`,
the first file goes alone.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from ..migrator.errors import ItemError, Retriable
from ..migrator.model import Payload, TargetRef

Put = Callable[[Payload], TargetRef]
Result = TargetRef | ItemError


def put_at_once(
    put: Put,
    payloads: Sequence[Payload],
    pool: ThreadPoolExecutor | None,
    name_of: Callable[[Payload], str],
    alone_first: bool,
    width: int | None = None,
) -> list[Result]:
    """`put(payload)` for each payload, files several at once on `pool` (None: in order),
    by `width` tasks at most (None: as many as there are lanes of files).

    Returns one result per payload, in order: its ref, or the `ItemError` that refused
    it. A `Retriable` failure is raised once every started put has ended (the writer
    then settles each item alone, finding first); any other error is raised as well.
    """
    results: dict[int, Result] = {}
    folders = [i for i, p in enumerate(payloads) if p.attrs.get("kind") == "folder"]
    is_folder = set(folders)
    files = [i for i in range(len(payloads)) if i not in is_folder]
    for index in folders:
        results[index] = _settled(put, payloads[index])
    if files and alone_first:
        results[files[0]] = _settled(put, payloads[files[0]])
        files = files[1:]
    lanes = _lanes(files, payloads, name_of)
    if pool is None or len(lanes) < 2:
        for lane in lanes:
            results.update(_run_lane(put, payloads, lane))
    else:
        # `width` tasks, each taking the next lane until none is left: a task (a future and
        # a thread woken up) per lane, most often per file, was the batch's own cost
        queue = iter(lanes)
        lock = threading.Lock()
        tasks = min(width or len(lanes), len(lanes))
        futures = [pool.submit(_drain, put, payloads, queue, lock) for _ in range(tasks)]
        for done in _all_ended(futures):
            results.update(done)
    return [results[index] for index in range(len(payloads))]


def _lanes(
    files: list[int], payloads: Sequence[Payload], name_of: Callable[[Payload], str]
) -> list[list[int]]:
    """The files grouped by the name the server may see as one; each group runs in order."""
    lanes: dict[str, list[int]] = {}
    for index in files:
        try:
            key = unicodedata.normalize("NFC", name_of(payloads[index])).casefold()
        except ItemError:
            key = f"\0{index}"  # refused by its name: `put` says so again, alone
        lanes.setdefault(key, []).append(index)
    return list(lanes.values())


def _run_lane(put: Put, payloads: Sequence[Payload], lane: list[int]) -> dict[int, Result]:
    return {index: _settled(put, payloads[index]) for index in lane}


def _drain(
    put: Put, payloads: Sequence[Payload], queue: Iterator[list[int]], lock: threading.Lock
) -> dict[int, Result]:
    """Run lanes taken from `queue` until it is empty. A lane that fails does not stop
    the others (each is still tried, as when each had its own task); the first failure
    (a retriable one last) is raised once the queue is empty."""
    results: dict[int, Result] = {}
    failures: list[BaseException] = []
    while True:
        with lock:
            lane = next(queue, None)
        if lane is None:
            break
        try:
            results.update(_run_lane(put, payloads, lane))
        except BaseException as error:  # noqa: BLE001 - raised below, after the other lanes
            failures.append(error)
    if failures:
        failures.sort(key=lambda error: isinstance(error, Retriable))
        raise failures[0]
    return results


def _settled(put: Put, payload: Payload) -> Result:
    try:
        return put(payload)
    except ItemError as refused:
        return refused


def _all_ended(futures: list[Future[dict[int, Result]]]) -> list[dict[int, Result]]:
    """Every lane's results once all have ended; the first failure (a retriable one last)
    is raised then, never while another upload may still be running."""
    ended: list[dict[int, Result]] = []
    failures: list[BaseException] = []
    for future in futures:
        try:
            ended.append(future.result())
        except BaseException as error:  # noqa: BLE001 - raised below, after the others
            failures.append(error)
    if failures:
        failures.sort(key=lambda error: isinstance(error, Retriable))
        raise failures[0]
    return ended
