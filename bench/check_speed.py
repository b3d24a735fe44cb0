"""Benchmark: `neuralc check` as a whole process.

Goals (issue 2): `neuralc check bert_encoder.neural` under 0.5 s, and a generated program of 1,000
distinct layer lines under 2 s, with cost linear in program size. Also proves the check path
imports neither torch nor TensorFlow. Run: `.venv/bin/python bench/check_speed.py`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BERT = REPO.parent / "shared" / "conformance" / "seed" / "bert_encoder.neural"
RUNS = 7


def generated_program(lines: int) -> str:
    """`lines` distinct layer lines: Dense/Dropout/LayerNormalization with varying widths."""
    body = []
    for i in range(lines):
        kind = i % 3
        if kind == 0:
            body.append(f"    Dense({64 + i % 57}, activation=\"relu\")")
        elif kind == 1:
            body.append(f"    Dropout({(i % 9) / 10})")
        else:
            body.append("    LayerNormalization()")
    return "network Generated {\n  input: (32,)\n  layers:\n" + "\n".join(body) + "\n}\n"


def time_check(path: Path) -> float:
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "neuralc.cli", "check", str(path)], check=True,
                       stdout=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def heavy_modules_imported(path: Path) -> list[str]:
    probe = (f"import sys, neuralc.cli as c; c.main(['check', {str(path)!r}, '--json']);"
             "print(','.join(m for m in ('torch', 'tensorflow', 'keras', 'triton', 'onnx')"
             " if m in sys.modules), file=sys.stderr)")
    err = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stderr.strip().splitlines()
    return [m for m in err[-1].split(",") if m] if err else []


def main() -> None:
    baseline = time_check_python()
    rows = [("python -c pass (interpreter start)", baseline, "")]
    rows.append(("check bert_encoder.neural", time_check(BERT), "goal < 0.5 s"))
    with tempfile.TemporaryDirectory() as tmp:
        for n in (250, 500, 1000, 2000, 4000, 8000):
            path = Path(tmp) / f"gen_{n}.neural"
            path.write_text(generated_program(n))
            rows.append((f"check generated, {n} layer lines", time_check(path),
                         "goal < 2 s" if n == 1000 else ""))
        heavy = heavy_modules_imported(BERT)
    print(f"{'case':44} {'median s':>9}  note")
    for name, seconds, note in rows:
        print(f"{name:44} {seconds:9.3f}  {note}")
    gen = {int(name.split()[2].rstrip(',')): s for name, s, _ in rows if "generated" in name}
    per_line = [(gen[n] - baseline) / n * 1000 for n in sorted(gen)]
    print("ms per layer line (minus interpreter start): "
          + ", ".join(f"{n}: {v:.3f}" for n, v in zip(sorted(gen), per_line, strict=True)))
    print("heavy modules imported by check:", ", ".join(heavy) or "none")


def time_check_python() -> float:
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


if __name__ == "__main__":
    main()
