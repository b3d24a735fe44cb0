"""The emitted PyTorch module's training command line: `python model.py --data D [--epochs N]
[--batch-size N] [--device D] [--weights W] [--output-dir DIR] [--metrics-json F] [--resume]`
(`train_main`); inference (`predict_main`) is `predict_cli`, shared with the Keras module.

Standalone (standard library, numpy, torch and safetensors; the other template modules'
names): `neuralc.lower.train_template` inlines it into the emitted module, so a data file that
does not fit, a weight file that does not load, a device the machine lacks or an output it
cannot write is an `error: ...` line and exit status 1 (bad option values: argparse's exit 2),
never a traceback; output paths are checked before training. `neuralc run` checks the same
things with source locations. The trained weights are written through a temporary file and a
rename.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import nn

from neuralc.lower.predict_cli import PredictError, build_or_fail, fail
from neuralc.lower.train_core import TrainingError, checkpoint_location, print_table, write_json
from neuralc.lower.train_data import DataError, load_arrays, select_arrays
from neuralc.lower.train_torch import train


def count(text: str) -> int:
    """An --epochs/--batch-size value: an integer from 1 (as `neuralc run` takes), else a usage
    error; 0 or a negative count once trained nothing and reported success."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if not 1 <= value <= 2**63 - 1:
        raise argparse.ArgumentTypeError(f"must be an integer from 1 to 2**63 - 1, got {text}")
    return value


def prepare_outputs(output_dir: str, metrics_json: str | None) -> None:
    """Refuse output paths that cannot be written before training, not after it."""
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise PredictError(f"--output-dir '{output_dir}' is a file, not a directory")
    if metrics_json and os.path.isdir(metrics_json):
        raise PredictError(f"--metrics-json '{metrics_json}' is a directory")
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as exc:
        raise PredictError(f"cannot create '{output_dir}': {exc.strerror or exc}") from None


def save_weights(model: nn.Module, path: str) -> None:
    from safetensors.torch import save_file

    tmp = f"{path}.tmp{os.getpid()}"
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise PredictError(f"cannot write '{path}': {exc.strerror or exc}") from None


def train_main(
    build_model: Callable[..., nn.Module],
    config: Mapping[str, Any],
    argv: Sequence[str] | None = None,
) -> None:
    """Train, then write the trained weights (neuralc's weight file) to
    DIR/weights.safetensors."""
    parser = argparse.ArgumentParser(description="Train the model (its train { } block).")
    parser.add_argument("--data", required=True, help=".npz with x, y (x_val, y_val) or a folder")
    parser.add_argument("--epochs", type=count)
    parser.add_argument("--batch-size", type=count)
    parser.add_argument("--device", help='"cpu", "cuda", "cuda:N"; default: the model\'s')
    parser.add_argument("--weights", help="initial weights (neuralc's safetensors file)")
    parser.add_argument("--output-dir", default=".", help="weights, checkpoints (default .)")
    parser.add_argument("--metrics-json", help="write per-epoch losses and metrics here")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    args = parser.parse_args(argv)
    cfg = json.loads(json.dumps(config))
    if args.epochs is not None:
        cfg["train"]["epochs"] = args.epochs
    if args.batch_size is not None:
        cfg["train"]["batch_size"] = args.batch_size
    path, note = checkpoint_location(cfg["train"].get("checkpoint_path"), args.output_dir)
    if note:
        print(f"note: {note}", file=sys.stderr)
    try:
        data = select_arrays(load_arrays(args.data), cfg)
        prepare_outputs(args.output_dir, args.metrics_json)
        model = build_or_fail(build_model, args.weights, args.device)
        record = train(
            model,
            cfg,
            data,
            checkpoint=path,
            resume=args.resume,
            save_every_epoch=bool(cfg["train"].get("checkpoint_path")),
        )
        print_table(record["epochs"])
        out = os.path.join(args.output_dir, "weights.safetensors")
        save_weights(model, out)
        if args.metrics_json:
            try:
                write_json(args.metrics_json, record)
            except OSError as exc:
                raise PredictError(
                    f"cannot write '{args.metrics_json}': {exc.strerror or exc}"
                ) from None
    except (DataError, TrainingError, PredictError) as exc:
        fail(exc)
    print(out)
