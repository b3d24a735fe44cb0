"""One layer line of the DSL, resolved against the registry: which layer it names, its
arguments bound to the layer's parameters, its device, its repetition count and its output type
— each failure a diagnostic at the argument or line responsible.

`LayerResolver` is the part of the IR builder (`irgen._NetworkBuilder`) that looks at one line
in isolation; the builder composes lines into networks (and `nested_blocks` into regions).
"""

from __future__ import annotations

from collections.abc import Iterator

from neuralc.diagnostics import SourceLocation, did_you_mean, error
from neuralc.frontend import ast
from neuralc.frontend.config import check_device
from neuralc.frontend.values import Trial, to_attr
from neuralc.ir.core import Value
from neuralc.ir.types import HPOAttr, TensorType
from neuralc.layers import LayerSpec, ShapeError, all_layers, get_layer
from neuralc.layers.binding import BindError, bind
from neuralc.layers.families.compose import check_follows

MAX_REPEAT = 10_000


class LayerResolver:
    """State: the program's macros and the HPO trial; per network, its inputs (for notes about a
    dropped leading None) and which layer produced each value (for cross-layer rules)."""

    def __init__(self, macros: dict[str, ast.MacroDef], trial: Trial | None) -> None:
        self.macros = macros
        self.trial = trial
        self.batch_none: SourceLocation | None = None
        self.network_inputs: list[Value] = []
        self.producers: dict[Value, tuple[LayerSpec, Value]] = {}

    def _check_follows(self, call: ast.LayerCall, spec: LayerSpec,
                       inputs: list[Value]) -> None:
        """Cross-layer rules of the registry (e.g. no Conv2D on Dense's per-pixel output)."""
        def chain() -> Iterator[tuple[LayerSpec, TensorType]]:
            # Lazily: the rule looks only as far back as the first non-transparent producer, and
            # walking the whole chain for every line made checking quadratic in its length.
            value: Value | None = inputs[0] if len(inputs) == 1 else None
            while value is not None and value in self.producers:
                producer_spec, producer_input = self.producers[value]
                yield producer_spec, producer_input.type
                value = producer_input

        try:
            check_follows(spec, chain())
        except ShapeError as exc:
            raise error(_prefixed(spec.name, exc.message), call.loc, exc.note or "") from None

    def _spec(self, call: ast.LayerCall) -> LayerSpec:
        spec = get_layer(call.name)
        if spec is None:
            names = [s.name for s in all_layers()] + list(self.macros)
            hint = did_you_mean(call.name, names)
            raise error(
                f"unknown layer '{call.name}'",
                call.loc,
                hint or "see docs/layers.md for the layers neuralc knows",
            )
        return spec

    def _bind(self, call: ast.LayerCall, spec: LayerSpec) -> dict:
        for arg in call.args:
            if isinstance(arg.value, ast.Name) and arg.value.name == "...":
                # The guide abbreviates `TransformerEncoder(...) @ "cuda:0"`.
                raise error(f"{spec.name}(...) leaves its arguments out", arg.loc,
                            "write the layer's arguments, e.g. "
                            + _example_call(spec))
        args = [(a.name, to_attr(a.value, self.trial)) for a in call.args]
        try:
            return dict(bind(spec, args))
        except BindError as exc:
            loc = call.args[exc.arg_index].loc if exc.arg_index is not None else call.loc
            raise error(_prefixed(spec.name, exc.message), loc, exc.note or "") from None

    def _cross_attends(
        self, call: ast.LayerCall, spec: LayerSpec, attrs: dict, memory: Value | None
    ) -> bool:
        """Whether a TransformerDecoder attends to `memory` (the latest encoder output): as
        written when `cross_attention` is given, else whenever there is an encoder output."""
        index = next(i for i, p in enumerate(spec.params) if p.name == "cross_attention")
        positional = [a for a in call.args if a.name is None]
        given = [a for a in call.args if a.name == "cross_attention"] + positional[index:]
        if not given:
            return memory is not None
        if attrs["cross_attention"] is True and memory is None:
            raise error(
                f"{spec.name} cross_attention=true has no encoder output to attend to",
                given[0].loc,
                "cross-attention attends to the output of a TransformerEncoder earlier in the "
                "network; put the encoder stack before this layer, or remove "
                "cross_attention=true for a decoder-only (GPT-style) block",
            )
        return attrs["cross_attention"] is True

    def _infer(
        self, call: ast.LayerCall, spec: LayerSpec, attrs: dict, operands: list[Value]
    ) -> TensorType:
        try:
            return spec.infer(concrete(attrs), [v.type for v in operands])
        except ShapeError as exc:
            loc = call.loc
            if exc.param is not None:
                param = spec.param(exc.param)
                names = {exc.param, *(param.aliases if param else ())}
                for arg in call.args:
                    if arg.name in names:
                        loc = arg.loc
            notes = [exc.note or ""]
            if self.batch_none is not None and any(v in self.network_inputs for v in operands):
                notes.append(
                    f"the leading None of the input (line {self.batch_none.line}) was "
                    "read as the batch dimension; for a dynamic length write another "
                    "None after it, e.g. input: (None, None, 512)"
                )
            raise error(_prefixed(spec.name, exc.message), loc, *notes) from None

    def _device(self, call: ast.LayerCall) -> str | None:
        if call.device is None:
            return None
        return check_device(call.device.value, call.device.loc)

    def _repeat_count(self, call: ast.LayerCall) -> int | None:
        if call.repeat is None:
            return None
        value = to_attr(call.repeat, self.trial)
        if isinstance(value, HPOAttr):
            value = value.candidates()[0]
        if not isinstance(value, int) or isinstance(value, bool):
            raise error(f"repetition count must be an integer, got {value!r}", call.repeat.loc)
        if value < 1:
            raise error(
                f"repetition count must be at least 1, got {value}",
                call.repeat.loc,
                "remove the layer instead of repeating it zero times" if value == 0 else "",
            )
        if value > MAX_REPEAT:
            raise error(
                f"repetition count {value} exceeds the limit of {MAX_REPEAT}", call.repeat.loc
            )
        return value


def concrete(attrs: dict) -> dict:
    """Open hyperparameters at their first candidate: enough for shapes and counts."""
    return {k: (v.candidates()[0] if isinstance(v, HPOAttr) else v) for k, v in attrs.items()}


def _example_call(spec: LayerSpec) -> str:
    required = [p.name for p in spec.params if p.required]
    return f"{spec.name}({', '.join(f'{name}=...' for name in required)})"


def _prefixed(layer: str, message: str) -> str:
    return message if message.startswith(layer) else f"{layer}: {message}"
