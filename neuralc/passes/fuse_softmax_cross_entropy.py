"""`fuse-softmax-cross-entropy`: in training graphs, a softmax output trained with a
cross-entropy loss returns its logits instead, and the loss becomes the fused, numerically
stable log-softmax cross-entropy (semantics.md: "no double softmax").

The network then carries `output = "logits"` and `output_activation = "softmax"`: trainers
compute `cross_entropy(logits, labels)` (PyTorch's `F.cross_entropy`, Keras'
`from_logits=True`) and apply the softmax themselves when they report probabilities. Inference
graphs (`PassContext.training` false) are left alone: they return probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

from neuralc.ir.core import Module, Network, Operation
from neuralc.passes.base import Pass, PassContext, register_pass
from neuralc.passes.rewrite import replace_op

CROSS_ENTROPY = ("categorical_crossentropy", "sparse_categorical_crossentropy", "cross_entropy")
NN_LAYERS_WITH_ACTIVATION = ("nn.output", "nn.dense")


@register_pass
@dataclass(frozen=True)
class FuseSoftmaxCrossEntropy(Pass):
    """Train on logits with a fused log-softmax cross-entropy."""

    name = "fuse-softmax-cross-entropy"
    description = "training graphs: a softmax output with a cross-entropy loss returns logits"
    min_level = 2

    def run(self, module: Module, ctx: PassContext) -> bool:
        if not ctx.training:
            return False
        changed = False
        for net in module.networks:
            reason = _rewrite(net)
            if reason is None:
                ctx.hit(self.name)
                changed = True
            else:
                ctx.reject(self.name, net.name, reason)
        return changed


def _rewrite(net: Network) -> str | None:
    """Rewrite `net`; return why it does not apply, or None when it did."""
    loss = net.attrs.get("loss")
    if loss not in CROSS_ENTROPY:
        return f"the loss {loss!r} is not a cross-entropy"
    if net.attrs.get("output") == "logits":
        return "the network already returns logits"
    outputs = net.outputs
    if len(outputs) != 1 or not isinstance(outputs[0].owner, Operation):
        return "the network does not return one computed value"
    producer: Operation = outputs[0].owner
    if producer.op in NN_LAYERS_WITH_ACTIVATION:
        if producer.attrs.get("activation") != "softmax":
            return f"the output layer's activation is {producer.attrs.get('activation')!r}"
        producer.attrs["activation"] = "linear"
    elif producer.op == "tensor.softmax":
        last_axis = producer.results[0].type.rank - 1
        if producer.attrs.get("causal") or producer.attrs.get("axis", -1) not in (-1, last_axis):
            return "the softmax is causal or not over the last axis"
        replace_op(net, producer, [producer.operands[0]])
    else:
        return f"the output is produced by {producer.op}, not a softmax"
    net.attrs["output"] = "logits"
    net.attrs["output_activation"] = "softmax"
    return None
