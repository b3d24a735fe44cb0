"""Random valid programs through random pipelines of the generic passes.

After every pass the IR verifies (the pass manager checks it), the result prints and parses back
to the same text, the network keeps its output types, and — unless a pass is told to drop
weights — every weight of the weight file keeps its name and shape (names are identity).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from passes_testlib import compile_nn, roundtrip

from neuralc.lower.weights import network_weight_specs
from neuralc.passes import PassContext
from neuralc.passes.manager import PassManager
from neuralc.passes.pipeline import build_pipeline

ACTIVATIONS = ["relu", "tanh", "linear", "gelu"]
DEVICES = ["", ' @ "cpu"', ' @ "cuda:0"', ' @ "cuda:1"', ' @ "gpu"']
PASS_TEXTS = ["unroll-repeat", "unroll-repeat{max-count=2}", "remove-dropout", "canonicalize",
              "constant-fold", "cse", "dce", "place-devices",
              "place-devices{insert-transfers=false}", "set-precision", "autotune",
              "fixpoint(canonicalize,cse,dce)"]


@st.composite
def layer(draw: st.DrawFn, width: int) -> tuple[str, int]:
    kind = draw(st.sampled_from(["dense", "dropout", "act", "flatten", "residual", "norm",
                                 "reshape"]))
    if kind == "dense":
        units = draw(st.integers(1, 12))
        times = draw(st.integers(1, 3))
        act = draw(st.sampled_from(ACTIVATIONS))
        return f'Dense({units}, activation="{act}")' + (f" * {times}" if times > 1 else ""), \
            units
    if kind == "dropout":
        return f"Dropout({draw(st.sampled_from([0.0, 0.25]))})", width
    if kind == "act":
        times = draw(st.integers(1, 2))
        text = f'Activation("{draw(st.sampled_from(ACTIVATIONS))}")'
        return text + (f" * {times}" if times > 1 else ""), width
    if kind == "flatten":
        return "Flatten()", width
    if kind == "norm":
        return "LayerNormalization()", width
    if kind == "reshape":
        return f"Reshape(({width}, 1)) Flatten()", width
    inner = draw(st.sampled_from([f"Dense({width})", "Dropout(0.0)", 'Activation("linear")',
                                  'Activation("relu") * 2', "LayerNormalization()"]))
    return f"ResidualConnection {{ Dense({width}) {inner} }}", width


@st.composite
def program(draw: st.DrawFn) -> str:
    width = first = draw(st.integers(1, 8))
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        text, width = draw(layer(width))
        lines.append(f"    {text}{draw(st.sampled_from(DEVICES))}")
    execution = draw(st.sampled_from(["", '\n  execution {\n    device: "cuda"\n  }']))
    return (f"network Random {{\n  input: ({first},)\n  layers:\n" + "\n".join(lines)
            + f"{execution}\n}}\n")


def _weights(module) -> dict[str, tuple[int, ...]]:  # noqa: ANN001
    return {k: s.shape for k, s in network_weight_specs(module.networks[0]).items()}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program(), st.lists(st.sampled_from(PASS_TEXTS), min_size=1, max_size=6),
       st.booleans())
def test_random_pipelines_keep_the_ir_valid(source: str, passes: list[str],
                                            training: bool) -> None:
    module = compile_nn(source, "random.neural")
    outputs = [v.type for v in module.networks[0].outputs]
    weights = _weights(module)
    manager = PassManager(build_pipeline(",".join(passes)), PassContext(training=training))
    manager.run(module)  # verifies after every pass
    roundtrip(module)
    assert [v.type for v in module.networks[0].outputs] == outputs
    assert _weights(module) == weights


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program())
def test_passes_are_idempotent_at_their_fixpoint(source: str) -> None:
    module = compile_nn(source, "random.neural")
    pipeline = build_pipeline("unroll-repeat,remove-dropout,fixpoint(canonicalize,cse,dce),"
                              "place-devices")
    PassManager(pipeline).run(module)
    text = roundtrip(module)
    assert not PassManager(pipeline).run(module)
    assert roundtrip(module) == text
