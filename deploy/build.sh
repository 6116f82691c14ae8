#!/usr/bin/env bash
# Builds Temper's images with one command: the CPU image (scorer, checkpoint store) and the
# CUDA image (learner, generator); the four services run from these two.
#   deploy/build.sh [--push] [cpu|cuda ...]
#   REGISTRY=ghcr.io/me TAG=0.1.0 deploy/build.sh --push
# Uses `docker buildx bake` with deploy/docker-bake.hcl when buildx is there, else plain docker build.
set -euo pipefail
cd "$(dirname "$0")/.."
push=0
targets=()
for a in "$@"; do
  case "$a" in
    --push) push=1 ;;
    cpu|cuda) targets+=("$a") ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $a (expected --push, cpu or cuda)" >&2; exit 2 ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(cpu cuda)
export REGISTRY=${REGISTRY:-ghcr.io/temper-rl}
export TAG=${TAG:-$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' helm/temper/Chart.yaml)}
export REVISION=${REVISION:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
command -v docker >/dev/null 2>&1 || { echo "build.sh: docker is not installed" >&2; exit 1; }

if docker buildx version >/dev/null 2>&1; then
  args=(-f deploy/docker-bake.hcl)
  [ "$push" = 1 ] && args+=(--push)
  exec docker buildx bake "${args[@]}" "${targets[@]}"
fi

for t in "${targets[@]}"; do
  case "$t" in
    cpu) file=deploy/Dockerfile; image="$REGISTRY/temper:$TAG" ;;
    cuda) file=deploy/Dockerfile.cuda; image="$REGISTRY/temper-cuda:$TAG" ;;
  esac
  docker build -f "$file" --build-arg VERSION="$TAG" --build-arg REVISION="$REVISION" -t "$image" .
  [ "$push" = 1 ] && docker push "$image"
done
