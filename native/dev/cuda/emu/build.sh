#!/usr/bin/env bash
# Builds the CUDA backend for the emulator (see README.md) and runs it on this machine's CPU:
#   bash native/dev/cuda/emu/build.sh [out dir] [what]
#     what: parity (default) - emu_selftest (the emulator's own checks), then emu_parity (the
#                              CUDA model against the CPU backend)
#           harnesses        - the correctness checks of dev/cuda's gemm, attention and fused
#           all              - both
#   EMU_NO_RUN=1      build only
#   EMU_SANITIZE=1    build and run under AddressSanitizer and UBSan, in [out dir]-asan
#   EMU_REVERSE=1     run each block's threads last to first (shows a missing barrier that the
#                     forward order happens to satisfy)
#   EMU_SHUFFLE=seed  the same in a random order, a different one for each block
#   EMU_PROFILE=1     print the time each kernel took
#   EMU_FIXTURES=file emu_parity also runs the shared fixtures listed in this JSON file (each
#                     one's dir, engine config and adapter; native/test/cuda_emulated.test.ts writes it)
# One compile at a time (no -j): it is meant to run beside other work.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../../src" && pwd)
out=${1:-/tmp/temper-cuda-emu}
what=${2:-parity}
sanitize=0
if [ -n "${EMU_SANITIZE:-}" ]; then sanitize=1 out=$out-asan; fi
blas_inc=${OPENBLAS_INCLUDE:-/usr/include/x86_64-linux-gnu/openblas-pthread}
case $what in
  parity) targets=all ;;
  harnesses) targets=harnesses ;;
  all) targets="all harnesses" ;;
  *) echo "build.sh: unknown target '$what' (parity, harnesses or all)" >&2; exit 2 ;;
esac
make --no-print-directory -f "$here/Makefile" OUT="$out" SRC="$src" BLAS_INC="$blas_inc" SANITIZE=$sanitize $targets
[ -n "${EMU_NO_RUN:-}" ] && exit 0
# stdbuf preloads a library ahead of the sanitizer runtime, which AddressSanitizer would refuse.
export ASAN_OPTIONS=${ASAN_OPTIONS:-verify_asan_link_order=0} OPENBLAS_NUM_THREADS=1
if [ "$what" != harnesses ]; then
  "$out/emu_selftest"
  stdbuf -oL "$out/emu_parity" ${EMU_FIXTURES:+"$EMU_FIXTURES"}
fi
if [ "$what" != parity ]; then
  # The harnesses' cases are sized for an H100: with its SM count the GEMM plans take the
  # small tiles and split-K they were written to reach.
  # They leave test buffers unfreed at exit (a GPU process's exit frees them): no leak check.
  for h in gemm attention fused; do
    EMU_SMS=${EMU_SMS:-132} ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0 stdbuf -oL "$out/harness/$h"
  done
fi
