"""`neuralc init MODEL --seed N -o W.safetensors [--network NAME]`: initial weights.

Writes the framework-neutral weight file (safetensors, float32, PyTorch layouts; see
docs/weights.md) with PyTorch's default initialization, deterministic in the seed and in each
weight's name. The write is atomic.
"""

from __future__ import annotations

import argparse

from neuralc.commands.build import compile_network
from neuralc.commands.common import Sources, seed_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a .neural file")
    parser.add_argument("--seed", type=seed_int, default=0, help="random seed (default 0)")
    parser.add_argument("-o", "--output", required=True, help="the .safetensors file to write")
    parser.add_argument("--network", help="the network (required when the file defines several)")


def run(args: argparse.Namespace, sources: Sources) -> int:
    from neuralc.lower.weights import init_weights, save_weights

    args.device = None
    network, _ = compile_network(args, sources)
    save_weights(args.output, init_weights(network, args.seed))
    print(args.output)
    return 0
