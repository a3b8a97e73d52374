"""Claims: a container several owners list is held by one of them, even when two processes
claim it at the same moment (SQLite, then PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from hirondelle.state.claims import StoreClaims
from hirondelle.state.store import Store, open_store

CHATS = [f"19:chat{n}@thread.v2" for n in range(40)]


@pytest.fixture
def stores(state_url: str) -> Iterator[list[Store]]:
    opened = [open_store(state_url) for _ in range(4)]  # four processes' connections
    yield opened
    for store in opened:
        store.engine.dispose()


def test_concurrent_claims_agree_on_one_holder_that_never_moves(stores: list[Store]) -> None:
    answers: dict[str, dict[str, str]] = {}
    start = threading.Barrier(len(stores))

    def claim(index: int, store: Store) -> None:
        owner = f"user{index}@contoso.test"
        start.wait()
        answers[owner] = StoreClaims(store, "chats").claim(CHATS, owner)

    threads = [threading.Thread(target=claim, args=(i, s)) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == len(stores)
    first = next(iter(answers.values()))
    assert all(answer == first for answer in answers.values())  # everyone sees one holder
    assert set(first) == set(CHATS)
    later = StoreClaims(stores[0], "chats").claim(CHATS[:3] + ["19:new@thread.v2"], "late@x")
    assert {k: later[k] for k in CHATS[:3]} == {k: first[k] for k in CHATS[:3]}  # no move
    assert later["19:new@thread.v2"] == "late@x"
    read = StoreClaims(stores[1], "chats").held([CHATS[0], "19:nobody@thread.v2"])
    assert read == {CHATS[0]: first[CHATS[0]]}  # reading claims nothing
    other = StoreClaims(stores[0], "elsewhere").claim(CHATS[:1], "late@x")
    assert other == {CHATS[0]: "late@x"}  # claims are per workload


def test_a_claim_moves_only_from_the_holder_the_mover_saw(stores: list[Store]) -> None:
    """Two processes hand the same chat over at once: one update wins, both see it."""
    chat = CHATS[0]
    StoreClaims(stores[0], "chats").claim([chat], "gone@x")
    answers: dict[str, str | None] = {}
    start = threading.Barrier(2)

    def move(index: int) -> None:
        start.wait()
        new = f"next{index}@x"
        answers[new] = StoreClaims(stores[index], "chats").move(chat, "gone@x", new)

    threads = [threading.Thread(target=move, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    winner = StoreClaims(stores[2], "chats").held([chat])[chat]
    assert winner in ("next0@x", "next1@x") and set(answers.values()) == {winner}
    assert StoreClaims(stores[0], "chats").move(chat, "gone@x", "late@x") == winner
    assert StoreClaims(stores[0], "chats").move("19:none@thread.v2", "a@x", "b@x") is None
