"""Benchmark: `neuralc build -O2` time and peak memory, and how cost grows with depth.

Cases: `bert_encoder.neural` (12 encoder layers, 85M parameters) compiled to kernel IR
(`--emit kernel`: the compiler alone) and built to ONNX (weights initialized and serialized too),
a repeated model `Dense(64) * N` at N = 250, 500, 1,000, and a stack of small Transformer
encoders `TransformerEncoder(2, 16, 32) * N` at N = 200, 400, 800 (every fusion pass fires per
layer) to show cost linear in layers.
Each case runs as its own process; peak memory is the child's max RSS. Run:
`.venv/bin/python bench/build_speed.py`.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BERT = REPO.parent / "shared" / "conformance" / "seed" / "bert_encoder.neural"


def repeated(n: int) -> str:
    return (f"network Deep {{\n  input: (64,)\n  layers:\n    Dense(64, activation=\"relu\") * {n}"
            "\n    Output(10)\n}\n")


def encoders(n: int) -> str:
    return (f"network Stack {{\n  input: (8, 16)\n  layers:\n"
            f"    TransformerEncoder(num_heads=2, d_model=16, dff=32) * {n}\n    Output(3)\n}}\n")


def measure(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one `neuralc` process (measured by a fresh parent, so
    each case's peak is its own)."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
             "print(time.perf_counter() - t, "
             "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "neuralc.cli",
                          *args], check=True, capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1]) / 1024


def main() -> None:
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for n in (250, 500, 1000):
            model = work / f"deep_{n}.neural"
            model.write_text(repeated(n))
            seconds, peak = measure(["build", str(model), "-O2", "--target", "onnx",
                                     "-o", str(work / f"deep_{n}.onnx")])
            rows.append((f"build -O2 onnx, Dense(64) * {n}", seconds, peak))
            seconds, peak = measure(["build", str(model), "-O2", "--target", "onnx", "--emit",
                                     "kernel"])
            rows.append((f"-O2 --emit kernel, Dense(64) * {n}", seconds, peak))
        for n in (200, 400, 800):
            model = work / f"stack_{n}.neural"
            model.write_text(encoders(n))
            seconds, peak = measure(["build", str(model), "-O2", "--target", "pytorch", "--emit",
                                     "kernel"])
            rows.append((f"-O2 --emit kernel, TransformerEncoder * {n}", seconds, peak))
        seconds, peak = measure(["build", str(BERT), "-O2", "--target", "onnx", "--emit",
                                 "kernel"])
        rows.append(("bert_encoder -O2 --emit kernel (compile only)", seconds, peak))
        seconds, peak = measure(["build", str(BERT), "-O2", "--target", "onnx",
                                 "-o", str(work / "bert.onnx")])
        rows.append(("bert_encoder -O2 build onnx (85M weights)", seconds, peak))
    print(f"{'case':48} {'seconds':>8} {'peak MiB':>9}")
    for name, seconds, peak in rows:
        print(f"{name:48} {seconds:8.2f} {peak:9.0f}")
    for label, layer, prefix in (("build, Dense", "Dense(64)", "build"),
                                  ("--emit, Dense", "Dense(64)", "-O2"),
                                  ("--emit, TransformerEncoder", "TransformerEncoder", "-O2")):
        deep = [(int(name.rsplit(" ", 1)[1]), s) for name, s, _ in rows
                if layer in name and name.startswith(prefix)]
        print(f"{label}: seconds per 1,000 layers: " + ", ".join(
            f"N={n}: {s / n * 1000:.2f}" for n, s in deep))


if __name__ == "__main__":
    main()
