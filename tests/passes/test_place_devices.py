"""`place-devices`: inheritance, auto splitting, availability, transfers, idempotence."""

from __future__ import annotations

import pytest
from passes_testlib import compile_nn, ir, roundtrip

from neuralc.diagnostics import CompileError
from neuralc.ir.verifier import verify_module
from neuralc.passes import PassContext
from neuralc.passes.manager import PassManager
from neuralc.passes.pipeline import build_pipeline
from neuralc.passes.place_devices import (
    PlaceDevices,
    is_available,
    op_params,
    parse_devices,
    same_device,
)

STACK = """network Stack {
  input: (16,)
  layers:
    Dense(64, activation="relu")
    Dense(64, activation="relu") * 3
    Output(4)
  execution {
    device: "auto"
  }
}
"""


def _devices(module) -> dict[str, str | None]:  # noqa: ANN001
    return {op.name: op.device for op in module.networks[0].walk() if op.results}


def test_second_run_changes_nothing() -> None:
    module = compile_nn(STACK.replace('"auto"', '"gpu"'))
    ctx = PassContext()
    assert PlaceDevices().run(module, ctx)
    text = roundtrip(module)
    assert not PlaceDevices().run(module, ctx)
    assert roundtrip(module) == text
    assert set(_devices(module).values()) == {"cuda"}


def test_auto_without_devices_warns_and_stays_on_the_host() -> None:
    module = compile_nn(STACK)
    ctx = PassContext()
    PlaceDevices().run(module, ctx)
    assert set(_devices(module).values()) == {None}
    assert "placed on 'auto' but no devices are listed" in ctx.warnings[0].message


def test_a_warning_found_twice_is_reported_once() -> None:
    """-O2 runs place-devices before lowering and at the end: one warning, not two."""
    module = compile_nn(STACK)
    ctx = PassContext()
    PassManager(build_pipeline("place-devices{insert-transfers=false},lower-nn-to-tensor,"
                               "place-devices"), ctx).run(module)
    assert len(ctx.warnings) == 1
    assert "placed on 'auto' but no devices are listed" in ctx.warnings[0].message


@pytest.mark.parametrize(("text", "expected"), [
    ("cuda:0,cuda:1", ("cuda:0", "cuda:1")),
    (" gpu , cuda:1 ", ("cuda", "cuda:1")),
    ("cpu", ("cpu",)),
])
def test_parse_devices(text: str, expected: tuple[str, ...]) -> None:
    assert parse_devices(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("cuda:0,cuda:0", "--devices lists cuda:0 more than once: 'cuda:0' is listed twice"),
    ("cuda,cuda:0", "--devices lists cuda:0 more than once: 'cuda' and 'cuda:0' are the same "
                    "device"),
    ("cuda:0,,cuda:1", 'empty device in --devices "cuda:0,,cuda:1"'),
    ("cuda:0,", "empty device in --devices"),
    ("cuda:0,tpu", 'invalid device "tpu" in --devices'),
    ("auto", 'invalid device "auto" in --devices'),
])
def test_parse_devices_rejects(text: str, message: str) -> None:
    with pytest.raises(CompileError) as info:
        parse_devices(text)
    assert message in info.value.render() and "note: " in info.value.render()


def test_duplicate_devices_in_the_context_are_a_diagnostic() -> None:
    with pytest.raises(CompileError, match="lists cuda:1 more than once"):
        PlaceDevices().run(compile_nn(STACK), PassContext(devices=("cuda:1", "cuda:1")))


def test_auto_uses_available_cuda_devices_and_splits_unrolled_stacks() -> None:
    from neuralc.passes.unroll_repeat import unroll_network

    module = compile_nn(STACK)
    unroll_network(module.networks[0])
    ctx = PassContext(available_devices=("cpu", "cuda:0", "cuda:1"))
    PlaceDevices().run(module, ctx)
    verify_module(module)
    devices = _devices(module)
    assert devices["dense"] == "cuda:0" and devices["output"] == "cuda:1"
    stages = [devices[n] for n in ("dense", "dense_1.0", "dense_1.1", "dense_1.2", "output")]
    assert stages == sorted(stages)  # contiguous stages
    transfers = [op for op in module.networks[0].walk() if op.op == "nn.transfer"]
    assert len(transfers) == 1 and transfers[0].attrs == {"to": "cuda:1"}


def test_a_rolled_repeat_is_one_stage() -> None:
    module = compile_nn(STACK)
    PlaceDevices().run(module, PassContext(devices=("cuda:0", "cuda:1", "cuda:2")))
    devices = _devices(module)
    assert devices["dense_1"] == devices["dense_1.layer"]
    assert op_params(module.networks[0].ops_by_name()["dense_1"]) == 3 * (64 * 64 + 64)


def test_tensor_consumers_get_tensor_transfers() -> None:
    text = ('module {\n  network @T(%x: f32[4,8]) loc("t.neural":1:1) {\n'
            '    %w = tensor.weight() {key = "lin.weight"} -> f32[16,8] @"cuda:1" '
            'loc("t.neural":2:5)\n'
            '    %y = tensor.linear(%x, %w) -> f32[4,16] loc("t.neural":3:5)\n'
            "    return(%y)\n  }\n}\n")
    module = ir(text)
    PlaceDevices().run(module, PassContext())
    verify_module(module)
    out = roundtrip(module)
    assert '%w.to_cpu = tensor.transfer(%w) {to = "cpu"} -> f32[16,8] @"cpu"' in out
    assert "%y = tensor.linear(%x, %w.to_cpu)" in out


def test_invalid_override_is_a_diagnostic() -> None:
    with pytest.raises(CompileError, match='invalid device "tpu:0"'):
        PlaceDevices(device="tpu:0").run(compile_nn(), PassContext())


def test_unavailable_override_is_one_diagnostic() -> None:
    with pytest.raises(CompileError) as info:
        PlaceDevices(device="cuda:1").run(compile_nn(), PassContext(available_devices=("cpu",)))
    assert len(info.value.diagnostics) == 1
    assert "--device cuda:1 is not available: only cpu are" in info.value.render()


def test_availability_rules() -> None:
    assert is_available("cpu", ())
    assert is_available("cuda", ("cuda:1",)) and not is_available("cuda", ("cpu",))
    assert is_available("cuda:0", ("cuda",)) and not is_available("cuda:1", ("cuda",))
    assert same_device(None, "cpu") and same_device("cuda", "cuda:0")
    assert not same_device("cuda", "cuda:1")


def test_transfer_verifier() -> None:
    from neuralc.ir.verifier import find_problems

    base = ('module {\n  network @T(%x: f32[N,8]) loc("t.neural":1:1) {\n'
            '    %t = nn.transfer(%x) {ATTRS} -> f32[N,8] @"cuda:1" loc("t.neural":2:5)\n'
            "    return(%t)\n  }\n}\n")
    verify_module(ir(base.replace("ATTRS", 'to = "cuda:1"')))
    for attrs, message in (('to = "cuda:0"', "runs on cuda:1 but transfers to cuda:0"),
                           ('to = "tpu"', "attribute 'to' must be a device"),
                           ('to = "cuda:1", x = 1', "unexpected attribute 'x'")):
        problems = [p for p in find_problems(ir(base.replace("ATTRS", attrs)))
                    if p.severity == "error"]
        assert problems and message in str(problems[0])


CONV_THEN_DENSE = """network Mixed {
  input: (64, 64, 3)
  layers:
    Conv2D(16, (3, 3), padding="same")
    GlobalAveragePooling2D()
    Dense(512, activation="relu")
    Dense(512, activation="relu")
    Output(10)
  execution {
    device: "auto"
  }
}
"""


def test_auto_balances_flops_by_default_and_params_on_request() -> None:
    """The convolution has few parameters but applies them at 4,096 pixels: balancing compute
    gives it a stage of its own; balancing parameters puts it with the first Dense."""
    devices = ("cuda:0", "cuda:1")
    by_flops = compile_nn(CONV_THEN_DENSE)
    PlaceDevices().run(by_flops, PassContext(devices=devices))
    flops = _devices(by_flops)
    assert flops["conv2d"] == "cuda:0" and flops["dense"] == "cuda:1"
    by_params = compile_nn(CONV_THEN_DENSE)
    PlaceDevices(balance="params").run(by_params, PassContext(devices=devices))
    params = _devices(by_params)
    assert params["conv2d"] == params["dense"] == "cuda:0" and params["output"] == "cuda:1"


def test_op_flops_counts_positions_and_attention() -> None:
    from neuralc.passes.place_devices import op_flops

    module = compile_nn("network A { input: (8, 16) layers: "
                        "TransformerEncoder(num_heads=2, dff=32) Dense(4) }")
    encoder, dense = module.networks[0].body.ops[:2]
    assert op_flops(dense) == 2 * (16 * 4 + 4) * 8
    assert op_flops(encoder) == 2 * op_params(encoder) * 8 + 4 * 8 * 8 * 16
