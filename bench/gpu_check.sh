#!/usr/bin/env bash
# GPU check for neuralc's Triton kernels: versions, the `gpu`-marked kernel tests, then the
# benchmark (bench/kernels.py).  Run from the repository root on the GPU machine; fetches
# nothing.  Logs go to $OUT when that is set.  Budget: about 5 minutes on an H100.
set -uo pipefail
cd "$(dirname "$0")/.."

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

# Several workers compile kernels in parallel when pytest-xdist is present.
XDIST=""
if python3 -c "import xdist" 2>/dev/null; then XDIST="-n 4"; fi
echo "== pytest -m gpu tests/kernels $XDIST" | log gpu_tests.log
start=$(date +%s)
# shellcheck disable=SC2086
timeout 110 python3 -m pytest -q -m gpu tests/kernels -p no:cacheprovider $XDIST 2>&1 \
  | log gpu_tests.log
rc_tests=${PIPESTATUS[0]}
echo "== tests: exit $rc_tests, $(($(date +%s) - start))s" | log gpu_tests.log

echo "== python3 bench/kernels.py" | log bench_kernels.log
start=$(date +%s)
timeout 200 python3 bench/kernels.py 2>&1 | log bench_kernels.log
rc_bench=${PIPESTATUS[0]}
echo "== bench: exit $rc_bench, $(($(date +%s) - start))s" | log bench_kernels.log

if [ "$rc_tests" -ne 0 ] || [ "$rc_bench" -ne 0 ]; then exit 1; fi
