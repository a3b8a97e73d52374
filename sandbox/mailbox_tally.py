"""A mailbox's visible messages and bytes, counted as its folders and messages are added.

The one place that says what counts: a message in a folder that is neither hidden nor
under a hidden folder (folders come before their children and their messages), as the
folders' totalItemCount and size add up. The tenant counts its stored mailboxes with it,
and the generator stands it in for the tenant to count a mailbox without storing it.
"""

from __future__ import annotations

from .tenant_records import SandboxFolder, SandboxMessage, SandboxUser


class MailboxTally:
    """Counts what `add_folder` and `add_message` receive; the tenant's writes, stored nowhere."""

    def __init__(self) -> None:
        self.items = self.bytes = 0
        self._hidden: set[str] = set()

    def add_user(self, user: SandboxUser, root_id: str) -> None:
        return None

    def add_folder(self, folder: SandboxFolder) -> None:
        if folder.hidden or folder.parent_id in self._hidden:
            self._hidden.add(folder.id)

    def add_message(self, message: SandboxMessage, source: object) -> SandboxMessage:
        if message.folder_id not in self._hidden:
            self.items += 1
            self.bytes += message.size
        return message
