"""The def → use graph of a network, regions wired in as data flow.

Separate from the verifier because it is a view of the IR, not a check: the verifier builds it
only for its cycle check (and only when some use came before its definition), and it needs
networkx, which the rest of the IR does not import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from neuralc.ir.core import Network, Operation, Value

if TYPE_CHECKING:
    import networkx as nx


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
