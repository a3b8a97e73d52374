"""The users file read strictly, and checked against the tenant's owners."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hirondelle.migrator.errors import ConfigError
from hirondelle.migrator.model import Owner
from hirondelle.migrator.selection import check_selection, read_users, selected

ALICE = Owner("alice@contoso.test", "u1", "Alice")
BOB = Owner("bob@contoso.test", "u2", "Bob")
SALES = Owner("team:Sales", "t-1", "Sales")
LEGAL = Owner("team:Legal", "t-2", "Legal")
INTRANET = Owner("site:Intranet", "s-1", "Intranet")


def users(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "users.csv"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "source_upn,target_login\nalice@contoso.test,alice\nbob@contoso.test,bob\n"
            "alice@contoso.test,alice2\n",
            "line 4: alice@contoso.test is already on line 2",
        ),
        (
            "alice@contoso.test,shared\nbob@contoso.test,SHARED\n",
            "line 2: target login SHARED is already the target of line 1",
        ),
        ("alice@contoso.test,alice@contoso.test\nalice@CONTOSO.test,x\n", "line 2: "),
        ("alice@contoso.test\n", "line 1: expected source_upn,target_login"),
        ("alice@contoso.test,a,extra\n", "line 1: expected source_upn,target_login"),
        ("alice contoso.test,a\n", "line 1: expected"),
        ("team:\n", "line 1: expected team:<name> or site:<name>"),
        ("#only a comment\n", "lists no users"),
    ],
)
def test_mistakes_are_errors_naming_the_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match="users.file") as caught:
        read_users(users(tmp_path, text))
    assert message in str(caught.value)


def test_an_empty_login_is_the_upn_and_collides_with_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="line 2: target login"):
        read_users(users(tmp_path, "alice@contoso.test,\nbob@contoso.test,alice@contoso.test\n"))


def test_teams_and_sites_are_selected_by_name_id_or_star(tmp_path: Path) -> None:
    path = users(tmp_path, "alice@contoso.test,alice\nteam:sales\nsite:s-1\n")
    wanted = frozenset(read_users(path).logins)
    assert [o.upn for o in (ALICE, BOB, SALES, LEGAL, INTRANET) if selected(o, wanted)] == [
        "alice@contoso.test",
        "team:Sales",
        "site:Intranet",
    ]
    assert selected(LEGAL, frozenset({"team:*"}))
    assert selected(BOB, None)


def test_a_row_that_matches_nobody_in_the_tenant_is_an_error(tmp_path: Path) -> None:
    file = read_users(users(tmp_path, "alice@contoso.test,a\ncarol@contoso.test,c\n"))
    listed = {"mail": [ALICE, BOB]}
    with pytest.raises(ConfigError, match=r"line 2: no user 'carol@contoso.test' in the tenant"):
        check_selection(file, listed, {"mail": 1})
    teams = read_users(users(tmp_path, "team:Marketing\n"))
    with pytest.raises(ConfigError, match="line 1: no team 'marketing'"):
        check_selection(teams, {"chat": [SALES, LEGAL]}, {"chat": 0})


def test_a_workload_left_with_nothing_is_an_error(tmp_path: Path) -> None:
    file = read_users(users(tmp_path, "alice@contoso.test,a\n"))
    with pytest.raises(ConfigError, match="selects none of the 2 owners of chat: add team:"):
        check_selection(file, {"mail": [ALICE], "chat": [SALES, LEGAL]}, {"mail": 1, "chat": 0})


def test_user_rows_are_not_checked_when_no_workload_lists_users(tmp_path: Path) -> None:
    """Chat alone: user rows only map authors to Matrix ids; they are nobody's owners."""
    file = read_users(users(tmp_path, "carol@contoso.test,@carol:example.org\nteam:*\n"))
    check_selection(file, {"chat": [SALES]}, {"chat": 1})


def test_sites_a_file_does_not_name_are_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    file = read_users(users(tmp_path, "alice@contoso.test,a\n"))
    with caplog.at_level(logging.WARNING):
        check_selection(file, {"files": [ALICE, INTRANET]}, {"files": 1})
    assert "names no site row, so its 1 sites are not carried" in caplog.text
