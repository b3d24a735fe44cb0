"""Benchmark: the seed transformer (`transformer_pt.neural`: 6 x TransformerEncoder(8 heads,
d_model 768, dff 2048) on (512, 768), GlobalAveragePooling1D, Output(10, softmax)) built by
neuralc at -O2, bf16 inference on CUDA, against `torch.nn.TransformerEncoder` eager.

* neuralc: `neuralc build --target pytorch -O 2` (Triton kernels on CUDA, each launching its
  first tile configuration), `-O 3` (the same kernels autotuned) and `-O 2 --kernels torch`
  (PyTorch composites: SDPA, F.linear, F.layer_norm), in-process; weights from `neuralc init`;
  the model is imported, moved to CUDA and cast to bf16.
* baseline: `nn.TransformerEncoder(nn.TransformerEncoderLayer(768, 8, 2048,
  batch_first=True), 6)` + mean over the sequence + `nn.Linear(768, 10)` + softmax, eval mode,
  bf16, with the same weights (neuralc's `transformer_encoder.{i}.*` = torch's `layers.{i}.*`).
  Under no_grad in eval mode torch runs its fused "fast path" encoder layer.
* CUDA graph: each forward captured with the emitted `capture_cuda_graph` (the baseline too).

Correctness first: an encoder-only build (the six layers, no pooling/output) against torch's
encoder, both bf16, compared with torch's float32 encoder (error = max|a - ref| / max|ref|;
ours must be within max(2e-2, 2 x torch-bf16's)); then the whole model's outputs at every
batch size against the bf16 baseline.

Timing: `triton.testing.do_bench` medians (ms per forward), host time (ms to enqueue one
forward, from 10 back to back) and torch.profiler GPU time (summed kernel durations per
forward, with the per-kernel split at the first batch size).  `--host-profile` prints a
cProfile of the -O2 forward's host side. Goals (issue 5): -O2 <= 0.85x eager at B=32; -O2 with the CUDA
graph <= 0.5x eager at B=8.

Run from the repository root: `PYTHONPATH=. python3 bench/model_gpu.py [--batches 32 8 1]`.
Exits at once on a machine without CUDA (`--cpu-smoke` runs the script at toy sizes on the
CPU, float32, no graphs, to catch script errors; its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# /work/shared/conformance/seed/transformer_pt.neural, verbatim but for the train block.
MODEL = """network TransformerModel {
  input: (@L@, @D@)
  layers:
    TransformerEncoder(num_heads=@H@, d_model=@D@, dff=@F@) * @N@
    GlobalAveragePooling1D()
    Output(10, activation="softmax")
  loss: "cross_entropy"
  optimizer: Adam(learning_rate=0.0001)
}
"""
ENCODER = """network Encoder {
  input: (@L@, @D@)
  layers:
    TransformerEncoder(num_heads=@H@, d_model=@D@, dff=@F@) * @N@
}
"""
FULL = {"L": 512, "D": 768, "H": 8, "F": 2048, "N": 6}
SMOKE = {"L": 16, "D": 32, "H": 2, "F": 64, "N": 2}
GOAL_B32, GOAL_GRAPH_B8 = 0.85, 0.5


def text(template: str, size: dict[str, int]) -> str:
    for key, value in size.items():
        template = template.replace(f"@{key}@", str(value))
    return template


def neuralc(args: list[str]) -> None:
    from neuralc.cli import main

    with contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    if code != 0:
        raise SystemExit(f"neuralc {' '.join(args)} failed with status {code}")


def build(work: Path, name: str, source: str, *extra: str) -> ModuleType:
    from neuralc.lower.pytorch import import_artifact

    model = work / f"{name}.neural"
    model.write_text(source)
    out = work / f"{name}{'_'.join(extra)}.py"
    neuralc(["build", str(model), "--target", "pytorch", "-O", "2", *extra, "-o", str(out)])
    return import_artifact(out)


class TorchModel(nn.Module):
    def __init__(self, size: dict[str, int], head: bool = True) -> None:
        super().__init__()
        d = size["D"]
        layer = nn.TransformerEncoderLayer(d, size["H"], size["F"], dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, size["N"], enable_nested_tensor=False)
        self.output = nn.Linear(d, 10) if head else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.encoder(x)
        if self.output is None:
            return y
        return torch.softmax(self.output(y.mean(dim=1)), dim=-1)


def torch_state(weights: dict[str, torch.Tensor], head: bool) -> dict[str, torch.Tensor]:
    state = {}
    for key, value in weights.items():
        if key.startswith("transformer_encoder."):
            state["encoder.layers." + key.removeprefix("transformer_encoder.")] = value
        elif head:
            state[key] = value
    return state


def rel_err(a: torch.Tensor, ref: torch.Tensor) -> float:
    return ((a.float() - ref.float()).abs().max() / ref.float().abs().max()).item()


def do_bench(fn: Callable[[], object], device: str) -> float:
    if device == "cpu":
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3
    import triton.testing

    return float(triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median"))


def gpu_time(
    fn: Callable[[], object], device: str, iters: int = 5
) -> tuple[float, dict[str, float]]:
    """Summed duration of the GPU kernels of one call (torch.profiler), in ms, and the
    per-kernel split (µs per call)."""
    if device == "cpu":
        return math.nan, {}
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    try:
        fn()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(iters):
                fn()
            torch.cuda.synchronize()
        per_kernel: dict[str, float] = {}
        for evt in prof.events():
            if evt.device_type == DeviceType.CUDA:
                us = evt.time_range.elapsed_us() / iters
                per_kernel[evt.name] = per_kernel.get(evt.name, 0.0) + us
        return sum(per_kernel.values()) / 1e3, per_kernel
    except Exception as err:  # diagnostics only
        print(f"    (profiler unavailable: {type(err).__name__}: {str(err)[:100]})")
        return math.nan, {}


def host_time(fn: Callable[[], object], device: str, calls: int = 10) -> float:
    """Host-side ms per call: the time to enqueue `calls` calls back to back (the GPU runs
    behind; a call whose host time exceeds its GPU time is launch-bound)."""
    if device == "cpu":
        return math.nan
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    elapsed = time.perf_counter() - t0
    torch.cuda.synchronize()
    return elapsed / calls * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 8, 1])
    parser.add_argument("--no-graph", action="store_true", help="skip the CUDA-graph rows")
    parser.add_argument("--no-profile", action="store_true", help="skip the GPU-time column")
    parser.add_argument(
        "--host-profile", action="store_true", help="cProfile the -O2 forward at the last B"
    )
    parser.add_argument("--cpu-smoke", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cpu_smoke:
        device, dtype, size = "cpu", torch.float32, SMOKE
    elif not torch.cuda.is_available():
        print("model_gpu: no CUDA device visible; nothing to measure")
        return 0
    else:
        device, dtype, size = "cuda", torch.bfloat16, FULL
        torch.backends.cuda.matmul.allow_tf32 = False
        p = torch.cuda.get_device_properties(0)
        print(f"gpu {p.name}, torch {torch.__version__}, ", end="")
        import triton

        print(f"triton {triton.__version__}")
    graphs = device == "cuda" and not args.no_graph
    failures: list[str] = []

    from safetensors.torch import load_file

    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        work = Path(tmp)
        started = time.perf_counter()
        source = work / "transformer_pt.neural"
        source.write_text(text(MODEL, size))
        weights_path = work / "weights.safetensors"
        neuralc(["init", str(source), "-o", str(weights_path)])
        ours = build(work, "transformer_pt", text(MODEL, size))
        composite = build(work, "transformer_pt", text(MODEL, size), "--kernels", "torch")
        # -O2 launches each Triton kernel's first configuration; -O3 autotunes them (and adds
        # bf16 autocast, a no-op on this bf16 model).
        tuned = build(work, "transformer_pt", text(MODEL, size), "-O", "3")
        encoder = build(work, "encoder", text(ENCODER, size))
        print(f"built 4 artifacts + weights in {time.perf_counter() - started:.1f} s")
        weights = load_file(str(weights_path))

        def neuralc_model(module: ModuleType) -> nn.Module:
            model = module.build_model(str(weights_path), device)
            return model.to(dtype).eval()

        models: dict[str, nn.Module] = {
            "neuralc -O2": neuralc_model(ours),
            "neuralc -O2 --kernels torch": neuralc_model(composite),
            "neuralc -O3": neuralc_model(tuned),
        }
        baseline = TorchModel(size)
        baseline.load_state_dict(torch_state(weights, head=True), strict=True)
        models["torch eager"] = baseline.to(device, dtype).eval()

        # 1. Correctness: encoder outputs against float32 torch.
        ours_encoder = encoder.build_model(None, device)
        enc_weights = {k: v for k, v in weights.items() if k.startswith("transformer_encoder.")}
        ours_encoder.load_state_dict(enc_weights, strict=True)
        ours_encoder = ours_encoder.to(dtype).eval()
        reference = TorchModel(size, head=False)
        reference.load_state_dict(torch_state(weights, head=False), strict=True)
        reference = reference.to(device).eval()
        x = torch.randn(2, size["L"], size["D"], generator=torch.Generator().manual_seed(0))
        x = x.to(device)
        ref = reference(x)
        torch_err = rel_err(reference.to(dtype)(x.to(dtype)), ref)
        ours_err = rel_err(ours_encoder(x.to(dtype)), ref)
        ok = ours_err <= max(2e-2, 2 * torch_err)
        print(
            f"encoder output error vs float32 torch: neuralc -O2 {ours_err:.2e}, "
            f"torch {str(dtype).removeprefix('torch.')} {torch_err:.2e}"
            f"{'' if ok else '  FAILED'}"
        )
        if not ok:
            failures.append("encoder output")
        del ours_encoder, reference

        # 2. Timing per batch size.  Every wall-clock timing (do_bench, host) runs before the
        # first profiler session, so that no profiler state can touch those numbers.
        rows: list[tuple[str, int, float, float, float]] = []  # what, B, ms, host ms, GPU ms
        timed: list[tuple[str, int, float, float, Callable[[], object]]] = []
        for batch in args.batches:
            x = torch.randn(batch, size["L"], size["D"], generator=torch.Generator().manual_seed(1))
            x = x.to(device, dtype)
            expected = models["torch eager"](x)
            for name, model in models.items():
                out = model(x)
                err = rel_err(out, expected)
                if err > 2e-2:
                    print(f"B={batch} {name}: output error {err:.2e} against torch eager  FAILED")
                    failures.append(f"{name} B={batch}")
                calls = {name: lambda model=model, x=x: model(x)}
                if graphs:
                    try:
                        forward = ours.capture_cuda_graph(model, x)
                        err = rel_err(forward(x), out)
                        if err > 1e-2:
                            print(f"B={batch} {name} + CUDA graph: error {err:.2e}  FAILED")
                            failures.append(f"{name} + CUDA graph B={batch}")
                        calls[f"{name} + CUDA graph"] = lambda forward=forward, x=x: forward(x)
                    except Exception as err:  # report, carry on with the other rows
                        print(f"B={batch} {name}: capture failed: {type(err).__name__}: {err}")
                        failures.append(f"{name} capture B={batch}")
                for what, fn in calls.items():
                    ms = do_bench(fn, device)
                    host = host_time(fn, device)
                    timed.append((what, batch, ms, host, fn))
                    print(f"  B={batch:>2} {what}: {ms:.3f} ms (host {host:.3f} ms)", flush=True)
                del calls
        if args.host_profile:
            host_profile([fn for what, _, _, _, fn in timed if what == "neuralc -O2"][-1])
        splits: dict[tuple[str, int], dict[str, float]] = {}
        for what, batch, ms, host, fn in timed:
            gpu, split = (math.nan, {}) if args.no_profile else gpu_time(fn, device)
            splits[(what, batch)] = split
            rows.append((what, batch, ms, host, gpu))
        del timed
        if device == "cuda":
            torch.cuda.empty_cache()

    print_split(splits, args.batches[0])
    print_table(rows)
    if failures:
        print(f"FAILED: {', '.join(failures)}")
        return 1
    return 0


def print_table(rows: list[tuple[str, int, float, float, float]]) -> None:
    eager = {b: (ms, gpu) for what, b, ms, _, gpu in rows if what == "torch eager"}
    print("\n| forward, bf16 | B | do_bench ms | × eager | host ms | GPU ms | GPU × eager |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for what, b, ms, host, gpu in rows:
        e_ms, e_gpu = eager.get(b, (math.nan, math.nan))
        print(
            f"| {what} | {b} | {ms:.3f} | {ms / e_ms:.2f} | {host:.3f} | {gpu:.3f} "
            f"| {gpu / e_gpu:.2f} |"
        )
    print("\n(× eager = time / torch eager's do_bench or GPU time at the same B; < 1: faster)")
    found = {(what, b): ms / eager[b][0] for what, b, ms, _, _ in rows if b in eager}
    for label, key, goal in [
        ("-O2 at B=32", ("neuralc -O2", 32), GOAL_B32),
        ("-O2 + CUDA graph at B=8", ("neuralc -O2 + CUDA graph", 8), GOAL_GRAPH_B8),
    ]:
        if key in found:
            verdict = "met" if found[key] <= goal else "MISSED"
            print(f"goal {label}: {found[key]:.2f}x eager (goal <= {goal}x): {verdict}")
        else:
            print(f"goal {label}: not measured")


def host_profile(fn: Callable[[], object], calls: int = 20) -> None:
    """Where the host time of a forward goes (cProfile, before any torch.profiler session)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        fn()
    profiler.disable()
    print(f"\nhost profile of {calls} neuralc -O2 forwards (top 15 by own time):")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def print_split(splits: dict[tuple[str, int], dict[str, float]], batch: int) -> None:
    """GPU time per kernel family at one batch size: where each build spends its time."""
    names = ["neuralc -O2", "neuralc -O2 --kernels torch", "torch eager"]
    present = [n for n in names if splits.get((n, batch))]
    if not present:
        return
    print(f"\nGPU µs per forward by kernel (B={batch}, top 12 of each):")
    for name in present:
        split = sorted(splits[(name, batch)].items(), key=lambda kv: -kv[1])
        print(f"  {name}: " + ", ".join(f"{k[:48]} {v:.0f}" for k, v in split[:12]))


if __name__ == "__main__":
    sys.exit(main())
