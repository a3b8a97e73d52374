from hirondelle.migrator.plan import estimate_seconds


def test_estimate_is_bound_by_the_slowest_owner_or_the_concurrency() -> None:
    assert estimate_seconds([], 16.0, 8) == 0.0
    assert estimate_seconds([1600], 16.0, 8) == 100.0
    # 16 owners of 160 s each, 8 at a time: two waves
    assert estimate_seconds([1600] * 16, 16.0, 8) == 200.0
    # one large mailbox dominates however many run at once
    assert estimate_seconds([16000, 16, 16], 16.0, 8) == 1000.0
