"""Generate `docs/layers.md` from the layer registry: `python -m neuralc.docs_gen > docs/layers.md`.

Everything in the page comes from the `LayerSpec`s (parameters, shape rules' docs, weights of a
worked example), so the page cannot drift from what the compiler checks; a test compares the
committed page with this output.
"""

from __future__ import annotations

import sys
from typing import Any

from neuralc.layers import LayerSpec, Param, all_layers
from neuralc.layers.binding import bind
from neuralc.layers.families import EXAMPLES, compose, dims
from neuralc.layers.families.common import dsl_call
from neuralc.layers.param_text import format_value, signature

CATEGORIES = ("core", "convolution", "pooling", "reshaping", "normalization", "attention",
              "recurrent", "structure")

_KINDS = {"int": "int", "float": "float", "bool": "bool", "str": "string", "ints": "int tuple",
          "shape": "shape", "activation": "activation", "any": "any"}

_INTRO = """\
# Layers

Generated from the layer registry (`neuralc/layers/families/`) by
`python -m neuralc.docs_gen > docs/layers.md`; do not edit by hand.

## Conventions
- Types print as `f32[N,28,28,1]`: dtype, then the shape with the batch `N` first. Layouts are
  channels-last, as in Keras: images `(H, W, C)`, sequences `(L, C)`.
- Arguments bind positionally in the order of each signature below, or by name (aliases
  accepted). A single int for a tuple parameter means the same value on every axis
  (`kernel_size=3` → `(3, 3)`); `activation=None` means `"linear"`.
- Parameter counts equal the PyTorch module named under each layer (Keras' for
  MultiHeadAttention); weights are stored under that module's state_dict names and layouts.
- Any argument may be an `HPO(...)` expression; every candidate is checked against the
  parameter's type and range.

## Dynamic dimensions
""" + dims.__doc__.split("The policy:", 1)[1].strip("\n") + """

## Composition rules
""" + compose.__doc__.split("\n\n", 1)[1].strip("\n") + "\n"


def _constraints(p: Param) -> str:
    parts: list[str] = []
    if p.choices is not None:
        parts.append("one of " + ", ".join(format_value(c) for c in p.choices))
    lo, hi = p.minimum, p.maximum
    if lo is not None and hi is not None:
        left, right = "(" if p.minimum_exclusive else "[", ")" if p.maximum_exclusive else "]"
        parts.append(f"in {left}{_num(lo)}, {_num(hi)}{right}")
    elif lo is not None:
        parts.append(f"{'>' if p.minimum_exclusive else '≥'} {_num(lo)}")
    elif hi is not None:
        parts.append(f"{'<' if p.maximum_exclusive else '≤'} {_num(hi)}")
    return "; ".join(parts)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _param_table(spec: LayerSpec) -> list[str]:
    if not spec.params:
        return ["No parameters.", ""]
    rows = ["| parameter | type | default | aliases | constraints | meaning |",
            "| --- | --- | --- | --- | --- | --- |"]
    for p in spec.params:
        kind = _KINDS[p.kind] + (f" ×{p.rank}" if p.kind == "ints" and p.rank else "")
        default = "required" if p.required else f"`{format_value(p.default)}`"
        aliases = ", ".join(f"`{a}`" for a in p.aliases)
        rows.append(f"| `{p.name}` | {kind} | {default} | {aliases} | {_constraints(p)} | "
                    f"{p.doc} |")
    return [*rows, ""]


def _example(spec: LayerSpec) -> list[str]:
    args, inputs = EXAMPLES[spec.name]
    attrs = bind(spec, args)
    out = spec.infer(attrs, inputs)
    shown_in = ", ".join(f"`{t}`" for t in inputs)
    lines = [f"Example: `{dsl_call(spec.name, args)}` on {shown_in} → `{out}`"]
    weights = spec.weights(attrs, inputs)
    if weights:
        lines += ["", "| weight | shape | init | trainable |", "| --- | --- | --- | --- |"]
        for name, w in weights.items():
            lines.append(f"| `{name}` | {list(w.shape)} | {w.init} | "
                         f"{'yes' if w.trainable else 'no (buffer)'} |")
        lines += ["", f"Parameters: {spec.count_params(attrs, inputs):,}"]
    return [*lines, ""]


def _section(spec: LayerSpec) -> list[str]:
    lines = [f"### {spec.name}", "", f"`{signature(spec)}` — op `{spec.op_name}`", ""]
    facts = [f"matches `{spec.reference}`"] if spec.reference.startswith(("torch", "keras")) \
        else []
    if spec.arity is None:
        facts.append("takes two or more inputs")
    if spec.takes_body:
        facts.append("takes a `{ ... }` block")
    if spec.tags:
        facts.append("tags: " + ", ".join(f"`{t}`" for t in sorted(spec.tags)))
    if facts:
        text = "; ".join(facts)
        lines += [text[0].upper() + text[1:] + ".", ""]
    lines += [spec.doc, ""]
    return lines + _param_table(spec) + _example(spec)


def render() -> str:
    layers = sorted(all_layers(), key=lambda s: (_order(s.category), s.name))
    out = [_INTRO, "## Index", ""]
    for category in CATEGORIES:
        names = [s.name for s in layers if s.category == category]
        if names:
            out.append(f"- {category}: " + ", ".join(f"[{n}](#{n.lower()})" for n in names))
    out.append("")
    current: Any = None
    for spec in layers:
        if spec.category != current:
            current = spec.category
            out += [f"## {current.capitalize()}", ""]
        out += _section(spec)
    return "\n".join(out).rstrip("\n") + "\n"


def _order(category: str) -> int:
    return CATEGORIES.index(category) if category in CATEGORIES else len(CATEGORIES)


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
