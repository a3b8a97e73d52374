"""The ManageSieve target against a real Dovecot (Pigeonhole): a user who already has an
active script (include or leave), a resume after a crash between the steps of `put`,
removal, logins (per-user passwords, the master user's two forms) and refusals."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path

import pytest

from hirondelle.connectors.managesieve import ManageSieveSettings, ManageSieveTarget
from hirondelle.connectors.managesieve_include import include_line
from hirondelle.connectors.managesieve_session import ManageSieveSession
from hirondelle.migrator.errors import FatalError, OwnerFailed, Refused, Unreachable
from hirondelle.migrator.model import Container, Owner, Payload
from hirondelle.tests.servers import DovecotServer, MailUser, free_port

RULES = Container("rules", "x", "rules", ("Sieve",))
OURS = (
    'require ["fileinto", "imap4flags"];\r\n'
    'if header :contains "subject" "Facture" {\r\n'
    '  addflag "\\\\Flagged";\r\n  fileinto "Junk";\r\n  stop;\r\n}\r\n'
)
THEIRS = 'require "fileinto";\nif header :is "X-Spam" "yes" { fileinto "Trash"; }\n'


def script(text: str) -> Payload:
    content = text.encode("utf-8")
    return Payload("rules", content, hashlib.sha256(content).hexdigest())


def target(
    server: DovecotServer, user: MailUser, tmp_path: Path, **options: object
) -> ManageSieveTarget:
    values: dict[str, object] = {"security": "plain", **options}
    settings = ManageSieveSettings(
        host=server.host,
        port=server.sieve_port,
        password_file=server.password_file(tmp_path / "passwords", user),
        **values,  # type: ignore[arg-type]  # the keywords of ManageSieveSettings
    )
    return ManageSieveTarget(settings)


def session(
    server: DovecotServer, user: MailUser, tmp_path: Path, **options: object
) -> ManageSieveSession:
    return target(server, user, tmp_path, **options).open(Owner(upn=user.login, source_id="x"))


def master_settings(
    dovecot: DovecotServer, tmp_path: Path, password: str, master_login: str = "separator"
) -> ManageSieveSettings:
    """Settings that log in as Dovecot's master user, `password` in a file of mode 0600."""
    secret = tmp_path / "master"
    secret.write_text(password + "\n", encoding="utf-8")
    secret.chmod(0o600)
    return ManageSieveSettings(
        host=dovecot.host,
        port=dovecot.sieve_port,
        security="plain",
        master_user=dovecot.master_user,
        master_password_file=secret,
        master_login=master_login,
    )


def message(user: MailUser, subject: str, spam: str = "no") -> bytes:
    return (
        f"From: bob@example.org\r\nTo: {user.login}\r\nSubject: {subject}\r\n"
        f"X-Spam: {spam}\r\nMessage-ID: <{subject}@example.org>\r\n\r\nBonjour\r\n"
    ).encode()


def test_an_active_script_of_the_user_includes_ours_once(
    dovecot: DovecotServer, mail_user: MailUser, tmp_path: Path
) -> None:
    dovecot.put_sieve(mail_user.login, "mine", THEIRS)
    sieve = session(dovecot, mail_user, tmp_path)
    folder = sieve.ensure_container(RULES)
    ref = sieve.put(folder, script(OURS))
    assert sieve.put(folder, script(OURS)) == ref  # again: still one include
    assert dovecot.sieve_scripts(mail_user.login) == {"mine": True, "outlook-rules": False}
    theirs = dovecot.sieve_script(mail_user.login, "mine")
    assert theirs.count(include_line("outlook-rules")) == 1
    assert theirs.startswith('require "include";\n') and THEIRS in theirs
    # delivery runs both: the user's rule first, then ours
    dovecot.deliver(mail_user.login, message(mail_user, "Facture-12"))
    dovecot.deliver(mail_user.login, message(mail_user, "promo", spam="yes"))
    [invoice] = dovecot.read_mailbox(mail_user.login, "Junk")
    assert b"Facture-12" in invoice.content and "\\Flagged" in invoice.flags
    [spam] = dovecot.read_mailbox(mail_user.login, "Trash")
    assert b"promo" in spam.content
    sieve.remove(ref)
    assert dovecot.sieve_scripts(mail_user.login) == {"mine": True}
    assert include_line("outlook-rules") not in dovecot.sieve_script(mail_user.login, "mine")


def test_leave_keeps_the_users_script_alone(
    dovecot: DovecotServer, mail_user: MailUser, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dovecot.put_sieve(mail_user.login, "mine", THEIRS)
    sieve = session(dovecot, mail_user, tmp_path, when_active="leave")
    with caplog.at_level(logging.WARNING):
        ref = sieve.put(sieve.ensure_container(RULES), script(OURS))
    assert (
        f"{mail_user.login}: Sieve script 'outlook-rules' stored but left inactive" in caplog.text
    )
    assert dovecot.sieve_scripts(mail_user.login) == {"mine": True, "outlook-rules": False}
    assert dovecot.sieve_script(mail_user.login, "mine") == THEIRS
    assert sieve.find(ref.folder, script(OURS), frozenset()) == ref


@pytest.mark.parametrize("mine", [None, THEIRS], ids=["no-script", "active-script"])
def test_a_crash_after_putscript_is_completed_on_resume(
    dovecot: DovecotServer, mail_user: MailUser, tmp_path: Path, mine: str | None
) -> None:
    """Killed after PUTSCRIPT, before SETACTIVE or the include: `find` does not take the
    script as written, so the resumed run writes it again and completes the step."""
    if mine is not None:
        dovecot.put_sieve(mail_user.login, "mine", mine)
    dovecot.put_sieve(mail_user.login, "outlook-rules", OURS, active=False)
    sieve = session(dovecot, mail_user, tmp_path)
    assert sieve.find("outlook-rules", script(OURS), frozenset()) is None
    ref = sieve.put("outlook-rules", script(OURS))
    assert sieve.find("outlook-rules", script(OURS), frozenset()) == ref
    scripts = dovecot.sieve_scripts(mail_user.login)
    if mine is None:
        assert scripts == {"outlook-rules": True}
    else:
        assert scripts == {"mine": True, "outlook-rules": False}
        assert dovecot.sieve_script(mail_user.login, "mine").count("outlook-rules") == 1


AWAY = (  # a script as the mapping writes it (its first line), with an automatic reply
    "# Outlook inbox rules and automatic replies of x\r\n"
    'require ["fileinto", "vacation"];\r\n'
    'vacation :days 1 :subject "Absent" "Back on Monday.";\r\n'
    'if header :contains "subject" "Facture" { fileinto "Junk"; }\r\n'
)


@pytest.mark.parametrize("killed", [False, True], ids=["whole", "killed-after-putscript"])
@pytest.mark.parametrize("mine", [None, THEIRS], ids=["no-script", "active-script"])
def test_a_new_script_name_takes_the_place_of_the_old_one(
    dovecot: DovecotServer, mail_user: MailUser, tmp_path: Path, mine: str | None, killed: bool
) -> None:
    """`script_name` changed: the script under the new name is active (or included) as the
    old one was, never included from our own old script, and the old one is gone. A run
    killed after the new PUTSCRIPT leaves the old one in place: the next pass switches."""
    if mine is not None:
        dovecot.put_sieve(mail_user.login, "mine", mine)
    old = session(dovecot, mail_user, tmp_path)
    ref = old.put(old.ensure_container(RULES), script(AWAY))
    renamed = session(dovecot, mail_user, tmp_path, script_name="m365")
    changed = script(AWAY.replace("Monday", "Tuesday"))
    if killed:
        dovecot.put_sieve(mail_user.login, "m365", AWAY.replace("Monday", "Tuesday"), active=False)
        assert renamed.find("m365", changed, frozenset()) is None
        assert renamed.ensure_container(RULES) == "m365"  # the switch, done by the next pass
        if mine is None:  # one SETACTIVE: the old one inactive, never edited
            assert dovecot.sieve_scripts(mail_user.login) == {"outlook-rules": False, "m365": True}
            assert dovecot.sieve_script(mail_user.login, "outlook-rules") == AWAY
        else:  # one edit of the user's script: never both included (two vacations)
            theirs = dovecot.sieve_script(mail_user.login, "mine")
            assert include_line("m365") in theirs and "outlook-rules" not in theirs
    written = renamed.update(ref, changed)
    assert renamed.find("m365", changed, frozenset()) == written
    if mine is None:
        assert dovecot.sieve_scripts(mail_user.login) == {"m365": True}
    else:
        assert dovecot.sieve_scripts(mail_user.login) == {"mine": True, "m365": False}
        theirs = dovecot.sieve_script(mail_user.login, "mine")
        assert theirs.count(include_line("m365")) == 1
        assert "outlook-rules" not in theirs


def test_a_script_the_server_refuses_is_reported_and_not_stored(
    dovecot: DovecotServer, mail_user: MailUser, tmp_path: Path
) -> None:
    sieve = session(dovecot, mail_user, tmp_path)
    bad = script('require ["fileinto"];\nif header :contains "subject" "x" { fileinto; }\n')
    with pytest.raises(Refused, match=f"{mail_user.login}.*CHECKSCRIPT.*fileinto") as refused:
        sieve.put("outlook-rules", bad)
    assert "line 2" in str(refused.value)  # Pigeonhole's own text, with its line
    assert dovecot.sieve_scripts(mail_user.login) == {}


@pytest.mark.parametrize("form", ["separator", "authzid"])
def test_a_master_user_logs_in_for_the_user(
    dovecot: DovecotServer, mail_user: MailUser, tmp_path: Path, form: str
) -> None:
    settings = master_settings(dovecot, tmp_path, dovecot.master_password, master_login=form)
    secret = settings.master_password_file
    assert secret is not None
    sieve = ManageSieveTarget(settings).open(Owner(upn=mail_user.login, source_id="x"))
    sieve.put("outlook-rules", script(OURS))
    assert dovecot.sieve_scripts(mail_user.login) == {"outlook-rules": True}
    secret.write_text("wrong\n", encoding="utf-8")
    with pytest.raises(FatalError, match="targets.rules.master_user"):
        ManageSieveTarget(settings).open(Owner(upn=mail_user.login, source_id="x"))


def test_logins_refused_or_impossible_name_what_to_fix(
    dovecot: DovecotServer, mail_user: MailUser, tmp_path: Path
) -> None:
    wrong = MailUser(mail_user.login, "not-the-password")
    with pytest.raises(OwnerFailed, match=f"{mail_user.login}.*targets.rules.password_file"):
        session(dovecot, wrong, tmp_path)
    starttls = target(dovecot, mail_user, tmp_path, security="starttls")
    with pytest.raises(FatalError, match="no STARTTLS"):
        starttls.open(Owner(upn=mail_user.login, source_id="x"))
    nobody = ManageSieveTarget(
        ManageSieveSettings(
            host="127.0.0.1",
            port=free_port(),
            security="plain",
            password_file=tmp_path / "passwords",
        )
    )
    with pytest.raises(Unreachable, match="cannot be reached"):
        nobody.open(Owner(upn=mail_user.login, source_id="x"))
    assert "cannot be reached" in nobody.check()[0]


def test_extensions_and_doctor(dovecot: DovecotServer, mail_user: MailUser, tmp_path: Path) -> None:
    sieve = target(dovecot, mail_user, tmp_path)
    extensions = sieve.server_extensions()
    assert extensions is not None
    assert {"fileinto", "imap4flags", "vacation", "date", "include", "body"} <= extensions
    assert sieve.check() == []
    settings = master_settings(dovecot, tmp_path, "wrong")
    [finding] = ManageSieveTarget(settings).check()
    assert "targets.rules.probe_login" in finding
    probing = dataclasses.replace(settings, probe_login=mail_user.login)
    [refused] = ManageSieveTarget(probing).check()
    assert "login refused" in refused and "targets.rules.master_user" in refused
