"""Calendars and contacts end to end: sandbox Graph -> engine -> a real Radicale."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import icalendar
import pytest
import recurring_ical_events
from harness import SECRET_ENV, graph_pages, source_table

from hirondelle.mappings.calendar import event_description
from hirondelle.migrator import operations
from hirondelle.migrator.config import load_config
from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import Mutation, Tenant, TenantSpec
from hirondelle.tests.servers import MailUser, RadicaleServer

WINDOW = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))


@dataclass
class Groupware:
    tenant: Tenant
    sandbox: SandboxServer
    radicale: RadicaleServer
    logins: dict[str, MailUser]
    config_path: Path


@pytest.fixture
def groupware(
    tmp_path: Path, radicale: RadicaleServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Groupware]:
    tenant = Tenant.generate(TenantSpec(seed=13, users=2, messages=4, large_messages=0))
    with SandboxServer(tenant, tls=True, limits=Limits(enabled=False)) as sandbox:
        logins = {user.upn: radicale.new_user() for user in tenant.users}
        passwords = radicale.password_file(tmp_path / "dav-passwords.txt", *logins.values())
        (tmp_path / "users.csv").write_text(
            "".join(f"{upn},{user.login}\n" for upn, user in logins.items())
        )
        config = tmp_path / "hirondelle.toml"
        config.write_text(
            f"""
{source_table(sandbox)}
[users]
file = "users.csv"

[run]
calendar_window_start = "2023-01-01"
calendar_window_end = "2027-12-31"

[targets.calendar]
kind = "caldav"
url = "{radicale.url}"
password_file = "{passwords}"

[targets.contacts]
kind = "carddav"
url = "{radicale.url}"
password_file = "{passwords}"
"""
        )
        monkeypatch.setenv(SECRET_ENV, sandbox.client_secret)
        yield Groupware(tenant, sandbox, radicale, logins, config)


def test_run_sync_verify_into_radicale(groupware: Groupware) -> None:
    config = load_config(groupware.config_path)
    first = asyncio.run(operations.migrate(config, "run"))
    assert first.ok, first.as_dict()
    assert first.tallies["calendar"].copied > 20 and first.tallies["contacts"].copied > 10
    reports = asyncio.run(operations.check(config))
    for name in ("calendar", "contacts"):
        assert reports[name].verified, reports[name].differences[:5]
    changed = groupware.sandbox.mutate(
        Mutation(
            seed=4,
            new_events=2,
            event_changes=2,
            event_cancellations=1,
            event_deletions=1,
            new_contacts=2,
            contact_changes=1,
            contact_deletions=1,
        )
    )
    second = asyncio.run(operations.migrate(config, "sync"))
    assert second.ok, second.as_dict()
    calendar, contacts = second.tallies["calendar"], second.tallies["contacts"]
    assert calendar.copied == 2 and calendar.removed == 1 and calendar.updated >= 3
    assert (contacts.copied, contacts.updated, contacts.removed) == (2, 1, 1)
    assert len(changed.contacts) == 4
    reports = asyncio.run(operations.check(config))
    for name in ("calendar", "contacts"):
        assert reports[name].verified, reports[name].differences[:5]
    again = asyncio.run(operations.migrate(config, "run")).tallies
    assert again["calendar"].copied == 0 and again["contacts"].copied == 0


def occurrence_key(
    start: Any, end: Any, summary: str, description: str, attendees: set[str]
) -> tuple[Any, ...]:
    def moment(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.astimezone(UTC).replace(microsecond=0)
        return value

    return (moment(start), moment(end), summary, description.strip(), frozenset(attendees))


def graph_time(value: dict[str, str], all_day: bool) -> Any:
    text = value["dateTime"][:19]
    moment = datetime.fromisoformat(text)
    if all_day:
        return date(moment.year, moment.month, moment.day)
    return moment.replace(tzinfo=UTC)  # calendarView answers in UTC unless asked otherwise


def test_migrated_occurrences_equal_the_sources_calendar_view(groupware: Groupware) -> None:
    """A year of occurrences expanded from the migrated iCalendar equals calendarView."""
    config = load_config(groupware.config_path)
    assert asyncio.run(operations.migrate(config, "run")).ok
    start, end = WINDOW
    checked = 0
    for user in groupware.tenant.users:
        login = groupware.logins[user.upn].login
        calendars = graph_pages(groupware.sandbox, f"users/{user.id}/calendars", {})
        collections = groupware.radicale.collections(login)
        for calendar in calendars:
            expected = {
                occurrence_key(
                    graph_time(i["start"], i["isAllDay"]),
                    graph_time(i["end"], i["isAllDay"]),
                    i.get("subject") or "",
                    event_description(i),
                    {a["emailAddress"]["address"].lower() for a in i.get("attendees", [])},
                )
                for i in graph_pages(
                    groupware.sandbox,
                    f"users/{user.id}/calendars/{calendar['id']}/calendarView",
                    {"startDateTime": start.isoformat(), "endDateTime": end.isoformat()},
                )
                if not i.get("isCancelled")
            }
            name = next(
                n for n, p in collections.items() if p.get("D:displayname") == calendar["name"]
            )
            merged = icalendar.Calendar()
            for data in groupware.radicale.resources(login, name).values():
                for component in icalendar.Calendar.from_ical(data).subcomponents:
                    merged.add_component(component)
            actual = {
                occurrence_key(
                    o["DTSTART"].dt,
                    o["DTEND"].dt,
                    str(o.get("SUMMARY", "")),
                    str(o.get("DESCRIPTION", "")),
                    {str(a).lower().removeprefix("mailto:") for a in _list(o.get("ATTENDEE"))},
                )
                for o in recurring_ical_events.of(merged).between(start, end)
                if str(o.get("STATUS", "")) != "CANCELLED"
            }
            assert actual == expected, (
                calendar["name"],
                sorted(map(str, expected - actual))[:3],
                sorted(map(str, actual - expected))[:3],
            )
            checked += len(expected)
    assert checked > 50


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def test_kill_nine_during_the_copy_then_resume(groupware: Groupware) -> None:
    """Three kills at random moments; after the resume each event and contact is there once."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    from hirondelle.sandbox.faults import Faults

    rng = random.Random(7)
    env = {**os.environ, SECRET_ENV: groupware.sandbox.client_secret}
    command = [sys.executable, "-m", "hirondelle.cli", "-c", str(groupware.config_path), "run"]
    audit = groupware.config_path.parent / "audit"
    groupware.sandbox.set_faults(Faults(slow_seconds=0.02))
    kills = 0
    for _ in range(3):
        seen = sum(p.read_bytes().count(b"\n") for p in audit.glob("*.jsonl"))
        goal = seen + rng.randint(2, 25)
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            if sum(p.read_bytes().count(b"\n") for p in audit.glob("*.jsonl")) >= goal:
                os.kill(process.pid, signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.005)
        process.wait(timeout=30)
    assert kills >= 2
    groupware.sandbox.set_faults(Faults())
    final = subprocess.run(command, env=env, capture_output=True, timeout=120)
    assert final.returncode == 0, final.stderr.decode()[-2000:]
    config = load_config(groupware.config_path)
    reports = asyncio.run(operations.check(config))
    for name in ("calendar", "contacts"):
        assert reports[name].verified, reports[name].differences[:5]
    for user in groupware.tenant.users:
        login = groupware.logins[user.upn].login
        stored = [
            uid
            for name in groupware.radicale.collections(login)
            for data in groupware.radicale.resources(login, name).values()
            for uid in _uids(data)
        ]
        assert len(stored) == len(set(stored)), "a resource was written twice"


def _uids(data: bytes) -> set[str]:
    text = data.decode()
    return {line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("UID:")}
