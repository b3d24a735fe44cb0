"""Helpers shared by the parser tests: corpus paths, AST without locations, an AST printer."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from neuralc.frontend import ast

# The GPU machine has no textX: the parser tests skip there and run everywhere else.
pytest.importorskip("textx")

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
CONFORMANCE = SHARED / "conformance"
GUIDE = SHARED / "spec" / "migration_guide.md"
EXAMPLES = REPO / "examples"


def require(path: Path) -> Path:
    """Skip (with the reason) when the shared corpus is not checked out next to the repo."""
    if not path.exists():
        pytest.skip(f"{path} is missing (the shared corpus lives next to the repository)")
    return path


def conformance_files() -> list[Path]:
    """Every `.neural` file of the corpus; empty (tests then skip) when it is absent."""
    return sorted(CONFORMANCE.rglob("*.neural")) if CONFORMANCE.exists() else []


def strip(node: Any) -> Any:
    """An AST as nested tuples without locations, so two parses of different text compare."""
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        skipped = {"loc", "layers_loc", "source", "path"}
        return (type(node).__name__,) + tuple(
            (f.name, strip(getattr(node, f.name)))
            for f in dataclasses.fields(node)
            if f.name not in skipped
        )
    if isinstance(node, tuple):
        return tuple(strip(item) for item in node)
    # bool and int compare equal in Python; keep them apart.
    return (type(node).__name__, node)


def py(expr: ast.Expr | None) -> Any:
    """A compact Python form of a value, for readable expectations."""
    match expr:
        case None:
            return None
        case ast.Literal(value=value):
            return value
        case ast.Name(name=name):
            return f"<{name}>"
        case ast.TupleExpr(items=items):
            return tuple(py(i) for i in items)
        case ast.ListExpr(items=items):
            return [py(i) for i in items]
        case ast.Call(name=name, args=args):
            return (name, *[_py_arg(a) for a in args])
        case ast.HPO(kind=kind, args=args):
            return ("HPO", kind, *[_py_arg(a) for a in args])
    raise TypeError(expr)


def _py_arg(arg: ast.Arg) -> Any:
    return py(arg.value) if arg.name is None else (arg.name, py(arg.value))


# ---- printing an AST back to DSL text --------------------------------------------------------


def render_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\0", "\\0")
    return f'"{escaped}"'


def expr_tokens(expr: ast.Expr) -> list[str]:
    match expr:
        case ast.Literal(value=bool() as flag):
            return ["true" if flag else "false"]
        case ast.Literal(value=None):
            return ["None"]
        case ast.Literal(value=str() as text):
            return [render_string(text)]
        case ast.Literal(value=number):
            return [repr(number)]
        case ast.Name(name=name):
            return [name]
        case ast.TupleExpr(items=items):
            inner = _joined([expr_tokens(i) for i in items])
            return ["(", *inner, *([","] if len(items) == 1 else []), ")"]
        case ast.ListExpr(items=items):
            return ["[", *_joined([expr_tokens(i) for i in items]), "]"]
        case ast.Call(name=name, args=args):
            return [name, "(", *args_tokens(args), ")"]
        case ast.HPO(kind=kind, args=args):
            return ["HPO", "(", kind, "(", *args_tokens(args), ")", ")"]
    raise TypeError(expr)


def _joined(parts: list[list[str]]) -> list[str]:
    out: list[str] = []
    for i, part in enumerate(parts):
        out += ([","] if i else []) + part
    return out


def args_tokens(args: tuple[ast.Arg, ...]) -> list[str]:
    return _joined([([a.name, "="] if a.name else []) + expr_tokens(a.value) for a in args])


def layer_tokens(item: ast.LayerItem) -> list[str]:
    if isinstance(item, ast.Branch):
        return [item.input_name, ":", "{", *_items(item.layers), "}"]
    out = [item.name]
    if item.has_parens:
        out += ["(", *args_tokens(item.args), ")"]
    if item.body is not None:
        out += ["{", *_items(item.body), "}"]
    if item.repeat is not None:
        out += ["*", *expr_tokens(item.repeat)]
    if item.device is not None:
        out += ["@", *expr_tokens(item.device)]
    return out


def _items(items: tuple[ast.LayerItem, ...]) -> list[str]:
    return [token for item in items for token in layer_tokens(item)]


def render_layer(item: ast.LayerItem) -> str:
    """One layer in canonical one-line form: `Conv2D(32, (3, 3)) * 2 @ "cuda:0"`."""
    return join_tokens(layer_tokens(item))


def join_tokens(tokens: list[str], gaps: list[str] | None = None) -> str:
    """Tokens joined canonically, or with the given whitespace/comment gaps between them."""
    out = tokens[0] if tokens else ""
    for i, token in enumerate(tokens[1:]):
        prev = tokens[i]
        if gaps is not None:
            gap = gaps[i % len(gaps)] if gaps else ""
        elif token in (",", ")", "]", ":", "=") or prev in ("(", "[", "="):
            gap = ""
        elif token == "(" and (prev[0].isalpha() or prev[0] == "_"):
            gap = ""  # a call's parenthesis hugs its name
        else:
            gap = " "
        # Two words (or a word and a number) need something between them.
        if not gap and _wordish(prev[-1]) and _wordish(token[0]):
            gap = " "
        out += gap + token
    return out


def _wordish(ch: str) -> bool:
    return ch.isalnum() or ch in "_.\"'-+"


def guide_yaml_blocks() -> list[tuple[int, str]]:
    """(line number, code) of every ```yaml block of the migration guide."""
    text = require(GUIDE).read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, m.start(1)) + 1, m.group(1))
        for m in re.finditer(r"```yaml\n(.*?)```", text, re.DOTALL)
    ]


def is_program(code: str) -> bool:
    return re.match(r"(\s*#[^\n]*\n)*\s*(network|define)\b", code) is not None


def wrap_fragment(code: str) -> str:
    """A guide fragment (`optimizer: ...`, `train { }`) inside a minimal network."""
    return f"network Fragment {{\n  input: (512, 768)\n{code}\n}}\n"


def render_expr(expr: ast.Expr) -> str:
    return join_tokens(expr_tokens(expr))


def dump(program: ast.Program) -> str:
    """A program's structure as canonical text, one line per thing: what the conformance
    expectations are written in (bare names stay bare, strings stay quoted)."""
    lines: list[str] = []
    for macro in program.macros:
        lines.append(f"macro {macro.name}")
        lines += [f"  {render_layer(item)}" for item in macro.layers]
    for net in program.networks:
        lines.append(f"network {net.name}")
        for spec in net.inputs:
            name = f" {spec.name}" if spec.name is not None else ""
            lines.append(f"  input{name}: {render_expr(spec.shape)}")
        lines += [f"  layer: {render_layer(item)}" for item in net.layers]
        for key in ("loss", "optimizer", "metrics"):
            value = getattr(net, key)
            if value is not None:
                lines.append(f"  {key}: {render_expr(value)}")
        for block in net.blocks:
            settings = "; ".join(f"{s.key}: {render_expr(s.value)}" for s in block.settings)
            lines.append(f"  {block.keyword} {{ {settings} }}")
        lines += [f"  setting {s.key}: {render_expr(s.value)}" for s in net.settings]
    return "\n".join(lines) + "\n"
