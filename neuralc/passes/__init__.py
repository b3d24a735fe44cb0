"""Passes over the IR, one per module, named after the pass (`unroll_repeat.py` is `unroll-repeat`).

Importing this package registers every pass in `PASSES` (the pipeline parser looks names up
there): the generic passes, unrolling and placement, the lowering, the fusions and the legality
check.
"""

from __future__ import annotations

from neuralc.passes import (  # noqa: F401 - imported to register the passes
    autotune,
    canonicalize,
    constant_fold,
    cse,
    dce,
    fuse_add_layernorm,
    fuse_attention,
    fuse_bias_act,
    fuse_ffn,
    fuse_softmax_cross_entropy,
    legality,
    lower_nn_to_tensor,
    place_devices,
    remove_dropout,
    set_precision,
    unroll_repeat,
)
from neuralc.passes.base import PASSES, FusionRejection, Pass, PassContext, register_pass

__all__ = ["PASSES", "FusionRejection", "Pass", "PassContext", "register_pass"]
