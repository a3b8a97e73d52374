"""The write pipeline of one container: fetch ahead, then store in batches.

Downloads run `fetch_concurrency` at a time; whatever is ready when the target
is free goes out as one batch (`put_many`, e.g. IMAP MULTIAPPEND) so the target
never waits for the network and the network never waits for the target. Small items
of a source that can fetch several at once (`fetch_many`, e.g. a Graph `$batch` of
`$value`s) are downloaded in groups of up to `FETCH_GROUP`. An item
that may have landed before an interruption is looked up (`find`) first, with the
refs already owned by other items excluded, so equal items keep one copy each.

A target that takes content still arriving (`Capabilities.live_content`) gets large
files from a `LiveSource` as live payloads, so their download and upload overlap; a
lookup, and the outcome recorded, use the payload once `settled()`.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator, Sequence, Set
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from functools import partial

from ..state.records import Outcome
from ..state.schema import DONE, FAILED, SKIPPED
from ..state.store import Store
from .errors import GoneAtSource, ItemError, Retriable
from .gone import remove_gone
from .ledger import Ledger
from .memory import MemoryGate
from .model import Blob, Capabilities, Container, Item, Payload, TargetRef
from .protocols import BatchFetch, BatchPut, LiveSource, TargetSession
from .session import OwnerSession
from .workload import RunOptions, Workload

BATCH_ITEMS = 50
BATCH_BYTES = 8 * 1024 * 1024
FETCH_GROUP = 20  # items fetched in one round trip: Graph's limit of parts in a $batch
FETCH_GROUP_BYTES = 1024 * 1024  # items expected larger than this are fetched alone


def put_batch(
    session: TargetSession, folder: str, payloads: Sequence[Payload]
) -> list[TargetRef | ItemError]:
    """`put_many` when the session has it, else one `put` after the other."""
    if isinstance(session, BatchPut):
        return session.put_many(folder, payloads)
    results: list[TargetRef | ItemError] = []
    for payload in payloads:
        try:
            results.append(session.put(folder, payload))
        except ItemError as refused:
            results.append(refused)
    return results


@dataclass(frozen=True, slots=True)
class Pending:
    item: Item
    row_id: int
    resume: bool  # an earlier attempt may have written it: find before put
    # The copy the item's own row still names (one `deletions = keep` left behind): its
    # own to find again, not another item's.
    own_ref: str | None = None
    # The copy the item's row names (written earlier, or a removal refused once): removed
    # if the item turns out gone at the source (`GoneAtSource`, see `gone.remove_gone`).
    copy: TargetRef | None = None


class _OwnedByOthers(Set[str]):
    """The unit's refs but the item's own, read in place (never copied: see `Claims`)."""

    def __init__(self, refs: Set[str], own: str) -> None:
        self.refs, self.own = refs, own

    def __contains__(self, ref: object) -> bool:
        return ref != self.own and ref in self.refs

    def __iter__(self) -> Iterator[str]:
        return (ref for ref in self.refs if ref != self.own)

    def __len__(self) -> int:
        return len(self.refs) - (self.own in self.refs)


class Claims:
    """Target refs owned by items of one unit, so `find` never hands one copy to two items.

    One per unit for a whole pass, not per page: the unit's refs are read from the state
    once, on the first lookup, then kept up to date with every ref the pass writes. `find`
    reads the set itself (under `lock`), never a copy: a folder of a million items is not
    copied for each interrupted item.
    """

    def __init__(self, store: Store, unit_id: int) -> None:
        self.store, self.unit_id = store, unit_id
        self._refs: set[str] | None = None
        self.lock = asyncio.Lock()

    def refs(self) -> Set[str]:
        if self._refs is None:
            self._refs = self.store.unit_refs(self.unit_id)
        return self._refs

    def add(self, ref: TargetRef) -> None:
        if self._refs is not None:
            self._refs.add(ref.ref)

    def forget(self) -> None:
        """The state's refs were rewritten (a folder moved): read them again when needed."""
        self._refs = None


# A gone item whose row names a copy comes as its `GoneAtSource`, to have the copy removed.
Mapped = Payload | Outcome | GoneAtSource
Fetched = tuple[Pending, Payload | Outcome | BaseException]


class _Held:
    """One memory hold for a group of items, given back when the last of them is settled:
    taken whole, so that groups waiting for memory never each hold a part of it."""

    def __init__(self, hold: AbstractAsyncContextManager[None], count: int) -> None:
        self.hold, self.count = hold, count


class Writer:
    """Writes one page's new items of one container."""

    def __init__(
        self,
        workload: Workload,
        container: Container,
        folder: str,
        session: OwnerSession,
        claims: Claims,
        options: RunOptions,
        ledger: Ledger,
        memory: MemoryGate,
    ) -> None:
        self.workload, self.container, self.folder = workload, container, folder
        self.session, self.claims, self.options, self.ledger = session, claims, options, ledger
        self.memory = memory
        self._held: dict[int, _Held] = {}

    async def write_all(self, pending: Sequence[Pending]) -> list[Outcome]:
        """Each item's outcome: written (found or put), skipped or failed. An item the
        source lists over the target's `Capabilities.max_item_bytes` (a file, whose listed
        size is its content's) is skipped with the reason before anything is downloaded."""
        capabilities = self.workload.target.capabilities
        limit = capabilities.max_item_bytes
        if limit is None:
            return await self._write(pending)
        skipped: list[Outcome] = []
        within: list[Pending] = []
        for entry in pending:
            size = entry.item.content_size
            if size is not None and size > limit:
                reason = _over_limit(size, capabilities)
                skipped.append(self._not_written(entry, SKIPPED, reason))
            else:
                within.append(entry)
        return [*skipped, *await self._write(within)]

    async def _write(self, pending: Sequence[Pending]) -> list[Outcome]:
        queue: asyncio.Queue[Fetched] = asyncio.Queue(maxsize=4 * self.options.fetch_concurrency)
        gate = asyncio.Semaphore(self.options.fetch_concurrency)

        async def produce(group: Sequence[Pending]) -> None:
            hold = self.memory.hold(sum(self._expected_bytes(e.item) for e in group))
            await hold.__aenter__()
            held = _Held(hold, len(group))
            self._held.update((entry.row_id, held) for entry in group)
            async with gate:
                try:
                    results: list[Payload | Outcome | BaseException] = [
                        *await self._fetch_group(group)
                    ]
                except Exception as exc:  # noqa: BLE001 - handed to the consumer, which re-raises
                    results = [exc] * len(group)
            for index, (entry, result) in enumerate(zip(group, results, strict=True)):
                try:
                    await queue.put((entry, result))
                except asyncio.CancelledError:
                    for unread in results[index:]:
                        _discard(unread)  # a live download would wait for its reader forever
                    raise

        if self.workload.ordered:
            # One producer walks the page in order: a memory wait can never let a later
            # item overtake an earlier one.
            async def produce_in_order() -> None:
                for entry in pending:
                    await produce([entry])

            tasks = [asyncio.create_task(produce_in_order())]
        else:
            tasks = [asyncio.create_task(produce(group)) for group in self._groups(pending)]
        outcomes: list[Outcome] = []
        # Batches go to the target on up to `target_sessions` connections at once (one for
        # an ordered workload, to keep its order).
        writers = asyncio.Semaphore(1 if self.workload.ordered else self.options.target_sessions)
        flushes: list[asyncio.Task[None]] = []

        async def flush(batch: list[Fetched]) -> None:
            try:
                outcomes.extend(await self._flush(batch))
            finally:
                writers.release()

        try:
            left = len(pending)
            while left:
                batch = [await queue.get()]
                size = _size(batch[0])
                while len(batch) < BATCH_ITEMS and size < BATCH_BYTES and not queue.empty():
                    batch.append(queue.get_nowait())
                    size += _size(batch[-1])
                left -= len(batch)
                await writers.acquire()
                flushes.append(asyncio.create_task(flush(batch)))
                for done in [f for f in flushes if f.done()]:
                    flushes.remove(done)
                    done.result()  # a fatal error stops the page at once
            await asyncio.gather(*flushes)
        finally:
            for task in [*tasks, *flushes]:
                task.cancel()
            await asyncio.gather(*tasks, *flushes, return_exceptions=True)
            while not queue.empty():  # fetched, never flushed: the page stopped
                _discard(queue.get_nowait()[1])
            for row_id in list(self._held):
                await self._release(row_id)
        return outcomes

    def _expected_bytes(self, item: Item) -> int:
        """What the item will take in memory: its listed size (MIME is ~4/3 of it)."""
        if not self.workload.content_in_memory:
            return 64 * 1024
        return int((item.listed_size or 0) * 1.4) + 64 * 1024

    def _groups(self, pending: Sequence[Pending]) -> list[list[Pending]]:
        """The fetches to make: small items together when the source can, others alone."""
        if not isinstance(self.workload.source, BatchFetch):
            return [[entry] for entry in pending]
        groups: list[list[Pending]] = []
        small: list[Pending] = []
        for entry in pending:
            size = entry.item.listed_size
            if size is None or self._expected_bytes(entry.item) > FETCH_GROUP_BYTES:
                groups.append([entry])
                continue
            small.append(entry)
            if len(small) == FETCH_GROUP:
                groups.append(small)
                small = []
        return [*groups, small] if small else groups

    async def _release(self, row_id: int) -> None:
        held = self._held.pop(row_id, None)
        if held is not None:
            held.count -= 1
            if not held.count:
                await held.hold.__aexit__(None, None, None)

    async def _fetch_group(self, group: Sequence[Pending]) -> list[Mapped]:
        source = self.workload.source
        if len(group) == 1 or not isinstance(source, BatchFetch):
            return [await self._fetch(entry) for entry in group]
        try:
            contents = await source.fetch_many(self.container, [e.item for e in group])
        except (ItemError, Retriable) as exc:
            return [self._mapped(entry, exc) for entry in group]
        return [self._mapped(e, content) for e, content in zip(group, contents, strict=True)]

    async def _fetch(self, entry: Pending) -> Mapped:
        try:
            source = self.workload.source
            if self.workload.target.capabilities.live_content and isinstance(source, LiveSource):
                content = await source.fetch_live(self.container, entry.item)
                if isinstance(content, Blob) and content.live is not None:
                    content.live.on_bytes = partial(
                        self.ledger.streaming, self.container, entry.item
                    )
            else:
                content = await source.fetch(self.container, entry.item)
        except (ItemError, Retriable) as exc:
            return self._mapped(entry, exc)
        return self._mapped(entry, content)

    def _mapped(self, entry: Pending, content: object) -> Mapped:
        """The item's payload from its content, or its outcome when it cannot be written;
        an item gone at the source whose row names a copy is handed on to have it removed
        (on the target's side of the pipeline, `_store_batch`)."""
        try:
            if isinstance(content, ItemError | Retriable):
                raise content
            return self.workload.mapper(entry.item, content)
        except GoneAtSource as gone:
            if entry.copy is not None:
                return gone
            return self._not_written(entry, gone.status, str(gone))
        except ItemError as exc:
            return self._not_written(entry, exc.status, str(exc))
        except Retriable as exc:
            return self._not_written(entry, FAILED, str(exc))

    async def _flush(self, batch: list[Fetched]) -> list[Outcome]:
        try:
            return await self._store_batch(batch)
        finally:
            for entry, result in batch:
                _discard(result)
                await self._release(entry.row_id)

    async def _store_batch(self, batch: list[Fetched]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        to_put: list[tuple[Pending, Payload]] = []
        for entry, result in batch:
            if isinstance(result, GoneAtSource):
                outcomes.append(await self._remove_gone(entry, result))
            elif isinstance(result, BaseException):
                raise result
            elif isinstance(result, Outcome):
                outcomes.append(result)
            elif entry.resume:
                outcomes.append(await self._store_one(entry, result))
            else:
                to_put.append((entry, result))
        if not to_put:
            return outcomes
        payloads = [payload for _, payload in to_put]
        try:
            results = await self.session.call(lambda s: put_batch(s, self.folder, payloads))
        except Retriable:
            # Part of the batch may have landed: settle each item alone, finding first.
            for entry, payload in to_put:
                outcomes.append(await self._store_one(replace(entry, resume=True), payload))
            return outcomes
        for (entry, payload), stored in zip(to_put, results, strict=True):
            if isinstance(stored, ItemError):
                outcomes.append(self._not_written(entry, stored.status, str(stored)))
            else:
                outcomes.append(await self._written(entry, payload, stored))
        return outcomes

    async def _remove_gone(self, entry: Pending, gone: GoneAtSource) -> Outcome:
        return await remove_gone(
            self.session,
            self.options,
            self.ledger,
            self.container,
            entry.item,
            entry.row_id,
            entry.copy,
            gone,
        )

    async def _store_one(self, entry: Pending, payload: Payload) -> Outcome:
        """find-then-put with retries for one item."""
        resume, pause = entry.resume, self.options.retry_pause
        for attempt in range(1, self.options.item_attempts + 1):
            try:
                ref: TargetRef | None = None
                if resume:  # one find at a time, so two equal items never share a copy
                    async with self.claims.lock:
                        owned: Set[str] = self.claims.refs()
                        if entry.own_ref is not None:
                            owned = _OwnedByOthers(owned, entry.own_ref)
                        find = partial(_find, self.folder, payload, owned)
                        ref = await self.session.call(find)
                        if ref is not None:
                            return await self._written(entry, payload, ref)
                ref = await self.session.call(lambda s: s.put(self.folder, payload))
                return await self._written(entry, payload, ref)
            except ItemError as exc:
                return self._not_written(entry, exc.status, str(exc))
            except Retriable as exc:
                if attempt == self.options.item_attempts:
                    return self._not_written(entry, FAILED, str(exc))
                resume = True  # the write may have landed before the failure
                await asyncio.sleep(exc.retry_after or pause)
                pause *= 2
        raise AssertionError("unreachable")

    async def _written(self, entry: Pending, payload: Payload, ref: TargetRef) -> Outcome:
        payload = await payload.asettled()  # a live payload's hashes, checked before publishing
        self.claims.add(ref)
        size = payload.size if ref.stored_size is None else ref.stored_size
        self.ledger.item(
            "put", "done", self.container, entry.item, ref=ref, size=size, remark=payload.remark
        )
        return Outcome(
            entry.item,
            DONE,
            ref=ref,
            fingerprint=payload.fingerprint,
            size=size,
            checksum=checksum(payload),
            row_id=entry.row_id,
        )

    def _not_written(self, entry: Pending, status: str, reason: str) -> Outcome:
        self.ledger.item("put", status, self.container, entry.item, reason=reason)
        return Outcome(entry.item, status, error=reason, row_id=entry.row_id)


def checksum(payload: Payload) -> str | None:
    """The digest recorded in the state for `verify` (never the content itself): for
    spooled content its QuickXorHash when it has one, the hash Graph lists for files (so
    `verify` can tell content written as served from content as listed), else its SHA-256."""
    if payload.blob is None:
        return "sha256:" + hashlib.sha256(payload.content).hexdigest()
    for name in ("quickXorHash", "sha256"):
        if name in payload.blob.hashes:
            return f"{name}:{payload.blob.hashes[name]}"
    return None


def _find(
    folder: str, payload: Payload, exclude: Set[str], session: TargetSession
) -> TargetRef | None:
    return session.find(folder, payload.settled(), exclude)


def _over_limit(size: int, capabilities: Capabilities) -> str:
    """Why an item listed over the target's size limit is not carried, naming the setting
    that sets it where the target says which (the target's own words at write time)."""
    limit, setting = capabilities.max_item_bytes, capabilities.limit_setting
    if setting:
        return f"{size} bytes, over {setting} ({limit})"
    return f"{size} bytes listed, over the target's limit of {limit} bytes: not carried"


def _discard(result: Payload | Outcome | BaseException) -> None:
    """Remove a payload's spooled content (stop its download if it is still live)."""
    if isinstance(result, Payload) and result.blob is not None:
        result.blob.discard()


def _size(fetched: Fetched) -> int:
    result = fetched[1]
    return result.size if isinstance(result, Payload) else 0
