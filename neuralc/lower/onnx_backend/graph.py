"""Building an ONNX graph: nodes with traceable names, initializers, constants, layouts.

Names. A node is named `<layer>/<part>/<OpType>` (`transformer_encoder.3/self_attn/MatMul`),
suffixed `_1`, `_2`, … when a layer emits the same op twice in one part; its single output
tensor carries the node's name. Weight initializers carry their weight-file key
(`transformer_encoder.3.self_attn.in_proj_weight`) and hold exactly the weight file's array;
where an op wants another layout (a transposed Linear weight, reordered LSTM gates) the graph
derives it with Transpose/Split/Concat nodes on the initializer, which ONNX Runtime folds into a
constant when the session starts. Other constants (shapes, scalars, masks) are initializers
named `<layer>/<hint>`, shared between layers when equal.

Layouts. Every IR value is channels-last (`cl`), as the DSL defines. A run of spatial ops
(convolutions, pooling) works channels-first (`cf`, the layout ONNX's Conv wants); a `Slot`
holds a value's tensor per layout, and a conversion (one Transpose) is made once per value and
layout, on demand, so consecutive spatial ops never transpose in between.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from neuralc.diagnostics import CompileError, Diagnostic, SourceLocation
from neuralc.ir.core import Operation

CL = "cl"
CF = "cf"

ONNX_DTYPES: dict[str, int] = {
    "f32": TensorProto.FLOAT, "f64": TensorProto.DOUBLE, "f16": TensorProto.FLOAT16,
    "bf16": TensorProto.BFLOAT16, "i64": TensorProto.INT64, "i32": TensorProto.INT32,
    "i8": TensorProto.INT8, "bool": TensorProto.BOOL,
}  # fmt: skip

# Constants up to this many elements are shared between layers when equal.
_SHARE_LIMIT = 1 << 16


def cl_to_cf(rank: int) -> list[int]:
    """Permutation that moves the last (channel) axis to position 1."""
    return [0, rank - 1, *range(1, rank - 1)]


def cf_to_cl(rank: int) -> list[int]:
    return [0, *range(2, rank), 1]


def cf_axis(axis: int, rank: int) -> int:
    """Where the channels-last axis `axis` sits in the channels-first layout."""
    axis %= rank
    if axis == 0:
        return 0
    return 1 if axis == rank - 1 else axis + 1


# A layer's lowering: (its scope, the op, concrete attributes, its operands' slots) -> result.
Lowering = Callable[["Scope", Operation, dict[str, Any], list["Slot"]], "Slot"]


@dataclass
class Slot:
    """One IR value's tensors, per layout (`cl` always obtainable; `cf` for rank ≥ 3)."""

    rank: int
    names: dict[str, str] = field(default_factory=dict)

    def has(self, layout: str) -> bool:
        return layout in self.names


class GraphBuilder:
    """Accumulates the nodes and initializers of one ONNX graph."""

    def __init__(self, opset: int, weights: Mapping[str, np.ndarray]) -> None:
        self.opset = opset
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self.used_weights: list[str] = []
        self._names: set[str] = set()
        self._shared: dict[tuple[str, tuple[int, ...], bytes], str] = {}
        self._derived: dict[tuple[str, str], str] = {}
        self.domains: set[str] = set()  # non-default operator domains used (com.microsoft)

    # Names ------------------------------------------------------------------------------------

    def taken(self, name: str) -> bool:
        return name in self._names

    def fresh(self, base: str) -> str:
        name, counter = base, 0
        while name in self._names:
            counter += 1
            name = f"{base}_{counter}"
        self._names.add(name)
        return name

    # Initializers -----------------------------------------------------------------------------

    def weight(self, key: str) -> str:
        """The initializer holding weight-file tensor `key`, exactly as stored."""
        if key not in self._names:
            array = np.ascontiguousarray(self.weights[key], dtype=np.float32)
            self.initializers.append(numpy_helper.from_array(array, key))
            self._names.add(key)
            self.used_weights.append(key)
        return key

    def const(self, value: Any, hint: str, dtype: type = np.float32) -> str:
        array = np.asarray(value, dtype=dtype)
        share = array.size <= _SHARE_LIMIT
        cache_key = (str(array.dtype), array.shape, array.tobytes())
        if share and cache_key in self._shared:
            return self._shared[cache_key]
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(array, name))
        if share:
            self._shared[cache_key] = name
        return name

    def ints(self, values: Sequence[int], hint: str) -> str:
        return self.const(list(values), hint, np.int64)

    def derived(self, key: str, tag: str) -> str | None:
        """A previously derived form (`tag`) of weight `key`, so tied uses share it."""
        return self._derived.get((key, tag))

    def remember(self, key: str, tag: str, name: str) -> str:
        self._derived[(key, tag)] = name
        return name

    # Nodes ------------------------------------------------------------------------------------

    def add_node(
        self,
        op_type: str,
        inputs: Sequence[str],
        base: str,
        doc: str,
        outputs: int = 1,
        domain: str = "",
        **attrs: Any,
    ) -> list[str]:
        name = self.fresh(base)
        out_names = [name if i == 0 else self.fresh(f"{name}:{i}") for i in range(outputs)]
        node = helper.make_node(
            op_type,
            list(inputs),
            out_names,
            name=name,
            doc_string=doc,
            domain=domain or None,
            **{k: v for k, v in attrs.items() if v is not None},
        )
        self.nodes.append(node)
        if domain:
            self.domains.add(domain)
        return out_names

    def rename_output(self, old: str, new: str) -> None:
        for node in self.nodes:
            for i, name in enumerate(node.output):
                if name == old:
                    node.output[i] = new
            for i, name in enumerate(node.input):
                if name == old:
                    node.input[i] = new
        self._names.add(new)

    def produced(self, name: str) -> bool:
        return any(name in node.output for node in self.nodes)


class Scope:
    """Emits the nodes of one layer: names under the layer, the layer's source line as doc."""

    def __init__(
        self, graph: GraphBuilder, layer: str, loc: SourceLocation | None, doc: str | None = None
    ) -> None:
        self.graph = graph
        self.layer = layer
        self.loc = loc
        # `file:line` of the layer, or of every fused op's source (`doc`, comma-separated).
        self.doc = doc if doc is not None else f"{loc.file}:{loc.line}" if loc is not None else ""
        self.part = ""

    @property
    def opset(self) -> int:
        return self.graph.opset

    def error(self, message: str, *notes: str) -> CompileError:
        return CompileError(Diagnostic(message, self.loc, "error", tuple(notes)))

    def child(self, part: str) -> Scope:
        scope = Scope(self.graph, self.layer, self.loc, self.doc)
        scope.part = f"{self.part}/{part}" if self.part else part
        return scope

    def _base(self, op_type: str) -> str:
        return f"{self.layer}/{self.part}/{op_type}" if self.part else f"{self.layer}/{op_type}"

    # Nodes ------------------------------------------------------------------------------------

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        return self.graph.add_node(op_type, inputs, self._base(op_type), self.doc, **attrs)[0]

    def op_n(self, op_type: str, inputs: Sequence[str], outputs: int, **attrs: Any) -> list[str]:
        return self.graph.add_node(op_type, inputs, self._base(op_type), self.doc, outputs, **attrs)

    # Constants and weights --------------------------------------------------------------------

    def const(self, value: Any, hint: str, dtype: type = np.float32) -> str:
        return self.graph.const(value, f"{self.layer}/{hint}", dtype)

    def ints(self, values: Sequence[int], hint: str = "shape") -> str:
        return self.graph.ints(values, f"{self.layer}/{hint}")

    def scalar(self, value: float, hint: str = "scalar") -> str:
        return self.const(np.float32(value), hint)

    def weight(self, suffix: str) -> str:
        return self.graph.weight(f"{self.layer}.{suffix}")

    def has_weight(self, suffix: str) -> bool:
        return f"{self.layer}.{suffix}" in self.graph.weights

    def weight_t(self, suffix: str) -> str:
        """Weight `suffix` transposed (a Linear's [out, in] as [in, out]), folded by ORT."""
        key = f"{self.layer}.{suffix}"
        cached = self.graph.derived(key, "T")
        if cached is not None:
            return cached
        return self.graph.remember(key, "T", self.op("Transpose", self.weight(suffix), perm=[1, 0]))

    # Opset-dependent helpers ------------------------------------------------------------------

    def reduce(self, op_type: str, x: str, axes: Sequence[int], keepdims: bool) -> str:
        if self.opset >= 18 or op_type == "ReduceSum":
            return self.op(op_type, x, self.ints(axes, "axes"), keepdims=int(keepdims))
        return self.op(op_type, x, axes=list(axes), keepdims=int(keepdims))

    def split(self, x: str, sizes: Sequence[int], axis: int) -> list[str]:
        return self.op_n("Split", [x, self.ints(sizes, "split")], len(sizes), axis=axis)

    def squeeze(self, x: str, axes: Sequence[int]) -> str:
        return self.op("Squeeze", x, self.ints(axes, "axes"))

    def unsqueeze(self, x: str, axes: Sequence[int]) -> str:
        return self.op("Unsqueeze", x, self.ints(axes, "axes"))

    def transpose(self, x: str, perm: Sequence[int]) -> str:
        return self.op("Transpose", x, perm=list(perm))

    def reshape(self, x: str, shape: Sequence[int]) -> str:
        return self.op("Reshape", x, self.ints(shape, "shape"))

    # Layouts ----------------------------------------------------------------------------------

    def get(self, slot: Slot, layout: str) -> str:
        """`slot` in `layout`, converting (once per value) when needed."""
        if layout in slot.names or slot.rank < 3:
            return slot.names.get(layout) or next(iter(slot.names.values()))
        if layout == CF:
            name = self.child("to_channels_first").transpose(slot.names[CL], cl_to_cf(slot.rank))
        else:
            name = self.child("to_channels_last").transpose(slot.names[CF], cf_to_cl(slot.rank))
        slot.names[layout] = name
        return name

    def preferred(self, slot: Slot) -> str:
        """The layout an elementwise op should work in: channels-first when that is at hand."""
        return CF if slot.rank >= 3 and CF in slot.names else CL
