"""The parts of the HTML pages that need no browser: the French catalog, the language, the
waves, and the bounded memory of what each page gathers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from click.testing import CliRunner

from hirondelle.cli import main
from hirondelle.migrator.plan import Finding, Plan, PlanRow, estimate_seconds
from hirondelle.migrator.plan_text import duration_text
from hirondelle.report.page import LOCALE_DIR, Formats, default_language
from hirondelle.report.pages import plan_page
from hirondelle.report.plan_digest import EXAMPLES, LARGEST, PlanDigest, target_path
from hirondelle.report.run_digest import LISTED, POINTS, REASONS, RunDigest
from hirondelle.report.waves import OwnerLoad, pack_waves, parse_window

REPORT = Path(__file__).resolve().parents[2] / "report"


def translated_fully(string: object) -> bool:
    """A message's translation is there, and so is every plural form of it."""
    forms = string if isinstance(string, tuple | list) else [string]
    return bool(string) and all(forms)


def test_every_text_of_the_pages_has_its_french_translation() -> None:
    options = {"templates/**.j2": {"extensions": "jinja2.ext.i18n"}}
    methods = [("templates/**.j2", "jinja2"), ("**.py", "python")]
    extracted = {m[2] for m in extract_from_dir(str(REPORT), methods, options)}
    with (LOCALE_DIR / "fr" / "LC_MESSAGES" / "hirondelle.po").open("rb") as file:
        catalog = read_po(file, locale="fr")
    translated = {m.id: m.string for m in catalog if m.id}
    assert len(extracted) > 100
    missing = [m for m in extracted if not translated_fully(translated.get(m))]
    assert missing == []
    assert set(translated) <= extracted  # no stale entry left behind


def test_the_language_follows_the_locale_as_gettext_reads_it() -> None:
    assert default_language({"LANG": "fr_FR.UTF-8"}) == "fr"
    assert default_language({"LC_ALL": "C.UTF-8", "LANG": "fr_FR.UTF-8"}) == "en"
    assert default_language({"LC_MESSAGES": "fr_CA", "LANG": "en_GB"}) == "fr"
    assert default_language({}) == "en"


def test_sizes_and_durations_read_as_each_language_writes_them() -> None:
    fr, en = Formats("fr"), Formats("en")
    assert en.size(1_234_567) == "1.23 MB" and fr.size(1_234_567) == "1,23 Mo"
    assert fr.number(1234567) == "1\u202f234\u202f567" and en.number(1234567) == "1,234,567"
    assert en.duration(59) == "1 min" and fr.duration(3 * 86400 + 3600) == "3 j 1 h 00"


def test_the_terminal_and_the_page_round_an_estimate_alike() -> None:
    """Both round up to the minute (`estimate_minutes`): an estimate must not promise less."""
    en = Formats("en")
    for seconds, terminal, page in (
        (0, "0m", "0 min"),
        (1, "1m", "1 min"),
        (60, "1m", "1 min"),
        (61, "2m", "2 min"),
        (3725, "1h03m", "1 h 03"),
        (90061, "25h02m", "1 d 1 h 02"),
    ):
        assert (duration_text(seconds), en.duration(seconds)) == (terminal, page)


def test_a_window_is_read_in_hours_minutes_days_or_seconds() -> None:
    assert parse_window("48h") == 172_800 and parse_window("90m") == 5400
    assert parse_window("2d") == 172_800 and parse_window("3600") == 3600
    for wrong in ("", "h", "0h", "-1h", "soon"):
        with pytest.raises(ValueError):
            parse_window(wrong)


def test_waves_fit_the_window_and_hold_every_owner_once() -> None:
    rate, concurrency, window = 10.0, 2, 3600.0
    sizes = [30_000, 20_000, 20_000, 9_000, 5_000, 5_000, 4_000, 1_000, 50_000]
    loads = [
        OwnerLoad(f"user{n}@example.test", (r / rate,), r, r * 1000) for n, r in enumerate(sizes)
    ]
    waves = pack_waves(loads, window, concurrency)
    owners = [o for w in waves for o in w.owners]
    assert sorted(owners) == sorted(o.owner for o in loads)
    for wave in waves:
        assert wave.seconds == estimate_seconds(wave.jobs, concurrency)
        assert wave.over_window == (wave.seconds > window)
        assert not wave.over_window or len(wave.owners) == 1
    # the 50,000-request owner (5,000 s alone) cannot fit one hour: a wave of its own
    assert [w.owners for w in waves if w.over_window] == [["user8@example.test"]]
    assert sum(w.items for w in waves) == sum(sizes)


def test_the_command_line_refuses_a_bad_window_or_page_before_any_work(tmp_path: Path) -> None:
    runner = CliRunner()
    no_html = runner.invoke(main, ["plan", "--window", "2h"])
    assert no_html.exit_code == 2 and "--window" in no_html.output
    wrong = runner.invoke(main, ["plan", "--html", str(tmp_path / "p.html"), "--window", "soon"])
    assert wrong.exit_code == 2 and "48h" in wrong.output
    nowhere = tmp_path / "missing" / "r.html"
    unwritable = runner.invoke(main, ["report", "--html", str(nowhere)])
    assert unwritable.exit_code == 2 and "cannot write" in unwritable.output
    assert unwritable.output.count("\n") == 1


def test_a_finding_is_placed_under_its_folder_s_target_name() -> None:
    targets = {"OneDrive": "Microsoft 365/OneDrive", "Boîte de réception": "INBOX"}
    assert target_path("OneDrive/a/b.txt", targets) == "Microsoft 365/OneDrive/a/b.txt"
    assert target_path("Boîte de réception", targets) == "INBOX"
    assert target_path("Hidden", targets) == ""


def test_the_plan_s_page_keeps_bounded_lists_for_a_large_tenant() -> None:
    digest, plan = PlanDigest(), Plan(owner_concurrency=8, rates={"mail": 16.0, "files": 20.0})
    owners = 3000
    for n in range(owners):
        owner = f"user{n:05d}@example.test"
        rows = [
            PlanRow("mail", owner, "Inbox", "INBOX", n, n * 1000, n + 2, "inventory"),
            PlanRow("files", owner, "OneDrive", "OneDrive", 1, 10, 3, "listing"),
        ]
        findings = [
            Finding("blocker", "oversize", owner, "Inbox", "over the limit"),
            Finding("info", "largest", owner, "OneDrive/big.bin", f"{n} kB", size=n),
        ]
        plan.count(rows, findings)
        digest.owner_done(rows, findings)
    plan.owners = owners
    assert len(digest.largest) == LARGEST and len(digest.largest_files) == LARGEST
    assert digest.largest_rows()[0].owner == f"user{owners - 1:05d}@example.test"
    assert digest.largest_file_list()[0].target == "OneDrive/big.bin"
    assert digest.largest_file_list()[0].finding.owner == f"user{owners - 1:05d}@example.test"
    oversize = digest.groups[("blocker", "oversize")]
    assert oversize.count == owners and len(oversize.examples) == EXAMPLES
    html = plan_page(plan, digest, {}, 48 * 3600.0, "en", "large")
    assert html.count("<tr>") < 2 * 2000 + 200  # owners shown are capped, not every one
    assert "and 1,000 smaller owners" in html


def _audit_line(n: int, **fields: object) -> str:
    minute = f"2026-01-01T{n // 60 % 24:02d}:{n % 60:02d}"
    line = {"ts": f"{minute}:00.000+00:00", "run": 1, "workload": "files", "owner": "u@x.test"}
    return json.dumps({**line, **fields}) + "\n"


def test_the_run_report_streams_the_audit_logs_and_keeps_bounded_lists(tmp_path: Path) -> None:
    audit = tmp_path / "audit"
    audit.mkdir()
    lines = [_audit_line(n, action="put", result="done", size=1000) for n in range(1000)]
    lines += [
        _audit_line(n, action="put", result="failed", reason=f"refused {n}", path=f"d/{n}")
        for n in range(REASONS + 100)
    ]
    lines += ['{"ts": "2026-01-01T00:00\n', _audit_line(0, action="put", result="skipped")]
    (audit / "run-000001.jsonl").write_text("".join(lines), encoding="utf-8")
    verify = _audit_line(0, action="verify", result="differences", differences=1, containers=1)
    difference = _audit_line(0, action="verify", result="difference", kind="missing")
    (audit / "verify-20260101T000000.000000Z.jsonl").write_text(difference + verify)
    state: dict[str, Any] = {"workloads": {"files": {}}, "runs": [], "run": None, "workers": []}
    digest = RunDigest(state)
    digest.read_audit(audit)
    context = digest.context()
    assert context["results"]["files"]["copied"] == 1000
    assert context["failure_count"] == REASONS + 100 and len(context["failures"]) == LISTED
    reasons = context["failure_reasons"]
    assert len(reasons) == REASONS + 1 and reasons[-1] == ("files", "", 100)
    assert context["skip_count"] == 1  # the line cut short is passed over
    assert context["verify"]["files"]["differences"] == 1 and context["difference_count"] == 1
    labels, items, megabytes = digest.throughput()
    # 1,000 minutes of one item each, shown as at most POINTS means of several minutes
    assert len(labels) <= POINTS and set(items) == {1}
    assert megabytes == [pytest.approx(0.001)] * len(labels)
