"""The ManageSieve wire format (RFC 5804), read from a socket pair: literals inside lines,
quoted strings with escapes, response codes, and the arguments a client sends; and the
edit that includes the migrated script from a user's own."""

from __future__ import annotations

import socket

import pytest

from hirondelle.connectors.managesieve_session import includes, with_include, without_include
from hirondelle.connectors.managesieve_wire import (
    ProtocolError,
    Wire,
    capabilities_of,
    encode,
    script_list,
)


def wire_reading(data: bytes) -> Wire:
    ours, theirs = socket.socketpair()
    theirs.sendall(data)
    theirs.close()
    return Wire(ours)


def test_literals_quoted_strings_and_codes() -> None:
    wire = wire_reading(
        b'"IMPLEMENTATION" "Dovecot"\r\n"SIEVE" "fileinto vacation"\r\n"STARTTLS"\r\nOK\r\n'
        b'"a \\"b\\" \\\\c" ACTIVE\r\n{6}\r\nd\r\ne f\r\nOK "listed"\r\n'
        b"{7}\r\nkeep;\r\n\r\nOK\r\n"
        b'NO (QUOTA/MAXSIZE) "too big"\r\n'
        b"NO (TAG {3}\r\nx y) {9}\r\nline 1\r\n2\r\n"
        b"BYE\r\n"
    )
    lines, greeting = wire.read_response()
    assert greeting.ok and capabilities_of(lines) == {
        "IMPLEMENTATION": "Dovecot",
        "SIEVE": "fileinto vacation",
        "STARTTLS": "",
    }
    lines, listed = wire.read_response()
    assert script_list(lines) == {'a "b" \\c': True, "d\r\ne f": False}
    assert listed.text == "listed"
    lines, got = wire.read_response()
    assert lines == [[b"keep;\r\n"]] and got.ok
    _, quota = wire.read_response()
    assert quota.has("QUOTA") and quota.has("QUOTA/MAXSIZE") and not quota.has("QUOTA/MAX")
    assert quota.describe() == "NO (QUOTA/MAXSIZE) too big"
    _, tagged = wire.read_response()
    assert (tagged.code, tagged.code_args, tagged.text) == ("TAG", ("x y",), "line 1\r\n2")
    _, bye = wire.read_response()
    assert bye.status == "BYE" and not bye.ok
    with pytest.raises(ProtocolError, match="closed"):
        wire.read_response()


def test_arguments_are_quoted_or_literal() -> None:
    assert encode('say "hi" \\ é') == '"say \\"hi\\" \\\\ é"'.encode()
    assert encode("two\r\nlines") == b"{10+}\r\ntwo\r\nlines"
    assert encode(b"") == b"{0+}\r\n"
    assert encode("x" * 1025).startswith(b"{1025+}\r\n")


def test_the_include_edit_keeps_the_script_and_its_line_ends() -> None:
    crlf = 'require "fileinto";\r\nfileinto "Junk";'
    edited = with_include(crlf, 'a "b"')
    assert edited == (
        'require "include";\r\nrequire "fileinto";\r\nfileinto "Junk";\r\n'
        'include :personal :optional "a \\"b\\"";\r\n'
    )
    assert includes(edited, 'a "b"') and not includes(edited, "a")
    assert without_include(edited, 'a "b"') == 'require "include";\r\n' + crlf + "\r\n"
    assert with_include("", "x") == 'require "include";\ninclude :personal :optional "x";\n'
