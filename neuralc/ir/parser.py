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

This module holds the structure (module, network, op, region) and the scoping of SSA names; the
token cursor is `token_stream`, and the terms an op carries (types, locations, attributes) are
`term_parser`.
"""

from __future__ import annotations

from neuralc.diagnostics import CompileError, Diagnostic, SourceLocation, did_you_mean
from neuralc.ir.core import OPS, Block, Module, Network, Operation, Value, set_text_loc
from neuralc.ir.dialects import ensure_dialects
from neuralc.ir.lexer import Token, decode_name, tokenize
from neuralc.ir.term_parser import TermParser

NO_FILE = "<ir>"


def parse_module(text: str, path: str = NO_FILE) -> Module:
    """Parse IR text; raises CompileError with the IR file's line:col on the first error.

    Unless `path` is the default (text built in memory, e.g. to copy a network), every op and
    network records where it was parsed, for the verifier's diagnostics."""
    ensure_dialects()
    return _Parser(tokenize(text, path), path, record_positions=path != NO_FILE).module()


class _Parser(TermParser):
    def __init__(self, tokens: list[Token], path: str, record_positions: bool = False) -> None:
        super().__init__(tokens, path)
        self.record_positions = record_positions
        # Visible values, innermost block last; and every name defined in the current network
        # (names are unique per network, even across regions), with where it was defined.
        self.scopes: list[dict[str, Value]] = []
        self.defined: dict[str, SourceLocation] = {}

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


def _diag(message: str, loc: SourceLocation, *related: tuple[SourceLocation, str]) -> Diagnostic:
    return Diagnostic(message, loc, "error", (), tuple(related))
