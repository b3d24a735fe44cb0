"""textX model → `ast` dataclasses, plus the structural checks a grammar cannot express.

textX objects are dynamic (their classes are made from grammar rules), hence `Any` for them.
Checks done here are the ones Python also makes at parse time: a positional argument after a
named one, a repeated argument name, a section or setting given twice.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from neuralc.diagnostics import Diagnostic, SourceLocation
from neuralc.frontend import ast


class Locator:
    """Character offsets → 1-based `SourceLocation`s (lines end at '\\n', as in textX)."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self._line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def loc(self, offset: int) -> SourceLocation:
        line = bisect.bisect_right(self._line_starts, offset)
        return SourceLocation(self.path, line, offset - self._line_starts[line - 1] + 1)

    def offset(self, line: int, column: int) -> int:
        line = min(max(line, 1), len(self._line_starts))
        return self._line_starts[line - 1] + column - 1

    def of(self, obj: Any) -> SourceLocation:
        return self.loc(obj._tx_position)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'"}
_ESCAPE_RE = re.compile(r"\\(.)")
_WORDS: dict[str, bool | None] = {
    "True": True,
    "true": True,
    "False": False,
    "false": False,
    "None": None,
    "NONE": None,
    "none": None,
}
# Placeholder for `Layer(...)`: the guide writes it for "arguments elided". It is kept as a
# value so the checker can say so at its location instead of the parser refusing the guide.
ELLIPSIS = "..."


def decode_string(token: str) -> str:
    """The value of a quoted string token; unknown escapes keep their backslash, as in Python."""
    return _ESCAPE_RE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(0)), token[1:-1])


def decode_number(token: str) -> int | float:
    if re.fullmatch(r"[-+]?\d+(_\d+)*", token):
        return int(token)
    return float(token)


class AstBuilder:
    """Builds one `Program`; collects diagnostics instead of stopping at the first."""

    def __init__(self, locator: Locator) -> None:
        self.locator = locator
        self.diagnostics: list[Diagnostic] = []

    # ---- top level -------------------------------------------------------------------------

    def program(self, model: Any, text: str) -> ast.Program:
        networks: list[ast.Network] = []
        macros: list[ast.MacroDef] = []
        # textX gives back an empty string, not a model object, for a file with no items.
        for item in getattr(model, "items", ()):
            if _rule(item) == "Network":
                networks.append(self.network(item))
            else:
                layers = self.layer_items(item.layers)
                macros.append(ast.MacroDef(item.name, layers, self.locator.of(item)))
        return ast.Program(self.locator.path, tuple(networks), tuple(macros), source=text)

    def network(self, node: Any) -> ast.Network:
        fields: dict[str, Any] = {}
        blocks: list[ast.Block] = []
        settings: list[ast.Setting] = []
        # First location of each section, for "duplicate section" diagnostics.
        seen: dict[str, SourceLocation] = {}
        for section in node.sections:
            kind = _rule(section)
            loc = self.locator.of(section)
            if kind == "SettingSection":
                settings.append(ast.Setting(section.key, self.value(section.value), loc))
                continue
            if kind == "BlockSection":
                # `execute` is upstream's other spelling of `execution`: one of them at most.
                key = "execution" if section.keyword == "execute" else section.keyword
                word = f"'{section.keyword}' block"
            else:
                key = kind.removesuffix("Section").lower()
                word = f"'{key}' section"
            if key in seen:
                self._duplicate(f"duplicate {word}", loc, seen[key], "first given here")
                continue
            seen[key] = loc
            if kind == "InputSection":
                fields["inputs"] = self.inputs(section)
            elif kind == "LayersSection":
                fields["layers"] = self.layer_items(section.layers)
                fields["layers_loc"] = loc
            elif kind == "BlockSection":
                blocks.append(self.block(section))
            else:
                fields[key] = self.value(section.value)
        self._check_unique(settings, "setting")
        return ast.Network(
            node.name,
            self.locator.of(node),
            blocks=tuple(blocks),
            settings=tuple(settings),
            **fields,
        )

    def inputs(self, section: Any) -> tuple[ast.InputSpec, ...]:
        if section.shape is not None:
            return (ast.InputSpec(None, self.shape(section.shape), self.locator.of(section)),)
        specs = tuple(
            ast.InputSpec(named.name, self.shape(named.shape), self.locator.of(named))
            for named in section.named
        )
        seen: dict[str, SourceLocation] = {}
        for spec in specs:
            assert spec.name is not None
            if spec.name in seen:
                self._duplicate(
                    f"duplicate input '{spec.name}'", spec.loc, seen[spec.name], "first given here"
                )
            seen.setdefault(spec.name, spec.loc)
        return specs

    def shape(self, node: Any) -> ast.TupleExpr:
        # `input: (3)` is a 1-tuple: a shape is always a tuple, parenthesised or not.
        items = tuple(self.value(item) for item in node.items)
        return ast.TupleExpr(items, self.locator.of(node))

    def block(self, node: Any) -> ast.Block:
        settings = tuple(
            ast.Setting(s.key, self.value(s.value), self.locator.of(s)) for s in node.settings
        )
        self._check_unique(settings, "setting")
        return ast.Block(node.keyword, settings, self.locator.of(node))

    # ---- layers ----------------------------------------------------------------------------

    def layer_items(self, nodes: Iterable[Any]) -> tuple[ast.LayerItem, ...]:
        return tuple(self.layer_item(node) for node in nodes)

    def layer_item(self, node: Any) -> ast.LayerItem:
        loc = self.locator.of(node)
        if _rule(node) == "Branch":
            return ast.Branch(node.input_name, self.layer_items(node.layers), loc)
        params = node.params
        body = node.body
        return ast.LayerCall(
            name=node.name,
            args=self.args(params.args) if params is not None else (),
            loc=loc,
            has_parens=params is not None,
            body=self.layer_items(body.layers) if body is not None else None,
            repeat=self.value(node.repeat) if node.repeat is not None else None,
            device=self.string(node.device) if node.device is not None else None,
        )

    # ---- values ----------------------------------------------------------------------------

    def args(self, nodes: Sequence[Any]) -> tuple[ast.Arg, ...]:
        args = tuple(
            ast.Arg(node.name or None, self.value(node.value), self.locator.of(node))
            for node in nodes
        )
        first_named: ast.Arg | None = None
        named: dict[str, SourceLocation] = {}
        for arg in args:
            if arg.name is None:
                if first_named is not None:
                    self.diagnostics.append(
                        Diagnostic(
                            "positional argument follows named argument",
                            arg.loc,
                            related=((first_named.loc, "first named argument is here"),),
                            notes=("write positional arguments before named ones",),
                        )
                    )
                continue
            first_named = first_named or arg
            if arg.name in named:
                self._duplicate(
                    f"duplicate argument '{arg.name}'", arg.loc, named[arg.name], "first given here"
                )
            named.setdefault(arg.name, arg.loc)
        return args

    def value(self, node: Any) -> ast.Expr:
        return self._VALUE_BUILDERS[_rule(node)](self, node)

    def _hpo(self, node: Any) -> ast.Expr:
        return ast.HPO(node.kind, self.args(node.args), self.locator.of(node))

    def _call(self, node: Any) -> ast.Expr:
        return ast.Call(node.name, self.args(node.args), self.locator.of(node))

    def _tuple(self, node: Any) -> ast.Expr:
        if len(node.items) == 1 and not node.trailing:
            # Python's reading: `(2)` groups, `(2,)` is a 1-tuple. Shapes are the exception
            # (see `shape`).
            return self.value(node.items[0])
        return ast.TupleExpr(tuple(self.value(i) for i in node.items), self.locator.of(node))

    def _list(self, node: Any) -> ast.Expr:
        return ast.ListExpr(tuple(self.value(i) for i in node.items), self.locator.of(node))

    def _literal(self, node: Any) -> ast.Expr:
        loc = self.locator.of(node)
        if node.number:
            try:
                return ast.Literal(decode_number(node.number), loc)
            except ValueError:
                # Python refuses to convert integers of more than 4300 digits.
                self.diagnostics.append(Diagnostic("number literal is too long", loc))
                return ast.Literal(0, loc)
        if node.string:
            return ast.Literal(decode_string(node.string), loc)
        return ast.Literal(_WORDS[node.word], loc)

    def string(self, node: Any) -> ast.Literal:
        return ast.Literal(decode_string(node.string), self.locator.of(node))

    def _name(self, node: Any) -> ast.Expr:
        return ast.Name(node.name, self.locator.of(node))

    def _ellipsis(self, node: Any) -> ast.Expr:
        return ast.Name(ELLIPSIS, self.locator.of(node))

    _VALUE_BUILDERS: dict[str, Callable[[AstBuilder, Any], ast.Expr]] = {
        "HPOExpr": _hpo,
        "CallExpr": _call,
        "TupleExpr": _tuple,
        "ListExpr": _list,
        "Lit": _literal,
        "NameRef": _name,
        "EllipsisExpr": _ellipsis,
    }

    # ---- diagnostics -----------------------------------------------------------------------

    def _check_unique(self, settings: Iterable[ast.Setting], what: str) -> None:
        seen: dict[str, SourceLocation] = {}
        for setting in settings:
            if setting.key in seen:
                message = f"duplicate {what} '{setting.key}'"
                self._duplicate(message, setting.loc, seen[setting.key], "first given here")
            seen.setdefault(setting.key, setting.loc)

    def _duplicate(
        self, message: str, loc: SourceLocation, first: SourceLocation, note: str
    ) -> None:
        self.diagnostics.append(Diagnostic(message, loc, related=((first, note),)))


def _rule(node: Any) -> str:
    """The grammar rule a textX object was made from."""
    return type(node).__name__
