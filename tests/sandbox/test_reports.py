"""The usage reports' wire format: 302 to a pre-authenticated CSV, 403, concealed names.

Doc sources: https://learn.microsoft.com/en-us/graph/api/reportroot-getmailboxusagedetail
and https://learn.microsoft.com/en-us/graph/api/reportroot-getonedriveusageaccountdetail
(302 Found, the Location's CSV and its columns), https://learn.microsoft.com/en-us/graph/reportroot-authorization
(Reports.Read.All) and https://learn.microsoft.com/en-us/graph/api/resources/adminreportsettings
(displayConcealedNames).
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator

import httpx
import pytest

from hirondelle.connectors.graph.reports import parse_report
from hirondelle.sandbox.mail import GraphRequest
from hirondelle.sandbox.reports import MAILBOX_COLUMNS, ONEDRIVE_COLUMNS, ReportsService
from hirondelle.sandbox.server import SandboxServer
from hirondelle.sandbox.tenant import Tenant, TenantSpec

from .sandbox_helpers import raw_client, trust

MAILBOX = "reports/getMailboxUsageDetail(period='D7')"
ONEDRIVE = "reports/getOneDriveUsageAccountDetail(period='D7')"


@pytest.fixture(autouse=True)
def _names_shown(sb: SandboxServer) -> Iterator[None]:
    yield
    sb.set_reports()


def _download(sb: SandboxServer, path: str) -> bytes:
    with raw_client(sb) as client:
        answer = client.get(path)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    csv_answer = httpx.get(location, verify=trust(sb))  # no Authorization header
    assert csv_answer.status_code == 200
    return csv_answer.content


def test_mailbox_report_is_a_csv_behind_a_redirect_with_the_documented_columns(
    sb: SandboxServer,
) -> None:
    body = _download(sb, MAILBOX)
    assert body.startswith(b"\xef\xbb\xbf")
    reader = csv.reader(io.StringIO(body.decode("utf-8-sig")))
    assert tuple(next(reader)) == MAILBOX_COLUMNS
    assert len(list(reader)) == len(sb.tenant.users)
    _, usage, concealed = parse_report(body, "User Principal Name", "Item Count")
    assert not concealed
    first = sb.tenant.users[0]
    assert usage[first.upn.lower()].items == 40  # every generated message is in a visible folder


def test_onedrive_report_names_each_owner(sb: SandboxServer) -> None:
    body = _download(sb, ONEDRIVE)
    header = next(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert tuple(header) == ONEDRIVE_COLUMNS
    _, usage, concealed = parse_report(body, "Owner Principal Name", "File Count")
    assert not concealed and {u.upn.lower() for u in sb.tenant.users} == set(usage)
    assert all(u.items > 0 and u.bytes > 0 for u in usage.values())


def test_an_app_without_reports_read_all_is_refused(sb: SandboxServer) -> None:
    sb.set_reports(forbidden=True)
    with raw_client(sb) as client:
        answer = client.get(MAILBOX)
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "Forbidden"


def test_concealed_names_are_hashes_the_client_recognises(sb: SandboxServer) -> None:
    sb.set_reports(concealed=True)
    _, usage, concealed = parse_report(_download(sb, MAILBOX), "User Principal Name", "Item Count")
    assert concealed and not any("@" in name for name in usage)


def test_a_tally_equals_the_generated_mailbox() -> None:
    spec = TenantSpec(seed=3, users=3, messages=30, large_messages=1)
    lazy = Tenant.generate(spec, lazy=True)
    tallied = [lazy.mailbox_usage(u.id) for u in lazy.users]  # nothing generated for it
    full = Tenant.generate(spec)
    assert tallied == [full.mailbox_usage(u.id) for u in full.users]
    assert all(items == 30 for items, _ in tallied)


def test_a_tally_leaves_the_tenant_to_its_other_readers() -> None:
    """Tallying builds every message of a mailbox: it must not hold the tenant's lock."""
    lazy = Tenant.generate(TenantSpec(seed=3, users=2, messages=5, large_messages=0), lazy=True)
    tally = lazy._tally
    assert tally is not None
    free: list[bool] = []

    def try_lock() -> None:
        taken = lazy._lock.acquire(blocking=False)
        free.append(taken)
        if taken:
            lazy._lock.release()

    def watched(index: int) -> tuple[int, int]:
        reader = threading.Thread(target=try_lock)
        reader.start()
        reader.join()
        return tally(index)

    lazy._tally = watched
    assert lazy.mailbox_usage(lazy.users[1].id)[0] == 5
    assert free == [True]


def test_the_mailbox_report_generates_no_user_and_no_drive() -> None:
    spec = TenantSpec(seed=4, users=50, messages=6, large_messages=0)
    tenant = Tenant.generate(spec, lazy=True)
    reports = ReportsService(tenant)
    request = GraphRequest.create("GET", f"/{MAILBOX}", {}, {}, "https://graph.test/v1.0")
    answer = reports.handle(request)
    assert answer.status == 302
    assert answer.headers["Location"].startswith("https://graph.test/_reports/")
    assert tenant._filled == 0 and tenant._drives is None  # nothing generated to count it
