"""The body of the Keras module's `build_model()`: one Keras layer call per `nn` op.

Each op becomes a line like `dense_1 = layers.Dense(10, name="dense_1")(x)` under a
`# model.neural:LINE: source` comment; `nn.repeat` becomes a `for` loop whose layers are named
with an f-string, a ResidualConnection its body's layers plus a `layers.Add`. While writing,
the writer collects what the rest of the file needs: the helper snippets and weight converters
the layers use, the layers placed on a GPU, and the open hyperparameters fixed at their first
candidate.

Separate from `emitter.py`, which lays out the file around this function (docstring, imports,
placement table, converters, runtime): this module is where IR ops, regions and Python names
meet.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuralc.diagnostics import error
from neuralc.ir.common_ops import TRANSFER_OPS
from neuralc.ir.core import Block, Location, Network, Operation, Value, primary_loc
from neuralc.ir.naming import SINGLE_BODY
from neuralc.ir.shapes import REPEAT, YIELD, concrete_attrs
from neuralc.ir.types import FRAMEWORK_DTYPES, HPOAttr
from neuralc.lower.keras.layers import (
    LOWERINGS,
    STRUCTURAL,
    TARGET_NAME,
    KerasLayer,
    py,
)
from neuralc.lower.target import BuildOptions

INDENT = "    "
KERAS_DTYPES = FRAMEWORK_DTYPES
GPU_DEVICES = re.compile(r"^(cuda|gpu)(:\d+)?$")
LOOP_VARS = ("i", "j", "k")
# Names build_model's body must not shadow.
RESERVED = frozenset({
    "keras", "layers", "ops", "np", "tf", "math", "model", "weights_path", "load_weights",
    "build_model", "run", "main", "TransformerLayer", "TorchMultiheadAttention", *LOOP_VARS,
})
# The generated module's line length (`emitter.format_source`); source comments are cut to fit.
LINE_LENGTH = 100


def _python_name(name: str) -> str:
    ident = re.sub(r"\W", "_", name)
    if not ident or ident[0].isdigit():
        ident = "_" + ident
    return ident + "_" if keyword.iskeyword(ident) else ident


@dataclass
class _Scope:
    """Where ops are being written: indentation, the Keras-name template of each op name, and
    the placement inherited from enclosing repeats."""

    depth: int
    rename: Callable[[str], str]  # IR op name -> Keras name template (an f-string's body)
    device: str | None
    parent_loc: Location = None  # the enclosing repeat's location (its single body shares it)


@dataclass
class BuildModelWriter:
    """Writes `build_model()` for `network`; `helpers`, `converters`, `placement` and
    `hpo_notes` are filled in as a side effect, for the rest of the file."""

    network: Network
    options: BuildOptions
    lines: list[str] = field(default_factory=list)
    vars: dict[int, str] = field(default_factory=dict)  # id(Value) -> Python expression
    taken: set[str] = field(default_factory=lambda: set(RESERVED))
    helpers: set[str] = field(default_factory=set)
    converters: dict[str, str] = field(default_factory=dict)  # Keras class -> converter
    placement: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    hpo_notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.source_name = Path(self.options.source_path).name
        self.source_lines = _read_lines(self.options.source_path)
        execution = self.network.attrs.get("execution")
        self.default_device = execution.get("device") if isinstance(execution, dict) else None

    def write(self) -> str:
        """The `build_model` function's text."""
        self.lines = []
        top = _Scope(1, lambda name: name, None)
        inputs = []
        for value in self.network.inputs:
            var = self._bind(value, value.name)
            inputs.append(var)
            shape = py(tuple(d if isinstance(d, int) else None
                             for d in value.type.feature_shape))
            self._line(top, f"{var} = keras.Input(shape={shape}, dtype="
                            f"{py(KERAS_DTYPES[value.type.dtype])}, name={py(value.name)})")
        self._block(self.network.body, top)
        outputs = [self.vars[id(v)] for v in self.network.outputs]
        ins = inputs[0] if len(inputs) == 1 else "[" + ", ".join(inputs) + "]"
        outs = outputs[0] if len(outputs) == 1 else "[" + ", ".join(outputs) + "]"
        self._line(top, f"model = keras.Model(inputs={ins}, outputs={outs}, "
                        f"name={py(self.network.name)})")
        self._line(top, "if weights_path is not None:")
        self._line(_Scope(2, top.rename, None), "load_weights(model, weights_path)")
        self._line(top, "return model")
        doc = [
            "def build_model(weights_path: str | None = None) -> keras.Model:",
            f'{INDENT}"""Build the `{self.network.name}` network.',
            "",
            f"{INDENT}With `weights_path`, its weights come from neuralc's weight file; without, "
            "they keep",
            f"{INDENT}Keras' initializers (which differ from the other backends').",
            f'{INDENT}"""',
        ]
        if self.hpo_notes:
            doc += [f"{INDENT}# Open hyperparameters at their first candidate: "
                    f"{', '.join(self.hpo_notes)}."]
        return "\n".join(doc + self.lines)

    def _block(self, block: Block, scope: _Scope) -> None:
        for op in block.ops:
            if op.op in (YIELD, "return"):
                return
            self._op(op, scope)

    def _op(self, op: Operation, scope: _Scope, target: str | None = None) -> None:
        """Write `op`, assigning its result to the Python variable `target` when given."""
        if op.op == REPEAT:
            self._repeat(op, scope, target)
            return
        if op.op in TRANSFER_OPS:
            # A device boundary (place-devices): the data is unchanged, and the model is placed
            # as a whole from PLACEMENT, which the layers on either side already fill.
            source = self.vars[id(op.operands[0])]
            if target is not None and target != source:
                self._line(scope, f"{target} = {source}")
            self.vars[id(op.result)] = target or source
            return
        spec = _spec_for(op)
        if spec is None:
            raise error(f"the TensorFlow backend cannot lower '{op.op}' (op '{op.name}')",
                        primary_loc(op.loc),
                        "the Keras emitter takes the `nn` dialect; build without lowering "
                        "passes")
        self._comment(op, scope)
        self._place(op, scope)
        if spec.name in STRUCTURAL:
            self._residual(op, scope, target)
            return
        lowering = spec.lowerings.get(TARGET_NAME) or LOWERINGS.get(spec.name)
        if lowering is None:
            raise error(f"the TensorFlow backend has no lowering for {spec.name}",
                        primary_loc(op.loc))
        self._layer(op, lowering(op, self._attrs(op)), scope, target)

    def _layer(self, op: Operation, layer: KerasLayer, scope: _Scope,
               target: str | None = None) -> None:
        self.helpers.update(layer.helpers)
        if layer.converter is not None:
            self.converters[layer.cls] = layer.converter
        args = [*layer.args, f"name={_template(scope.rename(op.name))}"]
        operands = [self.vars[id(v)] for v in op.operands]
        if layer.call == "list":
            call = "[" + ", ".join(operands) + "]"
        elif layer.call == "self":
            call = f"{operands[0]}, {operands[0]}"
        else:
            call = ", ".join(operands)
        var = target or self._bind(op.result, op.name)
        self.vars[id(op.result)] = var
        self._line(scope, f"{var} = {layer.cls}({', '.join(args)})({call})")

    def _repeat(self, op: Operation, scope: _Scope, target: str | None = None) -> None:
        count = int(op.attrs["count"])  # type: ignore[call-overload]
        self._comment(op, scope)
        depth = scope.depth - 1
        loop = LOOP_VARS[depth] if depth < len(LOOP_VARS) else f"i{depth}"
        self.taken.add(loop)
        var = target or self._bind(op.result, op.name)
        body = op.regions[0]
        if self.vars[id(op.operands[0])] != var:
            self._line(scope, f"{var} = {self.vars[id(op.operands[0])]}")
        outer = scope.rename

        def rename(name: str) -> str:
            inner = name.removeprefix(op.name + ".")
            base = f"{outer(op.name)}.{{{loop}}}"
            return base if inner == SINGLE_BODY else f"{base}.{inner}"

        self._line(scope, f"for {loop} in range({count}):")
        inner_scope = _Scope(scope.depth + 1, rename, op.device or scope.device, op.loc)
        self.vars[id(body.args[0])] = var
        yielded = body.terminator.operands[0] if body.terminator else None
        for inner in body.ops:
            if inner.op == YIELD:
                break
            # The body's last layer writes the loop variable directly.
            last = bool(inner.results) and inner.results[0] is yielded
            self._op(inner, inner_scope, var if last else None)
        if yielded is not None and self.vars[id(yielded)] != var:
            self._line(inner_scope, f"{var} = {self.vars[id(yielded)]}")
        self.vars[id(op.result)] = var

    def _residual(self, op: Operation, scope: _Scope, target: str | None = None) -> None:
        x = self.vars[id(op.operands[0])]
        outs: list[str] = []
        for region in op.regions:  # the body, then the optional shortcut projection
            for arg in region.args:
                self.vars[id(arg)] = x
            self._block(region, scope)
            term = region.terminator
            assert term is not None
            outs.append(self.vars[id(term.operands[0])])
        shortcut, body = (outs[1], outs[0]) if len(outs) > 1 else (x, outs[0])
        var = target or self._bind(op.result, op.name)
        self.vars[id(op.result)] = var
        self._line(scope, f"{var} = layers.Add(name={_template(scope.rename(op.name))})"
                          f"([{shortcut}, {body}])")

    # Pieces -----------------------------------------------------------------------------------

    def _attrs(self, op: Operation) -> dict[str, Any]:
        for name, value in op.attrs.items():
            if isinstance(value, HPOAttr):
                self.hpo_notes.append(f"{op.name}.{name} = {py(value.candidates()[0])}")
        return concrete_attrs(op)

    def _bind(self, value: Value, name: str) -> str:
        base = _python_name(name)
        var, n = base, 0
        while var in self.taken:
            n += 1
            var = f"{base}_{n}"
        self.taken.add(var)
        self.vars[id(value)] = var
        return var

    def _line(self, scope: _Scope, text: str) -> None:
        self.lines.append(INDENT * scope.depth + text)

    def _comment(self, op: Operation, scope: _Scope) -> None:
        loc = primary_loc(op.loc)
        if loc is None or (scope.parent_loc is not None and op.loc == scope.parent_loc):
            return
        text = f"# {self.source_name}:{loc.line}"
        if 0 < loc.line <= len(self.source_lines):
            source = self.source_lines[loc.line - 1].strip()
            room = max(LINE_LENGTH - len(INDENT) * scope.depth - len(text) - 2, 20)
            if len(source) > room:
                source = source[: room - 3] + "..."
            if source:
                text += f": {source}"
        self._line(scope, text)

    def _place(self, op: Operation, scope: _Scope) -> None:
        device = self.options.device or op.device or scope.device or self.default_device
        if device is None or not GPU_DEVICES.match(device):
            return
        loc = primary_loc(op.loc)
        name = re.sub(r"\{\w+\}", "0", scope.rename(op.name))  # the first repetition's name
        self.placement.setdefault(name, (device, loc.line if loc else 0,
                                         loc.column if loc else 0))


def _template(name: str) -> str:
    """A string literal for a Keras name; an f-string when it holds loop variables."""
    return f"f{py(name)}" if "{" in name else py(name)


def _read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []


_SPECS: dict[str, Any] = {}


def _spec_for(op: Operation) -> Any:
    if not _SPECS:
        from neuralc.layers import all_layers

        _SPECS.update({spec.op_name: spec for spec in all_layers()})
    return _SPECS.get(op.op)
