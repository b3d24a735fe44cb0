"""The IR's text form (docs/architecture.md, "IR text form"): Module → text.

The output is canonical: printing is deterministic (attributes in insertion order, floats via
`repr`, strings JSON-escaped), and `parse_module` reads it back to IR that prints identically.
Tests and `--print-ir-after-all` diff this text, so any change here is a format change.

    module {
      network @MLP(%input: f32[N,784]) attributes {loss = "cross_entropy"} loc("m.neural":1:1) {
        %dense = nn.dense(%input) {units = 128} -> f32[N,128] @"cuda:0" loc("m.neural":4:5)
        return(%dense)
      }
    }
"""

from __future__ import annotations

import json
import math
import re

from neuralc.diagnostics import SourceLocation
from neuralc.ir.core import Block, FusedLoc, Location, Module, Network, Operation, Value
from neuralc.ir.types import Attr, CallAttr, HPOAttr, TensorType

INDENT = "  "

# Names that print bare; anything else prints as a JSON string (`%"a b"`, `@"my net"`).
BARE_NAME = re.compile(r"[A-Za-z0-9_.#]+")
# Attribute keys, keyword-argument names and call names that print bare.
BARE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
BARE_CALL = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def quote(text: str) -> str:
    # ensure_ascii keeps the text 7-bit clean, so any str (even a lone surrogate) can be written
    # to a file and read back unchanged.
    return json.dumps(text)


def print_name(name: str) -> str:
    """A value's or network's name without its sigil: `dense_1`, `enc.in`, `"a b"`."""
    return name if BARE_NAME.fullmatch(name) else quote(name)


def print_value(value: Value) -> str:
    return "%" + print_name(value.name)


def print_type(type_: TensorType) -> str:
    return str(type_)


def print_key(key: str) -> str:
    return key if BARE_KEY.fullmatch(key) else quote(key)


def print_float(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = repr(value)
    # repr of a finite float always has '.' or 'e' today; the guard keeps the int/float
    # distinction explicit in the text even if that ever changes.
    return text if ("." in text or "e" in text) else text + ".0"


def print_attr(value: Attr) -> str:
    """One attribute value. Raises TypeError for values the IR cannot hold (the verifier
    reports those with the op's name first)."""
    # bool before int: bool is a subclass of int.
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return print_float(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, tuple):
        if len(value) == 1:
            return f"({print_attr(value[0])},)"
        return "(" + ", ".join(print_attr(v) for v in value) + ")"
    if isinstance(value, dict):
        return print_attr_dict(value)
    if isinstance(value, HPOAttr):
        if not BARE_KEY.fullmatch(value.kind):
            raise TypeError(f"cannot print HPO kind {value.kind!r}")
        return f"hpo.{value.kind}({_print_args(value.args, value.kwargs)})"
    if isinstance(value, CallAttr):
        # A bare name beginning with `hpo.` would read back as an HPOAttr, so quote it.
        bare = BARE_CALL.fullmatch(value.name) and not value.name.startswith("hpo.")
        name = value.name if bare else quote(value.name)
        return f"{name}({_print_args(value.args, value.kwargs)})"
    raise TypeError(f"not an IR attribute value: {value!r} ({type(value).__name__})")


def _print_args(args: tuple[Attr, ...], kwargs: tuple[tuple[str, Attr], ...]) -> str:
    parts = [print_attr(a) for a in args]
    parts += [f"{print_key(k)} = {print_attr(v)}" for k, v in kwargs]
    return ", ".join(parts)


def print_attr_dict(attrs: dict[str, Attr]) -> str:
    if any(not isinstance(k, str) for k in attrs):
        raise TypeError(f"attribute keys must be str: {list(attrs)!r}")
    return "{" + ", ".join(f"{print_key(k)} = {print_attr(v)}" for k, v in attrs.items()) + "}"


def _print_one_loc(loc: SourceLocation) -> str:
    return f"{quote(loc.file)}:{loc.line}:{loc.column}"


def print_loc(loc: Location) -> str:
    """`loc("f":1:2)`, `loc(fused["f":1:2, "f":3:4])`, or "" for an unknown location."""
    if loc is None:
        return ""
    if isinstance(loc, FusedLoc):
        return "loc(fused[" + ", ".join(_print_one_loc(one) for one in loc.locs) + "])"
    return f"loc({_print_one_loc(loc)})"


def _print_block_args(args: list[Value]) -> str:
    return ", ".join(f"{print_value(a)}: {print_type(a.type)}" for a in args)


def _op_line(op: Operation) -> str:
    parts: list[str] = []
    if op.results:
        parts.append(", ".join(print_value(r) for r in op.results) + " =")
    parts.append(f"{op.op}({', '.join(print_value(v) for v in op.operands)})")
    if op.attrs:
        parts.append(print_attr_dict(op.attrs))
    if len(op.results) == 1:
        parts.append("-> " + print_type(op.results[0].type))
    elif op.results:
        parts.append("-> (" + ", ".join(print_type(r.type) for r in op.results) + ")")
    if op.device is not None:
        parts.append("@" + quote(op.device))
    if op.loc is not None:
        parts.append(print_loc(op.loc))
    return " ".join(parts)


def _print_op_lines(op: Operation, indent: int, out: list[str]) -> None:
    pad = INDENT * indent
    line = pad + _op_line(op)
    if not op.regions:
        out.append(line)
        return
    # Regions follow the op on its line, MLIR-style: `... {`, the block label `^(args):` at the
    # op's indentation, the body one level deeper, then `}` (or `} {` opening the next region).
    for i, region in enumerate(op.regions):
        out.append((line if i == 0 else pad + "}") + " {")
        out.append(f"{pad}^({_print_block_args(region.args)}):")
        _print_block_lines(region, indent + 1, out)
    out.append(pad + "}")


def _print_block_lines(block: Block, indent: int, out: list[str]) -> None:
    for op in block.ops:
        _print_op_lines(op, indent, out)


def print_op(op: Operation, indent: int = 0) -> str:
    """One op (with its regions, if any) as text without a trailing newline."""
    out: list[str] = []
    _print_op_lines(op, indent, out)
    return "\n".join(out)


def _print_network_lines(net: Network, indent: int, out: list[str]) -> None:
    pad = INDENT * indent
    head = f"{pad}network @{print_name(net.name)}({_print_block_args(net.body.args)})"
    if net.attrs:
        head += " attributes " + print_attr_dict(net.attrs)
    if net.loc is not None:
        head += " " + print_loc(net.loc)
    out.append(head + " {")
    _print_block_lines(net.body, indent + 1, out)
    out.append(pad + "}")


def print_network(net: Network, indent: int = 0) -> str:
    """One network as text without a trailing newline."""
    out: list[str] = []
    _print_network_lines(net, indent, out)
    return "\n".join(out)


def print_module(module: Module) -> str:
    """The whole module, ending in a newline."""
    head = "module"
    if module.attrs:
        head += " attributes " + print_attr_dict(module.attrs)
    out = [head + " {"]
    for net in module.networks:
        _print_network_lines(net, 1, out)
    out.append("}")
    return "\n".join(out) + "\n"


def describe_op(op: Operation) -> str:
    """How diagnostics name an op: `%dense_1 (nn.dense)`, or just `nn.yield` without results."""
    if op.results:
        return f"{print_value(op.results[0])} ({op.op})"
    return op.op
