"""`neuralc check MODEL [--network NAME] [--json] [--emit nn]`."""

from __future__ import annotations

import argparse
import json
import sys

from neuralc.commands.common import Sources, load_program, only_network, print_diagnostics
from neuralc.diagnostics import error
from neuralc.frontend.ast import Program
from neuralc.frontend.check import CheckResult, check_program
from neuralc.frontend.irgen import BuiltNetwork
from neuralc.ir.core import Network
from neuralc.ir.types import TensorType


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a .neural file")
    parser.add_argument("--network", help="check only this network of the file")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print a machine-readable summary")
    output.add_argument("--emit", choices=["nn"], help="print the IR instead of the summary")


def run(args: argparse.Namespace, sources: Sources) -> int:
    program = load_program(args.model, sources)
    if not program.networks:
        if not program.macros:
            raise error("file defines no network", _file_start(program.path),
                        "add a `network Name { input: (...) layers: ... }` block")
        return _macro_library(program, args)
    if args.network is not None:
        program = only_network(program, args.network)
    result = check_program(program)
    print_diagnostics(result.warnings, sources)
    if args.emit == "nn":
        sys.stdout.write(_module_text([b.network for b in result.networks]))
    elif args.json:
        print(json.dumps({"networks": [_network_json(b) for b in result.networks]}, indent=2))
    else:
        _print_summary(result.networks, result)
    return 0


def _macro_library(program: Program, args: argparse.Namespace) -> int:
    """A file of macros only: arguments can be checked, shapes only where a network uses them.
    The machine-readable outputs stay machine-readable (no networks, an empty module)."""
    from neuralc.frontend.macros import check_macros

    check_macros(program)
    if args.network is not None:
        raise error(f"no network named '{args.network}' in {program.path}", None,
                    "the file defines macros only: "
                    + ", ".join(m.name for m in program.macros))
    if args.emit == "nn":
        sys.stdout.write(_module_text([]))
    elif args.json:
        print(json.dumps({"networks": [], "macros": [m.name for m in program.macros]},
                         indent=2))
    else:
        names = ", ".join(m.name for m in program.macros)
        print(f"{program.path}: defines macros {names} and no network; arguments checked, "
              "shapes are checked where a network uses them")
    return 0


def _module_text(networks: list[Network]) -> str:
    from neuralc.ir.core import Module
    from neuralc.ir.printer import print_module

    return print_module(Module(networks))


def _file_start(path: str):  # noqa: ANN202 - a SourceLocation
    from neuralc.diagnostics import SourceLocation

    return SourceLocation(path, 1, 1)


def _dims(tensor: TensorType) -> list[int | None]:
    return [d if isinstance(d, int) else None for d in tensor.feature_shape]


def _network_json(built: BuiltNetwork) -> dict:
    net = built.network
    inputs = net.inputs
    if len(inputs) == 1:
        input_shape: object = _dims(inputs[0].type)
        input_dtype: object = inputs[0].type.dtype
    else:
        input_shape = {v.name: _dims(v.type) for v in inputs}
        input_dtype = {v.name: v.type.dtype for v in inputs}
    return {
        "name": net.name,
        "input_shape": input_shape,
        "input_dtype": input_dtype,
        "output_shape": _dims(net.outputs[0].type),
        "params": built.params,
        "layers": [
            {"name": row.name, "op": row.layer, "output_shape": _dims(row.output_type),
             "params": row.params, "device": row.device, "line": row.loc.line}
            for row in built.rows
        ],
    }


def _shape_text(tensor: TensorType) -> str:
    dims = ["None" if not isinstance(d, int) else str(d) for d in tensor.shape]
    return f"({', '.join(dims)})" + ("" if tensor.dtype == "f32" else f" {tensor.dtype}")


def _row_text(cells: tuple[str, ...], widths: list[int]) -> str:
    left = [cells[0].ljust(widths[0]), cells[1].ljust(widths[1])]
    return "   ".join([*left, cells[2].rjust(widths[2]), cells[3]]).rstrip()


def _print_summary(networks: list[BuiltNetwork], result: CheckResult) -> None:
    """A Keras-style summary. Plain formatting rather than a rich table: rich takes seconds to
    lay out a 1,000-layer model, and check must stay fast."""
    out: list[str] = []
    for built in networks:
        net = built.network
        rows = [(f"{v.name} (Input)", _shape_text(v.type), "0", "") for v in net.inputs]
        rows += [(f"{r.name} ({r.layer})", _shape_text(r.output_type), f"{r.params:,}",
                  r.device or "") for r in built.rows]
        header = ("Layer (type)", "Output Shape", "Param #", "Device")
        widths = [max(len(row[i]) for row in (*rows, header)) for i in range(4)]
        rule = "─" * (sum(widths) + 3 * 3)

        out += [f'Network "{net.name}"', rule, _row_text(header, widths), rule]
        out += [_row_text(row, widths) for row in rows]
        out += [rule, f" Total params: {built.params:,}",
                f" Output: {_shape_text(net.outputs[0].type)}", ""]
    if result.trials_total > 1:
        checked = (f"all {result.trials_total:,}" if result.trials_checked == result.trials_total
                   else f"{result.trials_checked:,} of {result.trials_total:,}")
        out.append(f" HPO: {checked} shape-relevant combinations checked; "
                   "the summary shows the first")
    sys.stdout.write("\n".join(out) + "\n")
