#!/usr/bin/env bash
# Packs what a GPU machine of this workplace lacks into .gpukit/ at the repository root (kept out
# of git through .git/info/exclude): Node (xz), OpenBLAS and its runtime libraries, a copy of the
# fixtures. Build the addon (`node native/scripts/build.js`, CUDA on) and `npx tsc -b native`
# first. Then one device call runs everything (see README.md here):
#   run(command: "bash native/dev/cuda/gpu_run.sh", carry: [".gpukit", "native/build/Release/temper_engine.node", "native/dist"])
set -euo pipefail
root=$(git rev-parse --show-toplevel)
kit="$root/.gpukit"
exclude="$(git rev-parse --git-path info/exclude)"
mkdir -p "$(dirname "$exclude")"
grep -qx '/.gpukit/' "$exclude" 2>/dev/null || echo '/.gpukit/' >> "$exclude"
rm -rf "$kit" && mkdir -p "$kit/lib"
# The device call carries at most 64 MiB: Node and the libraries travel xz-compressed.
xz -T0 -6 -c "$(readlink -f "$(command -v node)")" > "$kit/node.xz"
addon="$root/native/build/Release/temper_engine.node"
[ -f "$addon" ] || { echo "build the addon first: node native/scripts/build.js" >&2; exit 1; }
# The addon's libraries the CUDA image may lack or keep elsewhere (libcudart too: its toolkit
# is 13.0 as here, but not necessarily under /usr/local/cuda, the addon's rpath).
for lib in $(ldd "$addon" | awk '/openblas|gfortran|quadmath|cudart/ {print $3}'); do
  cp -L "$lib" "$kit/lib/"
done
tar -C "$kit" -cJf "$kit/lib.tar.xz" lib && rm -rf "$kit/lib"
cp -r "${TEMPER_FIXTURES:-$root/../shared/fixtures}" "$kit/fixtures"
du -sh "$kit"
