#!/usr/bin/env bash
# Runs on the GPU machine (see gpu_kit.sh): kernel harnesses, engine parity, the benchmark.
# Everything lands in $OUT (kernels.log, parity.log, bench.json); the last lines are a summary.
set -uo pipefail
root=$(pwd)
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/node
# Python's lzma, in case the image has no xz.
python3 -c "import lzma, shutil, tarfile; shutil.copyfileobj(lzma.open('.gpukit/node.xz'), open('/tmp/node/node', 'wb')); tarfile.open('.gpukit/lib.tar.xz').extractall('/tmp')"
chmod +x /tmp/node/node
export PATH=/tmp/node:$PATH LD_LIBRARY_PATH=/tmp/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem --format=csv | tee "$OUT/gpu.txt"
(cd native/dev/cuda && make -j8 all && ./gemm && ./attention && ./fused) > "$OUT/kernels.log" 2>&1
k=$?
TEMPER_FIXTURES=$root/.gpukit/fixtures node native/dev/cuda/parity.js > "$OUT/parity.log" 2>&1
p=$?
node native/bench/engine.js --device cuda --json > "$OUT/bench.json" 2> "$OUT/bench.err"
b=$?
grep -E "FAIL|passed|failed|TFLOP|GB/s" "$OUT/kernels.log" | tail -40
tail -20 "$OUT/parity.log"
cat "$OUT/bench.json" "$OUT/bench.err" | tail -5
echo "kernels exit $k, parity exit $p, bench exit $b"
