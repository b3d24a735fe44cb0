"""What a layer lowering works with: `Layer` (one nn op being lowered: its attributes, lowered
operands, weights) appending typed tensor ops through the network's `Emitter`.

Every op a layer produces gets the nn op's location and device, and a name under the layer's
(`dense.linear`, `transformer_encoder.3.self_attn.q`); the value the layer returns is renamed to
the layer's own name, so the values users and emitters know keep their names. Weights are
`tensor.weight` ops whose name is their key (`dense.weight`), typed by the registry's
`LayerSpec.weights` for the layer's actual input types.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from neuralc.diagnostics import CompileError, error
from neuralc.ir.core import Network, Operation, Value, VerifyError, primary_loc
from neuralc.ir.tensor import infer_type
from neuralc.ir.types import Attr, HPOAttr, TensorType
from neuralc.layers.spec import LayerSpec, WeightSpec

Lowering = Callable[["Layer"], Value]
LOWERINGS: dict[str, Lowering] = {}

# Registry activations that are not elementwise, and registry names with another tensor kind.
NON_ELEMENTWISE = ("softmax", "log_softmax")
KIND_ALIASES = {"swish": "silu"}
LEAKY_RELU_ALPHA = 0.2  # keras.activations.leaky_relu's negative_slope (Keras 3)


def lowering(*ops: str) -> Callable[[Lowering], Lowering]:
    """Register the lowering of nn ops (`nn.dense`, ...)."""

    def register(fn: Lowering) -> Lowering:
        for op in ops:
            LOWERINGS[op] = fn
        return fn

    return register


class Emitter:
    """Appends lowered ops for one network, with names unique across it."""

    def __init__(self, net: Network, taken: set[str]) -> None:
        self.net = net
        self.taken = set(taken)  # every name of the network before lowering, and each new one
        self.ops: list[Operation] = []

    def fresh(self, name: str) -> str:
        """`name` if free, else `name_1`, `name_2`, ..."""
        candidate, counter = name, 0
        while candidate in self.taken:
            counter += 1
            candidate = f"{name}_{counter}"
        self.taken.add(candidate)
        return candidate

    def append(self, op: Operation) -> Operation:
        self.ops.append(op)
        return op


class Layer:
    """One nn layer op being lowered."""

    def __init__(self, em: Emitter, op: Operation, spec: LayerSpec | None,
                 inputs: list[Value]) -> None:
        self.em = em
        self.op = op
        self.spec = spec
        self.name = op.name
        self.inputs = inputs
        self.attrs: dict[str, Any] = dict(op.attrs)
        self.created: list[Operation] = []
        self._weights: dict[str, WeightSpec] | None = None
        if spec is not None:
            self._check_hpo(spec)

    # -- diagnostics --------------------------------------------------------------------------

    def error(self, message: str, *notes: str) -> CompileError:
        return error(f"cannot lower layer '{self.name}' ({self.op.op}): {message}",
                     primary_loc(self.op.loc), *notes)

    def _check_hpo(self, spec: LayerSpec) -> None:
        for key, value in self.op.attrs.items():
            param = spec.param(key)
            if isinstance(value, HPOAttr) and (param is None or param.affects_shape):
                raise self._hpo_error(key, value)

    def _hpo_error(self, key: str, value: Attr) -> CompileError:
        from neuralc.ir.printer import print_attr

        return self.error(f"{key} = {print_attr(value)} is an open hyperparameter that "
                          "decides the lowered graph", "lowering needs one trial's concrete "
                          "values; stop at `--emit nn` to keep the search space")

    def concrete(self, key: str) -> Any:
        """An attribute that decides the graph's structure: an HPO value is an error."""
        value = self.attrs.get(key)
        if isinstance(value, HPOAttr):
            raise self._hpo_error(key, value)
        return value

    # -- weights ------------------------------------------------------------------------------

    def weight_specs(self) -> dict[str, WeightSpec]:
        if self._weights is None:
            concrete = {k: v.candidates()[0] if isinstance(v, HPOAttr) else v
                        for k, v in self.attrs.items()}
            self._weights = self.spec.weights(concrete, [v.type for v in self.inputs]) \
                if self.spec is not None else {}
        return self._weights

    def has_weight(self, wname: str) -> bool:
        return wname in self.weight_specs()

    def weight(self, wname: str) -> Value:
        spec = self.weight_specs()[wname]
        key = f"{self.name}.{wname}"
        attrs: dict[str, Attr] = {"key": key}
        if not spec.trainable:
            attrs["trainable"] = False
        return self._append("tensor.weight", [], attrs, key, TensorType(spec.shape))

    def constant(self, value: Attr, shape: tuple[int, ...], suffix: str = "constant", *,
                 name: str | None = None) -> Value:
        return self._append("tensor.constant", [], {"value": value}, name or self.sub(suffix),
                            TensorType(shape))

    # -- ops ----------------------------------------------------------------------------------

    def sub(self, suffix: str) -> str:
        return f"{self.name}.{suffix}"

    def emit(self, kind: str, operands: Sequence[Value], attrs: dict[str, Attr] | None = None,
             suffix: str = "out", *, name: str | None = None) -> Value:
        """Append `kind` (its result type inferred) named `<layer>.<suffix>` (or `name`)."""
        attrs = dict(attrs or {})
        try:
            result = infer_type(kind, [v.type for v in operands], attrs)
        except VerifyError as exc:  # a lowering bug: say where
            raise self.error(f"{kind} is ill-typed: {exc}") from None
        return self._append(kind, operands, attrs, name or self.sub(suffix), result)

    def _append(self, kind: str, operands: Sequence[Value], attrs: dict[str, Attr], name: str,
                result: TensorType) -> Value:
        op = Operation(kind, self.em.fresh(name), operands, [result], attrs, self.op.loc,
                       self.op.device)
        self.em.append(op)
        self.created.append(op)
        return op.result

    def rename_result(self, value: Value) -> None:
        """Give the layer's final value the layer's own name (when this layer made it)."""
        op = value.owner
        if isinstance(op, Operation) and op in self.created and op.name != self.name:
            op.name = value.name = self.name

    # -- shared pieces ------------------------------------------------------------------------

    def activate(self, x: Value, key: str = "activation", suffix: str = "activation",
                 name: str | None = None) -> Value:
        """The registry activation `attrs[key]` applied to `x` (last axis for softmax)."""
        kind = self.attrs.get(key) or "linear"
        if isinstance(kind, HPOAttr):
            if any(c in NON_ELEMENTWISE for c in kind.candidates()):
                raise self._hpo_error(key, kind)
            kind = HPOAttr(kind.kind, tuple(KIND_ALIASES.get(c, c) for c in kind.args),
                           kind.kwargs)  # type: ignore[arg-type]
        elif kind == "linear":
            return x
        elif kind in NON_ELEMENTWISE:
            return self.emit(f"tensor.{kind}", [x], {"axis": -1}, suffix, name=name)
        attrs: dict[str, Attr] = {"kind": KIND_ALIASES.get(kind, kind)}
        if kind == "leaky_relu":
            attrs["alpha"] = LEAKY_RELU_ALPHA
        return self.emit("tensor.activation", [x], attrs, suffix, name=name)

    def dropout(self, x: Value, rate: Attr, suffix: str = "dropout", *,
                name: str | None = None) -> Value:
        """`tensor.dropout` unless the rate is a plain 0 (then the identity)."""
        if not isinstance(rate, HPOAttr) and float(rate) == 0.0:  # type: ignore[arg-type]
            return x
        return self.emit("tensor.dropout", [x], {"rate": rate}, suffix, name=name)

    def layer_norm(self, x: Value, prefix: str, eps: Attr) -> Value:
        """LayerNorm over the last axis with `<prefix>.weight`/`.bias` (constants if absent)."""
        d = x.type.shape[-1]
        scale = self.weight(f"{prefix}weight") if self.has_weight(f"{prefix}weight") else \
            self.constant(1.0, (d,), f"{prefix}ones".strip("."))  # type: ignore[arg-type]
        bias = self.weight(f"{prefix}bias") if self.has_weight(f"{prefix}bias") else \
            self.constant(0.0, (d,), f"{prefix}zeros".strip("."))  # type: ignore[arg-type]
        return self.emit("tensor.layer_norm", [x, scale, bias], {"eps": eps},
                         prefix.rstrip(".") or "norm")


def channels_first(rank: int) -> tuple[int, ...]:
    """The perm taking channels-last [N, *spatial, C] to [N, C, *spatial]."""
    return (0, rank + 1, *range(1, rank + 1))


def channels_last(rank: int) -> tuple[int, ...]:
    return (0, *range(2, rank + 2), 1)


def same_pads(sizes: Sequence[Any], kernel: Sequence[int], strides: Sequence[int],
              dilation: Sequence[int] | None = None) -> tuple[int, ...] | str:
    """Keras "same" padding as explicit (begins..., ends...) pads (the odd one at the end), or
    "same_upper" when a size is symbolic."""
    if any(not isinstance(d, int) for d in sizes):
        return "same_upper"
    begins, ends = [], []
    for i, d in enumerate(sizes):
        k_eff = (dilation[i] if dilation else 1) * (kernel[i] - 1) + 1
        out = math.ceil(d / strides[i])
        total = max((out - 1) * strides[i] + k_eff - d, 0)
        begins.append(total // 2)
        ends.append(total - total // 2)
    return (*begins, *ends)
