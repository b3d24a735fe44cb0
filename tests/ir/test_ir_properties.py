"""Properties: random well-formed modules round-trip and verify; corrupted text never crashes."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ir_testlib import golden_files

from neuralc.diagnostics import CompileError, SourceLocation
from neuralc.ir.core import Block, FusedLoc, Location, Module, Network, Operation, Value
from neuralc.ir.parser import parse_module
from neuralc.ir.printer import print_module
from neuralc.ir.types import DTYPES, Attr, CallAttr, HPOAttr, TensorType
from neuralc.ir.verifier import find_problems

SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

dims = st.one_of(st.integers(1, 4096), st.sampled_from(["N", "M", "seq", "B_2"]))
types = st.builds(TensorType, st.lists(dims, max_size=4).map(tuple), st.sampled_from(DTYPES))
# Identifier-like and arbitrary keys (the latter print quoted). Sampled pieces rather than
# st.from_regex, which is slow to draw from.
keys = st.one_of(st.sampled_from(["units", "a", "_k2", "learning_rate", "x" * 12]),
                 st.text(max_size=5))
call_names = st.one_of(st.sampled_from(["Adam", "SGD", "tf.keras.Adam", "true", "none", "inf",
                                        "hpo", "hpo.choice"]), st.text(min_size=1, max_size=5))
numbers = st.one_of(st.integers(-1000, 1000), st.floats(-1e6, 1e6))
leaves = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(),
                   st.text(max_size=8))
# An op's integer attributes are int64 (the verifier checks); module and network attributes may
# hold bigger ones.
op_leaves = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(),
                      st.text(max_size=8))


def _extend(children: st.SearchStrategy[Attr]) -> st.SearchStrategy[Attr]:
    kwargs = st.lists(st.tuples(keys, children), max_size=2).map(tuple)
    args = st.lists(children, max_size=3).map(tuple)
    return st.one_of(
        args,
        st.dictionaries(keys, children, max_size=3),
        st.builds(HPOAttr, st.just("choice"), st.lists(children, min_size=1, max_size=3)
                  .map(tuple)),
        st.builds(lambda kind, lo, hi, step: HPOAttr(kind, (lo, hi), step),
                  st.sampled_from(["range", "log_range"]), numbers, numbers,
                  st.sampled_from([(), (("step", 0.05),), (("step", 2),)])),
        st.builds(CallAttr, call_names, args, kwargs),
    )


attr_values = st.recursive(leaves, _extend, max_leaves=8)
attr_dicts = st.dictionaries(keys, attr_values, max_size=3)
op_attr_dicts = st.dictionaries(keys, st.recursive(op_leaves, _extend, max_leaves=8), max_size=3)
source_locs = st.builds(SourceLocation, st.text(max_size=6), st.integers(1, 10**6),
                        st.integers(1, 999))
locations = st.one_of(st.none(), source_locs,
                      st.lists(source_locs, min_size=1, max_size=3).map(tuple).map(FusedLoc))
devices = st.one_of(st.none(), st.sampled_from(["cpu", "cuda", "cuda:0", "cuda:7", "gpu",
                                                "auto"]))
# Names with dots and `#`, and arbitrary ones (printed quoted).
name_parts = st.sampled_from(["dense", "a", "x1", "enc", "0", "in", "#1", "_", "layer"])
names = st.one_of(st.lists(name_parts, min_size=1, max_size=3).map(".".join),
                  st.text(max_size=4))

Draw = Callable[..., object]


class _Namer:
    """Unique value names for one network, as the verifier requires."""

    def __init__(self, draw: Draw) -> None:
        self.draw = draw
        self.used: set[str] = set()

    def __call__(self, hint: str | None = None, results: int = 1) -> str:
        name = hint if hint is not None else self.draw(names)
        assert isinstance(name, str)
        while name in self.used or any(f"{name}#{i}" in self.used for i in range(1, results)):
            name += "_"
        self.used.update([name, *(f"{name}#{i}" for i in range(1, results))])
        return name


def _operands(draw: Draw, values: list[Value], low: int = 0) -> list[Value]:
    return draw(st.lists(st.sampled_from(values), min_size=low, max_size=3))  # type: ignore[return-value]


def _fill(draw: Draw, block: Block, values: list[Value], namer: _Namer, depth: int) -> None:
    """Append a random chain of ops that use the visible `values` (extended as it goes)."""
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["op", "multi", "repeat"] if depth < 2 else ["op", "multi"]))
        loc: Location = draw(locations)  # type: ignore[assignment]
        device = draw(devices)
        if kind == "repeat":
            x: Value = draw(st.sampled_from(values))  # type: ignore[assignment]
            name = namer()
            region = Block([Value(namer(name + ".in"), x.type)])
            inner = [*values, region.args[0]]
            _fill(draw, region, inner, namer, depth + 1)
            # The body maps T → T: its last op brings the value back to the operand's type.
            last = Operation("test.op", namer(name + ".layer"), _operands(draw, inner, 1),
                             [x.type], draw(op_attr_dicts), loc)  # type: ignore[arg-type]
            region.append(last)
            region.append(Operation("nn.yield", "nn.yield", [last.result], loc=draw(locations)))
            op = Operation("nn.repeat", name, [x], [x.type],
                           {"count": draw(st.integers(1, 5))}, loc, device, [region])  # type: ignore[arg-type]
        else:
            count = 1 if kind == "op" else draw(st.integers(0, 3))
            result_types = draw(st.lists(types, min_size=count, max_size=count))
            op = Operation(f"test.{kind}", namer(results=count) if count else "test.multi",
                           _operands(draw, values), result_types,  # type: ignore[arg-type]
                           draw(op_attr_dicts), loc, device)  # type: ignore[arg-type]
        block.append(op)
        values.extend(op.results)


@st.composite
def modules(draw: Draw) -> Module:
    networks = []
    for i in range(draw(st.integers(1, 2))):
        namer = _Namer(draw)
        inputs = [Value(namer(), draw(types)) for _ in range(draw(st.integers(1, 3)))]  # type: ignore[arg-type]
        body = Block(inputs)
        values = list(inputs)
        _fill(draw, body, values, namer, 0)
        body.append(Operation("return", "return", _operands(draw, values, 1)))
        networks.append(Network(f"{draw(names)}{i}", body, draw(attr_dicts),  # type: ignore[arg-type]
                                draw(locations)))  # type: ignore[arg-type]
    return Module(networks, draw(attr_dicts))  # type: ignore[arg-type]


@SETTINGS
@given(modules())
def test_random_modules_round_trip_and_verify(module: Module) -> None:
    assert [str(p) for p in find_problems(module) if p.severity == "error"] == []
    text = print_module(module)
    again = parse_module(text)
    assert print_module(again) == text
    assert [str(p) for p in find_problems(again) if p.severity == "error"] == []


GOLDEN_TEXTS = [p.read_text() for p in golden_files()]
ALPHABET = '(){}[]<>,=:^%@#."\\/-+*_ \n\taAzZ09eé'


@SETTINGS
@given(st.data())
def test_corrupted_golden_text_parses_or_raises_compile_error(data: st.DataObject) -> None:
    text = data.draw(st.sampled_from(GOLDEN_TEXTS))
    pos = data.draw(st.integers(0, len(text) - 1))
    char = data.draw(st.sampled_from(ALPHABET))
    edit = data.draw(st.sampled_from(["replace", "insert", "delete"]))
    cut = pos + (0 if edit == "insert" else 1)
    corrupted = text[:pos] + ("" if edit == "delete" else char) + text[cut:]
    try:
        module = parse_module(corrupted, "corrupt.nir")
    except CompileError as exc:
        assert exc.diagnostics and exc.diagnostics[0].loc is not None
        return
    # What parses must also print, and verify without crashing (errors are findings).
    assert print_module(parse_module(print_module(module))) == print_module(module)
    find_problems(module)
