"""Benchmark: neuralc's ONNX emitter vs `torch.onnx.export` of the generated PyTorch module.

The model is the seed transformer (`shared/conformance/seed/transformer_pt.neural`) scaled to a
2-core machine: 4 post-norm encoder layers, d_model 256, 8 heads, dff 1024, sequence 128, batch
8, then GlobalAveragePooling1D and Output(10, softmax). neuralc builds it twice: `-O0` (the nn
IR, layer by layer) and `-O2` (the kernel IR after lowering and fusion: `kernel.attention`,
`kernel.ffn`, `kernel.add_layernorm`); below opset 23 the -O2 attention is ONNX Runtime's
`com.microsoft.MultiHeadAttention`, and `-O2 --kernels torch` (the portable decomposition) is
measured too. All models get the same weights (`init_weights(seed=0)`) and run in ONNX Runtime
on the CPU with the same SessionOptions (all graph optimizations, 2 intra-op threads,
sequential execution); runs alternate between the sessions, and the table shows the median (and
the 10th/90th percentiles) after warm-up.

    .venv/bin/python bench/onnx_vs_export.py [--runs 50] [--warmup 10] [--batch 8] [--opset 18]

The exporter is `torch.onnx.export(..., dynamo=True)` with a dynamic batch dimension (as
neuralc's model has); if that fails the legacy TorchScript exporter is used and the output says
so.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PROGRAM = """\
network TransformerModel {
  input: (128, 256)
  layers:
    TransformerEncoder(num_heads=8, d_model=256, dff=1024) * 4
    GlobalAveragePooling1D()
    Output(10, activation="softmax")

  loss: "cross_entropy"
  optimizer: Adam(learning_rate=0.0001)
}
"""


def build_network() -> Any:
    from neuralc.frontend.check import check_program
    from neuralc.frontend.parser import parse_text

    return check_program(parse_text(PROGRAM, "bench_transformer.neural")).networks[0].network


def optimized_network(level: int) -> Any:
    """The network after the `-O<level>` pipeline (as `neuralc build -O<level>` runs it)."""
    from neuralc.frontend.check import check_program
    from neuralc.frontend.parser import parse_text
    from neuralc.passes.base import PassContext
    from neuralc.passes.manager import PassManager
    from neuralc.passes.presets import pipeline_for_level

    module = check_program(parse_text(PROGRAM, "bench_transformer.neural")).module
    PassManager(pipeline_for_level(level), PassContext(opt_level=level)).run(module)
    return module.networks[0]


def torch_module(network: Any, weights: Path, tmp: Path) -> tuple[Any, str]:
    """The generated PyTorch module with the weights (and where it came from)."""
    from neuralc.lower.target import BuildOptions

    try:
        from neuralc.lower.pytorch import TARGET, import_artifact

        artifact = tmp / "model.py"
        artifact.write_bytes(
            TARGET.emit(network, BuildOptions("bench_transformer.neural", weights=weights))
        )
        module = import_artifact(artifact)
        return module.build_model(str(weights), "cpu").eval(), "neuralc.lower.pytorch"
    except Exception as exc:  # noqa: BLE001 - fall back to the same layers built by hand
        print(f"the PyTorch backend failed ({type(exc).__name__}: {exc}); using torch.nn")
    return _hand_built(weights), "torch.nn, built by hand (PyTorch backend unavailable)"


def _hand_built(weights: Path) -> Any:
    import torch
    from safetensors.torch import load_file

    class Model(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer_encoder = torch.nn.ModuleList(
                torch.nn.TransformerEncoderLayer(256, 8, 1024, batch_first=True) for _ in range(4)
            )
            self.output = torch.nn.Linear(256, 10)

        def forward(self, x: Any) -> Any:
            for layer in self.transformer_encoder:
                x = layer(x)
            return torch.softmax(self.output(x.mean(dim=1)), dim=-1)

    model = Model()
    model.load_state_dict(load_file(str(weights)))
    return model.eval()


def export(model: Any, x: np.ndarray, opset: int) -> tuple[bytes, str]:
    import torch

    sample = (torch.from_numpy(x),)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model,
                sample,
                dynamo=True,
                opset_version=opset,
                input_names=["input"],
                output_names=["output"],
                dynamic_shapes=({0: torch.export.Dim("N")},),
                verbose=False,
            )
        return program.model_proto.SerializeToString(), "torch.onnx.export(dynamo=True)"
    except Exception as exc:  # noqa: BLE001 - report and fall back
        print(f"dynamo export failed ({type(exc).__name__}: {exc}); using the legacy exporter")
    buffer = io.BytesIO()
    torch.onnx.export(
        model,
        sample,
        buffer,
        dynamo=False,
        opset_version=opset,
        input_names=["input"],
        output_names=["output"],
        dynamic_axes={"input": {0: "N"}, "output": {0: "N"}},
    )
    return buffer.getvalue(), "torch.onnx.export(dynamo=False) [legacy fallback]"


def session(model: bytes, threads: int, spin: bool, optimized: Path | None = None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    if optimized is not None:
        options.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def optimized_nodes(model: bytes, threads: int) -> int:
    """Node count of the graph ONNX Runtime runs (after its fusions)."""
    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "optimized.onnx"
        session(model, threads, False, path)
        return len(onnx.load(str(path)).graph.node)


def profile(model: bytes, threads: int, feed: dict[str, np.ndarray], runs: int = 10) -> str:
    """ONNX Runtime's own per-op-type kernel time (ms per run) over `runs` profiled runs."""
    import json
    from collections import Counter

    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        options.profile_file_prefix = str(Path(tmp) / "profile")
        sess = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        for _ in range(runs + 2):
            sess.run(None, feed)
        events = json.loads(Path(sess.end_profiling()).read_text())
    totals: Counter[str] = Counter()
    for event in events[len(events) // (runs + 2) * 2 :]:  # skip about two warm-up runs
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            totals[event["args"]["op_name"]] += event["dur"]
    return ", ".join(f"{op} {us / runs / 1e3:.2f}" for op, us in totals.most_common())


def timed(run: Callable[[], Any]) -> tuple[float, float]:
    """(wall ms, process CPU ms) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return (time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3


def stats(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=10)
    return statistics.median(values), q[0], q[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--opset", type=int, default=18)
    parser.add_argument(
        "--spin",
        action="store_true",
        help="let ONNX Runtime's intra-op threads spin-wait (its default; off here because "
        "spinning threads on a shared 2-core machine make the timings erratic)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also print ONNX Runtime's per-op-type kernel times (ms per run) for each model",
    )
    args = parser.parse_args()

    import onnx
    import onnxruntime as ort
    import torch

    from neuralc.lower.onnx import TARGET
    from neuralc.lower.target import BuildOptions
    from neuralc.lower.weights import init_weights, save_weights

    torch.set_num_threads(args.threads)
    network = build_network()
    x = np.random.default_rng(0).normal(size=(args.batch, 128, 256)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        weights = tmp / "weights.safetensors"
        save_weights(weights, init_weights(network, seed=0))
        start = time.perf_counter()
        ours = TARGET.emit(
            network, BuildOptions("bench_transformer.neural", weights=weights, opset=args.opset)
        )
        ours_s = time.perf_counter() - start
        start = time.perf_counter()
        kernel_ir = optimized_network(2)
        o2: dict[str, bytes] = {}
        for kernels in ("auto", "torch"):
            o2[kernels] = TARGET.emit(
                kernel_ir,
                BuildOptions(
                    "bench_transformer.neural",
                    weights=weights,
                    opset=args.opset,
                    opt_level=2,
                    kernels=kernels,
                ),
            )
        o2_s = (time.perf_counter() - start) / 2
        module, origin = torch_module(network, weights, tmp)
        start = time.perf_counter()
        theirs, how = export(module, x, args.opset)
        theirs_s = time.perf_counter() - start
        with torch.no_grad():
            eager = module(torch.from_numpy(x)).numpy()

    models = {"neuralc": ours, "O2": o2["auto"], "O2-portable": o2["torch"], "export": theirs}
    if args.opset >= 23:  # both -O2 builds use ONNX's Attention op
        del models["O2-portable"]
    sessions = {name: session(m, args.threads, args.spin) for name, m in models.items()}
    feeds = {name: {s.get_inputs()[0].name: x} for name, s in sessions.items()}
    outputs = {name: s.run(None, feeds[name])[0] for name, s in sessions.items()}
    diffs = {
        name: float(np.max(np.abs(out - outputs["export"])))
        for name, out in outputs.items()
        if name != "export"
    }
    diff = max(diffs.values())
    diff_eager = float(np.max(np.abs(outputs["neuralc"] - eager)))
    for name, s in sessions.items():
        for _ in range(args.warmup):
            s.run(None, feeds[name])
    wall: dict[str, list[float]] = {name: [] for name in sessions}
    cpu: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(args.runs):  # alternate, so both see the same machine load
        for name, s in sessions.items():
            w, c = timed(lambda s=s, name=name: s.run(None, feeds[name]))
            wall[name].append(w)
            cpu[name].append(c)

    nodes = {name: len(onnx.load_from_string(m).graph.node) for name, m in models.items()}
    fused = {name: optimized_nodes(m, args.threads) for name, m in models.items()}
    print(
        f"model: 4 x TransformerEncoder(d_model=256, heads=8, dff=1024), sequence 128, "
        f"batch {args.batch}; opset {args.opset}"
    )
    print(
        f"onnxruntime {ort.__version__}, torch {torch.__version__}, onnx {onnx.__version__}; "
        f"{platform.machine()}, {os.cpu_count()} CPUs, intra-op threads {args.threads}, "
        f"spinning {'on' if args.spin else 'off'}; {args.runs} runs after {args.warmup} warm-up"
    )
    print(f"PyTorch module: {origin}; exporter: {how}")
    print(
        f"build time: neuralc emit {ours_s:.2f} s (-O0), {o2_s:.2f} s (-O2 pipeline and emit); "
        f"export {theirs_s:.2f} s"
    )
    print(
        "max |neuralc - export| = "
        + ", ".join(f"{diffs[name]:.2e} ({LABELS[name]})" for name in diffs)
        + f"; max |neuralc -O0 - torch eager| = {diff_eager:.2e}"
    )
    print()
    print(
        "| model | nodes | nodes after ORT fusions | median ms | p10 ms | p90 ms | median CPU ms |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in models:
        med, p10, p90 = stats(wall[name])
        print(
            f"| {LABELS[name]} | {nodes[name]} | {fused[name]} | {med:.2f} | {p10:.2f} | "
            f"{p90:.2f} | {statistics.median(cpu[name]):.2f} |"
        )
    print()
    for name in models:
        if name == "export":
            continue
        ratio = stats(wall[name])[0] / stats(wall["export"])[0]
        ratio_cpu = statistics.median(cpu[name]) / statistics.median(cpu["export"])
        print(
            f"ratio {LABELS[name]} / export: {ratio:.3f} (median wall), {ratio_cpu:.3f} "
            "(median CPU)"
        )
    if args.profile:
        print()
        for name, model in models.items():
            print(f"profile {LABELS[name]}: {profile(model, args.threads, feeds[name])}")
    if diff > 1e-4:
        print("WARNING: the models' outputs differ by more than 1e-4")
        sys.exit(1)


LABELS = {
    "neuralc": "neuralc -O0 .onnx",
    "O2": "neuralc -O2 .onnx",
    "O2-portable": "neuralc -O2 --kernels torch .onnx",
    "export": "torch.onnx.export",
}


if __name__ == "__main__":
    main()
