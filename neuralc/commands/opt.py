"""`neuralc opt FILE.nir [--passes PIPELINE | -O N] [pipeline flags]`: parse IR text, verify it,
run passes and print it again.

Without pipeline flags it only parses, verifies and prints (a round trip). `--passes` runs that
pipeline, `-O N` that level's preset, `--emit tensor|kernel` the lowering to that stage; see
`neuralc.commands.pipeline_args` for every flag. Diagnostics and dumps go to stderr, the IR to
stdout (or `-o`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from neuralc.commands.common import Sources
from neuralc.diagnostics import CompileError, SourceLocation, error


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from neuralc.commands.pipeline_args import add_pipeline_arguments

    parser.add_argument("file", help="IR text (.nir); '-' reads standard input")
    parser.add_argument("-o", "--output", help="write the IR here instead of standard output")
    add_pipeline_arguments(parser)


def run(args: argparse.Namespace, sources: Sources) -> int:
    import neuralc.passes  # noqa: F401 - registers the passes and the ops they insert
    from neuralc.commands.pipeline_args import pipeline_requested, run_pipeline
    from neuralc.ir.parser import parse_module
    from neuralc.ir.printer import print_module

    path, text = _read(args.file)
    sources.add(path, text)
    module = parse_module(text, path)
    verify_or_report(module)
    if pipeline_requested(args):
        from neuralc.commands.common import print_diagnostics

        module, ctx = run_pipeline(module, args)
        print_diagnostics(ctx.warnings, sources)
    out = print_module(module)
    if args.output:
        from neuralc.commands.common import write_atomic

        write_atomic(args.output, out)
    else:
        sys.stdout.write(out)
    return 0


def verify_or_report(module) -> None:  # noqa: ANN001 - an ir.core.Module
    """Turn the verifier's first error into a diagnostic at the offending op's location."""
    from neuralc.ir.core import VerifyError
    from neuralc.ir.verifier import as_diagnostic, verify_module

    try:
        verify_module(module)
    except VerifyError as exc:
        diagnostic = as_diagnostic(exc)
        diagnostic.message = f"IR verification failed: {diagnostic.message}"
        raise CompileError(diagnostic) from None


def _read(name: str) -> tuple[str, str]:
    if name == "-":
        return "<stdin>", sys.stdin.read()
    path = Path(name)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise error(f"'{name}' is a directory, not an IR file") from None
    except OSError as exc:
        raise error(f"cannot read '{name}': {exc.strerror}") from None
    try:
        return name, data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise error("file is not valid UTF-8", SourceLocation(name, line, column),
                    "save the file as UTF-8") from None
