"""Property tests: generated programs round-trip; corrupted programs never crash the parser."""

from __future__ import annotations

import re
from typing import Any

import pytest
from frontend_testlib import (
    EXAMPLES,
    args_tokens,
    conformance_files,
    expr_tokens,
    join_tokens,
    layer_tokens,
    strip,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuralc.diagnostics import SourceLocation
from neuralc.frontend import ast
from neuralc.frontend.parser import ParseError, parse_text

LOC = SourceLocation("<generated>", 1, 1)
KEYWORDS = {
    "network", "define", "input", "layers", "loss", "optimizer", "metrics",
    "train", "execution", "execute", "HPO",
}  # fmt: skip
LITERAL_WORDS = {"True", "true", "False", "false", "None", "NONE", "none"}
# Sized so the whole tests/frontend suite stays well under 20 s on two cores.
ROUND_TRIP_SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
CORRUPTION_SETTINGS = settings(max_examples=200, deadline=None)

_LETTERS = "abcxyzABCXYZ_"
idents = st.builds(
    str.__add__,
    st.sampled_from(_LETTERS),
    st.text(_LETTERS + "0123456789", max_size=6),
)
plain_names = idents.filter(lambda s: s not in KEYWORDS | LITERAL_WORDS)
value_names = idents.filter(lambda s: s not in LITERAL_WORDS | {"HPO"})

literals = st.one_of(
    st.integers(-(10**6), 10**15),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=6),
    st.booleans(),
    st.none(),
).map(lambda v: ast.Literal(v, LOC))
strings = st.text(max_size=6).map(lambda v: ast.Literal(v, LOC))


def arg_lists(values: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[ast.Arg, ...]]:
    """Positional arguments first, then uniquely named ones (what the parser accepts)."""
    positional = st.lists(values, max_size=2).map(lambda vs: [ast.Arg(None, v, LOC) for v in vs])
    named = st.dictionaries(idents, values, max_size=2).map(
        lambda d: [ast.Arg(k, v, LOC) for k, v in d.items()]
    )
    return st.tuples(positional, named).map(lambda pn: tuple(pn[0] + pn[1]))


def _compound(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    items = st.lists(children, max_size=3).map(tuple)
    return st.one_of(
        items.map(lambda i: ast.TupleExpr(i, LOC)),
        items.map(lambda i: ast.ListExpr(i, LOC)),
        st.builds(lambda n, a: ast.Call(n, a, LOC), value_names, arg_lists(children)),
        st.builds(
            lambda k, a: ast.HPO(k, a, LOC),
            st.sampled_from(["choice", "range", "log_range"]),
            arg_lists(children),
        ),
    )


exprs = st.recursive(
    literals | value_names.map(lambda n: ast.Name(n, LOC)) | st.just(ast.Name("...", LOC)),
    _compound,
    max_leaves=4,
)
repeats = st.one_of(
    st.integers(0, 64).map(lambda v: ast.Literal(v, LOC)),
    arg_lists(st.integers(1, 9).map(lambda v: ast.Literal(v, LOC))).map(
        lambda a: ast.HPO("choice", a, LOC)
    ),
)


def layer_items(depth: int) -> st.SearchStrategy[tuple[ast.LayerItem, ...]]:
    calls = st.builds(
        lambda name, args, parens, body, repeat, device: ast.LayerCall(
            name, args if parens else (), LOC, parens, body, repeat, device
        ),
        plain_names,
        arg_lists(exprs),
        st.booleans(),
        st.none() | layer_items(depth - 1) if depth else st.none(),
        st.none() | repeats,
        st.none() | strings,
    )
    item: st.SearchStrategy[ast.LayerItem] = calls
    if depth:
        branches = st.builds(
            lambda n, b: ast.Branch(n, b, LOC), plain_names, layer_items(depth - 1)
        )
        item = calls | branches
    return st.lists(item, max_size=3 if depth == 2 else 2).map(tuple)


shapes = st.lists(st.none() | st.integers(1, 4096), max_size=4).map(
    lambda dims: ast.TupleExpr(tuple(ast.Literal(d, LOC) for d in dims), LOC)
)


@st.composite
def networks(draw: st.DrawFn) -> tuple[ast.Network, list[str]]:
    """A network and its tokens, sections in a random order."""
    sections: list[tuple[str, list[str]]] = []
    fields: dict[str, Any] = {}
    if draw(st.booleans()):
        shape = draw(shapes)
        fields["inputs"] = (ast.InputSpec(None, shape, LOC),)
        sections.append(("input", ["input", ":", *_shape_tokens(shape, draw)]))
    elif draw(st.booleans()):
        named = draw(st.dictionaries(idents, shapes, min_size=1, max_size=3))
        fields["inputs"] = tuple(ast.InputSpec(n, s, LOC) for n, s in named.items())
        tokens = [tok for n, s in named.items() for tok in [n, ":", *_shape_tokens(s, draw), ","]]
        sections.append(("input", ["input", ":", "{", *tokens, "}"]))
    if draw(st.booleans()):
        fields["layers"] = draw(layer_items(2))
        tokens = [t for item in fields["layers"] for t in layer_tokens(item) + _semi(draw)]
        sections.append(("layers", ["layers", ":", *tokens]))
    for key in ("loss", "optimizer", "metrics"):
        if draw(st.booleans()):
            fields[key] = draw(exprs)
            sections.append((key, [key, ":", *expr_tokens(fields[key]), *_semi(draw)]))
    keywords = draw(st.sampled_from([[], ["train"], ["execute"], ["train", "execution"]]))
    for keyword in keywords:
        block = ast.Block(keyword, draw(_settings(idents)), LOC)
        tokens = [t for s in block.settings for t in [s.key, ":", *expr_tokens(s.value)]]
        sections.append((f"block:{keyword}", [keyword, "{", *tokens, "}"]))
        fields[f"block:{keyword}"] = block
    for setting in draw(_settings(plain_names)):
        tokens = [setting.key, ":", *expr_tokens(setting.value), *_semi(draw)]
        sections.append((f"setting:{setting.key}", tokens))
        fields[f"setting:{setting.key}"] = setting
    order = draw(st.permutations(sections))
    blocks = tuple(fields.pop(k) for k, _ in order if k.startswith("block:"))
    settings_ = tuple(fields.pop(k) for k, _ in order if k.startswith("setting:"))
    name = draw(idents)
    network = ast.Network(name, LOC, blocks=blocks, settings=settings_, **fields)
    return network, ["network", name, "{", *[t for _, ts in order for t in ts], "}"]


def _shape_tokens(shape: ast.TupleExpr, draw: st.DrawFn) -> list[str]:
    tokens = expr_tokens(shape)
    if len(shape.items) == 1 and draw(st.booleans()):
        tokens.remove(",")  # `(3)` is a 1-tuple in a shape
    return tokens


def _semi(draw: st.DrawFn) -> list[str]:
    return [";"] if draw(st.integers(0, 3)) == 0 else []


def _settings(keys: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[ast.Setting, ...]]:
    return st.dictionaries(keys, exprs, max_size=2).map(
        lambda d: tuple(ast.Setting(k, v, LOC) for k, v in d.items())
    )


macros = st.builds(
    lambda n, layers: (ast.MacroDef(n, layers, LOC), ["define", n, "{", *_items(layers), "}"]),
    idents,
    layer_items(1),
)


def _items(layers: tuple[ast.LayerItem, ...]) -> list[str]:
    return [t for item in layers for t in layer_tokens(item)]


GAPS = ["", " ", "  ", "\n", "\n    ", "\t", " # note: (unclosed { in a comment\n", "\r\n"]


@ROUND_TRIP_SETTINGS
@given(
    items=st.lists(networks() | macros, min_size=1, max_size=2),
    gaps=st.lists(st.sampled_from(GAPS), min_size=1, max_size=16),
)
def test_generated_programs_round_trip(items: list[tuple[Any, list[str]]], gaps: list[str]) -> None:
    text = join_tokens([t for _, tokens in items for t in tokens], gaps)
    program = parse_text(text, "gen.neural")
    expected_networks = tuple(node for node, _ in items if isinstance(node, ast.Network))
    expected_macros = tuple(node for node, _ in items if isinstance(node, ast.MacroDef))
    assert strip(program.networks) == strip(expected_networks)
    assert strip(program.macros) == strip(expected_macros)


def test_round_trip_helpers_render_arguments() -> None:
    args = (ast.Arg(None, ast.Literal(1, LOC), LOC), ast.Arg("k", ast.Name("v", LOC), LOC))
    assert join_tokens(args_tokens(args)) == "1, k=v"


# ---- corruptions --------------------------------------------------------------------------

CORPUS = {p: p.read_text(encoding="utf-8") for p in conformance_files()} or {
    p: p.read_text(encoding="utf-8") for p in sorted(EXAMPLES.glob("*.neural"))
}
TOKEN_RE = re.compile(r"\w+|\S")
VOCABULARY = sorted(KEYWORDS) + list("(){}[],:;=*@#\"'.-") + ["...", "choice", "1e-3", "\n"]
CHARACTERS = st.sampled_from(VOCABULARY) | st.characters()


@st.composite
def corruptions(draw: st.DrawFn) -> str:
    text = CORPUS[draw(st.sampled_from(sorted(CORPUS)))]
    kind = draw(st.sampled_from(["delete", "insert", "replace", "token"]))
    if kind == "token":
        tokens = list(TOKEN_RE.finditer(text))
        match = tokens[draw(st.integers(0, len(tokens) - 1))]
        start, end = match.span()
        how = draw(st.sampled_from(["delete", "duplicate", "replace"]))
        new = {"delete": "", "duplicate": match.group() * 2}.get(how) or draw(CHARACTERS)
        return text[:start] + new + text[end:]
    i = draw(st.integers(0, len(text)))
    if kind == "delete":
        return text[:i] + text[i + 1 :]
    new = draw(CHARACTERS)
    return text[:i] + new + text[i + (kind == "replace") :]


def _inside(loc: SourceLocation | None, lines: list[str]) -> bool:
    return (
        loc is not None
        and loc.file == "bad.neural"
        and 1 <= loc.line <= len(lines)
        and 1 <= loc.column <= len(lines[loc.line - 1]) + 1
    )


@pytest.mark.skipif(not CORPUS, reason="no programs to corrupt")
@CORRUPTION_SETTINGS
@given(text=corruptions())
def test_corrupted_programs_parse_or_point_inside_the_file(text: str) -> None:
    try:
        parse_text(text, "bad.neural")
    except ParseError as exc:
        lines = text.split("\n")
        for diagnostic in exc.diagnostics:
            assert diagnostic.message
            assert _inside(diagnostic.loc, lines), (diagnostic.loc, diagnostic.message)
            assert all(_inside(loc, lines) for loc, _ in diagnostic.related)
        assert exc.render(exc.sources)
