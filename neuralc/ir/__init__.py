"""The typed graph IR: values with shapes and dtypes, ops with attributes and source locations.

Three dialects share one core (`core.py`): `nn` (one op per DSL layer), `tensor` (ONNX-level
ops) and `kernel` (fused ops). Ops are generic `Operation`s whose behaviour (verification,
regions, documentation) lives in an `OpDef` registered per op name, as in MLIR.
"""
