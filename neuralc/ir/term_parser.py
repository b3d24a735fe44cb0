"""The leaf terms of the IR text form: tensor types, source locations and attribute values.

Separate from the op and network grammar (`parser`) because these terms stand on their own:
they reference no SSA values and no scopes, only tokens, and each checks what only the text can
get wrong in it (unknown dtypes, sizes and positions outside int64, unknown HPO search spaces,
duplicate attribute names).
"""

from __future__ import annotations

import math

from neuralc.diagnostics import SourceLocation, did_you_mean
from neuralc.ir.core import FusedLoc, Location
from neuralc.ir.lexer import Token, decode_string
from neuralc.ir.printer import BARE_KEY
from neuralc.ir.token_stream import TokenStream
from neuralc.ir.types import (
    DTYPES,
    HPO_KINDS,
    INT64_MAX,
    Attr,
    CallAttr,
    HPOAttr,
    TensorType,
    fits_int64,
)


class TermParser(TokenStream):
    # -- types, locations --------------------------------------------------------------------

    def tensor_type(self) -> TensorType:
        tok = self.expect_kind("ident", "a tensor type like 'f32[N,128]'")
        if tok.text not in DTYPES:
            self.err(f"unknown dtype '{tok.text}'", tok, did_you_mean(tok.text, DTYPES) or "")
        self.expect("[", f"after the dtype '{tok.text}'")
        dims: list[int | str] = []

        def dim() -> None:
            d = self.tok
            if d.kind == "int" and not d.text.startswith("-"):
                dims.append(self.integer(self.advance(), "dimension"))
            elif d.kind == "ident" and BARE_KEY.fullmatch(d.text):
                dims.append(self.advance().text)
            else:
                self.fail("expected a dimension (a non-negative int or a symbol like N)")

        self.comma_list("]", dim, "after the dimensions")
        return TensorType(tuple(dims), tok.text)

    def result_types(self) -> list[TensorType]:
        if not self.accept("("):
            return [self.tensor_type()]
        types: list[TensorType] = []
        self.comma_list(")", lambda: types.append(self.tensor_type()), "after the result types")
        return types

    def location(self) -> Location:
        self.advance()  # 'loc'
        self.expect("(", "after 'loc'")
        if self.accept("fused"):
            self.expect("[", "after 'fused'")
            locs: list[SourceLocation] = []
            first = self.tok
            self.comma_list("]", lambda: locs.append(self.file_line_col()), "after the fused locations")
            if not locs:
                self.err("a fused location needs at least one location", first)
            loc: Location = FusedLoc(tuple(locs))
        else:
            loc = self.file_line_col()
        self.expect(")", "after the location")
        return loc

    def file_line_col(self) -> SourceLocation:
        file = decode_string(self.expect_kind("string", 'a location "file":line:col'), self.path)
        self.expect(":", "after the location's file")
        line = self.position_number(self.expect_kind("int", "a line number"), "line")
        self.expect(":", "after the location's line")
        column = self.position_number(self.expect_kind("int", "a column number"), "column")
        return SourceLocation(file, line, column)

    def position_number(self, tok: Token, what: str) -> int:
        value = self.integer(tok, f"{what} number")
        if value < 1:
            self.err(f"invalid {what} number {value} in a location", tok,
                     f'{what} numbers start at 1, as in diagnostics: loc("model.neural":4:5)')
        return value

    def integer(self, tok: Token, what: str) -> int:
        """The value of an int token that sizes something (a dimension, a line): an int64."""
        digits = tok.text.removeprefix("-").lstrip("0")
        # An int64 has at most 19 digits: a longer literal never reaches int().
        if len(digits) > len(str(INT64_MAX)) or not fits_int64(int(tok.text)):
            shown = tok.text if len(tok.text) <= 40 else f"{tok.text[:20]}... " \
                f"({len(tok.text.removeprefix('-'))} digits)"
            self.err(f"{what} {shown} is out of the 64-bit integer range", tok,
                     f"sizes and positions are at most 2**63 - 1 = {INT64_MAX:,}")
        return int(tok.text)

    def int_literal(self, tok: Token) -> int:
        try:
            return int(tok.text)
        except ValueError:  # past Python's limit on digits (4300 by default)
            self.err(f"integer literal with {len(tok.text.removeprefix('-')):,} digits is too "
                     "long", tok)

    # -- attributes --------------------------------------------------------------------------

    def attr_dict(self) -> dict[str, Attr]:
        self.expect("{", "to open the attributes")
        attrs: dict[str, Attr] = {}

        def entry() -> None:
            key_tok = self.tok
            key = self.key("an attribute name")
            if key in attrs:
                self.err(f"duplicate attribute '{key}'", key_tok)
            self.expect("=", f"after the attribute name '{key}'")
            attrs[key] = self.attr()

        self.comma_list("}", entry, "after the attributes")
        return attrs

    def key(self, what: str) -> str:
        tok = self.tok
        if tok.kind == "ident" and BARE_KEY.fullmatch(tok.text):
            return self.advance().text
        if tok.kind == "string":
            return decode_string(self.advance(), self.path)
        self.fail(f"expected {what}")

    def attr(self) -> Attr:
        tok = self.tok
        if tok.kind == "int":
            # Any size here: network attributes may hold big ints; the verifier keeps an op's
            # attributes to int64.
            return self.int_literal(self.advance())
        if tok.kind == "float":
            self.advance()
            return -math.inf if tok.text == "-inf" else float(tok.text)
        if tok.kind == "string":
            self.advance()
            return self.call(decode_string(tok, self.path)) if self.at("(") else \
                decode_string(tok, self.path)
        if tok.kind == "ident":
            self.advance()
            if self.at("("):
                if tok.text.startswith("hpo."):
                    kind = tok.text[4:]
                    if kind not in HPO_KINDS:
                        self.fail("unknown HPO search space", tok,
                                  "use hpo.choice, hpo.range or hpo.log_range")
                    args, kwargs = self.call_args()
                    return HPOAttr(kind, args, kwargs)
                return self.call(tok.text)
            keywords: dict[str, Attr] = {"true": True, "false": False, "none": None,
                                         "inf": math.inf, "nan": math.nan}
            if tok.text in keywords:
                return keywords[tok.text]
            self.fail("expected an attribute value", tok,
                      'strings are quoted: "relu"; calls need parentheses: Adam()')
        if self.accept("("):
            items: list[Attr] = []
            if self.accept(")"):
                return ()
            items.append(self.attr())
            if self.at(")"):
                self.fail("expected ',' in a one-element tuple like (3,)")
            self.expect(",", "between tuple items")
            self.comma_list(")", lambda: items.append(self.attr()), "after the tuple items")
            return tuple(items)
        if self.at("{"):
            return self.attr_dict()
        self.fail("expected an attribute value")

    def call(self, name: str) -> CallAttr:
        args, kwargs = self.call_args()
        return CallAttr(name, args, kwargs)

    def call_args(self) -> tuple[tuple[Attr, ...], tuple[tuple[str, Attr], ...]]:
        self.advance()  # '('
        args: list[Attr] = []
        kwargs: list[tuple[str, Attr]] = []

        def arg() -> None:
            is_kw = self.peek_text(1) == "=" and self.tok.kind in ("ident", "string")
            if is_kw:
                name = self.key("an argument name")
                self.advance()  # '='
                kwargs.append((name, self.attr()))
            elif kwargs:
                self.fail("expected 'name = value': positional arguments come first")
            else:
                args.append(self.attr())

        self.comma_list(")", arg, "after the call arguments")
        return tuple(args), tuple(kwargs)
