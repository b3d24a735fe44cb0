"""A cursor over the IR lexer's tokens, with the error reporting every parser rule shares.

Separate from the grammar (`term_parser`, `parser`) because it knows nothing of what the tokens
mean: looking ahead, consuming expected punctuation, comma-separated lists, and errors that
point at a token's line:col and say what was found there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

from neuralc.diagnostics import SourceLocation, error
from neuralc.ir.lexer import Token


class TokenStream:
    def __init__(self, tokens: list[Token], path: str) -> None:
        self.tokens = tokens
        self.pos = 0
        self.path = path

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def advance(self) -> Token:
        tok = self.tokens[self.pos]
        if tok.kind != "eof":
            self.pos += 1
        return tok

    def at(self, text: str) -> bool:
        tok = self.tok
        return tok.text == text and tok.kind in ("punct", "ident")

    def accept(self, text: str) -> bool:
        if self.at(text):
            self.pos += 1
            return True
        return False

    def expect(self, text: str, context: str) -> Token:
        if not self.at(text):
            self.fail(f"expected '{text}' {context}")
        return self.advance()

    def expect_kind(self, kind: str, what: str) -> Token:
        if self.tok.kind != kind:
            self.fail(f"expected {what}")
        return self.advance()

    def peek_text(self, offset: int) -> str:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)].text

    def loc_of(self, tok: Token) -> SourceLocation:
        return SourceLocation(self.path, tok.line, tok.column)

    def fail(self, message: str, tok: Token | None = None, *notes: str) -> NoReturn:
        """An error at `tok` (default: the current token), saying what was found there."""
        tok = tok or self.tok
        raise error(f"{message}, found {tok.describe()}", self.loc_of(tok), *notes)

    def err(self, message: str, tok: Token, *notes: str) -> NoReturn:
        raise error(message, self.loc_of(tok), *notes)

    def comma_list(self, close: str, item: Callable[[], None], context: str) -> None:
        """Items separated by ',' up to the closing token (consumed)."""
        if self.accept(close):
            return
        while True:
            item()
            if self.accept(close):
                return
            if not self.accept(","):
                self.fail(f"expected '{close}' {context}")
