"""textX's syntax error → a `Diagnostic` a user can act on.

textX reports the furthest position the PEG parser reached and the grammar rules it tried there.
Those rule lists are long and named after grammar internals, so this module turns them into plain
words ("a value", "a layer", "')' or ','"), points a missing closer or colon just after the token
it should follow, and adds notes where the fix can be guessed (the unclosed opener, `layers:`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from neuralc.diagnostics import Diagnostic, SourceLocation, did_you_mean
from neuralc.frontend.build_ast import Locator

SECTION_KEYWORDS = ("input", "layers", "loss", "optimizer", "metrics")
BLOCK_KEYWORDS = ("train", "execution", "execute")

# Named grammar rules → words. Rules left out here are spelled as their literal text.
_RULE_WORDS = {
    "LayerName": "a layer",
    "Ident": "a name",
    "BranchName": "a name",
    "SettingKey": "a network section",
    "NumberToken": "a number",
    "StringToken": "a string",
    "LitWord": "a value",
    "ValueName": "a value",
}
_SECTION_WORDS = {f"'{kw}'" for kw in SECTION_KEYWORDS + BLOCK_KEYWORDS}
_VALUE_STARTS = {"'HPO'", "'('", "'['", "'...'", "a number", "a string", "a value"}
# Tokens that may optionally follow a layer; listing them after "a layer" is only noise.
_LAYER_SUFFIXES = {"'('", "'{'", "'*'", "'@'", "';'", "a name"}
# What a user most likely forgot comes first.
_ORDER = ["')'", "']'", "'}'", "','", "':'", "'='", "a value", "a layer", "a network section"]
# Expectations that continue the previous token; when all of them were expected and the next
# token is on a later line, the error belongs at the end of the previous token.
_CONTINUATIONS = {"')'", "']'", "','", "':'", "'='", "'('"}
_CLOSERS = {"(": ")", "[": "]", "{": "}"}
# Tokens that cannot end anything: a value must follow them.
_INFIX = {"*", "=", ":", "@", ","}
# The grammar's StringToken: a string closed on its own line.
_STRING_RE = re.compile(r"""("([^"\\\n]|\\.)*"|'([^'\\\n]|\\.)*')""")

_TOKEN_RE = re.compile(
    r"""(?P<ws>\s+)|(?P<comment>\#[^\n]*)
      |(?P<string>"([^"\\\n]|\\.)*"?|'([^'\\\n]|\\.)*'?)
      |(?P<word>[A-Za-z_]\w*|[-+]?(\d[\w.]*|\.\d[\w.]*))|(?P<dots>\.\.\.)|(?P<other>.)""",
    re.VERBOSE | re.DOTALL,
)


@dataclass
class _Scan:
    """What precedes the error position: the last token and the brackets still open."""

    last: str | None = None
    last_end: int = 0
    open_brackets: list[tuple[str, int]] = field(default_factory=list)
    # The word just before each open bracket (`trian {` → "trian"), same order as above.
    openers: list[str | None] = field(default_factory=list)


def _scan(text: str, end: int) -> _Scan:
    scan = _Scan()
    for match in _TOKEN_RE.finditer(text, 0, end):
        kind = match.lastgroup
        if kind in ("ws", "comment"):
            continue
        token = match.group()
        if token in _CLOSERS:
            scan.open_brackets.append((token, match.start()))
            scan.openers.append(scan.last)
        elif scan.open_brackets and token == _CLOSERS[scan.open_brackets[-1][0]]:
            scan.open_brackets.pop()
            scan.openers.pop()
        scan.last, scan.last_end = token, match.end()
    return scan


def _found(text: str, pos: int) -> str:
    if pos >= len(text):
        return "end of file"
    match = _TOKEN_RE.match(text, pos)
    assert match is not None  # `other` matches any character
    token = match.group()
    return repr(token) if token.isprintable() else f"character {token!r}"


def _phrase(rule: Any) -> str | None:
    name = type(rule).__name__
    if name == "EndOfFile":
        return "end of file"
    rule_name = getattr(rule, "rule_name", "")
    if rule_name == "Comment":
        return None
    if rule_name in _RULE_WORDS:
        return _RULE_WORDS[rule_name]
    return f"'{rule.to_match}'"


def expected_words(rules: list[Any]) -> list[str]:
    """textX's expected rules → de-duplicated words, noise removed, likeliest first."""
    words = {w for w in map(_phrase, rules) if w is not None}
    if words & _SECTION_WORDS:
        words = (words - _SECTION_WORDS) | {"a network section"}
    if "a layer" in words:
        words -= _LAYER_SUFFIXES
    if "a number" in words and "a string" in words:
        words = (words - _VALUE_STARTS) | {"a value"}
    if "a value" in words:
        words.discard("a name")  # an argument's name also starts like a value
    if "')'" in words:
        # After a name inside a call `(` could start a nested call, but a missing `)` or `,`
        # is what the user needs to hear about.
        words.discard("'('")
    if len(words) > 1:
        words.discard("';'")
    rank = {w: i for i, w in enumerate(_ORDER)}
    return sorted(words, key=lambda w: (rank.get(w, len(_ORDER)), w))


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def syntax_diagnostic(exc: Any, text: str, locator: Locator) -> Diagnostic:
    """Build the diagnostic for a `textx.exceptions.TextXSyntaxError` raised on `text`."""
    # textX chains the Arpeggio NoMatch, whose character offset is exact; its line/column
    # are the fallback.
    pos = getattr(exc.__cause__, "position", None)
    if pos is None:
        pos = locator.offset(exc.line or 1, exc.col or 1)
    pos = min(pos, len(text))
    words = expected_words(list(exc.expected_rules or ()))
    scan = _scan(text, pos)
    at_eof = not text[pos:].strip()

    quoted = pos < len(text) and text[pos] in "\"'" and {"a string", "a value"} & set(words)
    if quoted and not _STRING_RE.match(text, pos):
        return Diagnostic(
            "syntax error: unterminated string literal",
            locator.loc(pos),
            notes=("a string ends with a matching quote on the same line",),
        )

    expected = _join(words) if words else "something else"
    loc = locator.loc(pos)
    newline_between = "\n" in text[scan.last_end : pos]
    relocated = False
    if at_eof and scan.last is not None:
        # The end of a file has no source line to show; the end of its last token does.
        loc = locator.loc(scan.last_end)
        message = f"syntax error: expected {expected}, found end of file"
    elif scan.last is not None and newline_between and _dangling(words, scan.last, text, pos):
        loc = locator.loc(scan.last_end)
        message = f"syntax error: expected {expected} after {scan.last!r}"
        relocated = True
    else:
        message = f"syntax error: expected {expected}, found {_found(text, pos)}"

    related: list[tuple[SourceLocation, str]] = []
    if scan.open_brackets:
        bracket, offset = scan.open_brackets[-1]
        closer = f"'{_CLOSERS[bracket]}'"
        # Only where the missing closer is the likely fix, not whenever it is one option.
        likely = at_eof or set(words) <= _CONTINUATIONS | {closer}
        next_top = _found(text, pos) in ("'network'", "'define'")
        # An opener on the line shown is visible; pointing at it again is noise, unless that
        # line ends with the bracket still open.
        elsewhere = locator.loc(offset).line != loc.line or relocated
        if closer in words and elsewhere and (likely or next_top):
            related.append((locator.loc(offset), f"to match this '{bracket}'"))
    return Diagnostic(message, loc, related=tuple(related), notes=_notes(words, scan, text, pos))


def _dangling(words: list[str], last: str, text: str, pos: int) -> bool:
    """Whether the previous line ends unfinished (`Dense(10` or `epochs:`), so the error is
    there rather than at whatever the next line starts with."""
    if set(words) <= _CONTINUATIONS:
        return True
    return last in _INFIX and (pos >= len(text) or text[pos] in _CLOSERS.values())


def _notes(words: list[str], scan: _Scan, text: str, pos: int) -> tuple[str, ...]:
    notes: list[str] = []
    found = text[pos] if pos < len(text) else ""
    if found in _CLOSERS.values():
        opener = next(o for o, c in _CLOSERS.items() if c == found)
        # With its opener still open further out, an inner unclosed bracket is the problem
        # (and is pointed at); only a closer with nothing to close gets this note.
        if all(bracket != opener for bracket, _ in scan.open_brackets):
            notes.append(f"this '{found}' has no matching '{opener}'")
    if words == ["'{'"] and scan.last in BLOCK_KEYWORDS:
        notes.append(f"a block has no colon: '{scan.last} {{ ... }}'")
    if "':'" in words and scan.last in SECTION_KEYWORDS:
        notes.append(f"a section name is followed by a colon: '{scan.last}:'")
    if words == ["a string"] and scan.last == "@":
        notes.append('a device is a quoted string, as in @ "cuda:0"')
    if words == ["'{'"] and scan.last == ":":
        notes.append(
            "inside layers, 'name:' starts a branch 'name: { ... }'; settings such as "
            "'epochs: 10' belong in a 'train { ... }' or 'execution { ... }' block"
        )
        opener = scan.openers[-1] if scan.openers else None
        if opener is not None and opener not in BLOCK_KEYWORDS:
            hint = did_you_mean(opener, BLOCK_KEYWORDS)
            if hint:
                notes.append(f"'{opener}' is read as a layer: {hint}")
    if "'network'" in words:
        found = _TOKEN_RE.match(text, pos)
        hint = did_you_mean(found.group(), ("network", "define")) if found else None
        if hint:
            notes.append(hint)
    return tuple(notes)


def too_deep(text: str, locator: Locator) -> Diagnostic:
    """The diagnostic for brackets nested past what the parser can recurse through."""
    depth, deepest, where = 0, 0, 0
    for match in _TOKEN_RE.finditer(text):
        token = match.group()
        if token in _CLOSERS:
            depth += 1
            if depth > deepest:
                deepest, where = depth, match.start()
        elif token in _CLOSERS.values():
            depth = max(depth - 1, 0)
    return Diagnostic(
        f"syntax error: brackets nest too deeply ({deepest} levels)",
        locator.loc(where),
        notes=("write the value with fewer nested brackets",),
    )
