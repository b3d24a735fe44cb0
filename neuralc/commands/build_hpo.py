"""`neuralc build --hpo`: run `neuralc tune`'s Optuna study over the program's HPO(...)
expressions, print the best parameters, and hand the resolved program's network to the build.

With `--network NAME` only that network is tuned and checked (before the study and again in the
resolved program), as every other command's `--network` does: an error in another network of
the file does not block it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from neuralc.commands.common import (
    Sources,
    for_network,
    load_for_network,
    positive_int,
    print_diagnostics,
    write_atomic,
)
from neuralc.diagnostics import error
from neuralc.ir.core import Network

__all__ = ["add_hpo_arguments", "reject_hpo_options", "tune_network"]


def add_hpo_arguments(parser: argparse.ArgumentParser) -> None:
    """`--hpo`: tune every HPO(...) with `neuralc tune`'s study, then build the best values."""
    from neuralc.commands.tune import add_study_arguments

    group = parser.add_argument_group("hyperparameter search (--hpo)")
    group.add_argument(
        "--hpo",
        action="store_true",
        help="run the Optuna study of `neuralc tune` over the HPO(...) expressions and build "
        "the best combination (needs --data or --synthetic)",
    )
    source = group.add_mutually_exclusive_group()
    source.add_argument(
        "--data", help="--hpo's training data: .npz with x, y (optionally x_val, y_val), or a "
        "folder of .npy files"
    )
    source.add_argument(
        "--synthetic",
        type=positive_int,
        metavar="N",
        help="--hpo on N random samples (a smoke run)",
    )
    add_study_arguments(group)  # type: ignore[arg-type]
    group.add_argument("--resolved-out", help="also write the resolved model (best values) here")


_HPO_OPTIONS = ("data", "synthetic", "trials", "timeout", "storage", "study_name", "resolved_out")


def reject_hpo_options(args: argparse.Namespace) -> None:
    """Without --hpo its options would be ignored silently: refuse them instead."""
    given = [k for k in _HPO_OPTIONS if getattr(args, k, None) is not None]
    if given:
        option = "--" + given[0].replace("_", "-")
        raise error(f"{option} is an option of --hpo", None, "add --hpo to tune before building")


def tune_network(args: argparse.Namespace, sources: Sources) -> tuple[Network, str]:
    """Run `neuralc tune`'s study on the program, print the best parameters, write the resolved
    model to `--resolved-out` if asked, and return the resolved program's network (checked as
    `compile_network` checks it) and the original program's path (the artifact keeps the
    model's stem)."""
    from neuralc.commands.build import check_device_option, select_network
    from neuralc.commands.tune import check_outputs, run_study
    from neuralc.frontend.check import check_program
    from neuralc.frontend.parser import parse_text
    from neuralc.train.hpo import TuneSettings, trial_rows

    if args.data is None and args.synthetic is None:
        raise error(
            "--hpo needs training data",
            None,
            "give --data DATA (.npz or a folder of .npy files) or --synthetic N",
        )
    program = load_for_network(args.model, sources, args.network)
    if args.device is not None:
        check_device_option(args.device)
    check_outputs(args.model, args.resolved_out)
    settings = TuneSettings(
        # ONNX does not train: its study trains the PyTorch artifact of each combination.
        target=args.target if args.target in ("pytorch", "tensorflow") else "pytorch",
        trials=args.trials,
        timeout=args.timeout,
        storage=args.storage,
        study_name=args.study_name,
        network=args.network,
        device=args.device,
    )
    result = run_study(program, settings, args.data, args.synthetic)
    label = args.resolved_out or f"{program.path} (resolved)"
    sources.add(label, result.resolved)
    # The resolved text is the whole file: the other networks, untouched, are not checked.
    checked = check_program(for_network(parse_text(result.resolved, label), args.network))
    print_diagnostics(checked.warnings, sources)
    if args.resolved_out:
        write_atomic(Path(args.resolved_out), result.resolved)
    rows = [r for r in trial_rows(result.study) if r["value"] is not None]
    if rows:
        best = min(rows, key=lambda r: r["value"])
        print(f"best trial {best['number']} (value {best['value']:.6g}):")
        for name, value in best["params"].items():
            print(f"  {name} = {value!r}")
    if args.resolved_out:
        print(f"resolved model: {args.resolved_out}")
    return select_network(
        [b.network for b in checked.networks], args.network, program.path
    ), program.path
