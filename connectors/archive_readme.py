"""The README.txt every archive root holds: its layout, the characters changed in names, and
how to import each part elsewhere. One text for every kind of archive, so that targets
sharing a root write the same file."""

from __future__ import annotations

README_NAME = "README.txt"

README = """\
Microsoft 365 archive written by Hirondelle
===========================================

Everything here is in standard formats, readable without Hirondelle. The archive is a
BagIt bag (RFC 8493): the archived files are under data/, which holds one folder per user
(the target login, else the Microsoft 365 address), per SharePoint site ("site:<name>")
or per team. The paths below are inside data/.

Checking the archive
--------------------
  bagit.txt               the BagIt version of this folder
  bag-info.txt            when it was written (Bagging-Date), by what, from which tenant,
                          and its size ("Payload-Oxum": bytes.files)
  manifest-sha256.txt     the SHA-256 of every file under data/
  tagmanifest-sha256.txt  the SHA-256 of the four files above and of this README
Any BagIt tool checks that every file is there, nothing was added, and nothing changed,
for example the Library of Congress's (pip install bagit):
  bagit.py --validate DIR           (DIR: this folder; --fast compares counts and sizes only)
The manifests are written when a run, sync or retry-failed ends. While one is writing,
and after one was interrupted or failed, manifest-sha256.txt is absent and validators
call the bag incomplete: run the same command again to finish it. A file whose name
holds "%" is listed with the "%" as it is, as every BagIt tool in use reads it.
Files whose names start with ".hirondelle-" beside data/ are Hirondelle's own (a lock,
and a cache of the hashes so that a sync reads only what changed); they are not part of
the archive and can be deleted when no run is going on.

Mail
----
  <login>/Maildir/                  Maildir++ (cur/ new/ tmp/), as Dovecot writes it:
  <login>/Maildir/.INBOX.Projets/   the folder "Projets" inside the inbox ("." between levels,
                                    names in modified UTF-7); Sent, Drafts, Trash, Junk and
                                    Archive keep these English names.
  <login>/mbox/INBOX.mbox           the same folders as mbox files (mboxrd), one per folder,
  <login>/mbox/INBOX/Projets.mbox   oldest message first; flags in the Status:, X-Status:
                                    and X-Keywords: headers.
A message file's name ends with its flags: S seen, R answered, F flagged, D draft,
T deleted, P forwarded, then one lower-case letter per keyword listed in the folder's
"dovecot-keywords" file. A file's modification time is the message's received date.

Characters changed in folder names. A mail folder name may not contain the characters
that separate levels or that IMAP servers refuse; each is replaced by a look-alike, so the
name reads the same:
  "/"  becomes "\u2215" (U+2215 DIVISION SLASH)      "Projets/2024" stays one level
  "."  becomes "\u2024" (U+2024 ONE DOT LEADER)
  "*"  becomes "\u2217" (U+2217 ASTERISK OPERATOR)
  "%"  becomes "\uff05" (U+FF05 FULLWIDTH PERCENT SIGN)
  a leading "~" becomes "\uff5e" (U+FF5E FULLWIDTH TILDE); an empty name becomes "Unnamed".
A name too long for the server is cut and ends with a short digest of the full name.

Import:
  Dovecot (and suites built on it):  doveadm import -u USER maildir:PATH/<login>/Maildir "" all
  Thunderbird:  ImportExportTools NG, "Import mbox file", one .mbox per folder.
  La Suite Messages:  its mbox import, one .mbox per folder.
  Nextcloud Mail:  a client of an IMAP server: import into that server as above.

Inbox rules and automatic replies
---------------------------------
  <login>/outlook-rules.sieve       the user's Outlook inbox rules and automatic replies as
                                    one Sieve script (RFC 5228), beside the Maildir; what
                                    Sieve cannot express is kept there as comments.
                                    Folders are named as IMAP shows them with "/"
                                    between levels ("INBOX/Factures"); on a server
                                    whose separator is "." replace it in the
                                    fileinto lines before loading the script.
Import:
  Dovecot (Pigeonhole):
    doveadm sieve put -a -u USER outlook-rules < PATH/<login>/outlook-rules.sieve
  Any ManageSieve server (Cyrus, Stalwart...):  upload it with a ManageSieve client
  (sieve-connect, Thunderbird's Sieve add-on) and make it active.

Calendars and contacts
----------------------
  <login>/calendars/<calendar>.ics          the whole calendar (iCalendar, RFC 5545)
  <login>/calendars/<calendar>/<id>.ics     one event (a series with its exceptions) per file
  <login>/contacts/<address book>.vcf       the whole address book (vCard)
  <login>/contacts/<address book>/<id>.vcf  one contact per file
Import the whole-collection files: Nextcloud Calendar ("Import calendar") and Contacts
("Import contacts"); Thunderbird ("Events and Tasks > Import", address book "Import");
any CalDAV/CardDAV server by uploading the one-item files with a client.

Files (OneDrive and SharePoint libraries)
-----------------------------------------
  <login>/OneDrive/...                 a user's OneDrive, as a folder tree
  site:<name>/<site>/<library>/...     a SharePoint document library
Modification times are the files' own. A name a disk cannot hold (over 255 bytes, a "/")
is changed and ends with "~" and a ten-character digest of the original path; two names
that would be the same on disk are both kept, each later one under such a twin name.
Import: Nextcloud: upload with its desktop client, rclone, or WebDAV; or copy into the
user's data folder and run "occ files:scan --path=USER/files".

Teams channels
--------------
  <team>/<channel>/events.jsonl     one Matrix event per line (JSON), in order
  <team>/<channel>/transcript.html  the channel as a readable page: threads, reactions
  <team>/<channel>/media/           inline images, named by their SHA-256
events.jsonl holds each message's author, time and content as Matrix events, for a later
import into a Matrix room (Tchap, Element, Twake Chat) through an application service.
"""
