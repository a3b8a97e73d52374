"""`bench/http_clients.py`: both clients read the same links, whole, and report figures."""

from __future__ import annotations

import json

import pytest

from hirondelle.bench import http_clients


def test_both_clients_read_every_byte_and_one_json_line_ends(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--files", "6", "--large-bytes", "3000000", "--rounds", "1", "--concurrency", "2"]
    assert http_clients.main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["small_files"] >= 6  # the OneDrive's small files and its showcase
    for client in http_clients.CLIENTS:
        for name in ("small", "large"):
            assert result[f"{client}_{name}_mb_per_s"] > 0
            assert result[f"{client}_{name}_cpu_s_per_gb"] > 0
    # each turn read the same bytes with both clients
    sizes = {line.split(" MB in ")[0].split(", ")[-1] for line in lines if "_large:" in line}
    assert sizes == {"3.0"}
