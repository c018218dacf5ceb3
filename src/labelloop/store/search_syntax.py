"""The search syntax: parse a user's query into a small tree, render it for either database.

The same syntax (and, as far as the two tokenizers allow, the same matches) on SQLite FTS5 and
PostgreSQL full-text search:

- ``word``: items containing the word (case is ignored; a word is a run of letters and digits,
  so ``e-mail`` is the phrase ``"e mail"``);
- ``"a phrase"``: the words next to each other, in this order;
- ``label*``: a word starting with ``label`` (also ``"new yo"*``: a phrase whose last word is a
  prefix);
- ``a b`` or ``a AND b``: both; ``a OR b``: either; ``-a`` or ``NOT a``: not ``a`` (next to at
  least one term that is looked for: ``offer -spam``); ``( ... )`` groups. ``AND``, ``OR`` and
  ``NOT`` are operators only in capitals; ``NOT`` binds tighter than ``AND``, ``AND`` than
  ``OR``.

Anything else is a :class:`~labelloop.errors.SearchSyntaxError` (an ``InvalidInputError``:
HTTP 422, CLI exit 2) whose one-line message names the problem and the fix. Terms reach the
databases only as quoted tokens of letters and digits, so no input can inject an operator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from labelloop.errors import SearchSyntaxError

MAX_QUERY_CHARS = 500
MAX_TERMS = 32
MAX_DEPTH = 8

_TOKEN = re.compile(r"[^\W_]+")  # letters and digits: what unicode61 and PG's parser call a word


@dataclass(frozen=True)
class Term:
    """A word (one token) or a phrase (several); ``prefix``: the last token is a prefix."""

    tokens: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


Node = Term | And | Or | Not


def tokens_of(text: str) -> list[str]:
    """The words of ``text`` as the search sees them (lower case, letters and digits)."""
    return _TOKEN.findall(text.lower())


# ---------------------------------------------------------------------------------------- lexer

@dataclass(frozen=True)
class _Lex:
    kind: str  # "(", ")", "AND", "OR", "NOT", "-", "word", "phrase"
    text: str = ""
    prefix: bool = False


def _lex(query: str) -> list[_Lex]:
    out: list[_Lex] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c.isspace():
            i += 1
        elif c in "()":
            out.append(_Lex(c))
            i += 1
        elif c == '"':
            end = query.find('"', i + 1)
            if end < 0:
                raise SearchSyntaxError(f'unclosed quote in the search {_show(query)}: add the closing "')
            prefix = end + 1 < n and query[end + 1] == "*"
            out.append(_Lex("phrase", query[i + 1:end], prefix))
            i = end + 2 if prefix else end + 1
        elif c == "-" and i + 1 < n and not query[i + 1].isspace():  # "-" starting a term
            out.append(_Lex("-"))
            i += 1
        else:
            j = i
            while j < n and not query[j].isspace() and query[j] not in '()"':
                j += 1
            word = query[i:j]
            i = j
            if word in ("AND", "OR", "NOT"):
                out.append(_Lex(word))
                continue
            prefix = word.endswith("*")
            body = word.rstrip("*") if prefix else word
            if "*" in body:
                raise SearchSyntaxError(
                    f"'*' marks a prefix and goes at the end of a word (label*), not inside {word[:40]!r}")
            out.append(_Lex("word", body, prefix))
    return out


def _show(query: str) -> str:
    return repr(query if len(query) <= 60 else query[:57] + "...")


# --------------------------------------------------------------------------------------- parser

class _Parser:
    def __init__(self, query: str, lexed: list[_Lex]):
        self.query = query
        self.lexed = lexed
        self.pos = 0
        self.terms = 0

    def peek(self) -> _Lex | None:
        return self.lexed[self.pos] if self.pos < len(self.lexed) else None

    def take(self) -> _Lex:
        lex = self.lexed[self.pos]
        self.pos += 1
        return lex

    def parse(self) -> Node:
        node = self.or_expr(0)
        extra = self.peek()
        if extra is not None:
            assert extra.kind == ")"
            raise SearchSyntaxError(f"unmatched ')' in the search {_show(self.query)}: remove it or add a '('")
        return node

    def or_expr(self, depth: int) -> Node:
        parts = [self.and_expr(depth)]
        while (lex := self.peek()) is not None and lex.kind == "OR":
            self.take()
            parts.append(self.and_expr(depth, after="OR"))
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_expr(self, depth: int, after: str | None = None) -> Node:
        parts = [self.unary(depth, after)]
        while (lex := self.peek()) is not None and lex.kind not in (")", "OR"):
            if lex.kind == "AND":
                self.take()
                parts.append(self.unary(depth, "AND"))
            else:
                parts.append(self.unary(depth, None))
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def unary(self, depth: int, after: str | None) -> Node:
        lex = self.peek()
        if lex is None or lex.kind in (")", "AND", "OR"):
            if after is not None:
                raise SearchSyntaxError(f"{after} needs a term on both sides (cats {after} dogs) in the search "
                                        f"{_show(self.query)}")
            if lex is None:
                raise SearchSyntaxError("the search is empty: type at least one word")
            if lex.kind == ")":
                raise SearchSyntaxError(f"empty '( )' or unmatched ')' in the search {_show(self.query)}: "
                                        "put terms between the brackets or remove them")
            raise SearchSyntaxError(f"{lex.kind} needs a term on both sides (cats {lex.kind} dogs) in the search "
                                    f"{_show(self.query)}")
        self.take()
        if lex.kind in ("NOT", "-"):
            name = "NOT" if lex.kind == "NOT" else "'-'"
            nxt = self.peek()
            if nxt is None or nxt.kind in (")", "AND", "OR", "NOT", "-"):
                raise SearchSyntaxError(f"{name} must be followed by a term to leave out (offer -spam) in the "
                                        f"search {_show(self.query)}")
            child = self.unary(depth, None)
            return child.child if isinstance(child, Not) else Not(child)
        if lex.kind == "(":
            if depth >= MAX_DEPTH:
                raise SearchSyntaxError(f"brackets nested too deeply (at most {MAX_DEPTH}) in the search")
            inner = self.or_expr(depth + 1)
            close = self.peek()
            if close is None or close.kind != ")":
                raise SearchSyntaxError(f"unclosed '(' in the search {_show(self.query)}: add a ')'")
            self.take()
            return inner
        words = tokens_of(lex.text)
        if not words:
            shown = lex.text if lex.kind == "word" else f'"{lex.text}"'
            raise SearchSyntaxError(f"the search term {shown[:40]!r} has no letters or digits to look for: "
                                    "remove it")
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise SearchSyntaxError(f"too many terms in the search (at most {MAX_TERMS}): shorten it")
        return Term(tuple(words), lex.prefix)


def _check(node: Node, query: str) -> None:
    """Every alternative must look for something: a NOT stands only next to a positive term."""
    if isinstance(node, Not):
        raise SearchSyntaxError(
            f"the search {_show(query)} only leaves terms out: add a term to look for (offer -spam)")
    if isinstance(node, Or):
        for child in node.children:
            if isinstance(child, Not):
                raise SearchSyntaxError(
                    f"OR cannot take a left-out term in the search {_show(query)}: write a -b or (a OR b) -c")
            _check(child, query)
    elif isinstance(node, And):
        positive = [c for c in node.children if not isinstance(c, Not)]
        if not positive:
            raise SearchSyntaxError(
                f"the search {_show(query)} only leaves terms out: add a term to look for (offer -spam)")
        for child in node.children:
            _check(child.child if isinstance(child, Not) else child, query)


def parse(query: str) -> Node:
    """The query's tree; :class:`SearchSyntaxError` when it is not a valid search."""
    if not isinstance(query, str):
        raise SearchSyntaxError("the search must be text")
    if len(query) > MAX_QUERY_CHARS:
        raise SearchSyntaxError(f"the search is too long ({len(query)} characters, at most {MAX_QUERY_CHARS}): "
                                "shorten it")
    if "\x00" in query:
        raise SearchSyntaxError("the search contains a NUL character: remove it")
    lexed = _lex(query)
    if not lexed:
        raise SearchSyntaxError("the search is empty: type at least one word")
    node = _Parser(query, lexed).parse()
    _check(node, query)
    return node


# ------------------------------------------------------------------------------------ rendering

def to_fts5(node: Node) -> str:
    """SQLite FTS5 MATCH text. Tokens are letters and digits only, always double-quoted."""
    if isinstance(node, Term):
        text = '"' + " ".join(node.tokens) + '"'
        return text + " *" if node.prefix else text
    if isinstance(node, Or):
        return "(" + " OR ".join(to_fts5(c) for c in node.children) + ")"
    if isinstance(node, And):
        pos = [to_fts5(c) for c in node.children if not isinstance(c, Not)]
        neg = [to_fts5(c.child) for c in node.children if isinstance(c, Not)]
        text = "(" + " AND ".join(pos) + ")"
        if neg:  # FTS5's NOT is binary: (all wanted) NOT (any unwanted)
            text = "(" + text + " NOT (" + " OR ".join(neg) + "))"
        return text
    raise SearchSyntaxError("a left-out term needs a term to look for next to it (offer -spam)")


def to_tsquery(node: Node) -> str:
    """PostgreSQL ``to_tsquery`` text. Tokens are letters and digits only, always single-quoted."""
    if isinstance(node, Term):
        quoted = [f"'{t}'" for t in node.tokens]
        if node.prefix:
            quoted[-1] += ":*"
        return quoted[0] if len(quoted) == 1 else "(" + " <-> ".join(quoted) + ")"
    if isinstance(node, Or):
        return "(" + " | ".join(to_tsquery(c) for c in node.children) + ")"
    if isinstance(node, And):
        return "(" + " & ".join(to_tsquery(c) for c in node.children) + ")"
    return "!" + to_tsquery(node.child)


def positive_terms(node: Node) -> list[Term]:
    """The terms looked for (not the left-out ones): what a highlighter marks."""
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Not):
        return []
    return [t for c in node.children for t in positive_terms(c)]
