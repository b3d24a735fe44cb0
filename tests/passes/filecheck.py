"""A FileCheck-style golden runner for pass tests: IR text in, a pipeline, expected IR out.

A golden file (`tests/passes/golden/*.nir`) is IR text that the IR parser reads as it is (`//`
starts a comment), with directives in comments:

    // RUN: passes=canonicalize,cse
    // CHECK: %dense = nn.dense(%input)
    // CHECK-NEXT: return(%dense)
    // CHECK-NOT: nn.activation
    module {
      network @Net(%input: f32[N,8]) { ... }
    }

Header (`// RUN:` lines; several are joined), whitespace-separated `key=value` words (a value may
contain spaces inside `{...}`):
- `passes=<pipeline>`   the pipeline text (`a,b{opt=1},c`, see `neuralc.passes.pipeline`)
- `level=<0-3>`         the `-O` preset instead of (or besides) `passes=`
- `emit=nn|tensor|kernel`, `disable=a,b` (`--disable-pass` each), `devices=cuda:0,cuda:1`,
  `device=cpu` (build's `--device` override), `kernels=auto|torch`: the CLI flags of the same
  name (the runner goes through `neuralc.commands.pipeline_args`, as `neuralc opt` does)
- `available=cpu,cuda:0` (`PassContext.available_devices`), `training=true|false`,
  `target=pytorch|tensorflow|onnx`: the context a command would set.
A file without `passes=` or `level=` runs the empty pipeline (parse, verify, print).

Checks, matched against the printed IR (or, with `EXPECT-ERROR`, against the rendered error):
- `// CHECK: pat`        the next line at or after the current position containing `pat`
- `// CHECK-NEXT: pat`   the line right after the previous match
- `// CHECK-SAME: pat`   the previous match's line, after the previous match
- `// CHECK-NOT: pat`    `pat` is absent between the previous match and the next positive match
                          (or the end of the output)
- `// CHECK-COUNT-<n>: pat`  `pat` matches on n successive (not necessarily adjacent) lines;
                          follow it with `CHECK-NOT: pat` for "exactly n"
- `// CHECK-EMPTY:`       the line right after the previous match is empty
Patterns are literal text with embedded regular expressions in `{{...}}`; runs of whitespace
match any run of whitespace (both are collapsed to one space, as LLVM FileCheck does), and
leading/trailing whitespace of a pattern is ignored.

Expected diagnostics:
- `// EXPECT-ERROR: text`    parsing or the pipeline must fail with a `CompileError` whose
                              rendered diagnostics contain `text` (each such line must appear)
- `// EXPECT-WARNING: text`  some warning the passes reported (`PassContext.warnings`) contains
                              `text`
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

DIRECTIVE = re.compile(
    r"^\s*//\s*(RUN|CHECK(?:-NEXT|-SAME|-NOT|-EMPTY|-COUNT-\d+)?|EXPECT-ERROR|EXPECT-WARNING)"
    r"\s*:(.*)$"
)
RUN_KEYS = ("passes", "level", "emit", "disable", "devices", "device", "kernels", "available",
            "training", "target")


class FileCheckError(AssertionError):
    """A check that failed, with the directive's line and the output around the failure."""


@dataclass(frozen=True)
class Check:
    kind: str  # "CHECK", "CHECK-NEXT", "CHECK-SAME", "CHECK-NOT", "CHECK-EMPTY", "CHECK-COUNT"
    pattern: str
    line: int  # in the golden file, 1-based
    count: int = 1

    def regex(self) -> re.Pattern[str]:
        return compile_pattern(self.pattern)

    def __str__(self) -> str:
        kind = f"CHECK-COUNT-{self.count}" if self.kind == "CHECK-COUNT" else self.kind
        return f"line {self.line}: // {kind}: {self.pattern}"


@dataclass
class Golden:
    path: Path
    text: str
    run: dict[str, str] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Literal text with `{{regex}}` parts; whitespace runs collapse to one space."""
    parts: list[str] = []
    rest = _collapse(pattern)
    while rest:
        start = rest.find("{{")
        if start < 0:
            parts.append(re.escape(rest))
            break
        end = rest.find("}}", start + 2)
        if end < 0:
            raise FileCheckError(f"unterminated '{{{{' in pattern {pattern!r}")
        parts.append(re.escape(rest[:start]))
        parts.append(f"(?:{rest[start + 2:end]})")
        rest = rest[end + 2:]
    return re.compile("".join(parts))


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _split_run(text: str) -> list[str]:
    """Whitespace-separated words, keeping `{...}` groups whole."""
    words: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch.isspace() and depth == 0:
            if current:
                words.append("".join(current))
                current = []
            continue
        depth += (ch == "{") - (ch == "}")
        current.append(ch)
    if current:
        words.append("".join(current))
    return words


def parse_golden(path: Path, text: str | None = None) -> Golden:
    text = path.read_text() if text is None else text
    golden = Golden(path, text)
    for number, line in enumerate(text.splitlines(), 1):
        match = DIRECTIVE.match(line)
        if match is None:
            continue
        kind, body = match.group(1), match.group(2).strip()
        if kind == "RUN":
            for word in _split_run(body):
                key, sep, value = word.partition("=")
                if not sep or key not in RUN_KEYS:
                    raise FileCheckError(f"{path}:{number}: bad RUN word {word!r}; expected "
                                         f"key=value with key one of {', '.join(RUN_KEYS)}")
                golden.run[key] = value
        elif kind == "EXPECT-ERROR":
            golden.errors.append(body)
        elif kind == "EXPECT-WARNING":
            golden.warnings.append(body)
        elif kind.startswith("CHECK-COUNT-"):
            golden.checks.append(Check("CHECK-COUNT", body, number, int(kind.rsplit("-", 1)[1])))
        else:
            if not body and kind != "CHECK-EMPTY":
                raise FileCheckError(f"{path}:{number}: empty {kind} pattern")
            golden.checks.append(Check(kind, body, number))
    return golden


def filecheck(output: str, checks: list[Check], name: str = "output") -> None:
    """Match `checks` against `output` in order; raise FileCheckError on the first failure."""
    lines = [_collapse(line) for line in output.splitlines()]
    line, col = 0, 0  # the previous match ended at lines[line][col:]; before any match: (0, 0)
    matched_any = False
    pending_not: list[Check] = []

    def fail(check: Check, why: str, at: int) -> None:
        raise FileCheckError(f"{name}: {check}\n{why}\n{_context(output, at)}")

    def find_from(check: Check, start_line: int, start_col: int) -> tuple[int, int, int]:
        regex = check.regex()
        for i in range(start_line, len(lines)):
            found = regex.search(lines[i], start_col if i == start_line else 0)
            if found is not None:
                return i, found.start(), found.end()
        fail(check, "no match found", start_line)
        raise AssertionError  # unreachable

    def flush_nots(end_line: int, end_col: int) -> None:
        for check in pending_not:
            regex = check.regex()
            for i in range(line, min(end_line, len(lines) - 1) + 1):
                lo = col if i == line else 0
                hi = end_col if i == end_line else len(lines[i])
                found = regex.search(lines[i], lo)
                if found is not None and found.end() <= hi:
                    fail(check, "found a match that must not be there", i)
        pending_not.clear()

    for check in checks:
        if check.kind == "CHECK-NOT":
            pending_not.append(check)
            continue
        if check.kind in ("CHECK", "CHECK-COUNT"):
            start = (line, col)
            for n in range(check.count):
                i, s, e = find_from(check, *start)
                if n == 0:
                    flush_nots(i, s)
                line, col = i, e
                start = (i + 1, 0)
        elif check.kind in ("CHECK-NEXT", "CHECK-EMPTY"):
            if not matched_any:
                fail(check, f"{check.kind} cannot be the first check", 0)
            nxt = line + 1
            if nxt >= len(lines):
                fail(check, "the output ended", line)
            if check.kind == "CHECK-EMPTY":
                if lines[nxt]:
                    fail(check, "the next line is not empty", nxt)
                s = e = 0
            else:
                found = check.regex().search(lines[nxt])
                if found is None:
                    fail(check, "the next line does not match", nxt)
                s, e = found.start(), found.end()  # type: ignore[union-attr]
            flush_nots(nxt, s)
            line, col = nxt, e
        elif check.kind == "CHECK-SAME":
            if not matched_any:
                fail(check, "CHECK-SAME cannot be the first check", 0)
            found = check.regex().search(lines[line], col)
            if found is None:
                fail(check, "the rest of the line does not match", line)
            flush_nots(line, found.start())  # type: ignore[union-attr]
            col = found.end()  # type: ignore[union-attr]
        matched_any = True
    if pending_not:
        flush_nots(len(lines) - 1, len(lines[-1]) if lines else 0)


def _context(output: str, at: int, radius: int = 4) -> str:
    raw = output.splitlines()
    lo, hi = max(0, at - radius), min(len(raw), at + radius + 1)
    shown = [f"{'>' if i == at else ' '} {i + 1:4}| {raw[i]}" for i in range(lo, hi)]
    return "output around the failure:\n" + "\n".join(shown) if shown else "(empty output)"


def run_argv(run: dict[str, str]) -> list[str]:
    """The RUN header as `neuralc opt` flags."""
    argv: list[str] = []
    if "passes" in run:
        argv += ["--passes", run["passes"]]
    if "level" in run:
        argv += ["-O", run["level"]]
    for key in ("emit", "devices", "device", "kernels"):
        if key in run:
            argv += [f"--{key}", run[key]]
    for name in filter(None, run.get("disable", "").split(",")):
        argv += ["--disable-pass", name]
    return argv


def run_golden(path: Path) -> str:
    """Run one golden file; return what the checks were matched against. Raises
    FileCheckError (an AssertionError) when the file's expectations are not met."""
    import argparse

    from neuralc.commands.pipeline_args import add_pipeline_arguments, run_pipeline
    from neuralc.diagnostics import CompileError
    from neuralc.ir.parser import parse_module
    from neuralc.ir.printer import print_module

    golden = parse_golden(path)
    parser = argparse.ArgumentParser(prog=f"golden {path.name}")
    add_pipeline_arguments(parser)
    args = parser.parse_args(run_argv(golden.run))
    ctx_defaults: dict[str, object] = {}
    if "available" in golden.run:
        ctx_defaults["available_devices"] = tuple(filter(None, golden.run["available"].split(",")))
    if "training" in golden.run:
        ctx_defaults["training"] = golden.run["training"].lower() == "true"
    if "target" in golden.run:
        ctx_defaults["target"] = golden.run["target"]
    try:
        module = parse_module(golden.text, str(path))
        module, ctx = run_pipeline(module, args, ctx_defaults)
    except CompileError as exc:
        rendered = exc.render({str(path): golden.text})
        if not golden.errors:
            raise FileCheckError(f"{path.name}: unexpected error:\n{rendered}") from None
        for expected in golden.errors:
            if expected not in rendered:
                raise FileCheckError(f"{path.name}: expected the error to contain "
                                     f"{expected!r}, got:\n{rendered}") from None
        filecheck(rendered, golden.checks, path.name)
        return rendered
    if golden.errors:
        raise FileCheckError(f"{path.name}: expected an error containing {golden.errors[0]!r}, "
                             "but the pipeline succeeded")
    warnings = "\n".join(d.render() for d in ctx.warnings)
    for expected in golden.warnings:
        if expected not in warnings:
            raise FileCheckError(f"{path.name}: expected a warning containing {expected!r}, "
                                 f"got:\n{warnings or '(no warnings)'}")
    output = print_module(module)
    filecheck(output, golden.checks, path.name)
    return output
