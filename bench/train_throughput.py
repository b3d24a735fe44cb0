"""Benchmark: training throughput of `neuralc run` against the migration guide's hand-written
PyTorch loop, on the same model, data and initial weights, in one process.

For each model, every round runs, one after the other (so that machine load hits all alike):

* `neuralc run MODEL --data D.npz --epochs E` in-process (build, import the artifact, train with
  `neuralc.lower.train_torch`); its per-epoch `time_s` from the metrics JSON;
* the guide's loop ("Training Loop Migration / PyTorch": zero_grad, forward, criterion,
  backward, step) over `DataLoader(TensorDataset(x, y), batch_size, shuffle=True)`, on the
  module `neuralc run` wrote, built from the same initial weights;
* the same loop over a per-epoch `torch.randperm` with tensor indexing instead of a DataLoader
  (the fastest hand-written variant, and the stricter baseline).

Throughput is samples/s over the median epoch, the first epoch of each run excluded (warm-up).
Goal (issue 6): neuralc ≥ 0.95× the hand-written loop on the CPU.

Run: `.venv/bin/python bench/train_throughput.py [--models mlp transformer] [--epochs 4]
[--rounds 3] [--threads N] [--device cuda] [-O 2]`. With `--device cuda` both loops train on
the GPU: `neuralc run --device cuda` (its data staged on the GPU), the guide loop with the
model built on the GPU, the tensor-indexing variant indexing GPU-resident data and the
DataLoader variant moving each CPU batch with `.to(device)`; each epoch ends with a
`torch.cuda.synchronize()`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

MODELS: dict[str, dict[str, object]] = {
    "mlp": {
        "text": """network Mlp {
  input: (784,)
  layers:
    Dense(256, activation="relu")
    Dense(256, activation="relu")
    Output(10, activation="softmax")
  loss: "sparse_categorical_crossentropy"
  optimizer: Adam(learning_rate=0.001)
  train {
    epochs: 4
    batch_size: 64
  }
}
""",
        "shape": (784,),
        "n": 8192,
        "batch": 64,
    },
    "transformer": {
        "text": """network TinyTransformer {
  input: (32, 64)
  layers:
    TransformerEncoder(num_heads=4, d_model=64, dff=128) * 2
    GlobalAveragePooling1D()
    Output(10, activation="softmax")
  loss: "sparse_categorical_crossentropy"
  optimizer: Adam(learning_rate=0.001)
  train {
    epochs: 4
    batch_size: 32
  }
}
""",
        "shape": (32, 64),
        "n": 2048,
        "batch": 32,
    },
}


def make_data(shape: tuple[int, ...], n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *shape)).astype(np.float32)
    teacher = rng.standard_normal((int(np.prod(shape)), 10))
    return x, (x.reshape(n, -1) @ teacher).argmax(-1).astype(np.int64)


def neuralc_run(
    model: Path, data: Path, out: Path, epochs: int, device: str, opt: str | None
) -> tuple[list[float], float]:
    from neuralc.cli import main

    from_json = out / "m.json"
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(
            [
                "run",
                str(model),
                "--data",
                str(data),
                "--epochs",
                str(epochs),
                "--output-dir",
                str(out),
                "--metrics-json",
                str(from_json),
                "--device",
                device,
                *(["-O", opt] if opt else []),
            ]
        )
    wall = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"neuralc run failed with status {code}")
    import json

    epochs_log = json.loads(from_json.read_text())["epochs"]
    return [float(e["time_s"]) for e in epochs_log], wall


def loader_batches(
    x: torch.Tensor, y: torch.Tensor, batch: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    from torch.utils.data import DataLoader, TensorDataset

    yield from DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True)


def tensor_batches(
    x: torch.Tensor, y: torch.Tensor, batch: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    order = torch.randperm(x.shape[0], device=x.device)
    for i in range(0, x.shape[0], batch):
        index = order[i : i + batch]
        yield x[index], y[index]


def guide_loop(
    artifact: Path,
    weights: Path,
    x: np.ndarray,
    y: np.ndarray,
    batch: int,
    epochs: int,
    batches: Callable[..., Iterator[tuple[torch.Tensor, torch.Tensor]]],
    device: str = "cpu",
) -> list[float]:
    """The migration guide's PyTorch training loop, verbatim but for the batch unpacking (and,
    on CUDA, the `.to(device)` of each batch and a synchronize at the end of each epoch)."""
    from neuralc.lower.pytorch import import_artifact

    model = import_artifact(artifact).build_model(str(weights), device)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    criterion = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    if batches is tensor_batches:  # data resident on the device, as `neuralc run` stages it
        xt, yt = xt.to(device), yt.to(device)
    cuda = torch.device(device).type == "cuda"
    times = []
    for _epoch in range(epochs):
        start = time.perf_counter()
        model.train()
        for inputs, labels in batches(xt, yt, batch):
            inputs, labels = inputs.to(device), labels.to(device)
            optimizer.zero_grad()
            outputs = model(inputs)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def bench(
    name: str, epochs: int, rounds: int, work: Path, device: str = "cpu", opt: str | None = None
) -> dict[str, object]:
    spec = MODELS[name]
    model = work / f"{name}.neural"
    model.write_text(str(spec["text"]))
    x, y = make_data(spec["shape"], int(spec["n"]))  # type: ignore[arg-type]
    data = work / f"{name}.npz"
    np.savez(data, x=x, y=y)
    batch = int(spec["batch"])  # type: ignore[call-overload]
    samples: dict[str, list[float]] = {
        "neuralc run": [],
        "guide loop (DataLoader)": [],
        "guide loop (tensor indexing)": [],
    }
    walls = []
    for r in range(rounds):
        out = work / f"{name}-run{r}"
        times, wall = neuralc_run(model, data, out, epochs, device, opt)
        samples["neuralc run"] += times[1:]
        walls.append(wall)
        artifact = next(out.glob("*_pytorch.py"))
        weights = out / "initial.safetensors"
        samples["guide loop (DataLoader)"] += guide_loop(
            artifact, weights, x, y, batch, epochs, loader_batches, device
        )[1:]
        samples["guide loop (tensor indexing)"] += guide_loop(
            artifact, weights, x, y, batch, epochs, tensor_batches, device
        )[1:]
    n = int(spec["n"])  # type: ignore[call-overload]
    rates = {k: n / statistics.median(v) for k, v in samples.items()}
    return {
        "model": name,
        "rates": rates,
        "wall": statistics.median(walls),
        "epochs": epochs,
        "n": n,
        "batch": batch,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--device", default="cpu", help='"cpu" (default) or "cuda"')
    parser.add_argument("-O", dest="opt", choices="0123", help="neuralc run's -O (default: its own)")
    args = parser.parse_args()
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        print("train_throughput --device cuda: no CUDA device visible; nothing to measure")
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, python "
        f"{sys.version.split()[0]}, device {args.device}, -O {args.opt or 'default'}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            result = bench(name, args.epochs, args.rounds, Path(tmp), args.device, args.opt)
            rates = result["rates"]
            print(
                f"\n{name}: {result['n']} samples, batch {result['batch']}, "
                f"{args.rounds} rounds x {args.epochs} epochs (first epoch of each run "
                f"excluded); neuralc run end to end (build + import + train): "
                f"{result['wall']:.2f} s median"
            )
            print("| loop | samples/s | neuralc / loop |")
            print("| --- | ---: | ---: |")
            ours = rates["neuralc run"]  # type: ignore[index]
            for key, rate in rates.items():  # type: ignore[attr-defined]
                ratio = "" if key == "neuralc run" else f"{ours / rate:.3f}"
                print(f"| {key} | {rate:,.0f} | {ratio} |")


if __name__ == "__main__":
    main()
