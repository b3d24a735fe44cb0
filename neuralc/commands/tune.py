"""`neuralc tune MODEL (--data DATA | --synthetic N) [--target pytorch|tensorflow] [--trials N]
[--timeout S] [--storage URL] [--study-name NAME] [--metrics-json FILE] [-o resolved.neural]
[--epochs N] [--batch-size N] [--device D] [--network NAME] [--seed N] [-O N]`.

Searches every `HPO(...)` of the model with Optuna (train { search_method, num_trials }), each
trial training the network through its built artifact as `neuralc run` does, and writes the
model with the best values in place of the HPO expressions: a file `neuralc build` takes as is.
With `--network NAME` only that network is tuned and checked: an error in another network of the
file does not block it (the resolved file keeps the others as they were).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neuralc.commands.common import (
    Sources,
    for_network,
    load_for_network,
    positive_int,
    positive_seconds,
    print_diagnostics,
    write_atomic,
)
from neuralc.commands.run import add_training_arguments, load_data


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a .neural file with HPO(...) expressions")
    add_training_arguments(parser)
    add_study_arguments(parser)
    parser.add_argument("--metrics-json", help="write all trials, the best params and value")
    parser.add_argument(
        "-o", "--output", help="the resolved model (default: ./<model stem>.resolved.neural)"
    )


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    """The study options `tune` and `build --hpo` share."""
    parser.add_argument(
        "--trials",
        type=positive_int,
        help="number of trials (default: train { num_trials }, else 10)",
    )
    parser.add_argument(
        "--timeout", type=positive_seconds, help="stop starting trials after S seconds"
    )
    parser.add_argument(
        "--storage",
        help="an Optuna RDB URL such as sqlite:///study.db, so "
        "that several processes can work on one study",
    )
    parser.add_argument("--study-name", help="the study's name (default: the network's)")


def make_data(data_path: str | None, synthetic_n: int | None) -> Callable[[dict[str, Any]], Any]:
    """The data of every trial: `--data` read once, or `--synthetic N` samples drawn once (with
    the first trial's `train { seed }`), prepared for each trial's config."""
    cache: dict[str, Any] = {}

    def data(config: dict[str, Any]) -> Any:
        from neuralc.train.data import prepare, read_arrays, synthetic

        if synthetic_n is None:
            arrays = cache.setdefault("arrays", read_arrays(data_path))
            return prepare(arrays, config, data_path)
        arrays = cache.setdefault(
            "arrays", synthetic(config, synthetic_n, int(config["train"]["seed"]))
        )
        return prepare(arrays, config, f"synthetic data ({synthetic_n} samples)")

    return data


def check_outputs(model: str, *outputs: str | None) -> None:
    """Refuse, before any trial runs, an output that cannot be written (fileio's check: a
    directory, a file in the way of its folder) or that is the model itself (the resolved file
    would replace the `HPO(...)` source the study searched)."""
    from neuralc.diagnostics import error
    from neuralc.fileio import check_output_path

    for output in filter(None, outputs):
        check_output_path(output)
        if Path(output).exists() and Path(output).samefile(model):
            raise error(
                f"'{output}' is the model itself: writing it would replace its HPO(...) "
                "expressions",
                None,
                "write the resolved model to another file",
            )


def run_study(
    program: Any, settings: Any, data_path: str | None, synthetic_n: int | None
) -> Any:
    """Run the Optuna study of `program` (a `neuralc.train.hpo.TuneResult`); `settings` is a
    `TuneSettings` whose `work_dir` is replaced by a temporary directory. `neuralc tune` and
    `neuralc build --hpo` share it."""
    from neuralc.train.hpo import tune

    with tempfile.TemporaryDirectory(prefix="neuralc-tune-") as work:
        settings.work_dir = Path(work)
        return tune(program, settings, make_data(data_path, synthetic_n))


def run(args: argparse.Namespace, sources: Sources) -> int:
    from neuralc.commands.build import check_device_option
    from neuralc.frontend.check import check_program
    from neuralc.frontend.parser import parse_text
    from neuralc.train.hpo import TuneSettings, trial_rows
    from neuralc.train.report import print_trials, write_metrics

    # With --network only that network is tuned and checked, as `build --hpo` does.
    program = load_for_network(args.model, sources, args.network)
    if args.device is not None:
        check_device_option(args.device)
    output = (
        Path(args.output) if args.output else Path(Path(program.path).stem + ".resolved.neural")
    )
    check_outputs(args.model, str(output), args.metrics_json)
    # --trials, --epochs and --batch-size are positive by their argparse type (positive_int).
    overrides = {
        k: getattr(args, k) for k in ("epochs", "batch_size") if getattr(args, k) is not None
    }
    result = run_study(
        program,
        TuneSettings(
            target=args.target,
            trials=args.trials,
            timeout=args.timeout,
            storage=args.storage,
            study_name=args.study_name,
            network=args.network,
            seed=args.seed,
            device=args.device,
            opt_level=args.opt_level,
            overrides=overrides,
        ),
        args.data,
        args.synthetic,
    )
    # The resolved file must stand on its own: check it (the tuned network, with --network)
    # before writing it.
    sources.add(str(output), result.resolved)
    resolved = check_program(for_network(parse_text(result.resolved, str(output)), args.network))
    print_diagnostics(resolved.warnings, sources)
    write_atomic(output, result.resolved)
    rows = trial_rows(result.study)
    names = [hp.name for hp in result.space]
    best_trial = min((r for r in rows if r["value"] is not None), key=lambda r: r["value"])
    print_trials(rows, names, best_trial["number"])
    if args.metrics_json:
        write_metrics(
            args.metrics_json,
            {
                "study": result.study.study_name,
                "storage": args.storage,
                "direction": "minimize",
                "search_method": result.method,
                "target": args.target,
                "best_value": best_trial["value"],
                "best_trial": best_trial["number"],
                "best_params": best_trial["params"],
                "resolved": {
                    f"{loc.line}:{loc.column}": value for loc, value in result.best.items()
                },
                "resolved_file": str(output),
                "trials": rows,
            },
        )
    print(output)
    return 0


__all__ = ["add_arguments", "check_outputs", "load_data", "make_data", "run", "run_study"]
