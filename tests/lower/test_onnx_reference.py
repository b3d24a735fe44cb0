"""A torch reference for the ONNX backend's tests, and its own checks against Keras.

`reference(network, weights, x)` interprets the `nn` IR with torch: torch's own modules where the
DSL means torch (TransformerEncoder/DecoderLayer, LSTM/GRU/RNN), hand-written functional code
where it means Keras ("same" padding, pooling that ignores the padding, MultiHeadAttention's
layout, leaky_relu's 0.2). The ONNX tests compare against the PyTorch backend when it is built,
and against this reference otherwise; the Keras checks here pin the Keras-flavoured parts.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neuralc.ir.core import Block, Network, Operation
from neuralc.ir.shapes import concrete_attrs
from neuralc.passes.unroll_repeat import unroll_network

Tensor = torch.Tensor

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "linear": lambda x: x,
    "relu": F.relu,
    "gelu": F.gelu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "softmax": lambda x: torch.softmax(x, -1),
    "log_softmax": lambda x: torch.log_softmax(x, -1),
    "elu": F.elu,
    "selu": F.selu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2),
    "swish": F.silu,
    "silu": F.silu,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "hard_sigmoid": F.hardsigmoid,
}


def act(x: Tensor, name: str | None) -> Tensor:
    return ACTIVATIONS[name or "linear"](x)


def same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    total = max((math.ceil(size / s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _cf(x: Tensor) -> Tensor:
    return x.movedim(-1, 1)


def _cl(x: Tensor) -> Tensor:
    return x.movedim(1, -1)


def _pad_same(
    x: Tensor,
    kernel: tuple[int, ...],
    strides: tuple[int, ...],
    dilation: tuple[int, ...],
    value: float = 0.0,
) -> Tensor:
    """Pad a channels-first tensor as Keras' "same" does."""
    pads: list[int] = []
    for axis in reversed(range(len(kernel))):
        size = x.shape[2 + axis]
        pads += same_pads(size, dilation[axis] * (kernel[axis] - 1) + 1, strides[axis])
    return F.pad(x, pads, value=value)


class Reference:
    def __init__(self, weights: Mapping[str, np.ndarray]) -> None:
        self.w = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in weights.items()}

    def __call__(self, network: Network, x: np.ndarray) -> np.ndarray:
        return self.multi(network, {network.inputs[0].name: x})

    def multi(self, network: Network, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        flat = copy.deepcopy(network)
        unroll_network(flat)
        args = [torch.from_numpy(feeds[a.name]) for a in flat.inputs]
        with torch.no_grad():
            (out,) = self.block(flat.body, args, {})
        return out.numpy()

    def block(self, block: Block, args: list[Tensor], env: dict[int, Tensor]) -> list[Tensor]:
        for arg, t in zip(block.args, args, strict=True):
            env[id(arg)] = t
        for op in block.ops:
            ins = [env[id(v)] for v in op.operands]
            if op.op in ("nn.yield", "return"):
                return ins
            if op.op == "nn.residual_connection":
                (body,) = self.block(op.regions[0], ins, env)
                short = self.block(op.regions[1], ins, env)[0] if len(op.regions) > 1 else ins[0]
                env[id(op.results[0])] = short + body
                continue
            fn = getattr(self, op.op.removeprefix("nn."))
            env[id(op.results[0])] = fn(op, concrete_attrs(op), *ins)
        raise AssertionError("no terminator")

    def p(self, op: Operation, name: str) -> Tensor:
        return self.w[f"{op.name}.{name}"]

    def has(self, op: Operation, name: str) -> bool:
        return f"{op.name}.{name}" in self.w

    # Core ---------------------------------------------------------------------------------------

    def dense(self, op: Operation, a: dict[str, Any], x: Tensor) -> Tensor:
        b = self.p(op, "bias") if a["use_bias"] else None
        return act(F.linear(x, self.p(op, "weight"), b), a["activation"])

    output = dense

    def activation(self, op: Operation, a: dict[str, Any], x: Tensor) -> Tensor:
        return act(x, a["activation"])

    def dropout(self, op: Operation, a: dict[str, Any], x: Tensor) -> Tensor:
        return x

    def flatten(self, op: Operation, a: dict[str, Any], x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], -1)

    def reshape(self, op: Operation, a: dict[str, Any], x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], *a["target_shape"])

    def embedding(self, op: Operation, a: dict[str, Any], x: Tensor) -> Tensor:
        return F.embedding(x, self.p(op, "weight"))

    def _affine(self, op: Operation, a: dict[str, Any], c: int) -> tuple[Tensor, Tensor]:
        g = self.p(op, "weight") if a["scale"] else torch.ones(c)
        b = self.p(op, "bias") if a["center"] else torch.zeros(c)
        return g, b

    def batch_normalization(self, op: Operation, a: dict[str, Any], x: Tensor) -> Tensor:
        g, b = self._affine(op, a, x.shape[-1])
        mean, var = self.p(op, "running_mean"), self.p(op, "running_var")
        return (x - mean) / torch.sqrt(var + a["epsilon"]) * g + b

    def layer_normalization(self, op: Operation, a: dict[str, Any], x: Tensor) -> Tensor:
        g, b = self._affine(op, a, x.shape[-1])
        return F.layer_norm(x, (x.shape[-1],), g, b, a["epsilon"])

    def add(self, op: Operation, a: dict[str, Any], *xs: Tensor) -> Tensor:
        return sum(xs[1:], xs[0])

    def concatenate(self, op: Operation, a: dict[str, Any], *xs: Tensor) -> Tensor:
        return torch.cat(xs, dim=a["axis"])

    # Spatial ------------------------------------------------------------------------------------

    def _conv(self, op: Operation, a: dict[str, Any], x: Tensor) -> Tensor:
        rank = x.dim() - 2
        kernel, strides = tuple(a["kernel_size"]), tuple(a["strides"])
        dil = tuple(a.get("dilation_rate") or (1,) * rank)
        xc = _cf(x)
        if a["padding"] == "same":
            xc = _pad_same(xc, kernel, strides, dil)
        b = self.p(op, "bias") if a["use_bias"] else None
        conv = F.conv1d if rank == 1 else F.conv2d
        return act(_cl(conv(xc, self.p(op, "weight"), b, strides, 0, dil)), a["activation"])

    conv1d = _conv
    conv2d = _conv

    def conv2d_transpose(self, op: Operation, a: dict[str, Any], x: Tensor) -> Tensor:
        kernel, strides = tuple(a["kernel_size"]), tuple(a["strides"])
        # Keras sizes the output (d-1)*s + max(k, s): a kernel shorter than the stride leaves
        # s-k trailing positions only the bias reaches.
        gaps = [max(s - k, 0) for k, s in zip(kernel, strides, strict=True)]
        full = F.conv_transpose2d(_cf(x), self.p(op, "weight"), None, strides, 0, gaps)
        if a["padding"] == "same":
            sizes = [x.shape[1 + i] * strides[i] for i in range(2)]
            extra = [
                max(sizes[i] + same_pads(sizes[i], kernel[i], strides[i])[0] - full.shape[2 + i], 0)
                for i in range(2)
            ]
            full = F.pad(full, [0, extra[1], 0, extra[0]])
            b0 = [same_pads(sizes[i], kernel[i], strides[i])[0] for i in range(2)]
            full = full[:, :, b0[0] : b0[0] + sizes[0], b0[1] : b0[1] + sizes[1]]
        if a["use_bias"]:
            full = full + self.p(op, "bias")[None, :, None, None]
        return act(_cl(full), a["activation"])

    def _pool(self, op: Operation, a: dict[str, Any], x: Tensor, kind: str) -> Tensor:
        rank = x.dim() - 2
        pool = tuple(a["pool_size"])
        strides = tuple(a["strides"] or pool)
        xc = _cf(x)
        same = a["padding"] == "same"
        ones = (1,) * rank
        if kind == "max":
            if same:
                xc = _pad_same(xc, pool, strides, ones, -math.inf)
            fn = F.max_pool1d if rank == 1 else F.max_pool2d
            return _cl(fn(xc, pool, strides))
        fn = F.avg_pool1d if rank == 1 else F.avg_pool2d
        if not same:
            return _cl(fn(xc, pool, strides))
        num = fn(_pad_same(xc, pool, strides, ones), pool, strides)
        den = fn(_pad_same(torch.ones_like(xc[:1, :1]), pool, strides, ones), pool, strides)
        return _cl(num / den)

    def max_pooling1d(self, op: Operation, a: dict[str, Any], x: Tensor) -> Tensor:
        return self._pool(op, a, x, "max")

    max_pooling2d = max_pooling1d

    def average_pooling1d(self, op: Operation, a: dict[str, Any], x: Tensor) -> Tensor:
        return self._pool(op, a, x, "avg")

    average_pooling2d = average_pooling1d

    def _global(self, a: dict[str, Any], x: Tensor, fn: Callable[..., Tensor]) -> Tensor:
        axes = tuple(range(1, x.dim() - 1))
        return fn(x, dim=axes, keepdim=bool(a["keepdims"]))

    def global_average_pooling1d(self, op: Operation, a: dict[str, Any], x: Tensor) -> Tensor:
        return self._global(a, x, torch.mean)

    global_average_pooling2d = global_average_pooling1d

    def global_max_pooling1d(self, op: Operation, a: dict[str, Any], x: Tensor) -> Tensor:
        return self._global(a, x, torch.amax)

    global_max_pooling2d = global_max_pooling1d

    def up_sampling2d(self, op: Operation, a: dict[str, Any], x: Tensor) -> Tensor:
        sh, sw = a["size"]
        if a["interpolation"] == "nearest":
            return x.repeat_interleave(sh, 1).repeat_interleave(sw, 2)
        y = F.interpolate(_cf(x), scale_factor=(sh, sw), mode="bilinear", align_corners=False)
        return _cl(y)

    def zero_padding2d(self, op: Operation, a: dict[str, Any], x: Tensor) -> Tensor:
        ph, pw = a["padding"]
        return F.pad(x, [0, 0, pw, pw, ph, ph])

    # Attention and recurrence -------------------------------------------------------------------

    def _load(self, module: torch.nn.Module, op: Operation) -> torch.nn.Module:
        state = {
            k.removeprefix(op.name + "."): v
            for k, v in self.w.items()
            if k.startswith(op.name + ".")
        }
        module.load_state_dict(state, strict=True)
        return module.eval()

    def _block_kwargs(self, a: dict[str, Any], d: int) -> dict[str, Any]:
        return {
            "d_model": d,
            "nhead": a["num_heads"],
            "dim_feedforward": a["dff"],
            "dropout": a["dropout_rate"],
            "activation": a["activation"],
            "layer_norm_eps": a["layer_norm_eps"],
            "norm_first": a["norm_first"],
            "batch_first": True,
        }

    def transformer_encoder(self, op: Operation, a: dict[str, Any], x: Tensor) -> Tensor:
        layer = torch.nn.TransformerEncoderLayer(**self._block_kwargs(a, x.shape[-1]))
        return self._load(layer, op)(x)

    def transformer_decoder(
        self, op: Operation, a: dict[str, Any], x: Tensor, memory: Tensor | None = None
    ) -> Tensor:
        mask = torch.nn.Transformer.generate_square_subsequent_mask(x.shape[1])
        if a.get("cross_attention"):
            dec = torch.nn.TransformerDecoderLayer(**self._block_kwargs(a, x.shape[-1]))
            return self._load(dec, op)(x, memory, tgt_mask=mask, tgt_is_causal=True)
        enc = torch.nn.TransformerEncoderLayer(**self._block_kwargs(a, x.shape[-1]))
        return self._load(enc, op)(x, src_mask=mask, is_causal=True)

    def multi_head_attention(self, op: Operation, a: dict[str, Any], x: Tensor) -> Tensor:
        """Keras' MultiHeadAttention, self-attention, einsum for einsum."""
        kd = a["key_dim"]

        def proj(name: str) -> Tensor:
            y = torch.einsum("nld,dhk->nlhk", x, self.p(op, f"{name}.kernel"))
            return y + self.p(op, f"{name}.bias") if a["use_bias"] else y

        q = proj("query") / math.sqrt(kd)
        k, v = proj("key"), proj("value")
        scores = torch.softmax(torch.einsum("nqhk,nlhk->nhql", q, k), -1)
        out = torch.einsum("nhql,nlhv->nqhv", scores, v)
        kernel = self.p(op, "attention_output.kernel")
        y = torch.einsum("nqhv,hv...->nq...", out, kernel)
        return y + self.p(op, "attention_output.bias") if a["use_bias"] else y

    def _rnn(self, op: Operation, a: dict[str, Any], x: Tensor, cls: type, **kwargs: Any) -> Tensor:
        module = cls(x.shape[-1], a["units"], batch_first=True, bias=a["use_bias"], **kwargs)
        y = self._load(module, op)(x)[0]
        return y if a["return_sequences"] else y[:, -1]

    def lstm(self, op: Operation, a: dict[str, Any], x: Tensor) -> Tensor:
        return self._rnn(op, a, x, torch.nn.LSTM)

    def gru(self, op: Operation, a: dict[str, Any], x: Tensor) -> Tensor:
        return self._rnn(op, a, x, torch.nn.GRU)

    def simple_rnn(self, op: Operation, a: dict[str, Any], x: Tensor) -> Tensor:
        return self._rnn(op, a, x, torch.nn.RNN, nonlinearity=a["activation"])


def perturbed(weights: Mapping[str, np.ndarray], seed: int = 0) -> dict[str, np.ndarray]:
    """Random values for every weight (zeros and ones would hide biases and statistics);
    running variances stay positive."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, value in weights.items():
        if key.endswith("running_var"):
            new = rng.uniform(0.5, 1.5, value.shape)
        else:
            new = rng.normal(0.0, 0.3, value.shape)
        out[key] = np.asarray(new, dtype=np.float32)
    return out


# Checks of the reference against Keras (the semantics the DSL borrows from it) ---------------


@pytest.mark.heavy
def test_reference_matches_keras_spatial_and_attention() -> None:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keras = pytest.importorskip("keras")
    from neuralc.ir.core import Operation as Op
    from neuralc.ir.types import TensorType

    rng = np.random.default_rng(1)
    ref = Reference({})

    def run(
        name: str, attrs: dict[str, Any], x: np.ndarray, weights: dict[str, np.ndarray]
    ) -> np.ndarray:
        ref.w = {f"l.{k}": torch.from_numpy(v) for k, v in weights.items()}
        op = Op(f"nn.{name}", "l", [], [TensorType(("N",))], attrs)
        with torch.no_grad():
            return getattr(ref, name)(op, attrs, torch.from_numpy(x)).numpy()

    x = rng.normal(size=(2, 7, 9, 3)).astype(np.float32)
    for k, s in ((3, 2), (4, 3), (2, 1), (1, 3)):
        w = rng.normal(size=(5, 3, k, k)).astype(np.float32)
        b = rng.normal(size=(5,)).astype(np.float32)
        layer = keras.layers.Conv2D(5, k, strides=s, padding="same")
        layer.build(x.shape)
        layer.set_weights([w.transpose(2, 3, 1, 0), b])
        ours = run(
            "conv2d",
            {
                "kernel_size": (k, k),
                "strides": (s, s),
                "padding": "same",
                "dilation_rate": (1, 1),
                "use_bias": True,
                "activation": None,
            },
            x,
            {"weight": w, "bias": b},
        )
        np.testing.assert_allclose(ours, np.asarray(layer(x)), atol=1e-4)
        for kind in ("max", "average"):
            pool_layer = getattr(keras.layers, f"{kind.capitalize()}Pooling2D")(
                k, strides=s, padding="same"
            )
            ours = run(
                f"{kind}_pooling2d",
                {"pool_size": (k, k), "strides": (s, s), "padding": "same"},
                x,
                {},
            )
            np.testing.assert_allclose(ours, np.asarray(pool_layer(x)), atol=1e-5)
        wt = rng.normal(size=(3, 5, k, k)).astype(np.float32)
        for padding in ("same", "valid"):
            tlayer = keras.layers.Conv2DTranspose(5, k, strides=s, padding=padding)
            tlayer.build(x.shape)
            tlayer.set_weights([wt.transpose(2, 3, 1, 0), b])
            ours = run(
                "conv2d_transpose",
                {
                    "kernel_size": (k, k),
                    "strides": (s, s),
                    "padding": padding,
                    "use_bias": True,
                    "activation": None,
                },
                x,
                {"weight": wt, "bias": b},
            )
            np.testing.assert_allclose(ours, np.asarray(tlayer(x)), atol=1e-4)
    up = keras.layers.UpSampling2D((2, 3), interpolation="bilinear")
    ours = run("up_sampling2d", {"size": (2, 3), "interpolation": "bilinear"}, x, {})
    np.testing.assert_allclose(ours, np.asarray(up(x)), atol=1e-5)

    seq = rng.normal(size=(2, 5, 6)).astype(np.float32)
    mha = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=4)
    mha(seq, seq)
    names = [
        "query.kernel",
        "query.bias",
        "key.kernel",
        "key.bias",
        "value.kernel",
        "value.bias",
        "attention_output.kernel",
        "attention_output.bias",
    ]
    values = [rng.normal(size=v.shape).astype(np.float32) for v in mha.get_weights()]
    mha.set_weights(values)
    ours = run(
        "multi_head_attention",
        {"key_dim": 3, "use_bias": True},
        seq,
        dict(zip(names, values, strict=True)),
    )
    np.testing.assert_allclose(ours, np.asarray(mha(seq, seq)), atol=1e-4)
    leaky = keras.activations.leaky_relu(seq)
    np.testing.assert_allclose(
        act(torch.from_numpy(seq), "leaky_relu").numpy(), np.asarray(leaky), atol=1e-6
    )
