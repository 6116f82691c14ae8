#!/usr/bin/env bash
# Everything a fresh Debian/Ubuntu machine needs before Temper runs: system packages
# (OpenBLAS for the engine, nats-server for the local stack, with --tests also Chromium for
# the report's browser test and zstd for the dataset tests' files), npm dependencies (which also
# build the engine addon), generated contracts and compiled TypeScript. Each step is skipped
# when already done, so the README's commands can always start with it.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

# --- system packages -------------------------------------------------------------------
need=()
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
have_openblas=0
for d in /usr/include/x86_64-linux-gnu/openblas-pthread /usr/include/aarch64-linux-gnu/openblas-pthread /usr/include/openblas /usr/include; do
  [ -f "$d/cblas.h" ] && have_openblas=1 && break
done
[ "$have_openblas" = 1 ] || need+=(libopenblas-dev)
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
# The tests also open the HTML report in a headless browser, and write zstd-compressed Parquet.
if [ "${1:-}" = "--tests" ] && ! command -v chromium >/dev/null 2>&1 && [ -z "${CHROMIUM:-}" ]; then need+=(chromium); fi
if [ "${1:-}" = "--tests" ] && ! command -v zstd >/dev/null 2>&1; then need+=(zstd); fi
if [ ${#need[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    say "missing: ${need[*]}; install them with your package manager and run again"; exit 1
  fi
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  say "installing ${need[*]} (apt-get)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- npm dependencies (builds the engine addon) ------------------------------------------
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f node_modules/.temper-lock ] || [ "$(cat node_modules/.temper-lock)" != "$lock_sum" ]; then
  say "npm ci"
  npm ci --no-audit --no-fund
  echo "$lock_sum" > node_modules/.temper-lock
else
  # Sources of the engine may have changed since npm ci built it; this is a no-op when not.
  node native/scripts/build.js
fi

# --- contracts and TypeScript ------------------------------------------------------------
say "generating contracts and compiling TypeScript"
npm run --silent build
