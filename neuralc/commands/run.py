"""`neuralc run MODEL (--data DATA | --synthetic N) [--target pytorch|tensorflow] [-O N]
[--epochs N] [--batch-size N] [--device D] [--output-dir DIR] [--metrics-json FILE] [--resume]
[--network NAME] [--seed N] [--weights W]`.

Builds the network's artifact exactly as `neuralc build` does, writes it to the output directory
(default `runs/<model stem>`) and runs its `train { }` block: the artifact's model, the training
loop of `neuralc.lower.train_torch` / `train_keras`. The output directory receives the artifact,
`initial.safetensors`, the trained weights, `metrics.json` and checkpoints.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from neuralc.commands.common import Sources, positive_int, print_diagnostics, seed_int
from neuralc.diagnostics import Diagnostic, error

TARGETS = ("pytorch", "tensorflow")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a .neural file")
    add_training_arguments(parser)
    parser.add_argument(
        "--output-dir",
        help="where the artifact, weights, metrics and checkpoints go (default: runs/<model stem>)",
    )
    parser.add_argument(
        "--metrics-json",
        help="also write per-epoch train_loss, val_loss, metrics and per-step lr here",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from the checkpoint (weights, optimizer state, epoch)",
    )
    parser.add_argument(
        "--weights",
        help="initial weights (a neuralc safetensors file); "
        "default: `neuralc init`'s values for --seed",
    )


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """The options `run` and `tune` share."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--data", help=".npz with x, y (optionally x_val, y_val), or a folder of .npy files"
    )
    source.add_argument(
        "--synthetic",
        type=positive_int,
        metavar="N",
        help="train on N random samples of the right shapes (a smoke run)",
    )
    parser.add_argument(
        "--target",
        choices=TARGETS,
        default="pytorch",
        help="the framework that trains (default pytorch)",
    )
    parser.add_argument(
        "-O",
        dest="opt_level",
        type=int,
        choices=(0, 1, 2, 3),
        default=0,
        help="optimization level of the build",
    )
    parser.add_argument("--network", help="the network to train (when the file has several)")
    # Checked here (1 to 2**63 - 1), so a bad count is a usage error before anything is built.
    parser.add_argument(
        "--epochs", type=positive_int, metavar="N", help="override train { epochs }"
    )
    parser.add_argument(
        "--batch-size", type=positive_int, metavar="N", help="override train { batch_size }"
    )
    parser.add_argument(
        "--device",
        help='train on this device ("cpu", "cuda", "cuda:N", '
        '"gpu", "auto"), overriding the model\'s placement',
    )
    parser.add_argument(
        "--seed",
        type=seed_int,
        help="seed of the initial weights, shuffling and "
        "synthetic data (default: train { seed }, else 0)",
    )


def configure(network: Any, args: argparse.Namespace, sources: Sources) -> dict[str, Any]:
    """`training_config(network)` with the command line's overrides; notes are printed."""
    from neuralc.lower.training import training_config

    notes: list[str] = []
    config = training_config(network, notes)
    print_diagnostics([Diagnostic(n, None, "note") for n in notes], sources)
    train = config["train"]
    for key in ("epochs", "batch_size"):  # positive int64s by their argparse type
        value = getattr(args, key)
        if value is not None:
            train[key] = value
    if args.seed is not None:  # a non-negative int64 by its argparse type (seed_int)
        train["seed"] = args.seed
    return config


def load_data(args: argparse.Namespace, config: dict[str, Any]) -> Any:
    from neuralc.train.data import prepare, read_arrays, synthetic

    if args.synthetic is not None:
        arrays = synthetic(config, args.synthetic, int(config["train"]["seed"]))
        return prepare(arrays, config, f"synthetic data ({args.synthetic} samples)")
    return prepare(read_arrays(args.data), config, args.data)


def run(args: argparse.Namespace, sources: Sources) -> int:
    from neuralc.commands.build import compile_network
    from neuralc.commands.predict import check_dynamic_sizes
    from neuralc.fileio import ensure_dir
    from neuralc.lower.train_core import checkpoint_location
    from neuralc.lower.weights import load_checked_weights
    from neuralc.train.report import print_run, write_metrics
    from neuralc.train.runner import TrainJob, run_training

    network, path = compile_network(args, sources)
    config = configure(network, args, sources)
    if args.weights:
        # Names and shapes checked as `predict` checks them, before any data is read or
        # anything is built: a missing file or another model's weights is a diagnostic.
        load_checked_weights(network, args.weights)
    data = load_data(args, config)
    for arrays in filter(None, (data.xs, data.xs_val)):
        # Samples too short for a window of a network with dynamic sizes: the layer's
        # diagnostic, as `predict` gives it, not the framework's error mid-epoch.
        check_dynamic_sizes(network, dict(zip([v.name for v in network.inputs], arrays,
                                              strict=True)))
    out_dir = Path(args.output_dir) if args.output_dir else Path("runs") / Path(path).stem
    checkpoint, note = checkpoint_location(config["train"].get("checkpoint_path"), str(out_dir))
    if note:
        print_diagnostics([Diagnostic(note, None, "note")], sources)
    if args.resume and not Path(checkpoint).exists():
        raise error(
            f"cannot resume: no checkpoint at {checkpoint}",
            None,
            "a checkpoint is written each epoch when train { checkpoint_path } is set, "
            "and on Ctrl-C",
        )
    # A file in the way, or no permission, said now rather than as an OSError mid-run.
    ensure_dir(out_dir, writable=True)
    job = TrainJob(
        network,
        config,
        path,
        args.target,
        out_dir,
        seed=int(config["train"]["seed"]),
        opt_level=args.opt_level,
        device=args.device,
        weights=Path(args.weights) if args.weights else None,
        checkpoint=checkpoint,
        save_every_epoch=bool(config["train"].get("checkpoint_path")),
        resume=args.resume,
    )
    result = run_training(job, data)
    record = {**result.record, "artifact": str(result.artifact), "weights": str(result.weights)}
    write_metrics(out_dir / "metrics.json", record)
    if args.metrics_json:
        write_metrics(args.metrics_json, record)
    lines = [f"artifact: {result.artifact}", f"trained weights: {result.weights}"]
    if record.get("stopped_early"):
        lines.append(
            f"stopped early after epoch {len(record['epochs'])}; "
            + (
                f"restored the weights of epoch {record['best_epoch']}"
                if record.get("restored_best")
                else "the last epoch was the best"
            )
        )
    print_run(record, lines)
    return 0
