"""One owner's ManageSieve session: the migrated script checked, stored, activated (or
included from the user's own active script), found again, listed and removed.

The script is the owner's one item: its name is the folder and the ref (`script_name`).
`find` answers only for a script that is whole and in place (same SHA-256, and active or
included as `when_active` says), so that a run killed between PUTSCRIPT and SETACTIVE (or
the include) writes and activates it again on resume: nothing doubled, nothing lost.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Set
from typing import TYPE_CHECKING

from ..mappings.sieve import is_migrated
from ..migrator.errors import FatalError, HirondelleError, OwnerFailed, Refused, Retriable, SkipItem
from ..migrator.model import Container, Entry, Payload, TargetRef
from .credentials import Login
from .managesieve_include import includes, obstacles, with_include, without_include
from .managesieve_settings import authenticate, dial, lost
from .managesieve_wire import ProtocolError, Response, Token, Wire, script_list

if TYPE_CHECKING:
    from .managesieve import ManageSieveTarget

log = logging.getLogger(__name__)

NOT_IN_PLACE = "not active nor included: "  # a listing's fingerprint, see `listing`


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ManageSieveSession:
    """One owner's ManageSieve connection (`TargetSession`); reconnects after a drop."""

    def __init__(self, target: ManageSieveTarget, login: Login) -> None:
        self._target = target
        self._settings = target.settings
        self._login = login
        self._wire: Wire | None = None

    # -- connection ---------------------------------------------------------------------------

    def connect(self) -> None:
        """Connect and log in now (otherwise the first operation does)."""
        self._client()

    def _client(self) -> Wire:
        if self._wire is None:
            wire, capabilities = dial(self._settings)
            try:
                authenticate(self._settings, wire, capabilities, self._login)
            except BaseException:
                wire.close()
                raise
            self._target.learned(capabilities)
            self._wire = wire
        return self._wire

    def close(self) -> None:
        wire, self._wire = self._wire, None
        if wire is None:
            return
        try:
            wire.command("LOGOUT")
        except (OSError, ProtocolError):
            pass
        finally:
            wire.close()

    def _drop(self) -> None:
        wire, self._wire = self._wire, None
        if wire is not None:
            wire.close()

    def _run(
        self, operation: str, name: str, *arguments: str | bytes
    ) -> tuple[list[list[Token]], Response]:
        """One command; a dropped connection or a BYE is `Retriable` (sent again whole)."""
        wire = self._client()
        try:
            lines, response = wire.command(name, *arguments)
        except (OSError, ProtocolError) as error:
            self._drop()
            raise lost(self._settings, operation, error) from error
        if response.status == "BYE" or response.has("TRYLATER"):
            self._drop()
            raise Retriable(
                f"{self._settings.where}: {operation} for {self._login.login} failed for now: "
                f"{response.describe()}"
            )
        return lines, response

    def _refusal(self, operation: str, response: Response) -> HirondelleError:
        """The engine error for a NO the table below does not handle itself."""
        owner = self._login.login
        if response.has("QUOTA/MAXSIZE"):
            return self._too_large(operation, response)
        if response.has("QUOTA"):
            return OwnerFailed(
                f"the Sieve scripts of {owner} are over the server's quota "
                f"({response.describe()}): raise the user's Sieve quota, then resume the run"
            )
        return FatalError(f"ManageSieve {operation} for {owner} failed: {response.describe()}")

    # -- commands -----------------------------------------------------------------------------

    def scripts(self) -> dict[str, bool]:
        """The owner's scripts: name -> active (LISTSCRIPTS)."""
        lines, response = self._run("LISTSCRIPTS", "LISTSCRIPTS")
        if not response.ok:
            raise self._refusal("LISTSCRIPTS", response)
        return script_list(lines)

    def script(self, name: str) -> bytes | None:
        """The bytes of one script (GETSCRIPT); None if there is none by that name."""
        lines, response = self._run("GETSCRIPT", "GETSCRIPT", name)
        if response.has("NONEXISTENT"):
            return None
        if not response.ok:
            raise self._refusal(f"GETSCRIPT {name!r}", response)
        data = lines[0][0] if lines and lines[0] else b""
        if not isinstance(data, bytes):
            raise FatalError(f"GETSCRIPT {name!r} of {self._login.login}: no script in the answer")
        return data

    def _store(self, name: str, content: bytes, what: str) -> None:
        """PUTSCRIPT; a script the server does not accept is `Refused` with its text."""
        _, response = self._run("PUTSCRIPT", "PUTSCRIPT", name, content)
        if response.ok:
            return
        if response.has("QUOTA/MAXSIZE"):
            raise self._too_large(f"PUTSCRIPT {name!r}", response)
        if response.code in ("", "WARNINGS"):
            raise Refused(
                f"the {self._settings.where} refused {what} of {self._login.login} "
                f"(PUTSCRIPT {name!r}): {response.describe()}"
            )
        raise self._refusal(f"PUTSCRIPT {name!r}", response)

    def _too_large(self, operation: str, response: Response) -> Refused:
        """A script over the server's size limit (RFC 5804 section 1.3, QUOTA/MAXSIZE):
        nothing was replaced, so what ran before still runs."""
        name = self._settings.script_name
        return Refused(
            f"the Sieve script of {self._login.login} is larger than the {self._settings.where} "
            f"accepts ({operation}: {response.describe()}); the version of {name!r} written "
            "before, if any, is still the one in place. Raise the server's limit (Pigeonhole: "
            "sieve_max_script_size) or shorten the user's rules or automatic reply in Outlook, "
            "then run `retry-failed`"
        )

    def _set_active(self, name: str) -> None:
        _, response = self._run("SETACTIVE", "SETACTIVE", name)
        if not response.ok:
            raise self._refusal(f"SETACTIVE {name!r}", response)

    # -- the target session -------------------------------------------------------------------

    def ensure_container(self, container: Container) -> str:
        """The script's name: the one place of the owner's rules. Every pass puts a stored
        script back in place when it is not (an include removed by hand, a script made
        inactive, `when_active` changed from "leave" to "include"): the engine reads the
        target only for changed items, and this costs one LISTSCRIPTS (and a GETSCRIPT of
        the user's own active script)."""
        name = self._settings.script_name
        scripts = self.scripts()
        if name not in scripts:
            return name
        theirs = self._users_script(scripts, name)  # no read when ours is the active one
        if not self._in_place(name, scripts, theirs):
            stored = self.script(name)
            if stored is not None:
                self._check_include(theirs, name, stored)
                self._activate(name, scripts, theirs)
                log.info("%s: Sieve script %r put back in place", self._login.login, name)
        return name

    def put(self, folder: str, payload: Payload) -> TargetRef:
        """CHECKSCRIPT, PUTSCRIPT, then activate (or include, or leave: `when_active`)."""
        return self._write(folder, payload, frozenset())

    def _write(self, folder: str, payload: Payload, replacing: Set[str]) -> TargetRef:
        """`put`, taking the place of the scripts of ours named in `replacing`."""
        _, checked = self._run("CHECKSCRIPT", "CHECKSCRIPT", payload.content)
        if checked.has("QUOTA/MAXSIZE"):
            raise self._too_large("CHECKSCRIPT", checked)
        if not checked.ok:  # the script itself: a failure of this owner, with the line
            raise Refused(
                f"the {self._settings.where} refused the Sieve script of {self._login.login} "
                f"(CHECKSCRIPT): {checked.describe()}"
            )
        if checked.has("WARNINGS"):
            log.warning("Sieve script of %s: %s", self._login.login, checked.describe())
        scripts = self.scripts()
        theirs = self._users_script(scripts, folder, replacing)
        self._check_include(theirs, folder, payload.content)
        self._store(folder, payload.content, "the Sieve script")
        self._activate(folder, scripts, theirs, replacing)
        return TargetRef(folder, folder, stored_size=len(payload.content))

    def _users_script(
        self, scripts: dict[str, bool], name: str, replacing: Set[str] = frozenset()
    ) -> tuple[str, str] | None:
        """The user's own active script (name, text); None when no script is active or the
        active one is ours: `name`, one `update` is replacing (an earlier `script_name`),
        or one such script a run killed in the middle of that update left active (the
        mapping's first line, `mappings.sieve.HEADER`, tells it). Never taken for the
        user's, ours is neither included from nor edited: it is replaced as the active
        script (SETACTIVE switches the active script in one command, RFC 5804 section 2.8)."""
        active = next((script for script, on in scripts.items() if on), None)
        if active is None or active == name or active in replacing:
            return None
        data = self.script(active) or b""
        if is_migrated(data):
            return None
        if self._settings.when_active == "leave":  # left alone: its text is never edited
            return active, data.decode("utf-8", "replace")
        return active, self._decoded(active, data)

    def _check_include(self, theirs: tuple[str, str] | None, name: str, ours: bytes) -> None:
        """Refuse, before anything is stored, an include the user's active script would
        defeat (`managesieve_include.obstacles`): the owner's item fails with what to do."""
        if theirs is None or self._settings.when_active != "include":
            return
        active, text = theirs
        if includes(text, name):
            text = without_include(text, name)
        found = obstacles(text, ours.decode("utf-8", "replace"))
        if found:
            raise Refused(
                f"{self._login.login}: the Sieve script {name!r} cannot be included from the "
                f"user's active script {active!r}: {'; '.join(found)}. Remove that from "
                f"{active!r} (or let the user do it), or set "
                f'{self._settings.setting("when_active")} = "leave" to store {name!r} '
                "inactive, then run `retry-failed`"
            )

    def _activate(
        self,
        name: str,
        scripts: dict[str, bool],
        theirs: tuple[str, str] | None,
        replacing: Set[str] = frozenset(),
    ) -> None:
        """Make `name` run on delivery as `when_active` says. Where it takes the place of a
        script of ours (`replacing`, or one the mapping wrote, see `_users_script`), the
        switch is one command, so that the rules never run twice nor not at all: SETACTIVE
        when ours was the active script, one PUTSCRIPT of the user's script swapping the
        include lines when it was included. The old script is deleted after (`update`)."""
        if theirs is None:
            if not scripts.get(name, False):
                self._set_active(name)
            return
        active, text = theirs
        if self._settings.when_active == "leave":
            log.warning(
                "%s: Sieve script %r stored but left inactive: the user's script %r is active "
                '(%s = "leave")',
                self._login.login,
                name,
                active,
                self._settings.setting("when_active"),
            )
            return
        earlier = [
            script
            for script in scripts
            if script != name
            and includes(text, script)
            and (script in replacing or is_migrated(self.script(script) or b""))
        ]
        if earlier or not includes(text, name):
            for script in earlier:
                text = without_include(text, script)
            if not includes(text, name):
                text = with_include(text, name)
            self._store(active, text.encode("utf-8"), "the include edit")
            log.info(
                "%s: Sieve script %r included from the active %r%s",
                self._login.login,
                name,
                active,
                f" in place of {', '.join(map(repr, earlier))}" if earlier else "",
            )

    def _active_text(self, active: str) -> str:
        return self._decoded(active, self.script(active) or b"")

    def _decoded(self, active: str, data: bytes) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(
                f"the active Sieve script {active!r} of {self._login.login} is not UTF-8: "
                f"it cannot include {self._settings.script_name!r}; set "
                f'{self._settings.setting("when_active")} = "leave"'
            ) from None

    def _in_place(
        self, name: str, scripts: dict[str, bool], theirs: tuple[str, str] | None
    ) -> bool:
        """The script runs on delivery, or is left inactive as `when_active` says (when
        the active script is the user's own, `theirs`, as `_users_script` gives it: one of
        ours active is to be replaced)."""
        if scripts.get(name, False):
            return True
        if theirs is None:
            return False
        if self._settings.when_active == "leave":
            return True
        return includes(theirs[1], name)

    def find(self, folder: str, payload: Payload, exclude: Set[str]) -> TargetRef | None:
        """The script, if it holds exactly the payload's bytes and is in place."""
        if folder in exclude:
            return None
        scripts = self.scripts()
        if folder not in scripts:
            return None
        stored = self.script(folder)
        if stored is None or stored != payload.content:
            return None
        if not self._in_place(folder, scripts, self._users_script(scripts, folder)):
            return None
        return TargetRef(folder, folder, stored_size=len(stored))

    def update(self, ref: TargetRef, payload: Payload) -> TargetRef:
        """The rules (or `script_name`, `when_active`) changed: the script is written again
        (PUTSCRIPT replaces it at once), under the name the settings give now. One written
        under an earlier name is ours, never the user's: the new one takes its place in
        one command (`_activate`), then the old one is deleted. A run killed between the
        steps leaves both stored, the old one still in place: the next pass (whose
        `ensure_container` and `find` know it by its first line) makes the same switch,
        then this update deletes it; the user's rules run all along."""
        name = self._settings.script_name
        earlier = frozenset({ref.ref} - {name})
        written = self._write(name, payload, earlier)
        if earlier:
            self.remove(ref)
        return written

    def move(self, ref: TargetRef, folder: str) -> TargetRef:
        raise SkipItem("a Sieve script has one place per user: it does not move")

    def remove(self, ref: TargetRef) -> None:
        """Deactivate (or take the include out of the active script), then DELETESCRIPT;
        nothing to do when it is already gone."""
        scripts = self.scripts()
        if ref.ref not in scripts:
            return
        active = next((script for script, on in scripts.items() if on), None)
        if active == ref.ref:
            self._set_active("")  # RFC 5804 section 2.8: the empty name deactivates
        elif active is not None:
            text = self._active_text(active)
            if includes(text, ref.ref):
                self._store(active, without_include(text, ref.ref).encode("utf-8"), "the edit")
        _, response = self._run("DELETESCRIPT", "DELETESCRIPT", ref.ref)
        if not response.ok and not response.has("NONEXISTENT"):
            raise self._refusal(f"DELETESCRIPT {ref.ref!r}", response)

    def listing(self, folder: str) -> list[Entry]:
        """The script with the SHA-256 and size of its bytes as the server holds them; a
        script stored but not in place (neither active nor included as `when_active`
        says) has `NOT_IN_PLACE` before its digest, so that `verify` reports it."""
        scripts = self.scripts()
        stored = self.script(folder) if folder in scripts else None
        if stored is None:
            return []
        fingerprint = sha256(stored)
        if not self._in_place(folder, scripts, self._users_script(scripts, folder)):
            fingerprint = NOT_IN_PLACE + fingerprint
        ref = TargetRef(folder, folder, stored_size=len(stored))
        return [Entry(ref, fingerprint, len(stored))]
