"""The `neuralc` command line: argument parsing and dispatch to `neuralc.commands.*`.

User errors print as diagnostics and exit 1; usage errors exit 2 (argparse's convention); a bug
in neuralc prints one line asking for a report (and the traceback only with NEURALC_DEBUG=1).

A command module defines `add_arguments(parser)` and `run(args, sources)`, and may define
`check_usage(args) -> str | None`: a usage error argparse cannot see (options that only make
sense together), reported like argparse's own, with the command's usage line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from neuralc import __version__

# command -> (module in neuralc.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("check", "parse, verify and shape-check a model; print a summary"),
    "opt": ("opt", "parse IR text, verify it, run passes and print it"),
    "build": ("build", "emit a PyTorch module, a Keras module or an ONNX model for a network"),
    "init": ("init", "write initial weights (safetensors) for a network"),
    "predict": ("predict", "build a network for a target and run it on .npy inputs"),
    "run": ("run", "train a network (its train { } block) with PyTorch or TensorFlow"),
    "tune": ("tune", "search a network's HPO(...) space with Optuna; write the best as .neural"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; only `command`'s options are loaded when it is given, so that
    `neuralc check` never imports what `build` or `predict` need."""
    return _build_parsers(command)[0]


def _build_parsers(
    command: str | None,
) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser and each command's sub-parser (for usage errors found after parsing)."""
    parser = argparse.ArgumentParser(
        prog="neuralc", description="A compiler for the Neural DSL.",
        epilog="Run `neuralc COMMAND --help` for a command's options.")
    parser.add_argument("--version", action="version", version=f"neuralc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub_parsers: dict[str, argparse.ArgumentParser] = {}
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        sub_parsers[name] = sub_parser
        if command is None or command == name:
            _command_module(module_name).add_arguments(sub_parser)
    return parser, sub_parsers


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse `argv`; a usage error (argparse's, or a command's `check_usage`) exits 2."""
    parser, sub_parsers = _build_parsers(_requested_command(argv))
    args = parser.parse_args(argv)
    check_usage = getattr(_command_module(COMMANDS[args.command][0]), "check_usage", None)
    problem = check_usage(args) if check_usage is not None else None
    if problem:
        sub_parsers[args.command].error(problem)
    return args


def _requested_command(argv: Sequence[str]) -> str | None:
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    return first if first in COMMANDS else None


def _command_module(module_name: str):  # noqa: ANN202 - a module
    return importlib.import_module(f"neuralc.commands.{module_name}")


def main(argv: Sequence[str] | None = None) -> int:
    from neuralc.commands.common import Sources, print_diagnostics
    from neuralc.diagnostics import CompileError

    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    sources = Sources()
    try:
        return int(_command_module(COMMANDS[args.command][0]).run(args, sources) or 0)
    except CompileError as exc:
        print_diagnostics(exc.diagnostics, sources)
        return 1
    except KeyboardInterrupt:
        print("neuralc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug in neuralc, not in the user's program
        if os.environ.get("NEURALC_DEBUG"):
            traceback.print_exc()
        print(f"neuralc: internal error: {type(exc).__name__}: {exc}\n"
              "note: this is a bug in neuralc; rerun with NEURALC_DEBUG=1 and report the "
              "traceback", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
