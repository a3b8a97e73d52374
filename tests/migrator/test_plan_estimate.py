from hirondelle.migrator.plan import estimate_seconds


def test_estimate_is_bound_by_the_slowest_owner_or_the_concurrency() -> None:
    # jobs in seconds (`job_seconds`): 1,600 requests at 16 per second take 100 s
    assert estimate_seconds([], 8) == 0.0
    assert estimate_seconds([1600 / 16], 8) == 100.0
    # 16 owners of 100 s each, 8 at a time: two waves
    assert estimate_seconds([1600 / 16] * 16, 8) == 200.0
    # one large mailbox dominates however many run at once
    assert estimate_seconds([16000 / 16, 16 / 16, 16 / 16], 8) == 1000.0


def test_a_tenant_wide_cap_is_not_shortened_by_running_owners_at_once() -> None:
    # four owners of 10 s each, four at once: 10 s, unless one cap on the whole tenant
    # needs 40 s for all their requests (Teams chat messages)
    assert estimate_seconds([10.0] * 4, 4) == 10.0
    assert estimate_seconds([10.0] * 4, 4, tenant=40.0) == 40.0
    assert estimate_seconds([], 4, tenant=5.0) == 5.0
