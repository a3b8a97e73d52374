"""Microsoft 365 usage reports: one CSV row per mailbox or OneDrive for the whole tenant.

`GET /reports/getMailboxUsageDetail(period='D7')` and
`GET /reports/getOneDriveUsageAccountDetail(period='D7')` answer 302 Found to a
pre-authenticated download URL of a CSV file (v1.0 knows no `$format`: JSON is beta only):
https://learn.microsoft.com/en-us/graph/api/reportroot-getmailboxusagedetail
https://learn.microsoft.com/en-us/graph/api/reportroot-getonedriveusageaccountdetail
Both need Reports.Read.All; an app without it is refused with 403
(https://learn.microsoft.com/en-us/graph/reportroot-authorization). A tenant whose report
setting conceals names (`displayConcealedNames`,
https://learn.microsoft.com/en-us/graph/api/resources/adminreportsettings) shows a hash
in place of every user name and site.

Figures are the generated tenant's: a user's mail as its visible folders' totalItemCount
and size add up (tallied without generating users not generated yet), a OneDrive's files
and the quota it uses, as the per-owner calls show them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from aiohttp import web

from hirondelle.sandbox.mail import GraphRequest, GraphResponse
from hirondelle.sandbox.odata import GraphError
from hirondelle.sandbox.service import Gate

if TYPE_CHECKING:
    from hirondelle.sandbox.tenant import Tenant

# The columns in the documented order (the pages above, "Response").
MAILBOX_COLUMNS = (
    "Report Refresh Date", "User Principal Name", "Display Name", "Is Deleted", "Deleted Date",
    "Created Date", "Last Activity Date", "Item Count", "Storage Used (Byte)",
    "Issue Warning Quota (Byte)", "Prohibit Send Quota (Byte)",
    "Prohibit Send/Receive Quota (Byte)", "Deleted Item Count", "Deleted Item Size (Byte)",
    "Deleted Item Quota (Byte)", "Has Archive", "Report Period",
)  # fmt: skip
ONEDRIVE_COLUMNS = (
    "Report Refresh Date", "Site URL", "Owner Display Name", "Is Deleted", "Last Activity Date",
    "File Count", "Active File Count", "Storage Used (Byte)", "Storage Allocated (Byte)",
    "Owner Principal Name", "Report Period",
)  # fmt: skip
PERIODS = ("D7", "D30", "D90", "D180")
REPORT_LAG = timedelta(days=2)  # reports are refreshed about two days behind
_FUNCTION = re.compile(r"^(\w+)\(period='([^']*)'\)$")
GB = 1 << 30


class ReportsService:
    """Serves the two usage reports; `forbidden` and `concealed` are the tenant's switches."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.forbidden = False  # the app lacks Reports.Read.All
        self.concealed = False  # the tenant conceals user names in reports
        self._files: dict[str, bytes] = {}  # download ticket -> CSV bytes

    def owns(self, request: GraphRequest) -> bool:
        return bool(request.names) and request.names[0] == "reports"

    def gate(self, request: GraphRequest) -> Gate | None:
        return None

    def handle(self, request: GraphRequest) -> GraphResponse:
        match = _FUNCTION.match(request.segments[1]) if len(request.segments) == 2 else None
        if request.method != "GET" or match is None:
            raise GraphError(400, "BadRequest", "Unsupported report request.")
        name, period = match.groups()
        builders = {
            "getmailboxusagedetail": self._mailboxes,
            "getonedriveusageaccountdetail": self._onedrives,
        }
        build = builders.get(name.lower())
        if build is None:
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{name}'.")
        if period not in PERIODS:
            raise GraphError(400, "BadRequest", f"Invalid period {period!r}.")
        if self.forbidden:
            message = "Missing role permissions on the request. API requires Reports.Read.All."
            raise GraphError(403, "Forbidden", message)
        ticket = secrets.token_urlsafe(16)
        self._files[ticket] = _csv_bytes(build(period[1:]))
        origin = request.base_url.rsplit("/v1.0", 1)[0]
        location = f"{origin}/_reports/{ticket}"
        return GraphResponse(302, None, {"Location": location, "Content-Type": "text/plain"})

    async def download(self, request: web.Request) -> web.Response:
        """The pre-authenticated CSV: no bearer token; once fetched, gone."""
        body = self._files.pop(request.match_info["ticket"], None)
        if body is None:
            return web.Response(status=401, text="The download URL has expired or is not valid.")
        return web.Response(body=body, content_type="application/octet-stream")

    def _refreshed(self) -> str:
        """Today less the lag: the mailbox report needs no drive generated."""
        return (datetime.now(UTC) - REPORT_LAG).date().isoformat()

    def _name(self, value: str) -> str:
        if not self.concealed:
            return value
        return hashlib.md5(value.encode(), usedforsecurity=False).hexdigest().upper()

    def _mailboxes(self, days: str) -> list[tuple[object, ...]]:
        refreshed = self._refreshed()
        rows: list[tuple[object, ...]] = [MAILBOX_COLUMNS]
        for user in self.tenant.users:
            items, size = self.tenant.mailbox_usage(user.id)
            rows.append(
                (refreshed, self._name(user.upn), self._name(user.display_name), "False", "",
                 "2021-03-01", refreshed, items, size, 49 * GB, 49 * GB, 50 * GB, 0, 0,
                 30 * GB, "False", days)
            )  # fmt: skip
        return rows

    def _onedrives(self, days: str) -> list[tuple[object, ...]]:
        refreshed = self._refreshed()
        drives = self.tenant.drives
        rows: list[tuple[object, ...]] = [ONEDRIVE_COLUMNS]
        for user in self.tenant.users:
            drive_id = drives.user_drives.get(user.upn.lower())
            if drive_id is None:
                continue
            drive = drives.drive(drive_id)
            files = sum(1 for i in drives.items(drive_id) if i.kind in ("file", "package"))
            site = drive.web_url.rsplit("/", 1)[0] + "/"
            rows.append(
                (refreshed, self._name(site), self._name(user.display_name), "False", refreshed,
                 files, 0, drives.used_bytes(drive_id), 1024 * GB, self._name(user.upn), days)
            )  # fmt: skip
        return rows


def _csv_bytes(rows: list[tuple[object, ...]]) -> bytes:
    """The rows as CSV in UTF-8 with a byte order mark, as the report downloads come."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerows(rows)
    return b"\xef\xbb\xbf" + text.getvalue().encode("utf-8")
