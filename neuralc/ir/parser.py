"""IR text → Module: a hand-written recursive-descent parser over `neuralc.ir.lexer` tokens.

Hand-written rather than textX so that reading IR (tests, `neuralc opt` on a `.nir` file) stays
fast and does not depend on the DSL frontend. The grammar (docs/architecture.md, "IR text form"):

    module  := 'module' ('attributes' dict)? '{' network* '}'
    network := 'network' @name '(' args? ')' ('attributes' dict)? loc? '{' op* '}'
    op      := (%name (',' %name)* '=')? opname '(' operands? ')' dict? ('->' types)?
               ('@' string)? loc? region*
    region  := '{' '^' '(' args? ')' ':' op* '}'

The parser checks what only the text can get wrong: syntax, names (undefined, redefined), known
op names, dtypes, dimensions and location lines/columns that are no int64 (or, for the latter,
not positive). Everything else (operand counts, shapes, terminators, the range of an op's
integer attributes) is the verifier's job.

IR read from a file (any `path` but the default "<ir>") remembers where each op and network was
parsed (`neuralc.ir.core.text_loc`), so the verifier's diagnostics point into that file.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NoReturn

from neuralc.diagnostics import CompileError, Diagnostic, SourceLocation, did_you_mean, error
from neuralc.ir.core import (
    OPS,
    Block,
    FusedLoc,
    Location,
    Module,
    Network,
    Operation,
    Value,
    set_text_loc,
)
from neuralc.ir.lexer import Token, decode_name, decode_string, tokenize
from neuralc.ir.printer import BARE_KEY
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

# Dialect modules that register their ops at import, loaded on first use when present (a dialect
# that does not exist yet is simply not known).
DIALECT_MODULES = ("neuralc.ir.common_ops", "neuralc.ir.tensor", "neuralc.ir.kernel")
_modules_loaded = False


def ensure_dialects() -> None:
    """Register every dialect whose ops IR may use. Idempotent; the nn part re-reads the layer
    registry each call (cheap), so layers registered later get their ops too."""
    global _modules_loaded
    from neuralc.ir.nn import register_nn_dialect

    register_nn_dialect()
    if not _modules_loaded:
        import importlib
        import importlib.util

        for name in DIALECT_MODULES:
            if importlib.util.find_spec(name) is not None:
                importlib.import_module(name)
        _modules_loaded = True


NO_FILE = "<ir>"


def parse_module(text: str, path: str = NO_FILE) -> Module:
    """Parse IR text; raises CompileError with the IR file's line:col on the first error.

    Unless `path` is the default (text built in memory, e.g. to copy a network), every op and
    network records where it was parsed, for the verifier's diagnostics."""
    ensure_dialects()
    return _Parser(tokenize(text, path), path, record_positions=path != NO_FILE).module()


class _Parser:
    def __init__(self, tokens: list[Token], path: str, record_positions: bool = False) -> None:
        self.tokens = tokens
        self.pos = 0
        self.path = path
        self.record_positions = record_positions
        # Visible values, innermost block last; and every name defined in the current network
        # (names are unique per network, even across regions), with where it was defined.
        self.scopes: list[dict[str, Value]] = []
        self.defined: dict[str, SourceLocation] = {}

    # -- tokens ------------------------------------------------------------------------------

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

    # -- structure ---------------------------------------------------------------------------

    def module(self) -> Module:
        self.expect("module", "at the start of the IR")
        module = Module()
        if self.accept("attributes"):
            module.attrs = self.attr_dict()
        self.expect("{", "to open the module")
        while not self.at("}"):
            if not self.at("network"):
                self.fail("expected 'network' or '}' in the module")
            module.networks.append(self.network())
        self.advance()
        if self.tok.kind != "eof":
            self.fail("expected end of input after the module")
        return module

    def network(self) -> Network:
        start = self.advance()  # 'network'
        name = decode_name(self.expect_kind("symbol", "a network name '@Name'"), self.path)
        self.scopes, self.defined = [{}], {}
        self.expect("(", "after the network name")
        args = self.block_args("network inputs")
        attrs = self.attr_dict() if self.accept("attributes") else {}
        loc = self.location() if self.at("loc") else None
        self.expect("{", "to open the network body")
        body = Block(args)
        self.block_ops(body)
        net = Network(name, body, attrs, loc)
        if self.record_positions:
            set_text_loc(net, self.loc_of(start))
        return net

    def block_args(self, context: str) -> list[Value]:
        """`%a: f32[N,4], %b: f32[]` up to ')' (the '(' is consumed), defined in scope."""
        args: list[Value] = []

        def arg() -> None:
            tok = self.expect_kind("value", f"a value name in the {context}")
            self.expect(":", f"after {tok.text} in the {context}")
            value = Value(decode_name(tok, self.path), self.tensor_type())
            self.define(value, tok)
            args.append(value)

        self.comma_list(")", arg, f"after the {context}")
        return args

    def block_ops(self, block: Block) -> None:
        """Ops up to the block's '}' (consumed)."""
        while not self.accept("}"):
            if self.tok.kind == "eof":
                self.fail("expected '}' to close the block")
            block.append(self.operation())

    def region(self) -> Block:
        self.advance()  # '{'
        self.expect("^", "to start the region's block label '^(...):'")
        self.expect("(", "after '^'")
        self.scopes.append({})
        block = Block(self.block_args("block arguments"))
        self.expect(":", "after the block label")
        self.block_ops(block)
        self.scopes.pop()
        return block

    def operation(self) -> Operation:
        start = self.tok
        name_toks: list[Token] = []
        if self.tok.kind == "value":
            name_toks.append(self.advance())
            while self.accept(","):
                name_toks.append(self.expect_kind("value", "a result name after ','"))
            self.expect("=", "after the result names")
        op_tok = self.expect_kind("ident", "an op name")
        if op_tok.text not in OPS:
            self.err(f"unknown op '{op_tok.text}'", op_tok, did_you_mean(op_tok.text, OPS) or "")
        self.expect("(", f"after the op name '{op_tok.text}'")
        operands: list[Value] = []
        self.comma_list(")", lambda: operands.append(self.use()), "after operands")
        attrs = self.attr_dict() if self.at("{") and self.peek_text(1) != "^" else {}
        if name_toks and not self.at("->"):
            self.fail(f"expected '->' and the result type of {name_toks[0].text}")
        types = self.result_types() if self.accept("->") else []
        if len(types) != len(name_toks):
            self.err(f"'{op_tok.text}' names {len(name_toks)} result(s) but has "
                     f"{len(types)} result type(s)", op_tok,
                     "results are named before the op: '%a, %a#1 = op(...) -> (t1, t2)'")
        device = None
        if self.tok.kind == "symbol":
            device = decode_name(self.advance(), self.path)
        loc = self.location() if self.at("loc") else None
        # Results are defined after the operands and regions: an op cannot use its own results.
        regions: list[Block] = []
        while self.at("{"):
            regions.append(self.region())
        names = [decode_name(t, self.path) for t in name_toks]
        op = Operation(op_tok.text, names[0] if names else op_tok.text, operands, types, attrs,
                       loc, device, regions)
        for value, name, tok in zip(op.results, names, name_toks, strict=True):
            value.name = name  # results beyond the first may be named freely in the text
            self.define(value, tok)
        if self.record_positions:
            set_text_loc(op, self.loc_of(start))
        return op

    def peek_text(self, offset: int) -> str:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)].text

    # -- values ------------------------------------------------------------------------------

    def define(self, value: Value, tok: Token) -> None:
        if value.name in self.defined:
            prev = self.defined[value.name]
            raise CompileError(_diag(f"redefinition of %{value.name}", self.loc_of(tok),
                                     (prev, f"previous definition of %{value.name} is here")))
        self.defined[value.name] = self.loc_of(tok)
        self.scopes[-1][value.name] = value

    def use(self) -> Value:
        tok = self.expect_kind("value", "an operand '%name' or ')'")
        name = decode_name(tok, self.path)
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        related: tuple[tuple[SourceLocation, str], ...] = ()
        if name in self.defined:
            related = ((self.defined[name], f"%{name} is defined inside a region; values "
                                            "defined in a region are not visible outside it"),)
        raise CompileError(_diag(f"use of undefined value %{name}", self.loc_of(tok), *related))

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


def _diag(message: str, loc: SourceLocation, *related: tuple[SourceLocation, str]) -> Diagnostic:
    return Diagnostic(message, loc, "error", (), tuple(related))
