"""The Teams HTML sanitizer: hostile constructs never survive, the Matrix subset does.

The property tests mix random harmless markup with hostile constructs (script, iframe,
event handlers, `javascript:` URLs in many spellings, foreign image sources) and check the
output's structure, parsed back as a browser would read it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hirondelle.mappings.chat import ChatContext, map_chat_message
from hirondelle.mappings.chat_html import (
    MATRIX_ATTRIBUTES,
    MATRIX_TAGS,
    Rewrites,
    html_to_text,
    sanitize,
    split_html,
    teams_to_matrix,
)
from hirondelle.migrator.model import Item

HOSTILE = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</script>",
    '<iframe src="https://evil.example/"></iframe>',
    "<iframe srcdoc='<script>alert(1)</script>'>",
    '<img src="https://evil.example/x.png" onerror="alert(1)">',
    "<IMG SRC=javascript:alert('x')>",
    '<img src="data:image/png;base64,AAAA">',
    "<img src=x onerror=alert(1)//",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<a href="java&#x09;script:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="data:text/html,<script>alert(1)</script>">x</a>',
    '<a href="/relative/path">x</a>',
    '<p onclick="alert(1)" onmouseover=alert(2)>x</p>',
    "<svg onload=alert(1)><circle/></svg>",
    "<math><mi xlink:href='javascript:alert(1)'>x</mi></math>",
    "<style>*{display:none}</style>",
    '<span style="background:url(javascript:alert(1))">x</span>',
    '<object data="https://evil.example/x.swf"></object>',
    '<embed src="https://evil.example/x.swf">',
    '<form action="https://evil.example/"><input name=a></form>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="https://evil.example/">',
    "<!--<script>alert(1)</script>-->",
    '<at id="0" onclick=alert(1)>Jane</at>',
    "<emoji id=x alt='<script>alert(1)</script>'></emoji>",
    "<codeblock class='\" onload=alert(1)'><code>x</code></codeblock>",
    '<attachment id="x"><script>alert(1)</script></attachment>',
]
HARMLESS = [
    "<p>Bonjour</p>",
    "<b>gras</b>",
    "<ul><li>un</li><li>deux</li></ul>",
    '<a href="https://example.org/a?b=1&amp;c=2">lien</a>',
    "<br>",
    "<div><span>texte</span></div>",
    "<table><tr><td>1</td></tr></table>",
    "&lt;pas une balise&gt;",
    "héhé 🎉",
]
fragments = st.one_of(
    st.sampled_from(HOSTILE),
    st.sampled_from(HARMLESS),
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20),
)
documents = st.lists(fragments, min_size=1, max_size=12).map("".join)
SCHEMES = ("https:", "http:", "ftp:", "mailto:", "magnet:")


class Parsed(HTMLParser):
    """The tags and attributes of the output, read the way a browser would."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {name: value or "" for name, value in attrs}))


def parse(markup: str) -> list[tuple[str, dict[str, str]]]:
    parser = Parsed()
    parser.feed(markup)
    parser.close()
    return parser.elements


def assert_safe(markup: str) -> None:
    for tag, attributes in parse(markup):
        assert tag in MATRIX_TAGS, tag
        assert set(attributes) <= MATRIX_ATTRIBUTES.get(tag, set()), (tag, attributes)
        if "href" in attributes:
            href = re.sub(r"[\x00-\x20]", "", attributes["href"]).lower()
            assert href.startswith(SCHEMES), href
        if tag == "img":
            assert attributes.get("src", "").startswith("mxc://"), attributes
        if tag == "code" and "class" in attributes:
            assert all(c.startswith("language-") for c in attributes["class"].split())


def rewrites() -> Rewrites:
    return Rewrites(
        mention=lambda at_id, text: f'<a href="https://matrix.to/#/@u{at_id}:hs">{text}</a>',
        image=lambda attributes: '<img src="mxc://hirondelle/abc">',
        attachment=lambda attachment_id: "<script>alert('attachment')</script><p>file</p>",
        link=lambda href: href,
    )


@settings(max_examples=400, deadline=None)
@given(documents)
def test_sanitize_never_lets_hostile_markup_through(markup: str) -> None:
    assert_safe(sanitize(markup))


@settings(max_examples=400, deadline=None)
@given(documents)
def test_teams_rewrite_never_lets_hostile_markup_through(markup: str) -> None:
    assert_safe(teams_to_matrix(markup, rewrites()))


@settings(max_examples=100, deadline=None)
@given(documents)
def test_the_whole_mapper_emits_only_safe_html(markup: str) -> None:
    message: Mapping[str, Any] = {
        "id": "1",
        "messageType": "message",
        "createdDateTime": "2024-05-01T10:00:00Z",
        "from": {"user": {"id": "u1", "displayName": "<b>Eve</b>"}},
        "body": {"contentType": "html", "content": markup},
        "subject": markup[:30],
        "mentions": [{"id": 0, "mentionText": "Jane", "mentioned": {"user": {"id": "u2"}}}],
    }
    content = json.dumps({"message": message, "hostedContents": {}}).encode()
    for mode in ("appservice", "bot"):
        payload = map_chat_message(Item("1", "1"), content, ChatContext("hs", mode=mode))
        for event in json.loads(payload.content)["events"]:
            assert_safe(event["content"].get("formatted_body", ""))


def test_allowed_markup_survives() -> None:
    markup = (
        '<p>Un <strong>mot</strong> <a href="https://example.org/">lien</a></p>'
        '<ol start="3"><li>trois</li></ol><pre><code class="language-python">x = 1</code></pre>'
        '<img src="mxc://hs/abc" alt="photo" width="10">'
    )
    assert sanitize(markup) == markup


def test_teams_elements_are_rewritten() -> None:
    source = (
        '<p>Salut <at id="0">Jane</at> <emoji id="smile" alt="😄" title="Sourire"></emoji>'
        '<attachment id="a1"></attachment></p>'
        '<codeblock class="C++"><code>int x;</code></codeblock>'
    )
    output = teams_to_matrix(source, rewrites())
    assert '<a href="https://matrix.to/#/@u0:hs">Jane</a> 😄' in output
    assert "<p>file</p>" in output and "attachment" not in output.replace("file", "")
    assert '<pre><code class="language-c++">int x;</code></pre>' in output


def test_plain_text_body_reads_like_the_html() -> None:
    markup = (
        "<p>Première ligne<br>deuxième</p><ul><li>un</li><li>deux</li></ul>"
        '<p><a href="https://example.org/doc">le document</a> et '
        '<a href="https://matrix.to/#/@jane:hs">Jane</a></p><pre><code>a\n  b</code></pre>'
    )
    assert html_to_text(markup) == (
        "Première ligne\ndeuxième\n- un\n- deux\n"
        "le document (https://example.org/doc) et Jane\na\n  b"
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(HARMLESS + ["<p>" + "mot " * 50 + "</p>"]), min_size=1, max_size=40),
    st.integers(min_value=200, max_value=2000),
)
def test_split_chunks_are_small_well_formed_and_lose_no_text(parts: list[str], budget: int) -> None:
    markup = sanitize("".join(parts))
    chunks = split_html(markup, budget)
    for chunk in chunks:
        assert len(chunk.encode()) <= budget + 200  # the reopened elements may add a little
        assert sanitize(chunk) == chunk  # balanced: the sanitizer has nothing to fix
    assert "".join(map(words, chunks)) == words(markup)


def words(markup: str) -> str:
    """The text of `markup` without any white space (split points may add or drop some)."""

    class Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.parts: list[str] = []

        def handle_data(self, data: str) -> None:
            self.parts.append(data)

    text = Text()
    text.feed(markup)
    text.close()
    return "".join("".join(text.parts).split())
