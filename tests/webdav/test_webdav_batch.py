"""`put_at_once`: what runs at once, what stays in order, and how failures come out."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from hirondelle.connectors.webdav_batch import put_at_once
from hirondelle.migrator.errors import FatalError, Retriable, SkipItem
from hirondelle.migrator.model import Payload, TargetRef

UPLOADS = 4


def payload(path: str, kind: str = "file") -> Payload:
    return Payload(f"id-{path}", b"x", "", {"kind": kind, "path": path})


class Recorder:
    """A `put` that records overlaps and the order it saw, failing where told to."""

    def __init__(self, fail: dict[str, BaseException] | None = None) -> None:
        self.fail = fail or {}
        self.order: list[str] = []
        self.events: list[tuple[str, str]] = []  # ("start" | "end", path), as they happen
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()
        self.gate = threading.Barrier(UPLOADS, timeout=5)

    def put(self, item: Payload) -> TargetRef:
        path = item.attrs["path"]
        with self.lock:
            self.order.append(path)
            self.events.append(("start", path))
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            if path.startswith("wide/"):
                self.gate.wait()  # only passes when UPLOADS puts run together
            if path in self.fail:
                raise self.fail[path]
            return TargetRef("drive", path)
        finally:
            with self.lock:
                self.running -= 1
                self.events.append(("end", path))


def run(recorder: Recorder, batch: list[Payload], alone_first: bool = False) -> list[object]:
    with ThreadPoolExecutor(UPLOADS) as pool:
        return list(put_at_once(recorder.put, batch, pool, lambda p: p.attrs["path"], alone_first))


def test_files_run_at_once_after_their_folders_with_results_in_order() -> None:
    recorder = Recorder()
    batch = [payload(f"wide/{i}") for i in range(UPLOADS)] + [payload("wide", "folder")]
    results = run(recorder, batch)
    assert results == [TargetRef("drive", p.attrs["path"]) for p in batch]
    assert recorder.order[0] == "wide"  # the folder first, alone
    assert recorder.most == UPLOADS


def test_names_one_on_the_server_go_one_after_the_other() -> None:
    recorder = Recorder()
    twins = ["Résumé.txt", "Re\u0301sume\u0301.txt", "RÉSUMÉ.TXT"]
    results = run(recorder, [payload(name) for name in twins])
    assert [r.ref for r in results if isinstance(r, TargetRef)] == twins
    assert recorder.most == 1 and recorder.order == twins


def test_the_first_file_goes_alone_while_the_session_learns() -> None:
    recorder = Recorder()
    run(recorder, [payload("first"), *(payload(f"wide/{i}") for i in range(UPLOADS))], True)
    assert recorder.order[0] == "first" and recorder.most == UPLOADS
    # nothing else started before the first one ended
    assert recorder.events[:2] == [("start", "first"), ("end", "first")]


def test_a_refused_item_is_its_result_and_a_retriable_one_ends_the_batch_last() -> None:
    skipped = SkipItem("bad name")
    recorder = Recorder({"b": skipped, "c": Retriable("reset", 0.0)})
    batch = [payload("a"), payload("b"), payload("c"), payload("d")]
    with ThreadPoolExecutor(UPLOADS) as pool:
        with pytest.raises(Retriable):
            put_at_once(recorder.put, batch, pool, lambda p: p.attrs["path"], False)
        assert recorder.running == 0  # raised once every started put had ended
    assert sorted(recorder.order) == ["a", "b", "c", "d"]  # every started put ended
    recorder = Recorder({"b": skipped})
    assert run(recorder, [payload("a"), payload("b")])[1] is skipped


def test_a_fatal_error_wins_over_a_retriable_one() -> None:
    recorder = Recorder({"r": Retriable("reset", 0.0), "f": FatalError("quota full")})
    with pytest.raises(FatalError):
        run(recorder, [payload("r"), payload("f")])  # the retriable one comes first


class CountingPool(ThreadPoolExecutor):
    """A pool that counts the tasks it is given."""

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self.submitted = 0

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        self.submitted += 1
        return super().submit(*args, **kwargs)


def test_at_most_width_tasks_carry_every_lane_in_order() -> None:
    recorder = Recorder()
    batch = [payload(f"f{i}") for i in range(6)]
    with CountingPool(UPLOADS) as pool:
        results = put_at_once(recorder.put, batch, pool, lambda p: p.attrs["path"], False, 2)
    assert pool.submitted == 2
    assert results == [TargetRef("drive", p.attrs["path"]) for p in batch]
    assert sorted(recorder.order) == sorted(p.attrs["path"] for p in batch)


def test_a_failed_lane_does_not_stop_the_lanes_after_it_in_its_task() -> None:
    recorder = Recorder({"a": Retriable("reset", 0.0)})
    batch = [payload(name) for name in ("a", "b", "c")]
    with CountingPool(UPLOADS) as pool:
        with pytest.raises(Retriable):
            put_at_once(recorder.put, batch, pool, lambda p: p.attrs["path"], False, 1)
    assert pool.submitted == 1
    assert sorted(recorder.order) == ["a", "b", "c"]
