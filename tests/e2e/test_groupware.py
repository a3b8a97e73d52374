"""Calendars and contacts end to end: sandbox Graph -> engine -> a real Radicale, and the
same against a real Xandikos (https, its own vCard and redirect habits)."""

from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import icalendar
import pytest
import recurring_ical_events
from harness import (
    SECRET_ENV,
    audit_lines,
    audit_reaches,
    final_run,
    graph_pages,
    kill_nine_at,
    source_table,
)

from hirondelle.mappings.calendar import event_description
from hirondelle.migrator import operations
from hirondelle.migrator.config import load_config
from hirondelle.sandbox.calendar_data import EVENT_ID_PREFIX, SandboxEvent, ical_uid
from hirondelle.sandbox.calendar_mutations import shifted
from hirondelle.sandbox.calendar_seed import add_exception
from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import Mutation, Tenant, TenantSpec
from hirondelle.sandbox.tenant_records import stable_id
from hirondelle.tests.servers import DavServer, MailUser, XandikosServer

WINDOW = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))
# Run, sync, verify and the kill -9 resume run against every server; the finer calendar
# checks (which exercise the mapper and the engine, not the server) against one, to keep
# the suite's time.
RADICALE_ONLY = pytest.mark.parametrize("groupware", ["radicale"], indirect=True)


@dataclass
class Groupware:
    tenant: Tenant
    sandbox: SandboxServer
    server: DavServer
    logins: dict[str, MailUser]
    config_path: Path


@pytest.fixture(params=["radicale", "xandikos"])
def groupware(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Groupware]:
    """Two users' calendars and contacts, configured into each real DAV server in turn."""
    server: DavServer = request.getfixturevalue(request.param)
    tenant = Tenant.generate(TenantSpec(seed=13, users=2, messages=4, large_messages=0))
    with SandboxServer(tenant, tls=True, limits=Limits(enabled=False)) as sandbox:
        logins = {user.upn: server.new_user() for user in tenant.users}
        passwords = server.password_file(tmp_path / "dav-passwords.txt", *logins.values())
        ca = f'ca_file = "{server.ca_file}"' if server.ca_file else ""
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
url = "{server.url}"
password_file = "{passwords}"
{ca}

[targets.contacts]
kind = "carddav"
url = "{server.url}"
password_file = "{passwords}"
{ca}
"""
        )
        monkeypatch.setenv(SECRET_ENV, sandbox.client_secret)
        yield Groupware(tenant, sandbox, server, logins, config)


def test_run_sync_verify(groupware: Groupware) -> None:
    config = load_config(groupware.config_path)
    doctor = asyncio.run(operations.doctor(config))
    assert all(ok for _, ok, _ in doctor), doctor
    found = {what: detail for what, _, detail in doctor}
    assert "principal of " in found["target: calendar found"]
    assert "vCard" in found["target: contacts found"]
    first = asyncio.run(operations.migrate(config, "run"))
    assert first.ok, first.as_dict()
    assert first.tallies["calendar"].copied > 20 and first.tallies["contacts"].copied > 10
    reports = asyncio.run(operations.check(config))
    for name in ("calendar", "contacts"):
        assert reports[name].verified, reports[name].differences[:5]
    if isinstance(groupware.server, XandikosServer):  # it lists vCard 3.0 only
        assert stored_card_versions(groupware) == {"3.0"}
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


@RADICALE_ONLY
def test_another_calendars_changes_reach_the_dav_server(groupware: Groupware) -> None:
    """A calendar other than the primary one has no documented delta: new, changed and
    deleted singles, series and exceptions still reach the DAV server, and a quiet sync writes
    nothing (the sandbox refuses delta on it, as Graph v1.0 does)."""
    config = load_config(groupware.config_path)
    assert asyncio.run(operations.migrate(config, "run")).ok
    user = groupware.tenant.users[0]
    data = groupware.tenant.calendar_data
    other = next(c for c in data.calendars(user.id) if not c.is_default)
    singles = [e for e in data.events(user.id, other.id) if not e.is_series]
    (series,) = [e for e in data.events(user.id, other.id) if e.is_series]

    # New single and series, an edited single, a new exception and a cancelled occurrence.
    fresh_single = copied_event(data, singles[1], "bis", "Atelier RGPD (bis)", 7 * 24 * 60)
    fresh_series = copied_event(data, series, "retro", "Rétrospective", 60)
    edited = copy.deepcopy(singles[0].fields) | {"subject": "Lancement repoussé"}
    data.put_event(replace(singles[0], fields=edited))
    originals = open_originals(data, series)
    add_exception(data, series, originals[0], random.Random(3), [groupware.tenant.users[1]])
    data.cancel_occurrence(data.event(user.id, series.id), originals[1])
    first = synced(config, groupware, user.id, other.id)
    assert (first.copied, first.updated, first.removed) == (2, 2, 0)
    login = groupware.logins[user.upn].login
    stored = b"".join(
        groupware.server.resources(login, collection_of(groupware, login, other.name)).values()
    )
    assert b"Lancement repouss" in stored and b"Atelier RGPD (bis)" in stored

    # A single and the new series deleted, the exception cancelled.
    data.delete_event(user.id, fresh_single)
    data.delete_event(user.id, fresh_series)
    data.cancel_occurrence(data.event(user.id, series.id), originals[0])
    second = synced(config, groupware, user.id, other.id)
    assert (second.copied, second.updated, second.removed) == (0, 1, 2)

    quiet = asyncio.run(operations.migrate(config, "sync"))
    assert quiet.ok, quiet.as_dict()
    tally = quiet.tallies["calendar"]
    assert (tally.copied, tally.updated, tally.removed, tally.failed) == (0, 0, 0, 0)


def stored_card_versions(groupware: Groupware) -> set[str]:
    """The VERSION of every card stored for the test's users."""
    return {
        line.partition(":")[2].strip()
        for login in (user.login for user in groupware.logins.values())
        for name, props in groupware.server.collections(login).items()
        if props.get("tag") == "VADDRESSBOOK"
        for data in groupware.server.resources(login, name).values()
        for line in data.decode().splitlines()
        if line.startswith("VERSION:")
    }


def copied_event(data: Any, source: Any, tag: str, subject: str, minutes: int) -> str:
    """A new event in `source`'s calendar, like it but `minutes` later; its id."""
    event_id = stable_id(EVENT_ID_PREFIX, source.id, tag)
    fields = copy.deepcopy(source.fields) | shifted(source, minutes)
    fields |= {"subject": subject, "iCalUId": ical_uid(event_id)}
    fresh = SandboxEvent(event_id, source.user_id, source.calendar_id, 0, "", fields)
    data.put_event(replace(fresh, created=data.clock()))
    return event_id


def open_originals(data: Any, series: Any) -> list[str]:
    """Original starts of the series' plain occurrences in WINDOW."""
    instances = data.instances(data.event(series.user_id, series.id), *WINDOW)
    return [i["originalStart"] for i in instances if i["type"] == "occurrence"]


def collection_of(groupware: Groupware, login: str, name: str) -> str:
    collections = groupware.server.collections(login)
    return next(n for n, props in collections.items() if props.get("D:displayname") == name)


def synced(config: Any, groupware: Groupware, user_id: str, calendar_id: str) -> Any:
    """Sync; check the calendar's occurrences and verify; the calendar tally."""
    result = asyncio.run(operations.migrate(config, "sync"))
    assert result.ok, result.as_dict()
    calendars = graph_pages(groupware.sandbox, f"users/{user_id}/calendars", {})
    assert_same_occurrences(
        groupware, user_id, next(c for c in calendars if c["id"] == calendar_id)
    )
    report = asyncio.run(operations.check(load_config(groupware.config_path)))["calendar"]
    assert report.verified, report.differences[:5]
    return result.tallies["calendar"]


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


@RADICALE_ONLY
def test_migrated_occurrences_equal_the_sources_calendar_view(groupware: Groupware) -> None:
    """A year of occurrences expanded from the migrated iCalendar equals calendarView."""
    config = load_config(groupware.config_path)
    assert asyncio.run(operations.migrate(config, "run")).ok
    checked = 0
    for user in groupware.tenant.users:
        for calendar in graph_pages(groupware.sandbox, f"users/{user.id}/calendars", {}):
            checked += assert_same_occurrences(groupware, user.id, calendar)
    assert checked > 50


def assert_same_occurrences(groupware: Groupware, user_id: str, calendar: Any) -> int:
    """The occurrences of WINDOW expanded from the calendar's collection on the server equal
    its calendarView (subject, times, description, attendees); how many there are."""
    start, end = WINDOW
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
            f"users/{user_id}/calendars/{calendar['id']}/calendarView",
            {"startDateTime": start.isoformat(), "endDateTime": end.isoformat()},
        )
        if not i.get("isCancelled")
    }
    login = groupware.logins[groupware.tenant.user(user_id).upn].login
    collections = groupware.server.collections(login)
    name = next(n for n, p in collections.items() if p.get("D:displayname") == calendar["name"])
    merged = icalendar.Calendar()
    for data in groupware.server.resources(login, name).values():
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
    return len(expected)


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def test_kill_nine_during_the_copy_then_resume(groupware: Groupware) -> None:
    """Three kills at random moments; after the resume each event and contact is there once."""
    import os
    import random
    import sys

    from hirondelle.sandbox.faults import Faults

    rng = random.Random(7)
    env = {**os.environ, SECRET_ENV: groupware.sandbox.client_secret}
    command = [sys.executable, "-m", "hirondelle.cli", "-c", str(groupware.config_path), "run"]
    audit = groupware.config_path.parent / "audit"
    groupware.sandbox.set_faults(Faults(slow_seconds=0.02))
    # each goal a few lines past what the audit holds when its run starts
    moments = (audit_reaches(audit, audit_lines(audit) + rng.randint(2, 25)) for _ in range(3))
    kills = kill_nine_at(command, env, moments, deadline=60)
    assert kills >= 2
    groupware.sandbox.set_faults(Faults())
    final_run(command, env, timeout=120)
    config = load_config(groupware.config_path)
    reports = asyncio.run(operations.check(config))
    for name in ("calendar", "contacts"):
        assert reports[name].verified, reports[name].differences[:5]
    for user in groupware.tenant.users:
        login = groupware.logins[user.upn].login
        stored = [
            uid
            for name in groupware.server.collections(login)
            for data in groupware.server.resources(login, name).values()
            for uid in _uids(data)
        ]
        assert len(stored) == len(set(stored)), "a resource was written twice"


def _uids(data: bytes) -> set[str]:
    text = data.decode()
    return {line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("UID:")}
