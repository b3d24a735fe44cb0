"""The pass manager: verification after every pass, fixpoints, dumps, timing, reports."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from passes_testlib import compile_nn, ir, registered

from neuralc.diagnostics import CompileError
from neuralc.ir.core import Module
from neuralc.ir.parser import parse_module
from neuralc.ir.types import TensorType
from neuralc.passes import Pass, PassContext
from neuralc.passes.manager import PassManager, fusion_report, timing_table
from neuralc.passes.pipeline import FixpointGroup, build_pipeline, without


@dataclass(frozen=True)
class BreakTypes(Pass):
    """Leaves a Dense with a wrong result type: the verifier must catch it."""

    name = "break-types"

    def run(self, module: Module, ctx: PassContext) -> bool:
        for op in module.networks[0].walk():
            if op.op == "nn.dense":
                op.results[0].type = TensorType(("N", 99))
                return True
        return False


@dataclass(frozen=True)
class FlipFlop(Pass):
    """Changes an attribute back and forth forever."""

    name = "flip-flop"

    def run(self, module: Module, ctx: PassContext) -> bool:
        net = module.networks[0]
        net.attrs["flag"] = not net.attrs.get("flag", False)
        ctx.hit("flip-flop.toggle")
        return True


@dataclass(frozen=True)
class Boom(Pass):
    name = "boom"

    def run(self, module: Module, ctx: PassContext) -> bool:
        raise RuntimeError("kaboom")


def test_verify_failure_names_the_pass_and_shows_the_ir(tmp_path: Path) -> None:
    module = compile_nn()
    with registered(BreakTypes), pytest.raises(CompileError) as info:
        PassManager(build_pipeline("canonicalize,break-types,cse"), dump_dir=tmp_path).run(
            module)
    diagnostic = info.value.diagnostics[0]
    assert diagnostic.message.startswith("IR verification failed after pass 'break-types': ")
    assert "f32[N,99]" in diagnostic.message and "f32[N,16]" in diagnostic.message
    assert diagnostic.loc is not None and (diagnostic.loc.line, diagnostic.loc.column) == (4, 5)
    ir_note = next(n for n in diagnostic.notes if n.startswith("the IR after pass"))
    assert "%dense = nn.dense(%input) {units = 16" in ir_note and "-> f32[N,99]" in ir_note
    dumped = sorted(p.name for p in tmp_path.iterdir())
    assert dumped == ["00_input.nir", "01_canonicalize.nir", "02_break-types.invalid.nir"]
    assert any(str(tmp_path / "02_break-types.invalid.nir") in n for n in diagnostic.notes)


def test_input_is_verified_before_the_first_pass() -> None:
    module = compile_nn()
    next(iter(module.networks[0].walk())).results[0].type = TensorType(("N", 3))
    with pytest.raises(CompileError, match="IR verification failed: ") as info:
        PassManager(build_pipeline("cse")).run(module)
    assert "after pass" not in str(info.value)


def test_fixpoint_cap_names_the_pattern_that_never_settles() -> None:
    module = compile_nn()
    with registered(FlipFlop), pytest.raises(CompileError) as info:
        PassManager(build_pipeline("fixpoint{max-iterations=3}(cse,flip-flop)")).run(module)
    text = info.value.render()
    assert "fixpoint{max-iterations=3}(cse,flip-flop) did not settle after 3 iterations: " \
           "'flip-flop.toggle' never settles" in text
    assert "passes still changing the IR in the last iteration: flip-flop" in text
    assert "flip-flop.toggle (x1)" in text


def test_fixpoint_settles_and_records_iterations() -> None:
    module = compile_nn()
    manager = PassManager([FixpointGroup(tuple(build_pipeline("remove-dropout,canonicalize")))])
    assert manager.run(module)
    runs = [(r.name, r.iteration, r.modified) for r in manager.runs]
    assert runs == [("remove-dropout", 1, True), ("canonicalize", 1, True),
                    ("remove-dropout", 2, False), ("canonicalize", 2, False)]


def test_canonicalize_rule_loop_has_its_own_cap() -> None:
    from neuralc.passes.canonicalize import Rule, apply_rules

    module = compile_nn()

    def churn(op, ctx) -> bool:  # noqa: ANN001
        op.attrs["rate"] = 0.25 if op.attrs["rate"] == 0.5 else 0.5
        return True

    with pytest.raises(CompileError) as info:
        apply_rules(module, PassContext(), (Rule("churn", ("nn.dropout",), churn),),
                    "canonicalize", 4)
    assert "pass 'canonicalize' did not settle after 4 iterations: 'canonicalize.churn' " \
           "never settles" in info.value.render()


def test_print_after_all_headers_and_parseable_dumps() -> None:
    stream = io.StringIO()
    passes = build_pipeline("remove-dropout,canonicalize,cse,dce")
    PassManager(passes, print_after=True, stream=stream).run(compile_nn())
    text = stream.getvalue()
    chunks = text.split("// IR after ")[1:]
    assert [c.split("\n", 1)[0] for c in chunks] == ["remove-dropout", "canonicalize", "cse",
                                                     "dce"]
    for chunk in chunks:
        parse_module(chunk.split("\n", 1)[1])
    assert "nn.dropout" not in chunks[0]


def test_print_after_named_passes_only() -> None:
    stream = io.StringIO()
    PassManager(build_pipeline("remove-dropout,cse,dce"), print_after={"cse"},
                stream=stream).run(compile_nn())
    assert stream.getvalue().count("// IR after ") == 1
    assert stream.getvalue().startswith("// IR after cse\nmodule {")


def test_print_after_a_pass_not_in_the_pipeline_is_an_error() -> None:
    stream = io.StringIO()
    manager = PassManager(build_pipeline("remove-dropout,fixpoint(cse,dce),cse"),
                          print_after={"autotune"}, stream=stream)
    with pytest.raises(CompileError) as info:
        manager.run(compile_nn())
    assert info.value.render() == (
        "neuralc: error: --print-ir-after autotune: pass 'autotune' is not in this pipeline\n"
        "note: this pipeline runs: remove-dropout, cse, dce")
    assert stream.getvalue() == "" and manager.runs == []


def test_passes_see_the_pipeline_and_the_disabled_passes() -> None:
    ctx = PassContext()
    pipeline = without(build_pipeline("remove-dropout,cse,dce"), ["dce"])
    PassManager(pipeline, ctx).run(compile_nn())
    assert ctx.pipeline == ("remove-dropout", "cse") and ctx.disabled == ("dce",)


def test_dump_dir_numbers_every_pass_run(tmp_path: Path) -> None:
    out = tmp_path / "dumps"
    passes = build_pipeline("unroll-repeat,fixpoint(canonicalize,cse),dce")
    PassManager(passes, dump_dir=out).run(compile_nn())
    names = sorted(p.name for p in out.iterdir())
    assert names == ["00_input.nir", "01_unroll-repeat.nir", "02_canonicalize.nir",
                     "03_cse.nir", "04_canonicalize.nir", "05_cse.nir", "06_dce.nir"]
    assert "nn.repeat" in (out / "00_input.nir").read_text()
    assert "nn.repeat" not in (out / "01_unroll-repeat.nir").read_text()
    for path in out.iterdir():
        parse_module(path.read_text(), str(path))


def test_time_table() -> None:
    stream = io.StringIO()
    manager = PassManager(build_pipeline("remove-dropout,cse"), time=True, stream=stream)
    manager.run(compile_nn())
    lines = stream.getvalue().splitlines()
    assert lines[0].split() == ["pass", "ms", "modified"]
    assert [line.split()[0] for line in lines[1:]] == ["remove-dropout", "cse", "total"]
    assert lines[1].split()[2] == "yes" and lines[2].split()[2] == "no"
    assert timing_table([]).splitlines()[-1].split()[0] == "total"


def test_a_crashing_pass_is_named() -> None:
    with registered(Boom), pytest.raises(RuntimeError, match="kaboom") as info:
        PassManager(build_pipeline("cse,boom")).run(compile_nn())
    assert "while running pass 'boom'" in info.value.__notes__


def test_fusion_report_groups_rejections_by_pattern() -> None:
    ctx = PassContext()
    ctx.reject("fuse-ffn", "encoder.0.ffn", "the activation is softmax")
    ctx.reject("fuse-attention", "encoder.0.attn", "the mask is not causal")
    ctx.reject("fuse-ffn", "encoder.1.ffn", "the hidden value has another user")
    ctx.hit("fuse-ffn")
    report = fusion_report(ctx)
    assert report.splitlines() == [
        "fusion report:",
        "  fuse-ffn: 1 fused, 2 rejected",
        "    %encoder.0.ffn: the activation is softmax",
        "    %encoder.1.ffn: the hidden value has another user",
        "  fuse-attention: 0 fused, 1 rejected",
        "    %encoder.0.attn: the mask is not causal",
        "rule hits:",
        "  fuse-ffn: 1",
    ]
    assert "no rejected fusion candidates" in fusion_report(PassContext())


def test_verify_each_can_be_turned_off() -> None:
    module = compile_nn()
    with registered(BreakTypes):
        PassManager(build_pipeline("break-types"), verify_each=False).run(module)
    assert any(str(r.type) == "f32[N,99]" for op in module.networks[0].walk()
               for r in op.results)


def test_modified_flag_is_the_or_of_the_passes() -> None:
    text = ('module {\n  network @Net(%input: f32[N,8]) loc("t.neural":1:1) {\n'
            '    %d = nn.dense(%input) {units = 4, activation = "linear", use_bias = true} '
            '-> f32[N,4] loc("t.neural":2:5)\n    return(%d)\n  }\n}\n')
    assert not PassManager(build_pipeline("canonicalize,cse,dce")).run(ir(text))
    assert PassManager(build_pipeline("canonicalize,place-devices{device=cpu}")).run(ir(text))
