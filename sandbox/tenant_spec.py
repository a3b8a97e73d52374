"""What a sandbox tenant is made of (`TenantSpec`) and how `demo` and the tests change it
(`Mutation`, answered by a `MutationResult`). `tenant` re-exports them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TenantSpec:
    seed: int = 7
    users: int = 3
    messages: int = 200  # per user, spread over the folders
    large_messages: int = 2  # messages with a big attachment, tenant-wide
    large_attachment_bytes: int = 40 * 1024 * 1024
    domain: str = "contoso.test"
    files_per_drive: int = 40  # regular files per drive, besides the seeded showcase
    large_file_bytes: int = 3 << 30  # one file of this size in the first OneDrive; 0: none
    events_per_user: int = 21  # singles and series masters over two calendars
    contacts_per_user: int = 10  # over two contact folders
    teams: int = 2  # Teams (sandbox/teams_data.py), each with four channels
    posts_per_channel: int = 30  # root posts per channel, over the 14 months before "now"
    replies_per_post: int = 4  # each post gets 0 to this many replies
    big_thread: bool = False  # one post of 1,200 replies (reply paging past 1,000)
    big_chat: bool = False  # one chat of 10,000 messages, written when first read


@dataclass(frozen=True)
class Mutation:
    seed: int = 1
    new: int = 0  # new messages delivered to inboxes
    flag_changes: int = 0  # read / flag / category changes
    moves: int = 0  # moves between folders of the same mailbox
    deletions: int = 0  # hard deletions
    user: str | None = None  # restrict to one user (id or UPN)
    file_creates: int = 0  # drive items (sandbox/drive_data.py): new files
    file_changes: int = 0  # new content (the old one becomes a version)
    file_renames: int = 0
    file_moves: int = 0  # to another folder of the same drive
    folder_renames: int = 0
    file_deletions: int = 0
    folder_deletions: int = 0  # the folder and everything below it
    drive: str | None = None  # restrict drive changes to one drive id (`user`: their OneDrive)
    event_changes: int = 0  # a single's subject/time/body, or one occurrence of a series
    event_cancellations: int = 0  # one occurrence of a series deleted
    event_deletions: int = 0  # singles or whole series deleted
    new_events: int = 0  # singles added to default calendars
    contact_changes: int = 0
    contact_deletions: int = 0
    new_contacts: int = 0  # added to default contact folders
    chat_posts: int = 0  # new root posts in random channels (sandbox/teams_data.py)
    chat_replies: int = 0  # new replies to existing posts
    chat_thread: str | None = None  # restrict new replies to this root post (its id)
    chat_edits: int = 0  # posts or replies edited
    chat_deletions: int = 0  # posts or replies deleted (soft: deletedDateTime set)
    chats_messages: int = 0  # new messages in random chats (sandbox/chats_data.py)
    chats_edits: int = 0  # chat messages edited
    chats_deletions: int = 0  # chat messages deleted (soft: deletedDateTime set)
    rule_changes: int = 0  # inbox rules or automatic replies changed (sandbox/rules_seed.py)
    chat_id: str | None = None  # restrict chat changes to this chat


@dataclass
class MutationResult:
    new: list[str]
    changed: list[str]
    moved: list[str]
    deleted: list[str]
    files: list[str] = field(default_factory=list)  # every drive item id the next delta reports
    files_by_change: dict[str, list[str]] = field(default_factory=dict)  # per Mutation field
    events: list[str] = field(default_factory=list)  # singles/masters touched (calendar_data)
    contacts: list[str] = field(default_factory=list)  # contacts touched
    messages: list[str] = field(default_factory=list)  # chat source ids: root, or "root/reply"
    chat_messages: list[str] = field(default_factory=list)  # chats' message ids touched
    rules: list[str] = field(default_factory=list)  # users whose rules or replies changed
