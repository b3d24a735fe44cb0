"""`-O` levels: presets of passes (TVM: a pass runs when the level is at least its own).

    -O0  place-devices                          required passes only; matches eager exactly
    -O1  + remove-dropout, canonicalize, constant-fold, cse, dce (on the nn IR)
    -O2  + unroll-repeat first; lower-nn-to-tensor; canonicalize, constant-fold, cse on the
           tensor IR; fuse-attention, fuse-ffn, fuse-add-layernorm, fuse-bias-act; dce;
           legalize{stage=kernel}
    -O3  + set-precision{dtype=bf16}, autotune

`place-devices` always runs last so that every final op (fused ones included) has a device and
transfers sit where devices change; at -O2 it also runs before lowering, without transfers, so
that the lowered ops inherit each layer's `@` device.

Stages: a pass belongs to the stage its output is in (a `produces_stage` class attribute, else
`PASS_STAGES`; other passes work on any stage). `stop_after` (`--emit nn|tensor|kernel`) keeps the passes up to that stage plus
the final ones (placement, precision); a stage beyond the level's reach adds the passes that
lower to it (`--emit tensor` at -O0 lowers one-to-one, without fusion).

`--emit tensor|kernel` promises IR of that stage, so a pipeline that could stop short of it (or
run past it, on fused input) ends with `legalize{stage=S,emit=true}`: an explicit pipeline always
(whether it lowers far enough depends on its passes and its input), a preset unless it checks
that stage already (`legalize{stage=kernel}`) or `--disable-pass legalize` said not to. The
failure says where the pipeline ended and which pass to add.

Passes named here that are not registered (the lowering and fusion passes, until they exist)
are an error only when a requested pipeline needs them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from neuralc.passes.base import PASSES
from neuralc.passes.pipeline import (
    Pipeline,
    as_pipeline,
    build_pipeline,
    parse_pipeline,
    pipeline_error,
)

STAGES = ("nn", "tensor", "kernel")
FINAL = "final"
LEVELS = (0, 1, 2, 3)


@dataclass(frozen=True)
class PresetEntry:
    text: str  # one pass in pipeline text, options included
    min_level: int
    stage: str  # "nn", "tensor", "kernel" or FINAL
    # Needed to reach its stage at any level (lowering), not an optimization.
    lowers: bool = False

    @property
    def name(self) -> str:
        return self.text.split("{", 1)[0]


PRESET: tuple[PresetEntry, ...] = (
    PresetEntry("unroll-repeat", 2, "nn", lowers=True),
    PresetEntry("remove-dropout", 1, "nn"),
    PresetEntry("canonicalize", 1, "nn"),
    PresetEntry("constant-fold", 1, "nn"),
    PresetEntry("cse", 1, "nn"),
    PresetEntry("dce", 1, "nn"),
    PresetEntry("place-devices{insert-transfers=false}", 2, "nn", lowers=True),
    PresetEntry("lower-nn-to-tensor", 2, "tensor", lowers=True),
    # Again after lowering: the Transformer layers' internal dropouts appear only now, and
    # fused kernels without a dropout are the ones the Triton kernels implement.
    PresetEntry("remove-dropout", 2, "tensor"),
    PresetEntry("canonicalize", 2, "tensor"),
    PresetEntry("constant-fold", 2, "tensor"),
    PresetEntry("cse", 2, "tensor"),
    PresetEntry("fuse-attention", 2, "kernel"),
    PresetEntry("fuse-ffn", 2, "kernel"),
    PresetEntry("fuse-add-layernorm", 2, "kernel"),
    PresetEntry("fuse-bias-act", 2, "kernel"),
    PresetEntry("fuse-softmax-cross-entropy", 2, "kernel"),
    PresetEntry("dce", 2, "kernel"),
    PresetEntry("legalize{stage=kernel}", 2, "kernel", lowers=True),
    PresetEntry("set-precision{dtype=bf16}", 3, FINAL),
    PresetEntry("autotune", 3, FINAL),
    PresetEntry("place-devices", 0, FINAL),
)

# The stage a pass's output is in, for truncating explicit pipelines at `--emit`.
PASS_STAGES: dict[str, str] = {
    "lower-nn-to-tensor": "tensor",
    "fuse-attention": "kernel",
    "fuse-ffn": "kernel",
    "fuse-add-layernorm": "kernel",
    "fuse-bias-act": "kernel",
    "fuse-softmax-cross-entropy": "kernel",
    "place-devices": FINAL,
    "set-precision": FINAL,
    "autotune": FINAL,
}
PRESET_NAMES = frozenset(e.name for e in PRESET)


def preset_entries(level: int, stop_after: str | None = None,
                   disabled: Iterable[str] = ()) -> list[PresetEntry]:
    if level not in LEVELS:
        raise pipeline_error(f"unknown optimization level -O{level}", "levels: 0, 1, 2, 3")
    check_stage(stop_after)
    limit = STAGES.index(stop_after) if stop_after is not None else len(STAGES) - 1
    off = set(disabled)
    out: list[PresetEntry] = []
    for entry in PRESET:
        if entry.name in off:
            continue
        if entry.stage != FINAL and STAGES.index(entry.stage) > limit:
            continue
        if entry.min_level <= level or (entry.lowers and stop_after is not None
                                        and limit >= STAGES.index("tensor")):
            out.append(entry)
    # lower-nn-to-tensor passes kernel ops through (re-optimizing `--emit kernel` output), so
    # only a check of the stage itself makes sure `--emit tensor` prints tensor IR.
    checked = any(e.name == "legalize" and f"stage={stop_after}" in e.text for e in out)
    if stop_after in ("tensor", "kernel") and not checked and "legalize" not in off:
        out.append(PresetEntry(emit_check(stop_after), 0, stop_after, lowers=True))
    return out


def emit_check(stage: str) -> str:
    """The legality check that `--emit STAGE` appends (pipeline text)."""
    return f"legalize{{stage={stage},emit=true}}"


def preset_text(level: int, stop_after: str | None = None, disabled: Iterable[str] = ()) -> str:
    """The preset as pipeline text (`--passes` spelling)."""
    return ",".join(e.text for e in preset_entries(level, stop_after, disabled))


def pipeline_for_level(level: int, stop_after: str | None = None,
                       disabled: Iterable[str] = ()) -> Pipeline:
    """The -O preset as pass instances; `stop_after` is `--emit`'s stage; `disabled` are
    `--disable-pass` names."""
    disabled = tuple(disabled)
    entries = preset_entries(level, stop_after, disabled)
    missing = [e.name for e in entries if e.name not in PASSES]
    if missing:
        names = ", ".join(f"'{n}'" for n in dict.fromkeys(missing))
        what = f"-O{level}" + (f" --emit {stop_after}" if stop_after else "")
        raise pipeline_error(
            f"{what} needs pass(es) {names}, which this build of neuralc does not have",
            "use -O1 (or --emit nn), or --disable-pass NAME to leave a pass out")
    return as_pipeline(build_pipeline(",".join(e.text for e in entries)), disabled)


def check_stage(stage: str | None) -> None:
    if stage is not None and stage not in STAGES:
        raise pipeline_error(f"unknown stage '{stage}'", "stages: " + ", ".join(STAGES))


def pass_stage(name: str) -> str | None:
    """The stage a pass's output is in, FINAL for the placement passes, None for any stage."""
    cls = PASSES.get(name)
    declared = getattr(cls, "produces_stage", None) if cls is not None else None
    return declared if isinstance(declared, str) else PASS_STAGES.get(name)


def truncate(text: str, stop_after: str) -> str:
    """An explicit pipeline cut at `stop_after` (`--emit`): everything before the first pass
    that goes beyond that stage, then the FINAL passes that came after it, then (tensor and
    kernel) the check that the IR got there."""
    check_stage(stop_after)
    limit = STAGES.index(stop_after)
    specs = parse_pipeline(text)
    kept: list[str] = []
    cut = False
    for spec in specs:
        names = _spec_names(spec)
        stages = [pass_stage(n) for n in names]
        beyond = any(s in STAGES and STAGES.index(s) > limit for s in stages)
        cut |= beyond
        if not cut or all(s == FINAL for s in stages):
            kept.append(_spec_text(text, spec))
    if stop_after != "nn":  # nn IR is where every pipeline starts: nothing to check
        kept.append(emit_check(stop_after))
    return ",".join(kept)


def _spec_names(spec: object) -> list[str]:
    items = getattr(spec, "items", None)
    if items is not None:
        return [n for s in items for n in _spec_names(s)]
    return [spec.name]  # type: ignore[attr-defined]


def _spec_text(text: str, spec: object) -> str:
    from neuralc.passes.pipeline import FixpointSpec, PassSpec

    if isinstance(spec, FixpointSpec):
        limit = f"{{max-iterations={spec.max_iterations}}}"
        return f"fixpoint{limit}(" + ",".join(_spec_text(text, s) for s in spec.items) + ")"
    assert isinstance(spec, PassSpec)
    options = ",".join(f'{k}="{v}"' if any(c in v for c in ",{}") else f"{k}={v}"
                       for k, v in spec.options)
    return spec.name + (f"{{{options}}}" if options else "")


__all__ = ["FINAL", "LEVELS", "PRESET", "PRESET_NAMES", "STAGES", "PresetEntry", "emit_check",
           "pass_stage", "pipeline_for_level", "preset_entries", "preset_text", "truncate"]
