#!/usr/bin/env bash
# Copies what the services need at run time from a built checkout into a folder, for the final
# stage of the images: production node_modules, each workspace's package.json and compiled
# dist/ (and bin/), the engine addon and the contracts' descriptor set. No sources, no compilers.
#   deploy/stage-runtime.sh <built checkout> <out dir>   (out dir must not exist or be empty)
set -euo pipefail
src=$(cd "${1:?built checkout}" && pwd)
out=${2:?out dir}
mkdir -p "$out"
cd "$src"
cp -a package.json package-lock.json "$out/"
# npm prune --omit=dev ran before this; workspace links (node_modules/@temper/*) stay links.
# STAGE_LINK=1 hard-links instead of copying (tests stage a checkout on the same filesystem).
cpflags=-a
[ "${STAGE_LINK:-0}" = 1 ] && cpflags=-al
cp $cpflags node_modules "$out/"
workspaces=$(node -e 'for (const w of require("./package.json").workspaces) console.log(w)')
for ws in $workspaces; do
  mkdir -p "$out/$ws"
  cp -a "$ws/package.json" "$out/$ws/"
  for d in dist bin descriptor; do
    if [ -d "$ws/$d" ]; then cp -a "$ws/$d" "$out/$ws/"; fi
  done
done
# The engine: only the linked addon, not the object files.
mkdir -p "$out/native/build/Release"
cp -a native/build/Release/temper_engine.node "$out/native/build/Release/"
for svc in generator scorer learner checkpoint-store; do
  test -f "$out/services/$svc/dist/main.js" || { echo "stage-runtime: services/$svc/dist/main.js is missing (was npm run build run?)" >&2; exit 1; }
done
