"""A network's `input:` declaration → typed IR values: the leading None is the batch, other
Nones are named dynamic dimensions, and an input feeding an Embedding holds int64 ids."""

from __future__ import annotations

from neuralc.diagnostics import Diagnostic, SourceLocation, error
from neuralc.frontend import ast
from neuralc.frontend.values import show, to_attr
from neuralc.ir.core import Value
from neuralc.ir.types import BATCH, INT64_MAX, TensorType, fits_int64
from neuralc.layers import get_layer


def network_inputs(
    net: ast.Network, macros: dict[str, ast.MacroDef], warnings: list[Diagnostic]
) -> tuple[list[Value], SourceLocation | None]:
    """The network's inputs as typed values, and where a leading None (the batch) was dropped."""
    batch_none: SourceLocation | None = None
    values: list[Value] = []
    symbols = iter(f"s{i}" for i in range(1_000))
    names: set[str] = set()
    for spec in net.inputs:
        name = spec.name or "input"
        if name in names:
            raise error(f"input '{name}' is declared twice", spec.loc)
        names.add(name)
        for node in spec.shape.items:
            if isinstance(node, ast.HPO):
                # The data's shape is fixed by the data set, not searched: every trial of
                # `neuralc tune` reads the same arrays, and `check` builds one input type.
                raise error(
                    "HPO is not supported in input shapes",
                    node.loc,
                    "the input shape is the shape of your data: write it as numbers, e.g. "
                    "input: (28, 28, 1), and put the HPO(...) on a layer argument instead",
                )
        dims = [to_attr(d) for d in spec.shape.items]
        if dims and dims[0] is None and len(dims) > 1:
            dims = dims[1:]
            batch_none = spec.shape.items[0].loc
            warnings.append(
                Diagnostic(
                    "the leading None is the batch dimension; it is dropped from the input shape",
                    spec.shape.items[0].loc,
                    "note",
                )
            )
        shape: list[int | str] = [BATCH]
        for dim, node in zip(dims, spec.shape.items[-len(dims) :] if dims else (), strict=True):
            if dim is None:
                shape.append(next(symbols))
            elif isinstance(dim, int) and not isinstance(dim, bool) and dim > 0:
                if not fits_int64(dim):
                    raise error(f"input dimension {dim} does not fit in a 64-bit integer",
                                node.loc, f"sizes are at most 2**63 - 1 = {INT64_MAX:,}")
                shape.append(dim)
            else:
                raise error(
                    f"input dimension must be a positive integer or None, got {show(dim)}",
                    node.loc,
                )
        if len(shape) == 1:
            raise error("input shape is empty", spec.loc, "write e.g. input: (784,)")
        dtype = (
            "i64" if starts_with_embedding(net, spec.name, macros) and len(shape) == 2 else "f32"
        )
        values.append(Value(name, TensorType(tuple(shape), dtype)))
    return values, batch_none


def starts_with_embedding(
    net: ast.Network, input_name: str | None, macros: dict[str, ast.MacroDef]
) -> bool:
    """Whether the first layer fed by this input (through macros) is an Embedding: then the
    input holds int64 token ids (semantics.md)."""
    items: tuple[ast.LayerItem, ...] = net.layers
    if input_name is not None:
        branch = next(
            (b for b in net.layers if isinstance(b, ast.Branch) and b.input_name == input_name),
            None,
        )
        items = branch.layers if branch else ()
    while items:
        first = items[0]
        if not isinstance(first, ast.LayerCall):
            return False
        if first.name in macros:
            items = macros[first.name].layers
            continue
        spec = get_layer(first.name)
        return spec is not None and spec.name == "Embedding"
    return False
