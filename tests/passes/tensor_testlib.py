"""Helpers of the lowering and fusion tests: DSL → nn IR, pipelines through the pass manager,
op counts, and random weights/inputs for the numpy interpreter (`numpy_interp`)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from neuralc.frontend.check import check_program
from neuralc.frontend.parser import parse_text
from neuralc.ir.core import Module, Network
from neuralc.lower.weights import init_weights
from neuralc.passes.base import PassContext
from neuralc.passes.manager import PassManager
from neuralc.passes.pipeline import build_pipeline

FUSE = "fuse-attention,fuse-ffn,fuse-add-layernorm,fuse-bias-act"


def compile_nn(src: str, path: str = "m.neural") -> Module:
    return check_program(parse_text(src, path)).module


def run(module: Module, pipeline: str, **ctx: object) -> PassContext:
    """Run `pipeline` (verifying after every pass); return the context."""
    context = PassContext(**ctx)  # type: ignore[arg-type]
    PassManager(build_pipeline(pipeline), context).run(module)
    return context


def lowered(src: str, pipeline: str = "lower-nn-to-tensor") -> Module:
    module = compile_nn(src)
    run(module, pipeline)
    return module


def op_counts(module: Module, prefix: str = "") -> Counter[str]:
    return Counter(op.op for net in module.networks for op in net.walk()
                   if op.op.startswith(prefix))


def random_weights(net: Network, seed: int = 0) -> dict[str, np.ndarray]:
    """Initial weights with zero/one tensors perturbed, so that biases and norms matter."""
    rng = np.random.default_rng(seed)
    arrays = init_weights(net, seed)
    return {k: (v + rng.standard_normal(v.shape).astype(np.float32) * 0.1
                if v.ndim and "running_var" not in k else v) for k, v in arrays.items()}


def random_inputs(net: Network, batch: int = 2, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for arg in net.inputs:
        shape = [batch if d == "N" else d for d in arg.type.shape]
        out[arg.name] = (rng.integers(0, 20, shape) if arg.type.dtype == "i64"
                         else rng.standard_normal(shape).astype(np.float32))
    return out
