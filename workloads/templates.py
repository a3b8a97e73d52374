"""The tables `hirondelle init` writes for each target, in the order it writes them
(`migrator.templates` joins them under its header); `{server_name}` is the Matrix
server name given to `init`."""

MAIL = """\
[targets.mail]
kind = "imap"                                  # or "archive" (Maildir + mbox files)
host = "imap.example.org"
port = 993
security = "tls"                               # "tls", "starttls", or "plain" (loopback only)
# ca_file = ""                                 # the server's CA if not a public one
# Either one password per user (lines login:password, file readable by you only) ...
password_file = "imap-passwords.txt"
# ... or a master user (Dovecot's user*master login):
# master_user = "admin"
# master_password_env = "HIRONDELLE_IMAP_MASTER_PASSWORD"
# master_login = "authzid"                     # Cyrus admins/proxyservers: SASL PLAIN authzid
"""

MAIL_ARCHIVE = """\
# [targets.mail]
# kind = "archive"
# path = "archive"
"""

CALENDAR = """\
# [targets.calendar]
# kind = "caldav"                              # or "archive": one .ics per calendar
# url = "https://dav.example.org/"
# password_file = "dav-passwords.txt"
"""

CONTACTS = """\
# [targets.contacts]
# kind = "carddav"                             # or "archive": one .vcf per address book
# url = "https://dav.example.org/"
# password_file = "dav-passwords.txt"
# vcard_version = "3.0"                        # overrides what the server lists
"""

FILES = """\
# [targets.files]
# kind = "webdav"                              # or "archive": the tree with mtimes
# url = "https://cloud.example.org/remote.php/dav/files/{login}/"
# profile = "nextcloud"                        # "generic", "nextcloud" or "twake-drive"
# password_file = "webdav-passwords.txt"
# site_login = "migration"                     # who receives SharePoint sites' libraries
"""

CHAT = """\
# [targets.chat]
# kind = "matrix"                              # or "archive": JSON lines + HTML transcript
# mode = "appservice"                          # "bot" where no application service is allowed
# homeserver = "https://matrix.example.org"
# server_name = "{server_name}"
# as_token_file = "matrix-as-token"            # written by init, with matrix-appservice.yaml
# access_token_env = "HIRONDELLE_MATRIX_TOKEN" # bot mode
"""

RULES = """\
# [targets.rules]
# kind = "managesieve"                         # or "archive": one .sieve beside each Maildir
# host = "imap.example.org"
# port = 4190
# security = "starttls"                        # "starttls", "tls", or "plain" (loopback only)
# password_file = "imap-passwords.txt"         # the logins of [targets.mail] (or master_user)
# when_active = "include"                      # a user's own active script includes ours
# external_forwarding = false                  # true: carry forwards outside the tenant
"""

CHATS = """\
# [targets.chats]
# kind = "matrix"                              # or "archive": JSON lines + HTML transcript
# mode = "appservice"                          # the settings of [targets.chat]
# homeserver = "https://matrix.example.org"
# server_name = "{server_name}"
# as_token_file = "matrix-as-token"
"""
