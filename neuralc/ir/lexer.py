"""Tokens of the IR text form, for `neuralc.ir.parser`.

One compiled regex scans the text; each token records its 1-based line and column so every
parse error points into the IR file. Strings (and quoted `%"..."`/`@"..."` names) are JSON string
literals, decoded here.
"""

from __future__ import annotations

import json
import re
from typing import NamedTuple

from neuralc.diagnostics import CompileError, SourceLocation, error

_STRING = r'"(?:[^"\\\n]|\\.)*"'
_TOKEN = re.compile(
    rf"""
    (?P<skip>[ \t\r\f\v]+|//[^\n]*)
  | (?P<newline>\n)
  | (?P<value>%(?:[A-Za-z0-9_.\#]+|{_STRING}))
  | (?P<symbol>@(?:[A-Za-z0-9_.\#]+|{_STRING}))
  | (?P<string>{_STRING})
  | (?P<arrow>->)
  | (?P<float>-?(?:\d+\.\d*(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)|-inf\b)
  | (?P<int>-?\d+)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[(){{}}\[\],=:^])
    """,
    re.VERBOSE,
)


class Token(NamedTuple):
    # kind: value, symbol, string, float, int, ident, punct ("->" included), eof.
    kind: str
    text: str
    line: int
    column: int

    def describe(self) -> str:
        return "end of input" if self.kind == "eof" else f"'{self.text}'"


def tokenize(text: str, path: str) -> list[Token]:
    tokens: list[Token] = []
    pos, line, line_start = 0, 1, 0
    match = _TOKEN.match
    while pos < len(text):
        m = match(text, pos)
        if m is None:
            raise _bad_char(text, pos, SourceLocation(path, line, pos - line_start + 1))
        kind = m.lastgroup
        assert kind is not None
        if kind == "newline":
            line, line_start = line + 1, m.end()
        elif kind != "skip":
            tokens.append(Token("punct" if kind == "arrow" else kind, m.group(), line,
                                pos - line_start + 1))
        pos = m.end()
    # End of input sits just after the last token, not on the empty line after the final
    # newline: an "expected '}' ..., found end of input" then quotes the line that is cut short.
    if tokens:
        last = tokens[-1]
        tokens.append(Token("eof", "", last.line, last.column + len(last.text)))
    else:
        tokens.append(Token("eof", "", 1, 1))
    return tokens


def _bad_char(text: str, pos: int, loc: SourceLocation) -> CompileError:
    ch = text[pos]
    if ch == '"' or text[pos + 1 : pos + 2] == '"':
        return error("unterminated string", loc, "strings end on the line where they start")
    if ch == "%":
        return error("expected a value name after '%'", loc)
    if ch == "@":
        return error("expected a name after '@'", loc)
    return error(f"unexpected character {ch!r}", loc)


def decode_string(token: Token, path: str, start: int = 0) -> str:
    """The str of a string token (or of a quoted name, skipping its sigil with `start=1`)."""
    try:
        # strict=False: a raw tab inside a string is accepted (and prints back as \\t).
        value = json.loads(token.text[start:], strict=False)
    except json.JSONDecodeError as exc:
        loc = SourceLocation(path, token.line, token.column + start + exc.pos)
        raise error(f"invalid string literal: {exc.msg}", loc) from None
    assert isinstance(value, str)
    return value


def decode_name(token: Token, path: str) -> str:
    """The name of a `%name`/`@name` token, quoted or bare."""
    if token.text[1:2] == '"':
        return decode_string(token, path, start=1)
    return token.text[1:]
