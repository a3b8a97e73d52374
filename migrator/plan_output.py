"""Where `plan` writes its rows as owners finish: JSON and CSV, streamed.

A plan of ten thousand owners has hundreds of thousands of rows; each writer puts
a row out when its owner is done and keeps nothing of it, so memory stays flat. The
JSON starts with the first owner, so a plan refused before (a bad users file, Graph
unreachable) writes nothing to it.
The JSON document holds the same keys as `Plan.as_dict` (the summary keys come
last, since the totals are known only at the end): `containers` is written as it
goes, findings wait in a temporary file until the containers are all out.
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
from dataclasses import asdict, fields
from typing import IO

from .plan import FINDING_COLUMNS, SEVERITIES, Finding, Plan, PlanRow, PlanSink, finding_record

CSV_COLUMNS = [f.name for f in fields(PlanRow)]
# Excel reads a CSV file as the system's code page unless it starts with a byte order mark.
CSV_ENCODING = "utf-8-sig"


class Sinks:
    """Hands each owner's rows and findings to every sink in turn."""

    def __init__(self, *sinks: PlanSink) -> None:
        self.sinks = sinks

    def owner_done(self, rows: list[PlanRow], findings: list[Finding]) -> None:
        for sink in self.sinks:
            sink.owner_done(rows, findings)


class Collected:
    """Keeps every row and finding, for the terminal's table (which needs them all)."""

    def __init__(self) -> None:
        self.rows: list[PlanRow] = []
        self.findings: list[Finding] = []

    def owner_done(self, rows: list[PlanRow], findings: list[Finding]) -> None:
        self.rows.extend(rows)
        self.findings.extend(findings)

    def findings_in_order(self) -> list[Finding]:
        """Blockers first, then warnings, then info; by kind, owner and path within."""
        return sorted(
            self.findings,
            key=lambda f: (SEVERITIES.index(f.severity), f.kind, f.owner, f.container),
        )


class CsvPlanWriter:
    """The per-container inventory as CSV, a line per container, header first."""

    def __init__(self, out: IO[str]) -> None:
        self.writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
        self.writer.writeheader()

    def owner_done(self, rows: list[PlanRow], findings: list[Finding]) -> None:
        self.writer.writerows(asdict(row) for row in rows)


class CsvFindingsWriter:
    """The findings as CSV, a line per finding (severity, kind, owner, path, detail)."""

    def __init__(self, out: IO[str]) -> None:
        self.writer = csv.DictWriter(out, fieldnames=FINDING_COLUMNS)
        self.writer.writeheader()

    def owner_done(self, rows: list[PlanRow], findings: list[Finding]) -> None:
        self.writer.writerows(finding_record(finding) for finding in findings)


class JsonPlanWriter:
    """`plan --json`'s document, one container per line as owners finish."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.findings: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")
        self.rows = 0
        self.finding_count = 0
        self.started = False  # nothing is written before the first owner is assessed

    def _start(self) -> None:
        if not self.started:
            self.out.write('{\n  "containers": [')
            self.started = True

    def owner_done(self, rows: list[PlanRow], findings: list[Finding]) -> None:
        self._start()
        for row in rows:
            self.out.write(("," if self.rows else "") + "\n    " + _line(asdict(row)))
            self.rows += 1
        for finding in findings:
            prefix = "," if self.finding_count else ""
            self.findings.write(prefix + "\n    " + _line(finding_record(finding)))
            self.finding_count += 1

    def close(self, plan: Plan) -> None:
        """The findings, then the plan's totals, and the document's end."""
        self._start()
        self.out.write("\n  ],\n  " + '"findings": [')
        self.findings.seek(0)
        shutil.copyfileobj(self.findings, self.out)
        self.findings.close()
        self.out.write("\n  ]")
        for key, value in plan.summary().items():
            self.out.write(f",\n  {_line(key)}: {_line(value)}")
        self.out.write("\n}\n")
        self.out.flush()


def _line(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)
