"""The pass manager: runs a pipeline, verifying the IR after every pass.

The contract is written down here once (xDSL's discipline): the IR verifies before and after
every pass. A pass that leaves broken IR fails the compile with a `CompileError` naming the pass,
the verifier's finding at the offending op's source location, and the IR the pass produced.

    pm = PassManager(build_pipeline("unroll-repeat,canonicalize,cse"), ctx,
                     print_after=True, dump_dir="ir", time=True)
    pm.run(module)

- `print_after`: `True` (every pass) or pass names; prints `// IR after PASS` and the IR to
  `stream` (stderr by default, so stdout stays the artifact). The header is an IR comment, so
  the dump still parses. A name that is not in the pipeline is an error (it would print
  nothing), listing the pipeline's passes.
- The passes see the pipeline's pass names (`PassContext.pipeline`) and, for a `Pipeline`
  built with `--disable-pass`, the disabled ones (`PassContext.disabled`).
- `dump_dir`: writes `00_input.nir`, `01_unroll-repeat.nir`, ... (one file per pass run, fixpoint
  iterations included, numbered in execution order).
- `time`: records (pass, ms, modified) per run and prints the table after the pipeline.
- Fixpoint groups (`FixpointGroup`, `fixpoint(a,b)` in pipeline text) repeat until an iteration
  changes nothing; past the cap, the error names the passes still changing the IR and the
  rewrite rules that fired in the last iteration (`PassContext.hits`).
"""

from __future__ import annotations

import sys
import time as _time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from neuralc.diagnostics import CompileError, Diagnostic
from neuralc.ir.core import Module, VerifyError, primary_loc
from neuralc.passes.base import Pass, PassContext, pipeline_error
from neuralc.passes.pipeline import FixpointGroup, PipelineItem, flatten, format_pass


@dataclass(frozen=True)
class PassRun:
    """One execution of a pass: what `--time-passes` lists."""

    name: str
    ms: float
    modified: bool
    iteration: int | None = None  # within a fixpoint group, 1-based


class PassManager:
    def __init__(
        self,
        passes: Sequence[PipelineItem],
        ctx: PassContext | None = None,
        *,
        verify_each: bool = True,
        verify_input: bool = True,
        print_after: bool | Collection[str] = False,
        dump_dir: str | Path | None = None,
        time: bool = False,
        stream: TextIO | None = None,
    ) -> None:
        self.disabled = tuple(getattr(passes, "disabled", ()))
        self.passes = list(passes)
        self.ctx = ctx if ctx is not None else PassContext()
        self.verify_each = verify_each
        self.verify_input = verify_input
        self.print_after = print_after
        self.dump_dir = Path(dump_dir) if dump_dir is not None else None
        self.time = time
        self.stream = stream
        self.runs: list[PassRun] = []
        self._dumps = 0

    @property
    def out(self) -> TextIO:
        return self.stream if self.stream is not None else sys.stderr

    def run(self, module: Module) -> bool:
        """Run the pipeline on `module` in place; return whether any pass changed it."""
        names = tuple(type(p).name for p in flatten(self.passes))
        self._check_print_after(names)
        self.ctx.pipeline = names
        self.ctx.disabled = tuple(dict.fromkeys((*self.ctx.disabled, *self.disabled)))
        if self.verify_input:
            self._verify(module, None)
        if self.dump_dir is not None:
            self.dump_dir.mkdir(parents=True, exist_ok=True)
            self._dump(module, "input")
        changed = False
        try:
            for item in self.passes:
                changed |= self._run_item(item, module, None)
        finally:
            if self.time:
                self.out.write(self.timing_table())
        return changed

    def _check_print_after(self, names: tuple[str, ...]) -> None:
        if isinstance(self.print_after, bool):
            return
        missing = [n for n in self.print_after if n not in names]
        if missing:
            listed = ", ".join(dict.fromkeys(names)) or "(no passes)"
            raise pipeline_error(
                f"--print-ir-after {missing[0]}: pass '{missing[0]}' is not in this pipeline",
                f"this pipeline runs: {listed}")

    # -- running ------------------------------------------------------------------------------

    def _run_item(self, item: PipelineItem, module: Module, iteration: int | None) -> bool:
        if isinstance(item, FixpointGroup):
            return self._run_fixpoint(item, module)
        return self._run_pass(item, module, iteration)

    def _run_pass(self, p: Pass, module: Module, iteration: int | None) -> bool:
        name = type(p).name
        start = _time.perf_counter()
        try:
            modified = bool(p.run(module, self.ctx))
        except CompileError:
            raise
        except Exception as exc:  # a bug in the pass: keep the traceback, say which pass
            exc.add_note(f"while running pass '{format_pass(p)}'")
            raise
        ms = (_time.perf_counter() - start) * 1000.0
        self.runs.append(PassRun(name, ms, modified, iteration))
        if self.verify_each:
            self._verify(module, p)
        if self.print_after is True or (
                not isinstance(self.print_after, bool) and name in self.print_after):
            from neuralc.ir.printer import print_module

            self.out.write(f"// IR after {name}\n{print_module(module)}")
        if self.dump_dir is not None:
            self._dump(module, name)
        return modified

    def _run_fixpoint(self, group: FixpointGroup, module: Module) -> bool:
        changed = False
        for iteration in range(1, group.max_iterations + 1):
            hits_before = dict(self.ctx.hits)
            start = len(self.runs)
            modified = False
            for item in group.passes:
                modified |= self._run_item(item, module, iteration)
            changed |= modified
            if not modified:
                return changed
            if iteration == group.max_iterations:
                still = [r.name for r in self.runs[start:] if r.modified]
                fired = {rule: n - hits_before.get(rule, 0) for rule, n in self.ctx.hits.items()
                         if n != hits_before.get(rule, 0)}
                raise fixpoint_error(format_pass(group), group.max_iterations, still, fired)
        return changed

    # -- verification and output ------------------------------------------------------------

    def _verify(self, module: Module, p: Pass | None) -> None:
        from neuralc.ir.verifier import as_diagnostic, verify_module

        try:
            verify_module(module)
        except VerifyError as exc:
            if p is None:
                diagnostic = as_diagnostic(exc)
                diagnostic.message = f"IR verification failed: {diagnostic.message}"
                raise CompileError(diagnostic) from None
            raise self.verify_failure(module, p, exc) from None

    def verify_failure(self, module: Module, p: Pass, exc: VerifyError) -> CompileError:
        from neuralc.ir.printer import print_module

        name = format_pass(p)
        text = print_module(module)
        notes = [f"the IR after pass '{name}':\n{text.rstrip()}"]
        if self.dump_dir is not None:
            path = self._dump(module, f"{type(p).name}.invalid")
            notes.insert(0, f"the invalid IR is in {path}")
        where = primary_loc(exc.op.loc) if exc.op is not None else None
        return CompileError(Diagnostic(
            f"IR verification failed after pass '{name}': {exc}", where, "error", tuple(notes)))

    def _dump(self, module: Module, label: str) -> Path:
        from neuralc.ir.printer import print_module

        assert self.dump_dir is not None
        path = self.dump_dir / f"{self._dumps:02d}_{label}.nir"
        self._dumps += 1
        from neuralc.fileio import write_atomic

        write_atomic(path, print_module(module).encode())  # a full disk is the user's error
        return path

    def timing_table(self) -> str:
        return timing_table(self.runs)


def timing_table(runs: Sequence[PassRun]) -> str:
    """`--time-passes`: one row per pass run, then the total."""
    rows = [(r.name if r.iteration is None else f"{r.name} (iteration {r.iteration})",
             f"{r.ms:.2f}", "yes" if r.modified else "no") for r in runs]
    total = sum(r.ms for r in runs)
    rows.append(("total", f"{total:.2f}", "yes" if any(r.modified for r in runs) else "no"))
    width = max([len("pass"), *(len(r[0]) for r in rows)])
    ms_width = max([len("ms"), *(len(r[1]) for r in rows)])
    lines = [f"{'pass':<{width}}  {'ms':>{ms_width}}  modified"]
    lines += [f"{a:<{width}}  {b:>{ms_width}}  {c}" for a, b, c in rows]
    return "\n".join(lines) + "\n"


def fixpoint_error(what: str, max_iterations: int, still: list[str], fired: dict[str, int]
                   ) -> CompileError:
    """`what` (a fixpoint group, a pass's own rewrite loop) still changed the IR after
    `max_iterations` iterations: name the rule (or pass) that never settles."""
    names = ", ".join(dict.fromkeys(still)) or "(none)"
    notes = [f"passes still changing the IR in the last iteration: {names}"]
    if fired:
        notes.append("rewrite rules that fired in the last iteration: " + ", ".join(
            f"{rule} (x{n})" for rule, n in sorted(fired.items())))
    pattern = max(fired, key=lambda r: fired[r]) if fired else (still[0] if still else "?")
    notes.append("a rule that undoes another, or a pass that reports a change it did not make, "
                 "never settles; raise max-iterations only if the pipeline converges slowly")
    return CompileError(Diagnostic(
        f"{what} did not settle after {max_iterations} iterations: "
        f"'{pattern}' never settles", None, "error", tuple(notes)))


def fusion_report(ctx: PassContext) -> str:
    """`--report fusion`: each rejected fusion candidate with the first reason it failed,
    grouped by pattern, then the rewrite-rule hit counts."""
    lines = ["fusion report:"]
    by_pattern: dict[str, list[tuple[str, str]]] = {}
    for r in ctx.fusion_rejections:
        by_pattern.setdefault(r.pattern, []).append((r.op_name, r.reason))
    if not by_pattern:
        lines.append("  no rejected fusion candidates")
    for pattern, rejected in by_pattern.items():
        fused = ctx.hits.get(pattern, 0)
        lines.append(f"  {pattern}: {fused} fused, {len(rejected)} rejected")
        lines += [f"    %{op}: {reason}" for op, reason in rejected]
    if ctx.hits:
        lines.append("rule hits:")
        lines += [f"  {rule}: {n}" for rule, n in sorted(ctx.hits.items())]
    return "\n".join(lines) + "\n"


__all__ = ["PassManager", "PassRun", "fixpoint_error", "fusion_report", "timing_table"]
