"""The IR verifier: structure, names, SSA visibility, terminators, devices, types, op hooks.

`verify_module` raises the first error as a `VerifyError` naming the op and its location
(`%dense_1 (nn.dense) at m.neural:4:5: ...`); `find_problems` returns every finding in program
order, warnings included. Warnings (`severity == "warning"`) flag legal but suspicious IR: a
value nobody uses (legal, as in MLIR), an op without a source location.

IR that the frontend built and that fails here is a compiler bug, not a user error; `neuralc opt`
turns the findings into diagnostics with `as_diagnostic`, which points at the op's line in the
`.nir` file it was parsed from (`neuralc.ir.core.text_loc`) when there is one.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from neuralc.diagnostics import Diagnostic, SourceLocation, did_you_mean
from neuralc.ir.core import (
    OPS,
    Block,
    FusedLoc,
    Location,
    Module,
    Network,
    Operation,
    Value,
    VerifyError,
    primary_loc,
    text_loc,
)
from neuralc.ir.printer import describe_op, quote
from neuralc.ir.types import DTYPES, INT64_MAX, Attr, CallAttr, HPOAttr, TensorType, fits_int64
from neuralc.layers.spec import ShapeError

if TYPE_CHECKING:
    import networkx as nx

DEVICE = re.compile(r"cpu|cuda|cuda:\d+|gpu|auto")
DEVICE_HELP = 'valid devices are "cpu", "cuda", "cuda:N", "gpu" and "auto"'
HPO_KINDS = ("choice", "range", "log_range")
SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def verify_module(module: Module) -> None:
    """Raise the first error-level finding; warnings never fail verification."""
    for problem in find_problems(module):
        if problem.severity == "error":
            raise problem


def verify_network(net: Network) -> None:
    for problem in find_network_problems(net):
        if problem.severity == "error":
            raise problem


def find_problems(module: Module) -> list[VerifyError]:
    """Every error and warning in the module, in program order."""
    problems: list[VerifyError] = []
    for key, value in module.attrs.items():
        if (problem := attr_problem(value)) is not None:
            problems.append(VerifyError(f"module attribute '{key}': {problem}"))
    seen: set[str] = set()
    for net in module.networks:
        if net.name in seen:
            message = f"duplicate network @{net.name}"
            problems.append(VerifyError(f"{message}{_at(net.loc)}", detail=message, network=net))
        seen.add(net.name)
        problems += find_network_problems(net)
    return problems


def find_network_problems(net: Network) -> list[VerifyError]:
    from neuralc.ir.parser import ensure_dialects

    ensure_dialects()
    return _Checker(net).run()


def as_diagnostic(problem: VerifyError) -> Diagnostic:
    """A finding as a diagnostic. IR parsed from a file points at the op's (or network's) line
    there, with its DSL location, if any, as a related note; IR built in code points at the DSL
    location (the primary one of a fused location)."""
    severity = "warning" if problem.severity == "warning" else "error"
    op = problem.op
    item: Operation | Network | None = op if op is not None else problem.network
    message = problem.detail if op is None else f"{_describe(op)}: {problem.detail}"
    if item is None:
        return Diagnostic(message, None, severity)
    # A malformed `loc` (built in code) must not become the diagnostic's header.
    source = primary_loc(item.loc) if item.loc is not None and loc_problem(item.loc) is None \
        else None
    where = text_loc(item)
    if where is None:
        return Diagnostic(message, source, severity)
    what = "the op" if op is not None else f"network @{item.name}"  # type: ignore[union-attr]
    related = ((source, f"{what} comes from here"),) if source is not None else ()
    return Diagnostic(message, where, severity, related=related)


# -- graph ------------------------------------------------------------------------------------


def dataflow_graph(net: Network) -> nx.DiGraph:
    """Def → use edges of a network, for passes and for the cycle check.

    Nodes are the ops (`kind="op"`) and the block arguments (`kind="input"` for the network's,
    `"block_arg"` for a region's). An edge from producer to user carries `values`, the values
    that flow along it. Regions are wired in as data flow too: each operand of a region op feeds
    the matching block argument (`kind="region_arg"`), and a region's terminator feeds the op
    that owns it (`kind="yield"`).
    """
    import networkx as nx  # lazily: ~0.15 s to import, and `check` rarely needs it

    graph = nx.DiGraph()
    for arg in net.inputs:
        graph.add_node(arg, kind="input")

    def producer(value: Value) -> Operation | Value:
        return value.owner if isinstance(value.owner, Operation) else value

    def edge(src: Operation | Value, dst: Operation | Value, value: Value, kind: str) -> None:
        if graph.has_edge(src, dst):
            graph.edges[src, dst]["values"].append(value)
        else:
            graph.add_edge(src, dst, values=[value], kind=kind)

    for op in net.walk():
        graph.add_node(op, kind="op")
        for value in op.operands:
            edge(producer(value), op, value, "use")
        for region in op.regions:
            for arg, value in zip(region.args, op.operands, strict=False):
                graph.add_node(arg, kind="block_arg")
                edge(producer(value), arg, value, "region_arg")
            term = region.terminator
            if term is not None:
                for value in term.operands:
                    edge(term, op, value, "yield")
    return graph


# -- well-formedness of the pieces ------------------------------------------------------------


def type_problem(type_: object) -> str | None:
    if not isinstance(type_, TensorType):
        return f"{type_!r} is not a TensorType"
    if type_.dtype not in DTYPES:
        return f"unknown dtype {type_.dtype!r}"
    if not isinstance(type_.shape, tuple):
        return f"the shape {type_.shape!r} is not a tuple"
    for dim in type_.shape:
        if isinstance(dim, bool) or not isinstance(dim, int | str):
            return f"dimension {dim!r} is neither an int nor a symbol"
        if isinstance(dim, int) and dim < 1:
            # The frontend never makes an empty dimension, and the backends' shape checks treat
            # a 0-sized weight or feature axis as an error, so the IR has none either.
            return f"dimension {dim} is {'zero' if dim == 0 else 'negative'}: sizes are at least 1"
        if isinstance(dim, int) and not fits_int64(dim):
            return f"dimension {_short(dim)} does not fit in a 64-bit integer"
        if isinstance(dim, str) and not SYMBOL.fullmatch(dim):
            return f"dimension {dim!r} is not a symbol (an identifier like N)"
    return None


def attr_problem(value: Attr) -> str | None:
    """Why `value` cannot be an attribute value (the printer could not print it), or None."""
    if value is None or isinstance(value, bool | int | float | str):
        return None
    if isinstance(value, tuple):
        return _first(attr_problem(v) for v in value)
    if isinstance(value, dict):
        if any(not isinstance(k, str) for k in value):
            return f"dict keys must be strings: {list(value)!r}"
        return _first(attr_problem(v) for v in value.values())
    if isinstance(value, HPOAttr | CallAttr):
        what = f"hpo.{value.kind}" if isinstance(value, HPOAttr) else f"call {value.name!r}"
        if not isinstance(value.args, tuple) or not isinstance(value.kwargs, tuple):
            return f"{what}: args and kwargs must be tuples"
        if any(not (isinstance(kw, tuple) and len(kw) == 2 and isinstance(kw[0], str))
               for kw in value.kwargs):
            return f"{what}: kwargs must be (name, value) pairs"
        if isinstance(value, HPOAttr):
            if value.kind not in HPO_KINDS:
                return f"unknown HPO kind {value.kind!r} (one of {', '.join(HPO_KINDS)})"
            if value.kind == "choice" and not value.args:
                return "hpo.choice needs at least one candidate"
            if value.kind != "choice" and (len(value.args) != 2 or not all(
                    isinstance(a, int | float) and not isinstance(a, bool) for a in value.args)):
                return f"hpo.{value.kind} needs two numeric bounds"
        elif not isinstance(value.name, str) or not value.name:
            return "a call attribute needs a name"
        return _first(attr_problem(v) for v in (*value.args, *(v for _, v in value.kwargs)))
    return f"a {type(value).__name__} is not an attribute value"


def int_range_problem(value: Attr) -> str | None:
    """Why an (otherwise well-formed) attribute value holds an integer outside the int64 range
    (no backend can hold it: numpy raises OverflowError), or None."""
    if isinstance(value, bool) or value is None or isinstance(value, float | str):
        return None
    if isinstance(value, int):
        return None if fits_int64(value) else \
            f"the integer {_short(value)} does not fit in a 64-bit integer"
    items: tuple = ()
    if isinstance(value, tuple):
        items = value
    elif isinstance(value, dict):
        items = tuple(value.values())
    elif isinstance(value, HPOAttr | CallAttr):
        items = (*value.args, *(v for _, v in value.kwargs))
    return _first(int_range_problem(v) for v in items)


def loc_problem(loc: Location) -> str | None:
    locs = loc.locs if isinstance(loc, FusedLoc) else (loc,)
    if isinstance(loc, FusedLoc) and not locs:
        return "an empty fused location"
    for one in locs:
        if not (isinstance(one, SourceLocation) and isinstance(one.file, str)
                and _is_int(one.line) and _is_int(one.column)):
            return f"{one!r} is not a source location"
        if not all(1 <= n <= INT64_MAX for n in (one.line, one.column)):
            return (f"loc({quote(one.file)}:{_short(one.line)}:{_short(one.column)}): line and "
                    "column numbers start at 1")
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value: int) -> str:
    """An int for a message; a huge one by its size (str() refuses ints past 4300 digits)."""
    return str(value) if value.bit_length() <= 128 else f"({value.bit_length()}-bit integer)"


def _first(items: object) -> str | None:
    return next((p for p in items if p is not None), None)  # type: ignore[attr-defined]


def _at(loc: Location) -> str:
    where = primary_loc(loc) if loc_problem(loc) is None else None
    return f" at {where}" if where is not None else ""


def _describe(op: Operation) -> str:
    """`%dense_1 (nn.dense)`; ops without results by their place: `nn.yield in %enc
    (nn.repeat)`, `return in @Net`."""
    if op.results:
        return describe_op(op)
    owner = op.parent.parent if op.parent is not None else None
    if isinstance(owner, Operation):
        return f"{op.op} in {_describe(owner)}"
    if isinstance(owner, Network):
        return f"{op.op} in @{owner.name}"
    return op.op


# -- the checker ------------------------------------------------------------------------------


class _Checker:
    def __init__(self, net: Network) -> None:
        self.net = net
        self.problems: list[VerifyError] = []
        # Values are hashed by identity: visibility is about these objects, not their names.
        self.visible: set[Value] = set()
        self.names: dict[str, Value] = {}
        self.used: set[Value] = set()
        self.bad: set[Value] = set()  # values whose type is ill-formed; hooks skip their users
        self.misordered = False

    def report(self, op: Operation | None, detail: str, severity: str = "error") -> None:
        where = (_describe(op) + _at(op.loc)) if op is not None else \
            f"network @{self.net.name}{_at(self.net.loc)}"
        self.problems.append(VerifyError(f"{where}: {detail}", op, severity=severity,
                                         detail=detail, network=self.net))

    def errors(self) -> int:
        return sum(p.severity == "error" for p in self.problems)

    def run(self) -> list[VerifyError]:
        net = self.net
        if not isinstance(net.name, str) or not net.name:
            self.report(None, "a network needs a name")
        for key, value in net.attrs.items():
            if (problem := attr_problem(value)) is not None:
                self.report(None, f"attribute '{key}': {problem}")
        if net.loc is not None and (problem := loc_problem(net.loc)) is not None:
            self.report(None, f"bad location: {problem}")
        self.block(net.body, None, 0)
        outputs = set(net.outputs)
        for arg in net.inputs:
            if arg not in self.used:
                self.report(None, f"input %{arg.name} is never used", "warning")
        for op in net.walk():
            if op.opdef is None or not op.opdef.terminator:
                for value in op.results:
                    if value not in self.used and value not in outputs:
                        self.report(op, f"%{value.name} is never used", "warning")
        # Values are only visible after their definition, so the graph can only have a cycle
        # when some use came before its definition; skip building it (and importing networkx)
        # otherwise.
        if self.misordered:
            self.cycles()
        # Program order (findings about the network itself first), whichever pass found them:
        # the first error is then the earliest in the text.
        order = {id(op): i for i, op in enumerate(net.walk())}
        return sorted(self.problems, key=lambda p: order.get(id(p.op), -1))

    def define(self, value: Value, op: Operation | None) -> None:
        prev = self.names.get(value.name)
        if prev is not None and prev is not value:
            first = describe_op(prev.owner) if isinstance(prev.owner, Operation) else \
                "a block argument"
            self.report(op, f"duplicate name %{value.name} (first defined by {first}): names "
                            "are unique in a network")
        self.names.setdefault(value.name, value)
        if (problem := type_problem(value.type)) is not None:
            self.bad.add(value)
            self.report(op, f"%{value.name} has an ill-formed type: {problem}")
        self.visible.add(value)

    def block(self, block: Block, owner: Operation | None, index: int) -> None:
        defined: list[Value] = []
        for arg in block.args:
            self.define(arg, owner)
            defined.append(arg)
        last = len(block.ops) - 1
        for i, op in enumerate(block.ops):
            if op.parent is not block:
                self.report(op, "op.parent does not point at the block that holds it")
            self.op(op)
            for value in op.results:
                self.define(value, op)
                defined.append(value)
            if op.opdef is not None and op.opdef.terminator and i != last:
                self.report(op, f"'{op.op}' terminates a block and must be its last op")
        self.terminator(block, owner, index)
        self.visible.difference_update(defined)

    def terminator(self, block: Block, owner: Operation | None, index: int) -> None:
        last = block.ops[-1] if block.ops else None
        is_term = last is not None and last.opdef is not None and last.opdef.terminator
        if owner is None:
            expected, where = "return", "the network body"
        else:
            expected = "nn.yield" if owner.dialect == "nn" else None
            where = f"region {index}"
        if not is_term or (expected is not None and last.op != expected):  # type: ignore[union-attr]
            self.report(owner, f"{where} must end with '{expected or 'a terminator'}'"
                               + (f", not '{last.op}'" if last is not None else " (it is empty)"))
        elif owner is None and not last.operands:  # type: ignore[union-attr]
            # A network without outputs computes nothing, and no backend can emit a model
            # without outputs; the frontend always returns the last layer's value.
            self.report(last, "a network returns at least one value: 'return' has no operands")

    def op(self, op: Operation) -> None:
        errors = self.errors()
        opdef = OPS.get(op.op)
        if opdef is None:
            hint = did_you_mean(op.op, OPS)
            self.report(op, f"unknown op '{op.op}'" + (f" ({hint})" if hint else ""))
        for i, value in enumerate(op.operands):
            if not isinstance(value, Value):
                self.report(op, f"operand {i} is not a Value: {value!r}")
                continue
            self.used.add(value)
            if value not in self.visible:
                self.misordered = True
                self.report(op, f"operand %{value.name} is not defined before this use (a "
                                "value is visible after its definition, in its block and the "
                                "regions nested there)")
        if opdef is not None:
            self.counts(op, opdef.name, opdef.num_operands, opdef.num_results,
                        opdef.num_regions, opdef.max_regions)
        if op.device is not None and not (isinstance(op.device, str)
                                          and DEVICE.fullmatch(op.device)):
            self.report(op, f"invalid device {op.device!r}: {DEVICE_HELP}")
        for key, value in op.attrs.items():
            if not isinstance(key, str):
                self.report(op, f"attribute name {key!r} is not a str")
            elif (problem := attr_problem(value) or int_range_problem(value)) is not None:
                self.report(op, f"attribute '{key}': {problem}")
        if op.results and op.results[0].name != op.name:
            self.report(op, f"the op is named '{op.name}' but its first result is "
                            f"%{op.results[0].name}; the text form keeps only the latter")
        if op.loc is None:
            if opdef is None or not opdef.terminator:
                self.report(op, "has no source location", "warning")
        elif (problem := loc_problem(op.loc)) is not None:
            self.report(op, f"bad location: {problem}")
        for i, region in enumerate(op.regions):
            if region.parent is not op:
                self.report(op, f"region {i}'s parent does not point at the op")
            self.block(region, op, i)
        # Hooks assume well-formed operand and result types (a 0 or out-of-range size would
        # reach their arithmetic); an ill-formed result type is reported when it is defined.
        sound = self.errors() == errors and not any(v in self.bad for v in op.operands) and \
            not any(type_problem(v.type) is not None for v in op.results)
        if opdef is not None and opdef.verify is not None and sound:
            try:
                opdef.verify(op)
            except VerifyError as exc:
                self.report(exc.op or op, exc.detail)
            except ShapeError as exc:
                self.report(op, f"shape error: {exc.message}")

    def counts(self, op: Operation, name: str, operands: int | None, results: int | None,
               regions: int, max_regions: int | None) -> None:
        if operands is not None and len(op.operands) != operands:
            self.report(op, f"'{name}' takes {operands} operand(s), got {len(op.operands)}")
        if results is not None and len(op.results) != results:
            self.report(op, f"'{name}' has {results} result(s), got {len(op.results)}")
        top = regions if max_regions is None else max_regions
        if not regions <= len(op.regions) <= top:
            want = str(regions) if top == regions else f"{regions} to {top}"
            self.report(op, f"'{name}' takes {want} region(s), got {len(op.regions)}")

    def cycles(self) -> None:
        import networkx as nx

        graph = dataflow_graph(self.net)
        if nx.is_directed_acyclic_graph(graph):
            return
        cycle = nx.find_cycle(graph)
        names = [f"%{n.name}" if isinstance(n, Operation | Value) else repr(n)
                 for n, _ in cycle]
        first = cycle[0][0]
        self.report(first if isinstance(first, Operation) else None,
                    "the dataflow graph has a cycle: " + " -> ".join([*names, names[0]]))
