"""The plan benchmark: its options, its configuration, and one whole small run that ends
with the JSON line of figures (the sandbox's request counter is its own
`/_sandbox/stats`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hirondelle.bench import plan
from hirondelle.bench._servers import parse_banner
from hirondelle.migrator.config import load_config

BANNER = [
    "Graph URL:      https://127.0.0.1:40123/v1.0\n",
    "Authority:      127.0.0.1:40123\n",
    "CA file:        sandbox-x/ca.pem\n",
    "Tenant id:      11111111-2222-3333-4444-555555555555\n",
    "Client id:      66666666-7777-8888-9999-000000000000\n",
    "Client secret:  s3cret-value  (a fixed public test value)\n",
]


def test_quick_full_and_bad_counts() -> None:
    assert plan.parse_args(["--quick"]).users == plan.QUICK_USERS == 1000
    assert plan.parse_args([]).users == plan.FULL_USERS == 10_000
    assert plan.parse_args(["--quick", "--users", "50"]).users == 50
    assert plan.parse_args([]).source == "auto"
    with pytest.raises(SystemExit):
        plan.parse_args(["--source", "nowhere"])
    with pytest.raises(SystemExit):
        plan.parse_args(["--users", "0"])


def test_config_has_an_archive_target_per_workload_and_no_secret(tmp_path: Path) -> None:
    path = plan.write_config(tmp_path, parse_banner(BANNER))
    assert "s3cret" not in path.read_text(encoding="utf-8")
    config = load_config(path)
    assert set(config.targets) == set(plan.WORKLOADS)
    assert {target.kind for target in config.targets.values()} == {"archive"}


def test_whole_benchmark_ends_with_one_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan.main(["--users", "4", "--messages", "3", "--source", "graph"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(result)[:5] == ["users", "seconds", "cpu_s", "peak_rss_mb", "requests"]
    assert result["users"] == 4 and result["plan_owners"] >= 4
    assert result["seconds"] > 0 and result["cpu_s"] > 0 and 0 < result["peak_rss_mb"] < 1000
    # every user's folder tree, calendars, address books and drive at least
    assert result["requests"] >= 4 * 5
    assert "report" not in result["plan_counted"]


def test_the_reports_replace_the_per_user_requests(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan.main(["--users", "4", "--messages", "3"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["source"] == "auto" and "report" in result["plan_counted"]
    assert result["plan_owners"] >= 4
