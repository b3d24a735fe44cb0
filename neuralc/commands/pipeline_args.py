"""The optimization-pipeline flags that `opt`, `build` and `predict` share, and running them.

    add_pipeline_arguments(parser, default_level=2)        # in add_arguments
    module, ctx = run_pipeline(module, args, {"target": args.target, "training": False})

Flags: `-O {0,1,2,3}`, `--passes PIPELINE` (instead of the preset), `--disable-pass NAME`
(repeatable), `--print-ir-after-all`, `--print-ir-after PASS` (repeatable),
`--ir-dump-dir DIR`, `--time-passes`, `--report fusion`, `--emit {nn,tensor,kernel}`,
`--devices LIST` (for `auto` placement), `--device D` (place everything on D), `--kernels
{auto,torch}`. A parser that already has `-O`, `--emit` or `--device` keeps its own (build's
`-O` and `--device`, check's `--emit nn`). When the parsed arguments
carry `device` (build's `--device D`), `place-devices` places every op there.

Everything but the artifact goes to stderr: IR dumps, the timing table, the fusion report.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Mapping
from typing import Any

from neuralc.fileio import ensure_dir
from neuralc.ir.core import Module
from neuralc.passes.base import PassContext


def add_pipeline_arguments(parser: argparse.ArgumentParser, *,
                           default_level: int | None = None) -> None:
    group = parser.add_argument_group("optimization pipeline")
    level_help = "optimization level: 0 required passes only (matches eager exactly), 1 " \
        "generic cleanups, 2 unrolling, lowering and fusion, 3 reduced precision and autotuning"
    _maybe_add(group, "-O", dest="opt_level", type=int, choices=(0, 1, 2, 3),
               default=default_level, help=level_help + (
                   f" (default {default_level})" if default_level is not None else ""))
    group.add_argument("--passes", metavar="PIPELINE", help="run this pipeline instead of the "
                       "-O preset, e.g. \"unroll-repeat,canonicalize{max-iterations=4},cse\"")
    group.add_argument("--disable-pass", metavar="NAME", action="append", default=[],
                       help="leave this pass out of the pipeline (repeatable)")
    group.add_argument("--print-ir-after-all", action="store_true",
                       help="print the IR after every pass to stderr")
    group.add_argument("--print-ir-after", metavar="PASS", action="append", default=[],
                       help="print the IR after this pass to stderr (repeatable)")
    group.add_argument("--ir-dump-dir", metavar="DIR",
                       help="write the IR before and after each pass to numbered files in DIR")
    group.add_argument("--time-passes", action="store_true",
                       help="print each pass's time and whether it changed the IR")
    group.add_argument("--report", choices=("fusion",), action="append", default=[],
                       help="fusion: print each rejected fusion candidate and why")
    _maybe_add(group, "--emit", choices=("nn", "tensor", "kernel"),
               help="stop after this stage of the IR")
    group.add_argument("--devices", metavar="LIST",
                       help="devices for `auto` placement, e.g. cuda:0,cuda:1")
    _maybe_add(group, "--device", help='place every op on this device ("cpu", "cuda", '
               '"cuda:N", "gpu"), overriding the model\'s placement')
    group.add_argument("--kernels", choices=("auto", "torch"), default="auto",
                       help="auto: Triton kernels on CUDA; torch: PyTorch composites")


def _maybe_add(group: argparse._ArgumentGroup, flag: str, **kwargs: Any) -> None:
    # The command may define the flag already (build's -O, check's --emit): keep its own.
    with contextlib.suppress(argparse.ArgumentError):
        group.add_argument(flag, **kwargs)


def pipeline_requested(args: argparse.Namespace) -> bool:
    """Whether the flags ask for any pass (`neuralc opt` without them only verifies)."""
    return bool(getattr(args, "passes", None) or getattr(args, "opt_level", None) is not None
                or getattr(args, "emit", None) in ("tensor", "kernel")
                or getattr(args, "device", None) or getattr(args, "devices", None))


def make_context(args: argparse.Namespace, ctx_defaults: Mapping[str, Any] | None = None
                 ) -> PassContext:
    ctx = PassContext(**dict(ctx_defaults or {}))
    level = getattr(args, "opt_level", None)
    if level is not None:
        ctx.opt_level = level
    devices = getattr(args, "devices", None)
    if devices:
        from neuralc.passes.place_devices import parse_devices

        ctx.devices = parse_devices(devices)
    ctx.kernels = getattr(args, "kernels", None) or ctx.kernels
    return ctx


def build_from_args(args: argparse.Namespace) -> list:
    """The pipeline the flags describe (pass instances and fixpoint groups)."""
    from neuralc.passes import PASSES
    from neuralc.passes.pipeline import build_pipeline, replace_options, unknown_pass, without
    from neuralc.passes.presets import PRESET_NAMES, pipeline_for_level, truncate

    disabled = list(getattr(args, "disable_pass", None) or [])
    for name in [*disabled, *(getattr(args, "print_ir_after", None) or [])]:
        if name not in PASSES and name not in PRESET_NAMES:
            raise unknown_pass(name, extra=PRESET_NAMES)
    emit = getattr(args, "emit", None)
    text = getattr(args, "passes", None)
    if text:
        items = build_pipeline(truncate(text, emit) if emit else text)
        items = without(items, disabled)
    else:
        level = getattr(args, "opt_level", None)
        items = pipeline_for_level(level if level is not None else 0, emit, disabled)  # type: ignore[assignment]
    device = getattr(args, "device", None)
    if device:
        items = replace_options(items, "place-devices", device=device)
    return items


def run_pipeline(module: Module, args: argparse.Namespace,
                 ctx_defaults: Mapping[str, Any] | None = None
                 ) -> tuple[Module, PassContext]:
    """Run the pipeline the flags describe on `module` (in place); return it and the context
    (warnings, fusion rejections, rule hits). Raises CompileError for a bad pipeline, a pass's
    diagnostic, or IR that fails verification after a pass (naming the pass)."""
    from neuralc.passes.manager import PassManager, fusion_report

    ctx = make_context(args, ctx_defaults)
    items = build_from_args(args)
    after_all = bool(getattr(args, "print_ir_after_all", False))
    print_after: bool | set[str] = after_all or set(getattr(args, "print_ir_after", None) or [])
    dump_dir = getattr(args, "ir_dump_dir", None)
    if dump_dir is not None:
        # The user's directory: a file there, or no permission, is their error, said before
        # any pass runs (the pass manager would only meet it as an OSError mid-pipeline).
        ensure_dir(dump_dir, writable=True)
    manager = PassManager(items, ctx, print_after=print_after, dump_dir=dump_dir,
                          time=bool(getattr(args, "time_passes", False)), stream=sys.stderr)
    manager.run(module)
    if "fusion" in (getattr(args, "report", None) or []):
        sys.stderr.write(fusion_report(ctx))
    return module, ctx


__all__ = ["add_pipeline_arguments", "build_from_args", "make_context", "pipeline_requested",
           "run_pipeline"]
