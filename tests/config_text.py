"""The smallest configuration the command line takes, as the TOML an operator writes: a
source whose secret is never set and a mail archive target. Tests add tables to it."""

MINIMAL_CONFIG = """
[source]
tenant_id = "t"
client_id = "c"
client_secret_env = "HIRONDELLE_TEST_NEVER_SET"

[targets.mail]
kind = "archive"
path = "archive"
"""
