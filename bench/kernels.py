"""Benchmark: neuralc's Triton kernels against PyTorch on a CUDA GPU (bf16).

1. Correctness first, at every benchmark shape: our outputs/gradients and SDPA-flash's are
   both compared with a float32 reference (ours must be within max(2e-2, 2 x flash's error),
   error = max|a - ref| / max|ref|); the FFN + residual + LayerNorm block likewise against
   float32 eager.
2. Timing: ``triton.testing.do_bench`` medians.  Attention forward and backward (backward
   alone, via ``torch.autograd.grad`` on a retained graph) against SDPA with the flash and
   cuDNN backends; the FFN + residual + LayerNorm block against eager PyTorch
   (``F.linear``/activation/``F.linear`` + x, then ``F.layer_norm``).
   speedup = baseline time / our time (> 1 means we are faster).
   TFLOP/s: attention forward 4*B*H*Lq*Lk*D (halved when causal), backward 2.5x that (the
   usual convention, although the kernels recompute more); FFN 4*M*d_model*d_ff.

Run from the repository root: ``PYTHONPATH=. python3 bench/kernels.py`` (``--only attention``
or ``--only ffn`` for a subset).  Exits at once on a machine without CUDA.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ATTENTION_SHAPES = [
    # name, B, H, L, D, causal
    ("seed encoder", 32, 8, 512, 96, False),
    ("BERT", 32, 12, 512, 64, False),
    ("GPT causal", 8, 12, 1024, 64, True),
    ("long", 4, 16, 4096, 128, False),
    ("long causal", 4, 16, 4096, 128, True),
]
FFN_SHAPES = [
    # name, tokens, d_model, d_ff, activation
    ("encoder relu", 32 * 512, 768, 3072, "relu"),
    ("encoder gelu", 32 * 512, 768, 3072, "gelu"),
]
DTYPE = torch.bfloat16
DEVICE = "cuda"
# --cpu-smoke: the whole script at toy sizes through the Triton interpreter, to catch script
# errors before spending GPU time.  Its numbers mean nothing.
SMOKE_ATTENTION_SHAPES = [("toy", 1, 2, 40, 96, False), ("toy causal", 1, 1, 40, 64, True)]
SMOKE_FFN_SHAPES = [("toy", 40, 32, 64, "gelu")]


@dataclass
class Row:
    what: str
    ours: list[float]  # [do_bench ms, GPU kernel ms]
    flops: float
    baselines: dict[str, list[float]]  # name -> same pair (nan when unavailable)


def rel_err(a: torch.Tensor, ref: torch.Tensor) -> float:
    return ((a.float() - ref.float()).abs().max() / ref.float().abs().max()).item()


def bench(fn: Callable[[], object]) -> float:
    import triton.testing

    if DEVICE == "cpu":
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3
    return float(triton.testing.do_bench(fn, warmup=10, rep=40, return_mode="median"))


def sdpa_backend(name: str) -> Callable[[], object]:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backend = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION}[name]
    if DEVICE == "cpu":
        backend = SDPBackend.MATH
    return lambda: sdpa_kernel(backend)


def gpu_time(fn: Callable[[], object], iters: int = 10) -> float:
    """Summed duration of the GPU kernels one call launches (torch.profiler), in ms.

    Unlike do_bench's wall-clock events it excludes idle gaps, so comparing the two shows
    how much a call loses to CPU-side launch overhead.
    """
    if DEVICE == "cpu":
        return math.nan
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
                us = evt.time_range.elapsed_us()
                per_kernel[evt.name] = per_kernel.get(evt.name, 0.0) + us / iters
        _last_breakdown[:] = sorted(per_kernel.items(), key=lambda kv: -kv[1])
        return sum(per_kernel.values()) / 1e3
    except Exception as err:  # diagnostics only: never fail the benchmark over it
        print(f"    (profiler unavailable: {type(err).__name__}: {str(err)[:100]})")
        return math.nan


_last_breakdown: list[tuple[str, float]] = []


def breakdown() -> str:
    return ", ".join(f"{name[:40]} {us:.1f}us" for name, us in _last_breakdown[:4])


# Profiler sessions wait until every do_bench timing is done, so that no profiler state can
# touch the wall-clock column.
_pending_profiles: list[tuple[list[float], Callable[[], object], Any, str | None]] = []


def measure(
    fn: Callable[[], object], context: Callable[[], object] | None = None, label: str | None = None
) -> list[float]:
    """[do_bench median ms, GPU kernel ms]; the GPU time is filled in by `profile_pending`.
    NaNs when a baseline backend refuses the shape."""
    try:
        with context() if context else contextlib.nullcontext():  # type: ignore[attr-defined]
            fn()
            result = [bench(fn), math.nan]
    except RuntimeError as err:  # backend unavailable for this shape/GPU
        print(f"    (baseline unavailable: {str(err).splitlines()[0][:100]})")
        return [math.nan, math.nan]
    _pending_profiles.append((result, fn, context, label))
    return result


def profile_pending() -> None:
    """Profile every measured call (after all do_bench timings), printing the kernel split of
    the labelled ones."""
    for result, fn, context, label in _pending_profiles:
        with context() if context else contextlib.nullcontext():  # type: ignore[attr-defined]
            result[1] = gpu_time(fn)
        if label:
            print(f"    {label}: {breakdown()}")
    _pending_profiles.clear()


def attention_rows(failures: list[str]) -> list[Row]:
    rows: list[Row] = []
    for shape in SMOKE_ATTENTION_SHAPES if DEVICE == "cpu" else ATTENTION_SHAPES:
        t0 = time.time()
        rows += attention_shape(*shape, failures=failures)
        report_new_tuning()
        if DEVICE == "cuda":
            torch.cuda.empty_cache()
        print(f"  {shape[0]}: {time.time() - t0:.1f}s (incl. autotuning)", flush=True)
    return rows


def attention_shape(
    name: str, b: int, h: int, length: int, d: int, causal: bool, *, failures: list[str]
) -> list[Row]:
    from neuralc.kernels import attention

    q, k, v = (
        torch.randn(b, h, length, d, device=DEVICE, dtype=DTYPE).requires_grad_() for _ in range(3)
    )
    do = torch.randn_like(q)

    def ours() -> torch.Tensor:
        return attention(q, k, v, causal=causal)

    def sdpa() -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

    def backward(out: torch.Tensor) -> Callable[[], object]:
        return lambda: torch.autograd.grad(out, (q, k, v), do, retain_graph=True)

    # -- correctness (the first call also autotunes) --
    o = ours()
    grads = torch.autograd.grad(o, (q, k, v), do, retain_graph=True)
    with sdpa_backend("flash")():
        o_flash = sdpa()
        grads_flash = torch.autograd.grad(o_flash, (q, k, v), do)
    q32, k32, v32 = (t.detach().float().requires_grad_() for t in (q, k, v))
    o_ref = F.scaled_dot_product_attention(q32, k32, v32, is_causal=causal)
    grads_ref = torch.autograd.grad(o_ref, (q32, k32, v32), do.float())
    for label, mine, theirs, ref in zip(
        ("out", "dq", "dk", "dv"),
        (o, *grads),
        (o_flash, *grads_flash),
        (o_ref, *grads_ref),
        strict=True,
    ):
        e_ours, e_flash = rel_err(mine, ref), rel_err(theirs, ref)
        ok = e_ours <= max(2e-2, 2 * e_flash)
        print(f"  check {name:13s} {label}: ours {e_ours:.2e}  flash {e_flash:.2e}  {ok}")
        if not ok:
            failures.append(f"attention {name} {label}: {e_ours:.2e} vs flash {e_flash:.2e}")

    # -- timing --
    flops = 4 * b * h * length * length * d * (0.5 if causal else 1.0)
    fwd = measure(ours, label=f"ours fwd kernels, {name}")
    base_fwd = {n: measure(sdpa, sdpa_backend(n)) for n in ("flash", "cudnn")}
    bwd = measure(backward(o), label=f"ours bwd kernels, {name}")
    base_bwd = {}
    for n in ("flash", "cudnn"):
        try:
            with sdpa_backend(n)():
                o_base = sdpa()
        except RuntimeError:
            base_bwd[n] = [math.nan, math.nan]
            continue
        base_bwd[n] = measure(backward(o_base), sdpa_backend(n))
    label = f"{name} B={b} H={h} L={length} D={d}{' causal' if causal else ''}"
    return [
        Row(f"attn fwd {label}", fwd, flops, base_fwd),
        Row(f"attn bwd {label}", bwd, 2.5 * flops, base_bwd),
    ]


def ffn_rows(failures: list[str]) -> list[Row]:
    rows: list[Row] = []
    for shape in SMOKE_FFN_SHAPES if DEVICE == "cpu" else FFN_SHAPES:
        t0 = time.time()
        rows += ffn_shape(*shape, failures=failures)
        report_new_tuning()
        print(f"  {shape[0]}: {time.time() - t0:.1f}s (incl. autotuning)", flush=True)
    return rows


def ffn_shape(
    name: str, m: int, d_model: int, d_ff: int, act: str, *, failures: list[str]
) -> list[Row]:
    from neuralc.kernels import add_layer_norm, ffn

    def rand(*shape: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
        return (torch.randn(*shape, device=DEVICE) * scale + shift).to(DTYPE)

    x = rand(m, d_model)
    w1, b1 = rand(d_ff, d_model, scale=d_model**-0.5), rand(d_ff, scale=0.1)
    w2, b2 = rand(d_model, d_ff, scale=d_ff**-0.5), rand(d_model, scale=0.1)
    gamma, beta = rand(d_model, scale=0.1, shift=1.0), rand(d_model, scale=0.1)
    hidden = rand(m, d_model)
    act_fn = F.relu if act == "relu" else F.gelu

    def ours() -> torch.Tensor:
        return add_layer_norm(ffn(x, w1, b1, w2, b2, activation=act), x, gamma, beta)

    def eager(*ts: torch.Tensor) -> torch.Tensor:
        xx, p1, q1, p2, q2, g, bb = ts or (x, w1, b1, w2, b2, gamma, beta)
        y = F.linear(act_fn(F.linear(xx, p1, q1)), p2, q2) + xx
        return F.layer_norm(y, (d_model,), g, bb)

    def ours_ffn() -> torch.Tensor:
        return ffn(x, w1, b1, w2, b2, activation=act, residual=x)

    def eager_ffn() -> torch.Tensor:
        return F.linear(act_fn(F.linear(x, w1, b1)), w2, b2) + x

    def ours_ln() -> torch.Tensor:
        return add_layer_norm(hidden, x, gamma, beta)

    def eager_ln() -> torch.Tensor:
        return F.layer_norm(hidden + x, (d_model,), gamma, beta)

    ref = eager(*(t.float() for t in (x, w1, b1, w2, b2, gamma, beta)))
    e_ours, e_eager = rel_err(ours(), ref), rel_err(eager(), ref)
    ok = e_ours <= max(2e-2, 2 * e_eager)
    print(f"  check {name}: ours {e_ours:.2e}  eager {e_eager:.2e}  {ok}")
    if not ok:
        failures.append(f"ffn block {name}: {e_ours:.2e} vs eager {e_eager:.2e}")

    flops = 4 * m * d_model * d_ff
    label = f"{name} M={m} d={d_model} ff={d_ff}"
    block = measure(ours, label=f"ours block kernels, {name}")
    return [
        Row(f"FFN+res+LN fwd {label}", block, flops, {"eager": measure(eager)}),
        Row(f"  part: FFN+res {name}", measure(ours_ffn), flops, {"eager": measure(eager_ffn)}),
        Row(f"  part: add+LN {name}", measure(ours_ln), math.nan, {"eager": measure(eager_ln)}),
    ]


def print_table(rows: list[Row], metric: int) -> None:
    """metric 0: do_bench wall-clock medians; 1: summed GPU kernel time per call."""
    names = sorted({k for r in rows for k in r.baselines}, key=["flash", "cudnn", "eager"].index)
    head = "| kernel | ours ms | ours TFLOP/s | " + " | ".join(
        f"{n} ms | speedup vs {n}" for n in names
    )
    print(head + " |")
    print("|" + "---|" * (3 + 2 * len(names)))
    for r in rows:
        ours = r.ours[metric]
        tflops = "" if math.isnan(r.flops) or math.isnan(ours) else f"{r.flops / ours / 1e9:.0f}"
        cells = [r.what, f"{ours:.3f}", tflops]
        for n in names:
            base = r.baselines.get(n, [math.nan, math.nan])[metric]
            if math.isnan(base) or math.isnan(ours):
                cells += ["" if math.isnan(base) else f"{base:.3f}", ""]
            else:
                cells += [f"{base:.3f}", f"{base / ours:.2f}x"]
        print("| " + " | ".join(cells) + " |")


_reported: set[int] = set()


def report_new_tuning() -> None:
    """Print every configuration's time from autotuning runs not reported yet."""
    from neuralc.kernels import dispatch

    for module, names in TUNED:
        mod = dispatch.triton_module(module)
        for name in names:
            for tuner in getattr(getattr(mod, name), "tuners", {}).values():
                timings = getattr(tuner, "configs_timings", None)
                if not timings or id(timings) in _reported:
                    continue
                _reported.add(id(timings))
                cells = []
                for cfg, t in sorted(timings.items(), key=lambda kv: _first(kv[1])):
                    kw = ",".join(f"{v}" for v in cfg.kwargs.values())
                    cells.append(f"[{kw} w{cfg.num_warps} s{cfg.num_stages}] {_first(t):.3f}")
                print(f"    tuning {name}: " + "  ".join(cells))


def _first(t: object) -> float:
    return float(t[0] if isinstance(t, list | tuple) else t)  # type: ignore[index]


TUNED = (
    ("_attention_fwd_triton", ("attn_fwd",)),
    ("_attention_bwd_triton", ("attn_bwd_dkdv", "attn_bwd_dq")),
    ("_gemm_triton", ("gemm_epilogue",)),
)


def print_tuning() -> None:
    from neuralc.kernels import dispatch

    for module, names in TUNED:
        mod = dispatch.triton_module(module)
        for name in names:
            tuned = getattr(getattr(mod, name), "tuned", dict)()
            for key, cfg in tuned.items():
                print(f"  {name} {key}: {cfg}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("attention", "ffn"), default=None)
    parser.add_argument("--cpu-smoke", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global DEVICE, DTYPE
    if args.cpu_smoke:
        os.environ["TRITON_INTERPRET"] = "1"
        DEVICE, DTYPE = "cpu", torch.float16
    elif not torch.cuda.is_available():
        print("bench/kernels.py: no CUDA device here; the Triton kernels need a GPU. Skipped.")
        return 0
    import triton

    torch.backends.cuda.matmul.allow_tf32 = False  # keep the float32 references exact
    name = torch.cuda.get_device_properties(0).name if DEVICE == "cuda" else "cpu (smoke)"
    print(
        f"device: {name}  torch {torch.__version__}  triton {triton.__version__}  "
        f"python {sys.version.split()[0]}  dtype {str(DTYPE).removeprefix('torch.')}"
    )
    start = time.time()
    failures: list[str] = []
    tables: list[list[Row]] = []
    if args.only in (None, "attention"):
        tables.append(attention_rows(failures))
    if args.only in (None, "ffn"):
        tables.append(ffn_rows(failures))
    print("\nGPU kernel time (torch.profiler, after all do_bench timings):")
    profile_pending()
    print("\nchosen configurations:")
    print_tuning()
    for metric, title in ((0, "do_bench median (wall clock, L2 flushed)"), (1, "GPU kernel time")):
        print(f"\n### {title}")
        for rows in tables:
            print()
            print_table(rows, metric)
    print(f"\ntotal {time.time() - start:.0f}s")
    if failures:
        print("CORRECTNESS FAILURES:\n  " + "\n  ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
