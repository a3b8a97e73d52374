"""Microsoft 365 usage reports: every mailbox's and OneDrive's size in two requests.

`getMailboxUsageDetail` and `getOneDriveUsageAccountDetail` answer 302 Found to a
pre-authenticated, short-lived download URL of a CSV file (v1.0 has no JSON form: the
`$format` option and its paged JSON are beta only); the columns are named on
https://learn.microsoft.com/en-us/graph/api/reportroot-getmailboxusagedetail and
https://learn.microsoft.com/en-us/graph/api/reportroot-getonedriveusageaccountdetail.
They need Reports.Read.All (https://learn.microsoft.com/en-us/graph/reportroot-authorization).
A tenant may conceal user names in every report (`displayConcealedNames`,
https://learn.microsoft.com/en-us/graph/api/resources/adminreportsettings): rows then
carry hashes that match no user, and `UsageReports.concealed` says so.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from ...migrator.errors import HirondelleError
from .answers import UnexpectedAnswer
from .client import TENANT, GraphClient
from .errors import Call

PERIOD = "D7"
PERMISSION = "Reports.Read.All"


@dataclass(frozen=True)
class Usage:
    items: int
    bytes: int


@dataclass
class UsageReports:
    """Per lower-case UPN: mail (item count, storage used) and OneDrive (files, storage)."""

    refreshed: str = ""  # the reports' "Report Refresh Date" (YYYY-MM-DD)
    mailboxes: dict[str, Usage] = field(default_factory=dict)
    onedrives: dict[str, Usage] = field(default_factory=dict)
    concealed: bool = False  # names are hashes: rows cannot be matched to users

    def table(self, name: str) -> dict[str, Usage]:
        """The report a workload declares it is counted by ("mailboxes", "onedrives")."""
        tables = {"mailboxes": self.mailboxes, "onedrives": self.onedrives}
        return tables[name]


class ReportsUnavailable(Exception):
    """The reports cannot serve the plan; the message says why, in one line."""


def parse_report(
    body: bytes, name_column: str, items_column: str
) -> tuple[str, dict[str, Usage], bool]:
    """(refresh date, usage per lower-case name, names concealed) from a report's CSV,
    with or without a UTF-8 byte order mark."""
    reader = csv.DictReader(io.StringIO(body.decode("utf-8-sig")))
    wanted = {name_column, items_column, "Storage Used (Byte)", "Report Refresh Date"}
    missing = wanted - set(reader.fieldnames or ())
    if missing:
        raise ReportsUnavailable(f"the report lacks the column(s) {', '.join(sorted(missing))}")
    refreshed, usage, concealed = "", {}, False
    for row in reader:
        name = (row[name_column] or "").strip().lower()
        if not name:
            continue
        concealed = concealed or "@" not in name  # a UPN has an @; a concealed one is a hash
        refreshed = refreshed or row["Report Refresh Date"]
        usage[name] = Usage(_int(row[items_column]), _int(row["Storage Used (Byte)"]))
    return refreshed, usage, concealed


async def read_reports(client: GraphClient) -> UsageReports:
    """Both reports; `ReportsUnavailable` when Graph does not serve them: refused (no
    Reports.Read.All), absent (the reports API is global-service only), failing."""
    mail = await _report(client, "getMailboxUsageDetail")
    drives = await _report(client, "getOneDriveUsageAccountDetail")
    date, mailboxes, hidden = parse_report(mail, "User Principal Name", "Item Count")
    _, onedrives, hidden_too = parse_report(drives, "Owner Principal Name", "File Count")
    return UsageReports(date, mailboxes, onedrives, hidden or hidden_too)


async def _report(client: GraphClient, function: str) -> bytes:
    url = f"{client.graph_url}/reports/{function}(period='{PERIOD}')"
    call = Call(f"read the {function} usage report", permission=PERMISSION)

    async def fetch() -> bytes:
        location = await client.download_location(url, call)
        async with client.download_stream(
            location, Call(call.what, PERMISSION, link=True), {}
        ) as answer:
            return await answer.aread()

    try:
        return await client.budgets.run(TENANT, fetch)
    except (HirondelleError, UnexpectedAnswer) as exc:  # refused, absent (national clouds)...
        raise ReportsUnavailable(str(exc)) from None


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
