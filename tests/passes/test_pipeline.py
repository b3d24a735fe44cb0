"""Pipeline text, pass options and the -O presets."""

from __future__ import annotations

import dataclasses

import pytest

from neuralc.diagnostics import CompileError
from neuralc.passes import PASSES
from neuralc.passes.canonicalize import Canonicalize
from neuralc.passes.cse import CSE
from neuralc.passes.pipeline import (
    FixpointGroup,
    FixpointSpec,
    PassSpec,
    Pipeline,
    build_pipeline,
    flatten,
    format_pipeline,
    parse_pipeline,
    replace_options,
    without,
)
from neuralc.passes.place_devices import PlaceDevices
from neuralc.passes.presets import (
    PRESET,
    pipeline_for_level,
    preset_entries,
    preset_text,
    truncate,
)
from neuralc.passes.unroll_repeat import UnrollRepeat


def _message(exc: CompileError) -> str:
    return exc.render()


def test_parse_names_options_and_groups() -> None:
    specs = parse_pipeline(' unroll-repeat{max-count=64}, cse ,fixpoint{max-iterations=3}'
                           '(canonicalize{disable="a,b"},dce)')
    assert specs[0] == PassSpec("unroll-repeat", (("max-count", "64"),), 2)
    assert specs[1].name == "cse"  # type: ignore[union-attr]
    group = specs[2]
    assert isinstance(group, FixpointSpec) and group.max_iterations == 3
    assert group.items[0] == PassSpec("canonicalize", (("disable", "a,b"),), 63)
    assert parse_pipeline("") == [] and parse_pipeline("   ") == []


def test_build_converts_option_types() -> None:
    items = build_pipeline("unroll-repeat{max-count=64},dce{keep-weights=false},"
                           "place-devices{device=cuda:1,insert_transfers=no},"
                           "unroll-repeat{max-count=none}")
    assert items[0] == UnrollRepeat(max_count=64)
    assert items[1] == PASSES["dce"](keep_weights=False)
    assert items[2] == PlaceDevices(device="cuda:1", insert_transfers=False)
    assert items[3] == UnrollRepeat(max_count=None)


@pytest.mark.parametrize("text", [
    "unroll-repeat,canonicalize,cse",
    "unroll-repeat{max-count=8},dce{keep-weights=false}",
    'canonicalize{max-iterations=3,disable="flatten-rank2,drop-zero-dropout"}',
    "fixpoint(canonicalize,cse),dce",
    "fixpoint{max-iterations=4}(canonicalize,fixpoint(cse,dce))",
    "place-devices{device=cuda:1,insert-transfers=false}",
    "set-precision{dtype=f16},autotune",
])
def test_format_round_trips(text: str) -> None:
    items = build_pipeline(text)
    assert format_pipeline(items) == text
    assert build_pipeline(format_pipeline(items)) == items


@pytest.mark.parametrize(("text", "expected"), [
    ("canonicalise", "unknown pass 'canonicalise' (column 1)\nnote: did you mean 'canonicalize'?"),
    ("cse,dcee", "unknown pass 'dcee' (column 5)\nnote: did you mean 'dce'?"),
    ("unroll-repeat{max-cont=3}", "unknown option 'max-cont' of pass 'unroll-repeat'\n"
                                  "note: did you mean 'max-count'?"),
    ("unroll-repeat{max-count=many}",
     "option 'max-count' of pass 'unroll-repeat' must be an integer or none, got 'many'"),
    ("dce{keep-weights=maybe}", "option 'keep-weights' of pass 'dce' must be true or false"),
    ("set-precision{dtype=f8}", "option 'dtype' of pass 'set-precision' must be one of bf16, "
                                "f16, got 'f8'\nnote: for example set-precision{dtype=bf16}"),
    # Declared ranges (`option(minimum=..., choices=...)`), checked when the pass is built.
    ("canonicalize{max-iterations=0}", "option 'max-iterations' of pass 'canonicalize' must be "
                                       "at least 1, got 0\nnote: for example "
                                       "canonicalize{max-iterations=10} (the default is 10)"),
    ("canonicalize{max-iterations=-1}", "must be at least 1, got -1"),
    ("unroll-repeat{max-count=0}", "option 'max-count' of pass 'unroll-repeat' must be at least "
                                   "1, got 0"),
    ("constant-fold{max-elements=0}", "option 'max-elements' of pass 'constant-fold' must be at "
                                      "least 1"),
    ("constant-fold{inline-limit=-1}", "must be at least 0, got -1"),
    ("legalize{stage=foo}", "option 'stage' of pass 'legalize' must be one of nn, tensor, "
                            "kernel, got 'foo'"),
    ("place-devices{balance=x}", "must be one of flops, params, got 'x'"),
    ("canonicalize{disable=nosuch}", "canonicalize has no rule 'nosuch'"),
    ("cse{", "bad pipeline at column 5: expected an option name, got the end"),
    ("cse,,dce", "bad pipeline at column 5: expected a pass name, got ','"),
    ("fixpoint(cse", "bad pipeline at column 13: expected ')', got the end"),
    ("fixpoint{max-iterations=0}(cse)", "fixpoint max-iterations must be at least 1"),
    ("fixpoint{limit=2}(cse)", "unknown option 'limit' of fixpoint"),
    ("cse dce", "bad pipeline at column 5: unexpected 'd'"),
])
def test_pipeline_errors(text: str, expected: str) -> None:
    with pytest.raises(CompileError) as info:
        build_pipeline(text)
    assert expected in _message(info.value)


def test_unknown_pass_lists_known_passes() -> None:
    with pytest.raises(CompileError) as info:
        build_pipeline("nothing-like-it")
    text = _message(info.value)
    assert "did you mean" not in text
    assert "known passes: " in text and "canonicalize" in text


def test_without_and_replace_options() -> None:
    items = build_pipeline("canonicalize,fixpoint(cse,dce),fixpoint(cse),place-devices")
    kept = without(items, ["cse"])
    assert format_pipeline(kept) == "canonicalize,fixpoint(dce),place-devices"
    placed = replace_options(items, "place-devices", device="cpu")
    assert placed[-1] == PlaceDevices(device="cpu")
    assert [type(p).name for p in flatten(items)] == [
        "canonicalize", "cse", "dce", "cse", "place-devices"]
    assert isinstance(items[1], FixpointGroup)


# -- presets ------------------------------------------------------------------------------------


def test_levels_are_cumulative() -> None:
    o0 = preset_text(0).split(",")
    o1 = preset_text(1).split(",")
    assert o0 == ["place-devices"]
    assert o1 == ["remove-dropout", "canonicalize", "constant-fold", "cse", "dce",
                  "place-devices"]
    names = [e.text for e in preset_entries(3)]
    assert names[0] == "unroll-repeat" and names[-1] == "place-devices"
    assert names.index("lower-nn-to-tensor") < names.index("fuse-attention")
    assert names.index("fuse-ffn") < names.index("fuse-bias-act")
    assert "set-precision{dtype=bf16}" in names and "autotune" in names
    assert "autotune" not in preset_text(2)
    for level in range(4):
        assert set(preset_text(level).split(",")) >= set(o0)
        if level:
            assert [e for e in preset_entries(level) if e.min_level > level] == []


def test_every_preset_pass_has_a_min_level_at_most_its_entry() -> None:
    for entry in PRESET:
        cls = PASSES.get(entry.name)
        if cls is not None:
            assert cls.min_level <= max(entry.min_level, 2), entry


def test_pipeline_for_level_builds_registered_passes() -> None:
    assert pipeline_for_level(0) == [PlaceDevices()]
    assert pipeline_for_level(1) == [PASSES["remove-dropout"](), Canonicalize(),
                                     PASSES["constant-fold"](), CSE(), PASSES["dce"](),
                                     PlaceDevices()]
    assert [type(p).name for p in pipeline_for_level(1, disabled=["cse", "dce"])] == [
        "remove-dropout", "canonicalize", "constant-fold", "place-devices"]


def test_emit_stops_after_a_stage() -> None:
    assert "lower-nn-to-tensor" not in preset_text(2, "nn")
    assert preset_text(2, "nn").endswith("place-devices")
    tensor = preset_text(2, "tensor")
    assert "lower-nn-to-tensor" in tensor and "fuse-" not in tensor
    # A stage beyond the level's reach adds only the passes that lower to it.
    assert preset_text(0, "tensor") == ("unroll-repeat,place-devices{insert-transfers=false},"
                                        "lower-nn-to-tensor,place-devices,"
                                        "legalize{stage=tensor,emit=true}")
    assert "fuse-" not in preset_text(1, "kernel")
    with pytest.raises(CompileError, match="unknown stage"):
        preset_text(2, "llvm")
    with pytest.raises(CompileError, match="unknown optimization level"):
        preset_text(7)


def test_missing_passes_fail_only_when_requested(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(PASSES, "lower-nn-to-tensor", raising=False)
    pipeline_for_level(1)
    pipeline_for_level(2, "nn")
    with pytest.raises(CompileError) as info:
        pipeline_for_level(2)
    text = _message(info.value)
    assert "-O2 needs pass(es) 'lower-nn-to-tensor'" in text
    assert "this build of neuralc does not have" in text


def test_truncate_explicit_pipelines() -> None:
    text = "unroll-repeat,lower-nn-to-tensor,cse,fuse-attention,dce,place-devices{device=cpu}"
    assert truncate(text, "nn") == "unroll-repeat,place-devices{device=cpu}"
    # tensor and kernel end with the check that the IR got there (see test_emit_check_*).
    assert truncate(text, "tensor") == "unroll-repeat,lower-nn-to-tensor,cse," \
        "place-devices{device=cpu},legalize{stage=tensor,emit=true}"
    assert truncate(text, "kernel") == text + ",legalize{stage=kernel,emit=true}"
    assert truncate("fixpoint(cse,fuse-ffn),dce", "tensor") == \
        "legalize{stage=tensor,emit=true}"


def test_emit_check_in_presets_unless_the_stage_is_checked_already() -> None:
    assert "emit=true" not in preset_text(2, "kernel") + preset_text(0, "kernel")
    assert preset_text(2, "tensor").endswith("place-devices,legalize{stage=tensor,emit=true}")
    assert preset_text(2, "kernel", ["legalize"]).endswith(
        "place-devices")  # a disabled legalize stays disabled
    assert "legalize" not in preset_text(2, "tensor", ["lower-nn-to-tensor", "legalize"])
    assert "legalize" not in preset_text(2).replace("legalize{stage=kernel}", "")


def test_disabled_passes_travel_with_the_pipeline() -> None:
    preset = pipeline_for_level(2, "kernel", ["lower-nn-to-tensor"])
    assert isinstance(preset, Pipeline) and preset.disabled == ("lower-nn-to-tensor",)
    placed = replace_options(preset, "place-devices", device="cpu")
    assert isinstance(placed, Pipeline) and placed.disabled == ("lower-nn-to-tensor",)
    explicit = without(without(build_pipeline("cse,dce"), ["dce"]), ["cse", "dce"])
    assert explicit == [] and explicit.disabled == ("dce", "cse")  # type: ignore[attr-defined]
    assert pipeline_for_level(1).disabled == ()


def test_options_are_checked_however_the_pass_is_made() -> None:
    with pytest.raises(CompileError, match="must be at least 1, got 0"):
        Canonicalize(max_iterations=0)
    with pytest.raises(CompileError, match="must be one of nn, tensor, kernel"):
        dataclasses.replace(build_pipeline("legalize")[0], stage="llvm")  # type: ignore[type-var]
    with pytest.raises(CompileError, match="must be at least 1"):
        replace_options(build_pipeline("fixpoint(unroll-repeat)"), "unroll-repeat", max_count=-3)
    assert UnrollRepeat(max_count=None) == UnrollRepeat()


def test_public_surface() -> None:
    import neuralc.commands.pipeline_args as pipeline_args
    import neuralc.passes as passes
    import neuralc.passes.manager as manager

    assert set(passes.__all__) == {"PASSES", "FusionRejection", "Pass", "PassContext",
                                   "register_pass"}
    assert {"add_pipeline_arguments", "run_pipeline"} <= set(pipeline_args.__all__)
    assert {"PassManager", "fusion_report", "timing_table"} <= set(manager.__all__)
    assert {"unroll-repeat", "remove-dropout", "canonicalize", "constant-fold", "cse", "dce",
            "place-devices", "set-precision", "autotune"} <= set(PASSES)
    for name, cls in PASSES.items():
        assert cls.name == name and cls.__doc__, name
