"""Codebook definitions from Markdown to HTML that is safe to put in a page.

Two independent guards, so that a gap in one is caught by the other: the parser
(``markdown-it-py``, CommonMark) runs with raw HTML off, so ``<script>`` or ``<b onclick>`` in
the source come out as text, and its link check drops ``javascript:``/``vbscript:``/``data:``
URLs; then ``nh3`` (the Ammonia sanitiser) keeps only the tags and attributes a definition needs
and only ``http``, ``https`` and ``mailto`` links. Images are off: the pages' Content-Security-
Policy loads nothing from another origin, and a codebook has no files of its own.
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

ALLOWED_TAGS = frozenset({
    "p", "br", "hr", "em", "strong", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
})
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.disable("image")
    return md


@lru_cache(maxsize=1024)
def render(source: str) -> str:
    """The sanitised HTML of a definition's Markdown ``source`` ("" for an empty one). Cached:
    the panel asks for the whole codebook each time a labeller opens it, and definitions change
    seldom."""
    if not source.strip():
        return ""
    return sanitise(_parser().render(source))


def sanitise(html: str) -> str:
    """``html`` with only the allowed tags, attributes and link schemes left (the second guard)."""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    ).strip()
