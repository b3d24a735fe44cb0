"""The `tensor` dialect: ONNX-level ops that `lower-nn-to-tensor` decomposes every `nn` op into.

Conventions (docs/dialects.md is generated from the op docs below):
- Every op has one result, whose type its shape rule infers from the operand types and the
  attributes; the verify hook re-infers it and compares. `infer_type` is the same rule for
  builders (the lowering never writes a result type by hand).
- Data stays batch-first and channels-last between ops, as in the `nn` dialect. `tensor.conv`,
  `tensor.conv_transpose` and the pools are NCHW / NCL like ONNX; the lowering wraps them in
  explicit `tensor.transpose` ops.
- Weights are values: `tensor.weight() {key}` names an array of the framework-neutral weight file
  (`<layer>.<weight>`, PyTorch layouts). `tensor.constant() {value}` holds small literals.
- Optional attributes may be omitted (`attr(op, key)` returns the default). Attributes marked
  "HPO ok" may hold an open hyperparameter (`hpo.range(...)`); none of them affects a shape.
- Symbolic dimensions follow `neuralc.layers.families.dims`, so the lowered IR types every
  value exactly as the `nn` ops did (`s0_w3s1`, `s0_x512`, ...).
"""

from __future__ import annotations

# `tensor.transfer` is defined with `nn.transfer` in `common_ops`, the ops dialects share.
from neuralc.ir import common_ops  # noqa: F401
from neuralc.ir.tensor import ops, spatial  # noqa: F401  (registers the ops)
from neuralc.ir.tensor.signature import (
    ACTIVATION_KINDS,
    SIGNATURES,
    Signature,
    attr,
    broadcast,
    define,
    infer_type,
)

__all__ = ["ACTIVATION_KINDS", "SIGNATURES", "Signature", "attr", "broadcast", "define",
           "infer_type"]
