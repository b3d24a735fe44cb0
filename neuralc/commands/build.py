"""`neuralc build MODEL --target {pytorch,tensorflow,onnx} [-o PATH] [--network NAME]
[--weights W.safetensors] [--seed N] [--opset N] [-O {0,1,2,3}] [--device D]`.

Checks the program, picks a network, emits the target's artifact and writes it atomically (a
failing build leaves no file). The default output is `./<model stem><suffix>` in the current
directory. A program with HPO expressions builds its first combination (as `neuralc check`
summarizes it). `-O` is accepted for the optimization pipeline; no level changes the output.
`--opset` applies to `--target onnx` only (a usage error with the others).

`--weights W` is checked against the network; ONNX embeds it, and the PyTorch and Keras modules
record it as their default weight file, `WEIGHTS` (the emitters get `BuildOptions.weights` and
the artifact's real path, and spell W relative to the module).

`--emit {nn,tensor,kernel}` writes the IR at that stage instead of an artifact: the whole
module, exactly as `neuralc opt --emit STAGE` prints it (so `neuralc opt` reads it back), to
`-o` (atomically) or standard output.

`--hpo (--data DATA | --synthetic N) [--trials N] [--timeout S] [--storage URL]
[--study-name NAME] [--resolved-out FILE]` first runs `neuralc tune`'s Optuna study over the
HPO(...) expressions (training with the target's framework, PyTorch for onnx), prints the best
parameters, then builds the resolved program: the best values written in place of the HPO
expressions (`--resolved-out` writes it too): `neuralc.commands.build_hpo`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from neuralc.commands.build_hpo import add_hpo_arguments, reject_hpo_options, tune_network
from neuralc.commands.common import (
    Sources,
    load_for_network,
    print_diagnostics,
    seed_int,
    write_atomic,
)
from neuralc.diagnostics import did_you_mean, error
from neuralc.fileio import write_atomic_with_companions
from neuralc.ir.core import Module, Network
from neuralc.lower.target import DEFAULT_OPSET, TARGET_MODULES, BuildOptions, Target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a .neural file")
    add_build_arguments(parser)
    parser.add_argument(
        "-o",
        "--output",
        help="the artifact to write (default: ./<model stem>"
        ".py for pytorch and tensorflow, .onnx for onnx); with --emit, the IR file (default: "
        "standard output)",
    )
    parser.add_argument(
        "--weights",
        help="a safetensors weight file (`neuralc init`), checked against the network: "
        "onnx embeds its weights; the pytorch and tensorflow modules record its path "
        "(relative to the module) as the weight file they load when given none",
    )
    parser.add_argument(
        "--seed",
        type=seed_int,
        default=0,
        help="seed of the initial weights when no weight file is given",
    )
    add_hpo_arguments(parser)


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    """The options `build` and `predict` share."""
    parser.add_argument(
        "--target", required=True, choices=sorted(TARGET_MODULES), help="the framework to emit"
    )
    parser.add_argument(
        "--network", help="the network to build (required when the file defines several)"
    )
    # No default here: check_usage must see whether --opset was given.
    parser.add_argument(
        "--opset", type=int, default=None,
        help=f"ONNX opset, for --target onnx only (default {DEFAULT_OPSET})",
    )
    parser.add_argument(
        "-O",
        dest="opt_level",
        type=int,
        choices=(0, 1, 2, 3),
        default=2,
        help="optimization level: 0 one-to-one (matches eager exactly), 1 generic cleanups, "
        "2 (default) unrolling, lowering and fusion, 3 bf16 on CUDA and autotuning; no level "
        "changes the computed function beyond rounding",
    )
    parser.add_argument(
        "--device",
        help='run every layer on this device ("cpu", "cuda", '
        '"cuda:N", "gpu", "auto"), overriding the model\'s placement',
    )
    from neuralc.commands.pipeline_args import add_pipeline_arguments

    add_pipeline_arguments(parser)


def check_usage(args: argparse.Namespace) -> str | None:
    """Usage errors argparse cannot see (build and predict share them)."""
    if args.opset is not None and args.target != "onnx":
        return f"argument --opset: applies to --target onnx only, not --target {args.target}"
    emit = getattr(args, "emit", None)
    if args.target == "tensorflow" and emit not in (None, "nn"):
        # Keras takes the `nn` stage; asking for a later one is refused, not dropped.
        return (
            f"argument --emit: --emit {emit}: the tensorflow target is emitted from the nn "
            "stage; use --emit nn, or --target pytorch/onnx for the tensor and kernel stages"
        )
    return None


def run(args: argparse.Namespace, sources: Sources) -> int:
    if getattr(args, "hpo", False):
        network, path = tune_network(args, sources)
    else:
        reject_hpo_options(args)
        network, path = compile_network(args, sources)
    target = get_target(args.target)
    options = build_options(args, path)
    if options.weights is not None:
        from neuralc.lower.weights import load_checked_weights

        load_checked_weights(network, options.weights)
    if args.emit is not None:
        return _emit_ir(network, args, sources)
    output = Path(args.output) if args.output else Path.cwd() / (Path(path).stem + target.suffix)
    with initial_weights(network, options, args.target) as options:
        network = optimize(network, args, sources)
        write_artifact(target, network, options, output)
    print(output)
    return 0


def _emit_ir(network: Network, args: argparse.Namespace, sources: Sources) -> int:
    """`--emit STAGE`: the whole module (its attributes too, e.g. -O3's autotune), as `neuralc
    opt` prints it, so the file parses back."""
    from neuralc.ir.printer import print_module

    text = print_module(optimize_module(network, args, sources))
    if args.output:
        write_atomic(args.output, text)
        print(args.output)
    else:
        sys.stdout.write(text)
    return 0


def optimize(network: Network, args: argparse.Namespace, sources: Sources) -> Network:
    """Run the `-O` pipeline (or `--passes`) on the network, as `build` and `predict` both do.

    Keras expresses the `nn` stage: for the tensorflow target the pipeline stops there."""
    return optimize_module(network, args, sources).networks[0]


def optimize_module(network: Network, args: argparse.Namespace, sources: Sources) -> Module:
    """`optimize`, returning the whole module: passes may set module attributes."""
    from neuralc.commands.pipeline_args import run_pipeline

    pipeline_args = argparse.Namespace(**vars(args))
    if args.target == "tensorflow":
        _check_keras_stage(args)
        if getattr(pipeline_args, "emit", None) is None:
            pipeline_args.emit = "nn"
    module, ctx = run_pipeline(Module([network]), pipeline_args,
                               {"target": args.target, "training": False})
    print_diagnostics(ctx.warnings, sources)
    return module


def _check_keras_stage(args: argparse.Namespace) -> None:
    """Keras takes the `nn` stage: the -O presets stop there for tensorflow, but an explicit
    request for more (lowering passes in `--passes`) is refused, not dropped (`--emit tensor`
    is a usage error, `check_usage`'s)."""
    from neuralc.passes.pipeline import parse_pipeline
    from neuralc.passes.presets import STAGES, pass_stage

    text = getattr(args, "passes", None)
    if not text:
        return

    def names(spec: object) -> list[str]:
        items = getattr(spec, "items", None)
        return [n for s in items for n in names(s)] if items is not None else [spec.name]  # type: ignore[attr-defined]

    beyond = [n for spec in parse_pipeline(text) for n in names(spec)
              if pass_stage(n) in STAGES[1:]]
    if beyond:
        raise error("--passes lowers past the nn stage (" + ", ".join(dict.fromkeys(beyond))
                    + "), which the tensorflow target cannot express", None,
                    "Keras is emitted from the nn stage: drop those passes, or build "
                    "--target pytorch or onnx")


@contextlib.contextmanager
def initial_weights(network: Network, options: BuildOptions,
                    target: str) -> Iterator[BuildOptions]:
    """ONNX embeds its weights: without `--weights`, write `neuralc init`'s weights for the
    un-lowered network to a temporary file, so every stage of the IR finds its weights by key."""
    if options.weights is not None or target != "onnx":
        yield options
        return
    from neuralc.lower.weights import init_weights, save_weights

    with tempfile.TemporaryDirectory(prefix="neuralc-weights-") as tmp:
        path = Path(tmp) / "initial.safetensors"
        save_weights(path, init_weights(network, options.seed))
        yield dataclasses.replace(options, weights=path)


def compile_network(args: argparse.Namespace, sources: Sources) -> tuple[Network, str]:
    """Parse and check `args.model`; return the selected network and the program's path."""
    from neuralc.frontend.check import check_program

    # Only the chosen network is checked, as `check --network` does.
    program = load_for_network(args.model, sources, args.network)
    if args.device is not None:
        check_device_option(args.device)
    result = check_program(program)
    print_diagnostics(result.warnings, sources)
    return select_network(
        [b.network for b in result.networks], args.network, program.path
    ), program.path


def select_network(networks: list[Network], name: str | None, path: str) -> Network:
    names = [n.name for n in networks]
    if name is None:
        if len(networks) == 1:
            return networks[0]
        raise error(
            f"{path} defines {len(networks)} networks; choose one with --network",
            None,
            "networks: " + ", ".join(names),
        )
    for network in networks:
        if network.name == name:
            return network
    raise error(
        f"no network named '{name}' in {path}",
        None,
        did_you_mean(name, names) or "networks: " + ", ".join(names),
    )


_DEVICE = re.compile(r"^(cpu|cuda|gpu|auto|cuda:\d+)$")


def check_device_option(device: str) -> None:
    from neuralc.frontend.config import DEVICE_HELP

    if not _DEVICE.match(device):
        raise error(f'invalid --device "{device}"', None, DEVICE_HELP)


def get_target(name: str) -> Target:
    from neuralc.lower.target import get_target as load

    try:
        return load(name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("neuralc"):
            raise error(f"the {name} target is not available in this build of neuralc") from None
        raise error(
            f"the {name} target needs the Python package '{exc.name}'",
            None,
            "install neuralc's dependencies (make install)",
        ) from None


# Targets that write files beside their artifact (ONNX external data for models over 2 GB).
# Their bytes do not depend on the artifact's directory, so they are emitted into a staging
# directory; the others name files relative to the artifact (the module's default weights) and
# are emitted with its real path.
_WRITES_COMPANIONS = frozenset({"onnx"})


def write_artifact(target: Target, network: Network, options: BuildOptions, path: Path) -> None:
    """Emit the artifact and write it to `path` atomically, with any companion files: all of
    them or none, with ordinary permissions."""
    if target.name in _WRITES_COMPANIONS:
        write_atomic_with_companions(
            path, lambda staged: target.emit(network, options, artifact=staged))
    else:
        write_atomic(path, target.emit(network, options, artifact=path))


def build_options(args: argparse.Namespace, source_path: str) -> BuildOptions:
    weights = getattr(args, "weights", None)
    seed = getattr(args, "seed", 0)  # a non-negative int64 by its argparse type (seed_int)
    return BuildOptions(
        source_path=source_path,
        weights=Path(weights) if weights else None,
        seed=seed,
        opset=args.opset if args.opset is not None else DEFAULT_OPSET,
        opt_level=args.opt_level,
        device=args.device,
        kernels=getattr(args, "kernels", None) or "auto",
    )
