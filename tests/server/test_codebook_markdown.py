"""Codebook Markdown renders harmless whatever the source holds (server/codebook/markdown.py)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from labelloop.server.codebook.markdown import render, sanitise

HOSTILE = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "<b onclick=alert(1)>bold</b>",
    '<a href="javascript:alert(1)">x</a>',
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](java\tscript:alert(1))",
    "[x]( javascript:alert(1))",
    "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x][r]\n\n[r]: javascript:alert(1)",
    "<javascript:alert(1)>",
    "![x](javascript:alert(1))",
    '<iframe src="https://evil"></iframe>',
    "<style>body{display:none}</style>",
    '<div style="position:fixed">x</div>',
    "<!-- <script>alert(1)</script> -->",
    '<svg onload=alert(1)><circle/></svg>',
    "```html\n<script>alert(1)</script>\n```",
    "`<img src=x onerror=alert(1)>`",
    '<form action="https://evil"><input name=p></form>',
    '<meta http-equiv="refresh" content="0;url=https://evil">',
]


SAFE_TAGS = {"p", "a", "code", "pre", "em", "strong", "ul", "ol", "li", "br", "del", "blockquote"}


class _Live(HTMLParser):
    """What a browser would treat as markup: elements and their attributes (text is ignored)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in SAFE_TAGS:
            self.problems.append(f"tag {tag}")
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.problems.append(f"attribute {name}")
            if name in ("href", "src") and not re.match(r"(https?:|mailto:)", (value or "").strip(), re.I):
                self.problems.append(f"{name} {value}")

    def handle_comment(self, data: str) -> None:
        self.problems.append("comment")


def _dangerous(html: str) -> list[str]:
    live = _Live()
    live.feed(html)
    live.close()
    return live.problems


@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_markdown_renders_harmless(source):
    html = render(source)
    assert _dangerous(html) == [], html


@pytest.mark.parametrize("html", [
    '<p><a href="javascript:alert(1)">x</a></p>',
    '<p onclick="alert(1)">x</p>',
    "<script>alert(1)</script><p>ok</p>",
    '<img src="x" onerror="alert(1)">',
    '<a href="data:text/html,x">x</a>',
    '<p style="color:red">x</p>',
    "<iframe src=https://evil></iframe>",
])
def test_the_sanitiser_alone_removes_what_the_parser_might_let_through(html):
    """The second guard: if the parser ever emitted live HTML, nh3 still removes it."""
    out = sanitise(html)
    assert _dangerous(out) == [], out
    assert "alert(1)" not in out or "<script" not in out.lower()


def test_ordinary_markdown_keeps_its_structure():
    html = render("# Apples\n\n**Yes**: green *or* red.\n\n- one\n- two\n\n"
                  "[guide](https://example.org/g \"the guide\") and <mailto:a@b.org>\n\n| a | b |\n|---|---|\n| 1 | 2 |")
    assert "<h1>Apples</h1>" in html
    assert "<strong>Yes</strong>" in html and "<em>or</em>" in html
    assert "<li>one</li>" in html
    assert '<a href="https://example.org/g" title="the guide" rel="noopener noreferrer nofollow">guide</a>' in html
    assert 'href="mailto:a@b.org"' in html
    assert "<td>1</td>" in html
    assert render("") == "" and render("  \n") == ""


def test_raw_html_stays_visible_as_text():
    """Raw HTML is not dropped silently: the labeller sees what the admin wrote, as text."""
    assert render("<b>x</b>") == "<p>&lt;b&gt;x&lt;/b&gt;</p>"
