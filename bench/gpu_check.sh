#!/usr/bin/env bash
# GPU check for neuralc (issue 5): versions; every `gpu`-marked test of the suite; the seed
# transformer at -O2 against torch.nn.TransformerEncoder, bf16, with and without a CUDA graph
# (bench/model_gpu.py); CUDA training throughput at -O2 against the hand-written loop
# (bench/train_throughput.py --device cuda); the kernel benchmark (bench/kernels.py).
# Run from the repository root on the GPU machine (`bash bench/gpu_check.sh [--quick]`);
# fetches nothing; installs the carried wheels in .whl/ (textx, arpeggio).  Logs go to $OUT
# when that is set.  Budget: about 6 minutes on an H100 (timeouts add up to 7.5); --quick (or
# GPU_CHECK_QUICK=1) runs only the tests and the model benchmark without the profiler column.
set -uo pipefail
cd "$(dirname "$0")/.."
QUICK="${GPU_CHECK_QUICK:-}"
if [ "${1:-}" = "--quick" ]; then QUICK=1; fi
export PYTHONUNBUFFERED=1

OUT_DIR="${OUT:-}"
log() {  # log FILE: copy stdin to stdout and, when $OUT is set, to $OUT/FILE
  if [ -n "$OUT_DIR" ]; then tee -a "$OUT_DIR/$1"; else cat; fi
}

if [ -d .whl ] && compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=.:${PYTHONPATH:-}

{
  echo "== versions ($(date -u +%Y-%m-%dT%H:%MZ))"
  python3 - <<'PY'
import sys
import torch
import triton
print(f"python {sys.version.split()[0]}  torch {torch.__version__}  triton {triton.__version__}")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"gpu {p.name}  sm_{p.major}{p.minor}  {p.total_memory / 2**30:.0f} GiB  "
          f"cuda {torch.version.cuda}")
else:
    print("no CUDA device visible")
PY
  nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader \
    2>/dev/null || true
} 2>&1 | log versions.log

# Several workers compile kernels in parallel when pytest-xdist is present.  Only the files
# holding gpu tests are collected (the others may need packages the GPU machine lacks).
XDIST=""
if python3 -c "import xdist" 2>/dev/null; then XDIST="-n 4"; fi
GPU_TEST_FILES=$(grep -rlE "mark\.gpu|pytestmark.*gpu" tests --include="test_*.py" | sort)
echo "== pytest -m gpu $XDIST: $(echo "$GPU_TEST_FILES" | tr '\n' ' ')" | log gpu_tests.log
start=$(date +%s)
# shellcheck disable=SC2086
timeout 120 python3 -m pytest -q -m gpu $GPU_TEST_FILES -p no:cacheprovider $XDIST 2>&1 \
  | log gpu_tests.log
rc_tests=${PIPESTATUS[0]}
echo "== tests: exit $rc_tests, $(($(date +%s) - start))s" | log gpu_tests.log

MODEL_FLAGS=""
if [ -n "$QUICK" ]; then MODEL_FLAGS="--no-profile"; fi
echo "== python3 bench/model_gpu.py $MODEL_FLAGS" | log bench_model.log
start=$(date +%s)
# shellcheck disable=SC2086
timeout 150 python3 bench/model_gpu.py $MODEL_FLAGS 2>&1 | log bench_model.log
rc_model=${PIPESTATUS[0]}
echo "== model: exit $rc_model, $(($(date +%s) - start))s" | log bench_model.log

rc_train=0
rc_bench=0
if [ -z "$QUICK" ]; then
  echo "== python3 bench/train_throughput.py --device cuda -O 2 --epochs 3 --rounds 1" \
    | log bench_train.log
  start=$(date +%s)
  timeout 60 python3 bench/train_throughput.py --device cuda -O 2 --epochs 3 --rounds 1 2>&1 \
    | log bench_train.log
  rc_train=${PIPESTATUS[0]}
  echo "== train: exit $rc_train, $(($(date +%s) - start))s" | log bench_train.log

  echo "== python3 bench/kernels.py" | log bench_kernels.log
  start=$(date +%s)
  timeout 150 python3 bench/kernels.py 2>&1 | log bench_kernels.log
  rc_bench=${PIPESTATUS[0]}
  echo "== bench: exit $rc_bench, $(($(date +%s) - start))s" | log bench_kernels.log
fi

echo "== exits: tests $rc_tests, model $rc_model, train $rc_train, kernels $rc_bench"
if [ "$rc_tests" -ne 0 ] || [ "$rc_model" -ne 0 ] || [ "$rc_train" -ne 0 ] \
  || [ "$rc_bench" -ne 0 ]; then exit 1; fi
