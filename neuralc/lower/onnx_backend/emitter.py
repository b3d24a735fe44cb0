"""Walks a network and assembles the ONNX model.

An `nn` network (-O0, -O1) is walked as an unrolled copy, layer by layer (`nn.transfer`, which
`place-devices` inserts, is the identity); a network at the tensor or kernel stage (-O2, -O3,
`--emit tensor`) op by op (stages.py), its weights looked up by the `tensor.weight` keys in the
weight file, which such a network needs (`neuralc build` writes `neuralc init`'s weights to a
temporary file when none is given).

The model:
  - opset `BuildOptions.opset` (17–23) of the default domain, the lowest IR version that opset
    needs (so older runtimes load it), and `com.microsoft` version 1 when a kernel op uses
    ONNX Runtime's contrib ops (kernel_ops.py);
  - inputs and outputs typed from the IR: `N` (the batch) and every other symbol as a
    `dim_param`, the rest as sizes; the graph's input and output names are the IR's (`input`,
    `dense_1`);
  - the weights as initializers named by their weight-file keys (see graph.py);
  - metadata: `neuralc.network`, `neuralc.source`, `neuralc.devices` (JSON: layer, or op at the
    tensor/kernel stage → device, with its source line, for `predict`'s device check) and `neuralc.weights_sha256` (a digest of the
    embedded weights, to check a weights file given to `predict` against them).

External data. A protobuf cannot exceed 2 GB, so when the initializers pass
`EXTERNAL_DATA_THRESHOLD` bytes, `emit_model` stores them in `<artifact name>.data` beside the
artifact (written atomically, before the model bytes are returned) and the returned model refers
to that file by its relative name. That needs the artifact's path: `emit(network, options,
artifact=path)`; without it, an oversized model is a diagnostic.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper

from neuralc import __version__
from neuralc.diagnostics import CompileError, Diagnostic
from neuralc.ir.common_ops import TRANSFER_OPS
from neuralc.ir.core import Block, Network, Operation, primary_loc
from neuralc.ir.shapes import REPEAT, YIELD, concrete_attrs
from neuralc.ir.types import TensorType
from neuralc.layers import LayerSpec, all_layers
from neuralc.lower.onnx_backend import attention, core, kernel_ops, recurrent, spatial, tensor_ops
from neuralc.lower.onnx_backend.graph import CL, ONNX_DTYPES, GraphBuilder, Lowering, Scope, Slot
from neuralc.lower.onnx_backend.stages import StageEmitter, is_staged, staged_weights
from neuralc.lower.target import BuildOptions
from neuralc.passes.unroll_repeat import unroll_network

MIN_OPSET, MAX_OPSET = 17, 23
EXTERNAL_DATA_THRESHOLD = 2_000_000_000  # bytes of initializers; protobuf's hard limit is 2 GiB

LOWERINGS: dict[str, Lowering] = {
    **core.LOWERINGS, **spatial.LOWERINGS, **attention.LOWERINGS, **recurrent.LOWERINGS,
}  # fmt: skip


def _attach_lowerings() -> None:
    """Record the ONNX lowering on each registry entry (`LayerSpec.lowerings["onnx"]`)."""
    for spec in all_layers():
        if spec.name in LOWERINGS:
            spec.lowerings["onnx"] = LOWERINGS[spec.name]


_attach_lowerings()

STAGE_LOWERINGS = {**tensor_ops.LOWERINGS, **kernel_ops.LOWERINGS}


def _specs_by_op() -> dict[str, LayerSpec]:
    return {spec.op_name: spec for spec in all_layers()}


class _Emitter:
    def __init__(
        self, graph: GraphBuilder, device_override: str | None, default_device: str | None
    ) -> None:
        self.graph = graph
        self.specs = _specs_by_op()
        self.env: dict[int, Slot] = {}
        self.device_override = device_override
        self.default_device = default_device
        self.devices: dict[str, dict[str, Any]] = {}

    def block(self, block: Block, args: list[Slot]) -> list[Slot]:
        for arg, slot in zip(block.args, args, strict=True):
            self.env[id(arg)] = slot
        for op in block.ops:
            ins = [self.env[id(v)] for v in op.operands]
            if op.op in (YIELD, "return"):
                return ins
            out = self.layer(op, ins)
            self.env[id(op.results[0])] = out
        raise AssertionError("block without terminator")

    def layer(self, op: Operation, ins: list[Slot]) -> Slot:
        loc = primary_loc(op.loc)
        scope = Scope(self.graph, op.name, loc)
        device = self.device_override or op.device or self.default_device
        if op.op in TRANSFER_OPS:  # a device boundary: the data is unchanged
            return ins[0]
        if device:
            self.devices[op.name] = {"device": device, "loc": str(loc) if loc else None}
        if op.op == REPEAT:  # unroll_network leaves only repeats whose count is still open
            raise scope.error(
                f"the ONNX backend needs a fixed repetition count for '{op.name}'",
                "fix the count (an HPO expression) before building",
            )
        spec = self.specs.get(op.op)
        if spec is not None and spec.takes_body:
            return self.residual(scope, op, ins)
        lowering = LOWERINGS.get(spec.name) if spec is not None else None
        if lowering is None:
            what = spec.name if spec is not None else op.op
            raise scope.error(
                f"the ONNX backend cannot express layer '{op.name}' ({what})",
                "build this model for the pytorch or tensorflow target",
            )
        return lowering(scope, op, concrete_attrs(op), ins)

    def residual(self, scope: Scope, op: Operation, ins: list[Slot]) -> Slot:
        (body_out,) = self.block(op.regions[0], ins[:1])
        shortcut = self.block(op.regions[1], ins[:1])[0] if len(op.regions) > 1 else ins[0]
        return core.lower_add(scope, op, {}, [shortcut, body_out])


def _value_info(name: str, t: TensorType) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, ONNX_DTYPES[t.dtype], list(t.shape))


def _check_opset(opset: int, network: Network) -> None:
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise CompileError(
            Diagnostic(
                f"the ONNX backend supports opsets {MIN_OPSET} to {MAX_OPSET}, not {opset}",
                primary_loc(network.loc),
                "error",
                (f"use --opset {MIN_OPSET}..{MAX_OPSET} (LayerNormalization needs 17)",),
            )
        )


def _execution_device(network: Network) -> str | None:
    execution = network.attrs.get("execution")
    return execution.get("device") if isinstance(execution, dict) else None  # type: ignore[return-value]


def load_network_weights(network: Network, options: BuildOptions) -> dict[str, np.ndarray]:
    from neuralc.lower.weights import init_weights, load_checked_weights

    if is_staged(network):
        return staged_weights(network, options)

    if options.weights is not None:
        return load_checked_weights(network, options.weights)
    return init_weights(network, options.seed)


def weights_digest(arrays: Mapping[str, np.ndarray], keys: list[str]) -> str:
    """sha256 over the sorted keys' names, shapes and float32 bytes."""
    h = hashlib.sha256()
    for key in sorted(keys):
        array = np.ascontiguousarray(arrays[key], dtype=np.float32)
        h.update(key.encode())
        h.update(str(array.shape).encode())
        h.update(array.tobytes())
    return h.hexdigest()


def build_model(
    network: Network, options: BuildOptions, arrays: Mapping[str, np.ndarray] | None = None
) -> onnx.ModelProto:
    """The ONNX model of `network` (not mutated): an nn network is walked layer by layer (an
    unrolled copy), a tensor/kernel-stage one op by op (stages.py)."""
    _check_opset(options.opset, network)
    staged = is_staged(network)
    if arrays is None:
        arrays = load_network_weights(network, options)
    elif staged:
        from neuralc.lower.onnx_backend.stages import check_staged_weights

        check_staged_weights(network, arrays, "the weights")
    graph = GraphBuilder(options.opset, arrays)
    devices: dict[str, dict[str, Any]]
    if staged:
        flat = network
        stage = StageEmitter(graph, options, STAGE_LOWERINGS, _execution_device(network))
        tensors = stage.run(network)
        devices = stage.devices
    else:
        flat = copy.deepcopy(network)
        unroll_network(flat)
        for arg in flat.inputs:
            graph.fresh(arg.name)
        emitter = _Emitter(graph, options.device, _execution_device(flat))
        outs = emitter.block(flat.body, [Slot(a.type.rank, {CL: a.name}) for a in flat.inputs])
        tensors = [
            Scope(graph, value.name, None).get(slot, CL)
            for value, slot in zip(flat.outputs, outs, strict=True)
        ]
        devices = emitter.devices
    output_infos = []
    for value, tensor in zip(flat.outputs, tensors, strict=True):
        name = _output_name(graph, tensor, value.name, {a.name for a in flat.inputs})
        output_infos.append(_value_info(name, value.type))
    onnx_graph = helper.make_graph(
        graph.nodes,
        network.name,
        [_value_info(a.name, a.type) for a in flat.inputs],
        output_infos,
        graph.initializers,
        doc_string=f"network {network.name} from {options.source_path}",
    )
    opset_ids = [helper.make_opsetid("", options.opset)]
    ir_version = helper.find_min_ir_version_for(opset_ids)
    opset_ids += [helper.make_opsetid(domain, 1) for domain in sorted(graph.domains)]
    model = helper.make_model(
        onnx_graph,
        opset_imports=opset_ids,
        producer_name="neuralc",
        producer_version=__version__,
        ir_version=ir_version,
        doc_string=f"neuralc {__version__}: network {network.name} ({options.source_path})",
    )
    helper.set_model_props(
        model,
        {
            "neuralc.network": network.name,
            "neuralc.source": options.source_path,
            "neuralc.devices": json.dumps(devices, sort_keys=True),
            "neuralc.weights_sha256": weights_digest(arrays, graph.used_weights),
            "neuralc.weights_skipped": json.dumps(sorted(set(arrays) - set(graph.used_weights))),
        },
    )
    return model


def _output_name(graph: GraphBuilder, tensor: str, wanted: str, inputs: set[str]) -> str:
    """Give the output tensor the IR value's name (renaming its producer's output), or add an
    Identity when the tensor is an input or a constant."""
    if tensor == wanted:
        return tensor
    if tensor not in inputs and graph.produced(tensor) and not graph.taken(wanted):
        graph.rename_output(tensor, wanted)
        return wanted
    return graph.add_node("Identity", [tensor], wanted, "")[0]


def initializer_bytes(model: onnx.ModelProto) -> int:
    return sum(len(t.raw_data) for t in model.graph.initializer)


def serialize(model: onnx.ModelProto, network: Network, artifact: Path | None) -> bytes:
    """The model's bytes, its weights moved to `<artifact>.data` when they exceed the limit."""
    if initializer_bytes(model) <= EXTERNAL_DATA_THRESHOLD:
        return model.SerializeToString()
    if artifact is None:
        raise CompileError(
            Diagnostic(
                "the ONNX model's weights exceed 2 GB and must go to an external data file, but "
                "no artifact path was given",
                primary_loc(network.loc),
                "error",
                (
                    "call emit(network, options, artifact=PATH) so the data can be written beside "
                    "it",
                ),
            )
        )
    from onnx.external_data_helper import set_external_data, write_external_data_tensors

    artifact = Path(artifact)
    location = f"{artifact.name}.data"
    artifact.parent.mkdir(parents=True, exist_ok=True)
    # Marked tensor by tensor: onnx's convert_model_to_external_data refuses when a file named
    # `location` exists relative to the *working directory* (a rebuild run from the artifact's
    # directory failed with FileExistsError).
    for tensor in model.graph.initializer:
        if len(tensor.raw_data) >= 1024:
            set_external_data(tensor, location)
    with tempfile.TemporaryDirectory(dir=artifact.parent, prefix=".onnx-data.") as tmp:
        write_external_data_tensors(model, tmp)
        os.replace(Path(tmp) / location, artifact.parent / location)
    return model.SerializeToString()


def emit_model(network: Network, options: BuildOptions, artifact: Path | None = None) -> bytes:
    return serialize(build_model(network, options), network, artifact)
