"""Networks at the tensor or kernel stage (`-O2`: after `lower-nn-to-tensor` and the fusion
passes) → ONNX nodes, one IR op at a time.

Values. Every IR value becomes a `Val`: its tensor in the IR's shape (`nat`) and, when every
size after the batch is known, the same data as a token matrix `[-1, C]` (`rows`). In rows
form a `tensor.linear` is one `Gemm` with torch's `[out, in]` weight as is (ONNX Runtime fuses
its bias and a following ReLU: `FusedGemm`), and elementwise and last-axis ops (add,
activations, layer norm, softmax over the last axis, ...) run unchanged. A value gets the other
form by one `Reshape`, made once, on demand; a transpose of a transpose composes, and cancels
when the composition is the identity.

Names and docs. Nodes are named `<op value name>/<part>/<OnnxOp>`
(`transformer_encoder.0.self_attn/MultiHeadAttention`), their doc string is the op's source
line, or every line a fused op replaced (`model.neural:4, model.neural:7`). A `tensor.weight`
is the initializer named by its key, holding exactly the weight file's array; layouts derived
from it (q/k/v row blocks, Keras kernels packed into `w_in`, folded BatchNorm factors, gate
orders) are nodes on initializers, which ONNX Runtime folds at session start.

Precision. `precision = "bf16"` (-O3, only on CUDA) asks the PyTorch emitter for autocast; an
ONNX model stays float32 (its CPU and CUDA kernels run it at full precision), so -O3 gives the
-O2 graph. Devices: `tensor.transfer` is the identity; each op's device goes to the
`neuralc.devices` metadata, as for layers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuralc.diagnostics import CompileError, Diagnostic
from neuralc.ir.common_ops import TRANSFER_OPS
from neuralc.ir.core import FusedLoc, Location, Network, Operation, fuse_locs, primary_loc
from neuralc.ir.shapes import concrete_attrs
from neuralc.ir.types import TensorType
from neuralc.lower.onnx_backend.graph import GraphBuilder, Scope
from neuralc.lower.target import BuildOptions

STAGED_PREFIXES = ("tensor.", "kernel.")
NOT_LAYERS = ("tensor.weight", "tensor.constant", *TRANSFER_OPS)


def is_staged(network: Network) -> bool:
    """Whether `network` is at the tensor or kernel stage (else it is an `nn` network)."""
    return any(op.op.startswith(STAGED_PREFIXES) for op in network.walk())


def doc_for(loc: Location) -> str:
    """`file:line` of every source location of `loc`, comma-separated, without repeats."""
    locs = loc.locs if isinstance(loc, FusedLoc) else (loc,) if loc is not None else ()
    return ", ".join(dict.fromkeys(f"{one.file}:{one.line}" for one in locs))


def rows_ok(t: TensorType) -> bool:
    """Whether a value of type `t` has a token-matrix form: rank ≥ 2, every size after the
    batch known."""
    return t.rank >= 2 and all(isinstance(d, int) for d in t.shape[1:])


@dataclass
class Val:
    """One IR value's tensors: `nat` in the IR's shape, `rows` as [-1, C] (rank 2: the same)."""

    type: TensorType
    nat: str | None = None
    rows: str | None = None


class Lowerer:
    """What one op's lowering works with: its scope (names, doc), its result type, the values'
    forms and the transposes made so far."""

    def __init__(
        self, scope: Scope, op: Operation, options: BuildOptions, transposes: dict[str, Any]
    ) -> None:
        self.s = scope
        self.op = op
        self.type: TensorType = op.results[0].type if op.results else None  # type: ignore[assignment]
        self.options = options
        self._transposes = transposes

    @property
    def graph(self) -> GraphBuilder:
        return self.s.graph

    @property
    def opset(self) -> int:
        return self.s.opset

    # Forms ------------------------------------------------------------------------------------

    def out(
        self, t: TensorType | None = None, *, nat: str | None = None, rows: str | None = None
    ) -> Val:
        t = t or self.type
        if t.rank == 2:
            nat = rows = nat or rows
        return Val(t, nat, rows)

    def form(self, *vals: Val) -> str:
        """The form to work in: rows when every value has that form and one of them is already
        in it, else nat."""
        if all(rows_ok(v.type) for v in vals) and any(v.rows is not None for v in vals):
            return "rows"
        return "nat"

    def get(self, v: Val, form: str) -> str:
        return self.rows(v) if form == "rows" else self.nat(v)

    def nat(self, v: Val) -> str:
        if v.nat is None:
            assert v.rows is not None
            v.nat = self.reshape(v.rows, v.type.shape, "unflatten")
        return v.nat

    def rows(self, v: Val) -> str:
        if v.rows is None:
            assert v.nat is not None and rows_ok(v.type)
            v.rows = self.s.child("tokens").reshape(v.nat, [-1, v.type.shape[-1]])
        return v.rows

    def reshape(self, x: str, shape: Sequence[Any], part: str | None = None) -> str:
        """Reshape to `shape` (IR sizes: the batch, or any one unknown size, becomes -1)."""
        dims = [d if isinstance(d, int) else -1 for d in shape]
        if dims.count(-1) > 1:
            raise self.s.error(f"the ONNX backend cannot reshape to {tuple(shape)}")
        s = self.s.child(part) if part else self.s
        return s.reshape(x, dims)

    def transpose(self, x: str, perm: Sequence[int]) -> str:
        """Transpose, composing with a transpose that produced `x` (none when they cancel)."""
        perm = list(perm)
        if x in self._transposes:
            source, first = self._transposes[x]
            perm = [first[p] for p in perm]
            x = source
        if perm == sorted(perm):
            return x
        y = self.s.transpose(x, perm)
        self._transposes[y] = (x, perm)
        return y

    def transposed_weight(self, w: str) -> str:
        """`w` [out, in] as [in, out] (shared by every use; folded by ONNX Runtime)."""
        cached = self.graph.derived(w, "T")
        if cached is not None:
            return cached
        return self.graph.remember(w, "T", self.s.op("Transpose", w, perm=[1, 0]))


# A lowering: (its lowerer, the op, concrete attributes, operand values) -> the result value.
StageLowering = Callable[[Lowerer, Operation, dict[str, Any], list[Val]], Val]


def _uses(network: Network) -> Counter[int]:
    counts: Counter[int] = Counter()
    for op in network.walk():
        for value in op.operands:
            counts[id(value)] += 1
    return counts


def _absorbed_linears(network: Network) -> dict[int, Operation]:
    """`kernel.bias_act` ops (by id) whose input is a bias-less `tensor.linear` used only there:
    they become one Gemm with the bias (fused with the activation by ONNX Runtime)."""
    uses = _uses(network)
    out: dict[int, Operation] = {}
    for op in network.walk():
        if op.op != "kernel.bias_act":
            continue
        src = op.operands[0].owner
        if (
            isinstance(src, Operation)
            and src.op == "tensor.linear"
            and len(src.operands) == 2
            and uses[id(op.operands[0])] == 1
            and src.device == op.device
        ):
            out[id(op)] = src
    return out


def check_staged_weights(network: Network, arrays: Mapping[str, np.ndarray], source: str) -> None:
    """Every `tensor.weight` key is in `arrays`, with its shape, as float32 (a diagnostic at the
    op's line otherwise). Other keys are allowed: the nn layers' bookkeeping buffers
    (`num_batches_tracked`) and weights of layers the optimizer removed."""
    diagnostics: list[Diagnostic] = []
    for op in network.walk():
        if op.op != "tensor.weight":
            continue
        key = str(op.attrs["key"])
        want = op.results[0].type.shape
        loc = primary_loc(op.loc)
        if key not in arrays:
            diagnostics.append(
                Diagnostic(
                    f"weight '{key}' is missing from {source}",
                    loc,
                    "error",
                    (f"expected an array of shape {want}",),
                )
            )
        elif tuple(arrays[key].shape) != tuple(want):
            diagnostics.append(
                Diagnostic(
                    f"weight '{key}' has shape {tuple(arrays[key].shape)} in {source}, but the "
                    f"network needs {tuple(want)}",
                    loc,
                    "error",
                    ("re-create the weights with `neuralc init`",),
                )
            )
        elif arrays[key].dtype != np.float32:
            diagnostics.append(
                Diagnostic(
                    f"weight '{key}' is {arrays[key].dtype} in {source}, but neuralc weights are "
                    "float32",
                    loc,
                    "error",
                    ("convert the file's arrays to float32",),
                )
            )
    if diagnostics:
        raise CompileError(diagnostics)


def staged_weights(network: Network, options: BuildOptions) -> dict[str, np.ndarray]:
    """The weight file's arrays for a tensor/kernel-stage network. Its initial weights cannot
    be drawn here (the initializers belong to the nn layers, which lowering replaced), so a
    weight file is required."""
    if options.weights is None:
        raise CompileError(
            Diagnostic(
                f"network '{network.name}' is already lowered to the tensor stage: the ONNX backend "
                "needs its weights from a file",
                primary_loc(network.loc),
                "error",
                ("pass --weights FILE (`neuralc init` writes one from the program)",),
            )
        )
    from neuralc.lower.weights import load_weights

    arrays = load_weights(options.weights)
    check_staged_weights(network, arrays, f"'{options.weights}'")
    return {key: np.asarray(value, dtype=np.float32) for key, value in arrays.items()}


class StageEmitter:
    """Walks a tensor/kernel-stage network in program order, one lowering per op."""

    def __init__(
        self,
        graph: GraphBuilder,
        options: BuildOptions,
        lowerings: Mapping[str, StageLowering],
        default_device: str | None,
    ) -> None:
        self.graph = graph
        self.options = options
        self.lowerings = lowerings
        self.default_device = default_device
        self.devices: dict[str, dict[str, Any]] = {}
        self.transposes: dict[str, Any] = {}

    def run(self, network: Network) -> list[str]:
        """The output tensors (in the IR's shapes) of `network`, its nodes added to the graph."""
        env: dict[int, Val] = {}
        for arg in network.inputs:
            name = self.graph.fresh(arg.name)
            env[id(arg)] = Val(arg.type, name, name if arg.type.rank == 2 else None)
        absorbed = _absorbed_linears(network)
        skipped = {id(linear) for linear in absorbed.values()}
        for op in network.body.ops:
            if op.op == "return":
                return [
                    self._lowerer(Scope(self.graph, v.name, None), op).nat(env[id(v)])
                    for v in op.operands
                ]
            if id(op) in skipped:
                continue
            fused = absorbed.get(id(op))
            loc = op.loc if fused is None else fuse_locs([fused.loc, op.loc])
            scope = Scope(self.graph, op.name, primary_loc(loc), doc_for(loc))
            self._place(op, loc)
            if op.op in TRANSFER_OPS:
                env[id(op.results[0])] = env[id(op.operands[0])]
                continue
            lowering = self.lowerings.get(op.op)
            if lowering is None or op.regions:
                raise scope.error(
                    f"the ONNX backend cannot emit '{op.op}' (%{op.name}) in a network at the "
                    "tensor or kernel stage",
                    "a network is emitted with nn ops only, or tensor and kernel ops only",
                )
            attrs = concrete_attrs(op)
            operands = op.operands
            if fused is not None:  # linear(x, w) then bias_act(., b): x, w, b
                operands = [*fused.operands, *op.operands[1:]]
                attrs["absorbed_linear"] = True
            ins = [env[id(v)] for v in operands]
            env[id(op.results[0])] = lowering(self._lowerer(scope, op), op, attrs, ins)
        raise AssertionError("network body without return")

    def _lowerer(self, scope: Scope, op: Operation) -> Lowerer:
        return Lowerer(scope, op, self.options, self.transposes)

    def _place(self, op: Operation, loc: Location) -> None:
        device = self.options.device or op.device or self.default_device
        if device and op.op not in NOT_LAYERS:
            where = primary_loc(loc)
            self.devices[op.name] = {"device": device, "loc": str(where) if where else None}
