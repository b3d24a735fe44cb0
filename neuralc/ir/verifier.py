"""The IR verifier: structure, names, SSA visibility, terminators, devices, types, op hooks.

`verify_module` raises the first error as a `VerifyError` naming the op and its location
(`%dense_1 (nn.dense) at m.neural:4:5: ...`); `find_problems` returns every finding in program
order, warnings included. Warnings (`severity == "warning"`) flag legal but suspicious IR: a
value nobody uses (legal, as in MLIR), an op without a source location.

IR that the frontend built and that fails here is a compiler bug, not a user error; `neuralc opt`
turns the findings into diagnostics with `as_diagnostic`, which points at the op's line in the
`.nir` file it was parsed from (`neuralc.ir.core.text_loc`) when there is one.

The checks of single pieces (a type, an attribute value, a location) are `wellformed`; the
def → use graph that the cycle check builds is `dataflow`.
"""

from __future__ import annotations

import re

from neuralc.diagnostics import Diagnostic, did_you_mean
from neuralc.ir.core import (
    OPS,
    Block,
    Location,
    Module,
    Network,
    Operation,
    Value,
    VerifyError,
    primary_loc,
    text_loc,
)
from neuralc.ir.dataflow import dataflow_graph
from neuralc.ir.dialects import ensure_dialects
from neuralc.ir.printer import describe_op
from neuralc.ir.wellformed import attr_problem, int_range_problem, loc_problem, type_problem
from neuralc.layers.spec import ShapeError

DEVICE = re.compile(r"cpu|cuda|cuda:\d+|gpu|auto")
DEVICE_HELP = 'valid devices are "cpu", "cuda", "cuda:N", "gpu" and "auto"'


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


# -- describing where a finding is ------------------------------------------------------------


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
