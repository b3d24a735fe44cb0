"""What every command shares: loading a program, printing diagnostics (and, re-exported,
neuralc.fileio's atomic writes)."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from collections.abc import Iterable
from pathlib import Path

from neuralc.diagnostics import CompileError, Diagnostic
from neuralc.fileio import write_atomic
from neuralc.frontend import ast

__all__ = [
    "Sources",
    "for_network",
    "load_for_network",
    "load_program",
    "only_network",
    "positive_int",
    "print_diagnostics",
    "require_networks",
    "write_atomic",
]


class Sources:
    """Source texts by path, so diagnostics can quote the offending line."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}

    def add(self, path: str, text: str) -> None:
        self.texts[path] = text


def load_program(path: str, sources: Sources) -> ast.Program:
    from neuralc.frontend.parser import parse_file

    try:
        program = parse_file(path)
    except CompileError:
        _remember_text(path, sources)
        raise
    sources.add(program.path, program.source)
    return program


def _remember_text(path: str, sources: Sources) -> None:
    with contextlib.suppress(OSError):
        sources.add(path, Path(path).read_bytes().decode("utf-8", errors="replace"))


def print_diagnostics(diagnostics: Iterable[Diagnostic], sources: Sources) -> None:
    for diagnostic in diagnostics:
        print(diagnostic.render(sources.texts), file=sys.stderr)


def require_networks(program: ast.Program) -> None:
    """A command that builds, trains or tunes needs a network: a diagnostic at 1:1 otherwise."""
    from neuralc.diagnostics import SourceLocation, error

    if not program.networks:
        raise error("file defines no network", SourceLocation(program.path, 1, 1),
                    "add a `network Name { input: (...) layers: ... }` block"
                    if not program.macros else
                    "it only defines macros; use them in a network")


def only_network(program: ast.Program, name: str) -> ast.Program:
    """The program with only the network `name`, for every command's `--network`: the other
    networks are not checked, so an error in one of them does not hide this one's result."""
    import dataclasses

    from neuralc.diagnostics import did_you_mean, error
    from neuralc.frontend.macros import check_unique_networks

    check_unique_networks(program)
    chosen = [n for n in program.networks if n.name == name]
    if not chosen:
        names = [n.name for n in program.networks]
        raise error(
            f"no network named '{name}' in {program.path}",
            None,
            did_you_mean(name, names) or "networks: " + ", ".join(names),
        )
    return dataclasses.replace(program, networks=tuple(chosen))


def for_network(program: ast.Program, name: str | None) -> ast.Program:
    """`program` as a command given `--network name` sees it: only that network when a name is
    given (`only_network`), else all of them."""
    return program if name is None else only_network(program, name)


def load_for_network(path: str, sources: Sources, name: str | None) -> ast.Program:
    """Load the program a command that builds, trains or tunes works on: it must define a
    network, and with `--network name` it holds only that one, so that the study or build of
    one network is not blocked by an error in another."""
    program = load_program(path, sources)
    require_networks(program)
    return for_network(program, name)


def positive_seconds(text: str) -> float:
    """The argparse type of durations (`tune --timeout`): a finite number of seconds above 0.
    Optuna would take 0 or a negative value as "already timed out" and NaN as "never", both
    silently; a usage error (exit 2) says so instead."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            f"must be a positive, finite number of seconds, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """The argparse type of counts given on the command line (`--epochs`, `--batch-size`,
    `--trials`, `--synthetic`): an integer from 1 to 2**63 - 1, since the training loops hold them
    in an int64 (numpy and PyTorch raise OverflowError past it, mid-run). Anything else is a
    usage error, exit 2."""
    return _int64_at_least(text, 1, "a positive integer")


def seed_int(text: str) -> int:
    """The argparse type of `--seed`: an integer from 0 to 2**63 - 1 (PyTorch's and
    TensorFlow's seeds are int64s)."""
    return _int64_at_least(text, 0, "a non-negative integer")


def _int64_at_least(text: str, low: int, expected: str) -> int:
    from neuralc.ir.types import INT64_MAX

    digits = text.strip().lstrip("+-")
    try:
        value = int(text)
    except ValueError:
        # int() refuses strings of over 4,300 digits (CPython's limit) with a ValueError too.
        if digits.isdigit() and not text.strip().startswith("-"):
            raise argparse.ArgumentTypeError(
                f"must be at most 2**63 - 1 = {INT64_MAX:,}, got a {len(digits):,}-digit "
                "integer") from None
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be {expected}, got {value}")
    if value > INT64_MAX:
        shown = str(value) if len(digits) <= 40 else f"a {len(digits):,}-digit integer"
        raise argparse.ArgumentTypeError(f"must be at most 2**63 - 1 = {INT64_MAX:,}, got {shown}")
    return value
