"""A numpy reference interpreter for the tensor and kernel dialects (a test helper, not shipped).

`run(network, inputs, weights)` evaluates a lowered network in float64 and returns its outputs;
`tensor.dropout` is the identity (inference). Kernel ops are implemented from their documented
definitions, independently of the tensor graphs the fusion passes replaced, so running a network
before and after fusion checks the passes' exactness.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from neuralc.ir.core import Network, Operation
from neuralc.ir.tensor import attr

Array = np.ndarray
_erf = np.vectorize(math.erf)

ACTIVATIONS: dict[str, Callable[[Array, float], Array]] = {
    "linear": lambda x, a: x,
    "relu": lambda x, a: np.maximum(x, 0),
    "gelu": lambda x, a: 0.5 * x * (1 + _erf(x / math.sqrt(2))),
    "tanh": lambda x, a: np.tanh(x),
    "sigmoid": lambda x, a: 1 / (1 + np.exp(-x)),
    "elu": lambda x, a: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "selu": lambda x, a: 1.0507009873554805 * np.where(
        x > 0, x, 1.6732632423543772 * np.expm1(np.minimum(x, 0))),
    "leaky_relu": lambda x, a: np.where(x > 0, x, a * x),
    "silu": lambda x, a: x / (1 + np.exp(-x)),
    "softplus": lambda x, a: np.logaddexp(0, x),
    "softsign": lambda x, a: x / (1 + np.abs(x)),
    "hard_sigmoid": lambda x, a: np.clip((x + 3) / 6, 0, 1),
}


def activate(x: Array, kind: str, alpha: float = 0.2) -> Array:
    return ACTIVATIONS[kind](x, alpha)


def softmax(x: Array, axis: int = -1, causal: bool = False) -> Array:
    if causal:
        lq, lk = x.shape[-2:]
        x = np.where(np.triu(np.ones((lq, lk), bool), 1), -np.inf, x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def layer_norm(x: Array, scale: Array, bias: Array, eps: float, axis: int = -1) -> Array:
    axes = tuple(range(axis % x.ndim, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * scale + bias


def linear(x: Array, w: Array, b: Array | None = None) -> Array:
    y = x @ w.T
    return y if b is None else y + b


def _pads(op: Operation, x: Array, kernel: list[int], strides: list[int]) -> list[int]:
    pads = attr(op, "pads")
    if pads != "same_upper":
        return list(pads)  # type: ignore[arg-type]
    begins, ends = [], []
    for i, k in enumerate(kernel):
        d = x.shape[2 + i]
        total = max((math.ceil(d / strides[i]) - 1) * strides[i] + k - d, 0)
        begins.append(total // 2)
        ends.append(total - total // 2)
    return begins + ends


def _windows(x: Array, kernel: list[int], strides: list[int], dil: list[int]) -> Array:
    """[N, C, *out, *kernel] views of a padded channels-first input."""
    r = len(kernel)
    out = [(x.shape[2 + i] - dil[i] * (kernel[i] - 1) - 1) // strides[i] + 1 for i in range(r)]
    taps = np.empty((*x.shape[:2], *out, *kernel), x.dtype)
    for offset in np.ndindex(*kernel):
        index = tuple(slice(o * dil[i], o * dil[i] + strides[i] * (out[i] - 1) + 1, strides[i])
                      for i, o in enumerate(offset))
        taps[(..., *offset)] = x[(slice(None), slice(None), *index)]
    return taps


def conv(op: Operation, x: Array, w: Array, b: Array | None) -> Array:
    r = x.ndim - 2
    kernel = list(w.shape[2:])
    strides = list(attr(op, "strides") or (1,) * r)  # type: ignore[arg-type]
    dil = list(attr(op, "dilations") or (1,) * r)  # type: ignore[arg-type]
    eff = [d * (k - 1) + 1 for d, k in zip(dil, kernel, strict=True)]
    pads = _pads(op, x, eff, strides)
    x = np.pad(x, [(0, 0), (0, 0), *((pads[i], pads[i + r]) for i in range(r))])
    taps = _windows(x, kernel, strides, dil)
    groups = int(attr(op, "groups"))  # type: ignore[arg-type]
    cg, og = x.shape[1] // groups, w.shape[0] // groups
    letters = "abcdefgh"[:r]
    outs = [np.einsum(f"nc{letters}{letters.upper()},oc{letters.upper()}->no{letters}",
                      taps[:, g * cg:(g + 1) * cg], w[g * og:(g + 1) * og]) for g in range(groups)]
    y = np.concatenate(outs, axis=1)
    return y if b is None else y + b.reshape(-1, *(1,) * r)


def conv_transpose(op: Operation, x: Array, w: Array, b: Array | None) -> Array:
    r = x.ndim - 2
    kernel, strides = list(w.shape[2:]), list(attr(op, "strides") or (1,) * r)  # type: ignore
    extra = list(attr(op, "output_padding") or (0,) * r)  # type: ignore[arg-type]
    full_len = [strides[i] * (x.shape[2 + i] - 1) + kernel[i] for i in range(r)]
    full = np.zeros((x.shape[0], w.shape[1], *full_len))
    for offset in np.ndindex(*kernel):
        index = tuple(slice(o, o + strides[i] * (x.shape[2 + i] - 1) + 1, strides[i])
                      for i, o in enumerate(offset))
        full[(slice(None), slice(None), *index)] += np.einsum(
            "nc...,co->no...", x, w[(slice(None), slice(None), *offset)])
    pads = attr(op, "pads")
    if pads == "same_upper":
        totals = [full_len[i] + extra[i] - x.shape[2 + i] * strides[i] for i in range(r)]
        pads = [t // 2 for t in totals] + [t - t // 2 for t in totals]
    sizes = [full_len[i] + extra[i] - pads[i] - pads[i + r] for i in range(r)]  # type: ignore
    y = np.zeros((*full.shape[:2], *sizes))
    src = tuple(slice(pads[i], min(pads[i] + sizes[i], full_len[i])) for i in range(r))  # type: ignore
    dst = tuple(slice(0, s.stop - s.start) for s in src)
    y[(slice(None), slice(None), *dst)] = full[(slice(None), slice(None), *src)]
    return y if b is None else y + b.reshape(-1, *(1,) * r)


def pool(op: Operation, x: Array, kind: str) -> Array:
    r = x.ndim - 2
    kernel = list(attr(op, "kernel"))  # type: ignore[arg-type]
    strides = list(attr(op, "strides") or kernel)  # type: ignore[arg-type]
    pads = _pads(op, x, kernel, strides)
    width = [(0, 0), (0, 0), *((pads[i], pads[i + r]) for i in range(r))]
    axes = tuple(range(-r, 0))
    if kind == "max":
        taps = _windows(np.pad(x, width, constant_values=-np.inf), kernel, strides, [1] * r)
        return taps.max(axis=axes)
    total = _windows(np.pad(x, width), kernel, strides, [1] * r).sum(axis=axes)
    if attr(op, "count_include_pad"):
        return total / math.prod(kernel)
    ones = np.pad(np.ones((1, 1, *x.shape[2:])), width)
    return total / _windows(ones, kernel, strides, [1] * r).sum(axis=axes)


def reshape(x: Array, shape: tuple[int, ...]) -> Array:
    target = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(target)


def resize(x: Array, scales: tuple[int, ...], mode: str) -> Array:
    for axis, s in enumerate(scales):
        if s == 1:
            continue
        if mode == "nearest":
            x = np.repeat(x, s, axis=axis)
            continue
        d = x.shape[axis]
        src = np.maximum((np.arange(d * s) + 0.5) / s - 0.5, 0)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, d - 1)
        frac = (src - lo).reshape([-1 if i == axis else 1 for i in range(x.ndim)])
        x = np.take(x, lo, axis=axis) * (1 - frac) + np.take(x, hi, axis=axis) * frac
    return x


def recurrent(op: Operation, x: Array, w_ih: Array, w_hh: Array, b_ih: Array | None,
              b_hh: Array | None) -> Array:
    kind = op.op.split(".")[1]
    n, steps, _ = x.shape
    h_size = int(attr(op, "hidden_size"))  # type: ignore[arg-type]
    b_ih = np.zeros(w_ih.shape[0]) if b_ih is None else b_ih
    b_hh = np.zeros(w_hh.shape[0]) if b_hh is None else b_hh
    h, c = np.zeros((n, h_size)), np.zeros((n, h_size))
    sig = ACTIVATIONS["sigmoid"]
    outs = []
    for t in range(steps):
        gi, gh = linear(x[:, t], w_ih, b_ih), linear(h, w_hh, b_hh)
        if kind == "lstm":
            i, f, g, o = np.split(gi + gh, 4, axis=1)
            c = sig(f, 0) * c + sig(i, 0) * np.tanh(g)
            h = sig(o, 0) * np.tanh(c)
        elif kind == "gru":
            (ir, iz, inn), (hr, hz, hn) = np.split(gi, 3, axis=1), np.split(gh, 3, axis=1)
            rg, z = sig(ir + hr, 0), sig(iz + hz, 0)
            h = (1 - z) * np.tanh(inn + rg * hn) + z * h
        else:
            h = activate(gi + gh, str(attr(op, "activation")))
        outs.append(h)
    return np.stack(outs, axis=1) if attr(op, "return_sequences") else h


def attention(op: Operation, x: Array, memory: Array | None, w_in: Array, b_in: Array,
              w_out: Array, b_out: Array) -> Array:
    """kernel.attention from its definition."""
    heads, dk, dv = (int(attr(op, k)) for k in ("num_heads", "key_dim", "value_dim"))  # type: ignore
    kv_in = x if memory is None else memory
    q = linear(x, w_in[:heads * dk], b_in[:heads * dk])
    k = linear(kv_in, w_in[heads * dk:2 * heads * dk], b_in[heads * dk:2 * heads * dk])
    v = linear(kv_in, w_in[2 * heads * dk:], b_in[2 * heads * dk:])

    def split(t: Array, width: int) -> Array:
        return t.reshape(*t.shape[:2], heads, width).transpose(0, 2, 1, 3)

    scores = split(q, dk) @ split(k, dk).transpose(0, 1, 3, 2) * float(attr(op, "scale"))  # type: ignore
    probs = softmax(scores, causal=bool(attr(op, "causal")))
    context = (probs @ split(v, dv)).transpose(0, 2, 1, 3)
    return linear(context.reshape(*context.shape[:2], heads * dv), w_out, b_out)


def _eval(op: Operation, xs: list[Array], weights: dict[str, Array]) -> Array:
    kind = op.op
    a = {k: attr(op, k) for k in op.attrs}
    if kind == "tensor.weight":
        return weights[str(a["key"])].astype(np.float64)
    if kind == "tensor.constant":
        return np.broadcast_to(np.array(a["value"], np.float64),
                               op.result.type.shape).copy()  # type: ignore[arg-type]
    simple: dict[str, Callable[[], Array]] = {
        "tensor.add": lambda: xs[0] + xs[1], "tensor.sub": lambda: xs[0] - xs[1],
        "tensor.mul": lambda: xs[0] * xs[1], "tensor.div": lambda: xs[0] / xs[1],
        "tensor.activation": lambda: activate(xs[0], str(a["kind"]), attr(op, "alpha")),  # type: ignore
        "tensor.softmax": lambda: softmax(xs[0], int(attr(op, "axis")), bool(attr(op, "causal"))),  # type: ignore
        "tensor.log_softmax": lambda: np.log(softmax(xs[0], int(attr(op, "axis")))),  # type: ignore
        "tensor.matmul": lambda: xs[0] @ xs[1],
        "tensor.linear": lambda: linear(*xs),
        "tensor.layer_norm": lambda: layer_norm(*xs, float(a["eps"]), int(attr(op, "axis"))),  # type: ignore
        "tensor.batch_norm": lambda: np.moveaxis(
            (np.moveaxis(xs[0], int(attr(op, "axis")), -1) - xs[3]) / np.sqrt(  # type: ignore
                xs[4] + float(a["eps"])) * xs[1] + xs[2], -1, int(attr(op, "axis"))),  # type: ignore
        "tensor.conv": lambda: conv(op, xs[0], xs[1], xs[2] if len(xs) > 2 else None),
        "tensor.conv_transpose": lambda: conv_transpose(op, xs[0], xs[1],
                                                        xs[2] if len(xs) > 2 else None),
        "tensor.max_pool": lambda: pool(op, xs[0], "max"),
        "tensor.avg_pool": lambda: pool(op, xs[0], "avg"),
        "tensor.reduce_mean": lambda: xs[0].mean(axis=tuple(a["axes"]), keepdims=bool(  # type: ignore
            attr(op, "keepdims"))),
        "tensor.reduce_max": lambda: xs[0].max(axis=tuple(a["axes"]), keepdims=bool(  # type: ignore
            attr(op, "keepdims"))),
        "tensor.reshape": lambda: reshape(xs[0], a["shape"]),  # type: ignore[arg-type]
        "tensor.transpose": lambda: xs[0].transpose(a["perm"]),
        "tensor.concat": lambda: np.concatenate(xs, axis=int(a["axis"])),  # type: ignore
        "tensor.slice": lambda: np.take(xs[0], np.arange(a["start"], a["end"]),  # type: ignore
                                        axis=int(a["axis"])),  # type: ignore[arg-type]
        "tensor.gather": lambda: np.take(xs[0], xs[1], axis=int(attr(op, "axis"))),  # type: ignore
        "tensor.dropout": lambda: xs[0],
        "tensor.transfer": lambda: xs[0],
        "tensor.pad": lambda: np.pad(xs[0], list(zip(a["pads"][:xs[0].ndim],  # type: ignore
                                                     a["pads"][xs[0].ndim:], strict=True)),  # type: ignore
                                     constant_values=float(attr(op, "value"))),  # type: ignore
        "tensor.resize": lambda: resize(xs[0], a["scales"], str(attr(op, "mode"))),  # type: ignore
        "tensor.lstm": lambda: recurrent(op, *xs[:3], *(xs[3:] or [None, None])),
        "kernel.attention": lambda: attention(op, xs[0], xs[1] if len(xs) == 6 else None,
                                              *xs[-4:]),
        "kernel.ffn": lambda: linear(activate(linear(xs[0], xs[1], xs[2]), str(
            a["activation"]), attr(op, "alpha")), xs[3], xs[4]),  # type: ignore[arg-type]
        "kernel.add_layernorm": lambda: layer_norm(xs[0] + xs[1], xs[2], xs[3],
                                                   float(a["eps"])),  # type: ignore[arg-type]
        "kernel.bias_act": lambda: activate(xs[0] + xs[1], str(a["activation"]),
                                            attr(op, "alpha")),  # type: ignore[arg-type]
    }
    simple["tensor.gru"] = simple["tensor.rnn"] = simple["tensor.lstm"]
    if kind not in simple:
        raise NotImplementedError(kind)
    return simple[kind]()


def run(net: Network, inputs: dict[str, Array], weights: dict[str, Array]) -> list[Array]:
    env: dict[int, Array] = {}
    for arg in net.inputs:
        value = inputs[arg.name]
        env[id(arg)] = value if not np.issubdtype(value.dtype, np.floating) else \
            value.astype(np.float64)
    for op in net.body.ops:
        xs = [env[id(v)] for v in op.operands]
        if op.op == "return":
            return xs
        env[id(op.result)] = _eval(op, xs, weights)
    raise AssertionError("no return")
