"""Real servers for tests (being split into one module per server)."""

from hirondelle.tests.servers.dovecot import *  # noqa: F403
from hirondelle.tests.servers.dovecot import _poll, _port_open  # noqa: F401
