"""The `nn` dialect: one op per DSL layer, plus the structural ops `nn.repeat`, `nn.residual` and
`nn.yield`.

Layer ops are generated from the layer registry (`LayerSpec.op_name`: `Dense` → `nn.dense`) by
`register_nn_dialect()`, so adding a layer to `neuralc.layers.families` adds its op. A layer op's
attributes are the layer's normalized params; its verify hook re-checks them with
`neuralc.layers.binding.validate_attrs` and re-runs the shape rule:

    %dense = nn.dense(%input) {units = 128, activation = "relu", use_bias = true} -> f32[N,128]

A layer that takes a `{ ... }` body (ResidualConnection → `nn.residual_connection`, what irgen
emits) gets the residual structure of `nn.residual` plus its params and shape rule, which receives
`[shortcut, body_output]`.

Reserved attributes, allowed on every layer op besides its params (`RESERVED_ATTRS`):
- `cross_attention` (bool): a TransformerDecoder attending to an encoder output. When true (as
  a reserved attribute or a declared param), the op takes the encoder output as one extra
  operand after the layer's own, and the shape rule sees every operand.

The structural ops are registered at import (they need no registry); layer ops are registered
lazily because loading the registry imports every family module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from neuralc.diagnostics import CompileError
from neuralc.ir.core import OPS, OpDef, Operation, VerifyError, register_op
from neuralc.ir.types import Attr, HPOAttr, TensorType
from neuralc.layers.spec import LayerSpec, ShapeError

STRUCTURAL_OPS = ("nn.repeat", "nn.residual", "nn.yield")
RESERVED_ATTRS: dict[str, type] = {"cross_attention": bool}

# One OpDef per layer, cached so that registering again is a no-op (OpDefs compare their verify
# hooks, and a fresh closure would look like a different definition).
_LAYER_OPDEFS: dict[str, OpDef] = {}


def register_nn_dialect(specs: Iterable[LayerSpec] | None = None) -> None:
    """Register the op of every registered layer (or of `specs`). Idempotent and cheap, so the
    parser and verifier call it on every use and pick up layers registered since."""
    if specs is None:
        from neuralc.layers.registry import all_layers

        specs = all_layers()
    for spec in specs:
        opdef = _LAYER_OPDEFS.get(spec.name) or layer_opdef(spec)
        _LAYER_OPDEFS[spec.name] = opdef
        if OPS.get(opdef.name) is not opdef:
            register_op(opdef)


def layer_opdef(spec: LayerSpec) -> OpDef:
    """The OpDef of one layer. Operand counts are checked by the hook, not by the verifier's
    generic count check: merges are variadic (≥ 2) and `cross_attention` adds one operand."""
    if spec.op_name in STRUCTURAL_OPS:
        raise ValueError(f"layer {spec.name} would shadow the structural op {spec.op_name}")
    params = ", ".join(f"{p.name} = ..." for p in spec.params)
    operands = "%a, %b" if spec.arity is None else ", ".join(["%x"] * spec.arity)
    example = f"%{spec.op_name[3:]} = {spec.op_name}({operands}) {{{params}}} -> ..."
    if spec.takes_body:
        def verify(op: Operation) -> None:
            verify_residual(op, spec)

        return OpDef(spec.op_name, f"{spec.doc}\n\n{verify_residual.__doc__}", num_operands=1,
                     num_results=1, num_regions=1, max_regions=2, verify=verify)

    def verify(op: Operation) -> None:
        verify_layer_op(spec, op)

    return OpDef(spec.op_name, f"{spec.doc}\n\n    {example}", num_operands=None,
                 num_results=1, verify=verify)


def _binding() -> tuple[Callable[[LayerSpec, Mapping[str, Any]], object], type[Exception]]:
    # Imported lazily: binding is the registry's business, and the dialect must import fast.
    from neuralc.layers import binding

    return binding.validate_attrs, getattr(binding, "BindError", ValueError)


def _has_hpo(value: Attr) -> bool:
    if isinstance(value, HPOAttr):
        return True
    if isinstance(value, tuple):
        return any(_has_hpo(v) for v in value)
    if isinstance(value, dict):
        return any(_has_hpo(v) for v in value.values())
    return False


def check_params(spec: LayerSpec, params: Mapping[str, Attr], op: Operation) -> None:
    """`validate_attrs`, its complaint as a VerifyError. HPO attributes are passed as they are:
    validate_attrs checks every candidate (and that the HPOAttr itself is normalized)."""
    validate, bind_error = _binding()
    try:
        validate(spec, params)
    except CompileError as exc:
        detail = "; ".join(d.message for d in exc.diagnostics)
        raise VerifyError(f"invalid attributes: {detail}", op) from None
    except (bind_error, ShapeError, ValueError, TypeError) as exc:
        raise VerifyError(f"invalid attributes: {exc}", op) from None


def _split_reserved(spec: LayerSpec, op: Operation) -> dict[str, Attr]:
    """The op's layer params (attributes minus type-checked reserved ones)."""
    params: dict[str, Attr] = {}
    for key, value in op.attrs.items():
        if key in RESERVED_ATTRS and spec.param(key) is None:
            if not isinstance(value, RESERVED_ATTRS[key]):
                expected = RESERVED_ATTRS[key].__name__
                raise VerifyError(f"attribute '{key}' must be a {expected}", op)
        else:
            params[key] = value
    return params


def _infer(spec: LayerSpec, attrs: Mapping[str, Attr], inputs: list[TensorType],
           op: Operation) -> TensorType:
    try:
        return spec.infer(attrs, inputs)
    except ShapeError as exc:
        note = f" ({exc.note})" if exc.note else ""
        raise VerifyError(f"shape error: {exc.message}{note}", op) from None


def verify_layer_op(spec: LayerSpec, op: Operation) -> None:
    """Operand count, attributes (every HPO candidate), and the inferred result type when every
    shape-relevant attribute is concrete."""
    # Whether reserved or a declared param, cross attention takes the encoder output as well.
    uses_cross = op.attrs.get("cross_attention") is True
    n = len(op.operands)
    if spec.arity is None:
        if n < 2:
            raise VerifyError(f"a merge takes at least 2 operands, got {n}", op)
    elif n != spec.arity + uses_cross:
        raise VerifyError(f"takes {spec.arity + uses_cross} operand(s), got {n}", op)
    check_params(spec, _split_reserved(spec, op), op)

    hpo = {k: v for k, v in op.attrs.items() if isinstance(v, HPOAttr)}
    for key, h in hpo.items():
        param = spec.param(key)
        # An open shape-relevant hyperparameter makes the result type per trial: not checkable.
        if not h.candidates() or param is None or param.affects_shape:
            return
    # The others (dropout rates, ...) cannot change the type: any candidate will do.
    concrete = {k: (v.candidates()[0] if isinstance(v, HPOAttr) else v)
                for k, v in op.attrs.items()}
    if any(_has_hpo(v) for v in concrete.values()) or len(op.results) != 1:
        return  # an HPO nested in a tuple; a wrong result count is the verifier's report
    inferred = _infer(spec, concrete, [v.type for v in op.operands], op)
    if inferred != op.results[0].type:
        raise VerifyError(
            f"result type {op.results[0].type} does not match the type inferred from its "
            f"operands and attributes, {inferred}", op)


# -- structural ops ---------------------------------------------------------------------------


def _yield_of(block_ops: list[Operation]) -> Operation | None:
    last = block_ops[-1] if block_ops else None
    # A missing or wrong terminator is the verifier's report; the hooks just skip their check.
    return last if last is not None and last.op == "nn.yield" else None


def _types(values: Iterable[Any]) -> list[TensorType]:
    return [v.type for v in values]


def _fmt(types: list[TensorType]) -> str:
    return "(" + ", ".join(str(t) for t in types) + ")"


def _only_attrs(op: Operation, allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    for key in op.attrs:
        if key not in allowed:
            raise VerifyError(f"unexpected attribute '{key}'", op)


def _int_count(op: Operation) -> int | None:
    count = op.attrs.get("count")
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def verify_repeat(op: Operation) -> None:
    """`count` copies of the body in sequence, each feeding the next. The block arguments are
    typed like the operands and the body is typed for its first iteration:

        %enc = nn.repeat(%x) {count = 6} -> f32[N,512,768] loc("m.neural":4:5) {
        ^(%enc.in: f32[N,512,768]):
          %enc.layer = nn.transformer_encoder(%enc.in) {...} -> f32[N,512,768] loc(...)
          nn.yield(%enc.layer) loc("m.neural":4:5)
        }

    `count` is an int ≥ 1, or an HPO attribute whose candidates are. A body that maps T → T
    has results typed like its operands. A body that changes the type on its first iteration
    (`Dense(64) * 3` after a 32-wide input, `Conv2D(32, 3) * 2` shrinking twice) is re-inferred
    for the later iterations (`neuralc.ir.shapes`), and the results are typed like the last one.
    Op names in the body are unique: unrolling derives each copy's names from them.
    """
    _only_attrs(op, ("count",))
    count = op.attrs.get("count")
    counts = count.candidates() if isinstance(count, HPOAttr) else (count,)
    if not counts or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 1
                             for c in counts):
        raise VerifyError("attribute 'count' must be an int >= 1 (or an HPO choice of them), "
                          f"got {count!r}", op)
    if not op.operands or len(op.regions) != 1:
        raise VerifyError("takes at least one operand and one region", op)
    body = op.regions[0]
    operand_types = _types(op.operands)
    if _types(body.args) != operand_types:
        raise VerifyError(f"block argument types {_fmt(_types(body.args))} must equal the "
                          f"operand types {_fmt(operand_types)}", op)
    seen: set[str] = set()
    for inner in body.walk():
        if inner.results:
            if inner.name in seen:
                raise VerifyError(f"duplicate op name '{inner.name}' in the repeated body", op)
            seen.add(inner.name)
    term = _yield_of(body.ops)
    if term is None:
        return
    yielded = _types(term.operands)
    if len(yielded) != len(operand_types):
        raise VerifyError(f"the body takes {len(operand_types)} value(s) but yields "
                          f"{len(yielded)}; each iteration feeds the next", op)
    expected = _repeated_types(op, yielded)
    if expected is not None and _types(op.results) != expected:
        after = "its operands" if yielded == operand_types else f"{count} iterations"
        raise VerifyError(f"result types {_fmt(_types(op.results))} must equal the types after "
                          f"{after}, {_fmt(expected)}", op)


def _repeated_types(op: Operation, first: list[TensorType]) -> list[TensorType] | None:
    """The types after all iterations, given the first iteration's; None when not static."""
    if first == _types(op.operands):
        return first
    count = _int_count(op)
    nested = [o for o in op.regions[0].walk() if o.op == "nn.repeat"]
    if count is None or any(_int_count(o) is None for o in nested):
        return None  # the count is a per-trial hyperparameter
    from neuralc.ir.shapes import infer_block

    current = first
    for i in range(2, count + 1):
        try:
            after = infer_block(op.regions[0], current)
        except (ShapeError, VerifyError) as exc:
            message = exc.message if isinstance(exc, ShapeError) else str(exc)
            raise VerifyError(f"iteration {i} of {count}: {message}", op) from None
        if after == current:
            break  # a fixed point: the remaining iterations keep the type
        current = after
    return current


def verify_residual(op: Operation, spec: LayerSpec | None = None) -> None:
    """`body(x) + shortcut(x)`, or `body(x) + x` without the optional second region:

        %res = nn.residual(%x) -> f32[N,32,32,64] loc("m.neural":9:5) {
        ^(%res.in: f32[N,32,32,64]):
          %res.conv2d = nn.conv2d(%res.in) {...} -> f32[N,32,32,64] loc("m.neural":10:7)
          nn.yield(%res.conv2d) loc("m.neural":9:5)
        } {
        ^(%res.shortcut_in: f32[N,32,32,64]):
          %res.proj = nn.conv2d(%res.shortcut_in) {...} -> f32[N,32,32,64] loc(...)
          nn.yield(%res.proj) loc("m.neural":12:7)
        }

    Each region takes one argument of the operand's type and yields one value. `nn.residual`
    has no attributes and needs body, shortcut and result of one type; a layer with a body
    (`nn.residual_connection`) has its layer's params, and its shape rule, given
    `[shortcut, body_output]`, types the result.
    """
    if spec is None:
        _only_attrs(op, ())
    else:
        check_params(spec, op.attrs, op)
    if len(op.operands) != 1 or not 1 <= len(op.regions) <= 2:
        raise VerifyError("takes one operand and one or two regions", op)
    x_type = op.operands[0].type
    yielded: list[TensorType] = []
    for i, region in enumerate(op.regions):
        what = "body" if i == 0 else "shortcut"
        if _types(region.args) != [x_type]:
            raise VerifyError(f"the {what} region must take one argument of the operand's type "
                              f"{x_type}, got {_fmt(_types(region.args))}", op)
        term = _yield_of(region.ops)
        if term is None:
            return
        if len(term.operands) != 1:
            raise VerifyError(f"the {what} region must yield one value, "
                              f"got {len(term.operands)}", op)
        yielded.append(term.operands[0].type)
    body, shortcut = yielded[0], (yielded[1] if len(yielded) == 2 else x_type)
    if spec is not None:
        if _has_hpo(tuple(op.attrs.values())):
            return
        result = _infer(spec, op.attrs, [shortcut, body], op)
    elif body != shortcut:
        what = "shortcut" if len(op.regions) == 2 else "input"
        raise VerifyError(f"the body yields {body} but the {what} is {shortcut}; "
                          "a residual sum needs equal types", op)
    else:
        result = body
    if op.results and op.results[0].type != result:
        raise VerifyError(f"result type {op.results[0].type} must equal the residual sum's "
                          f"type {result}", op)


def verify_yield(op: Operation) -> None:
    """Terminates a region of an nn op (`nn.repeat`, `nn.residual`, `nn.residual_connection`):

        nn.yield(%enc.layer) loc("m.neural":4:5)
    """
    _only_attrs(op, ())
    block = op.parent
    owner = block.parent if block is not None else None
    if not isinstance(owner, Operation) or owner.dialect != "nn":
        raise VerifyError("nn.yield must terminate a region of an nn op (nn.repeat, "
                          "nn.residual)", op)


register_op(OpDef("nn.repeat", verify_repeat.__doc__ or "", num_operands=None, num_results=None,
                  num_regions=1, verify=verify_repeat))
register_op(OpDef("nn.residual", verify_residual.__doc__ or "", num_operands=1, num_results=1,
                  num_regions=1, max_regions=2, verify=verify_residual))
register_op(OpDef("nn.yield", verify_yield.__doc__ or "", num_operands=None, num_results=0,
                  terminator=True, verify=verify_yield))
