#!/usr/bin/env bash
# Generates @temper/proto from proto/: ts-proto TypeScript (grpc-js services) and the
# binary descriptor set that the services hand to gRPC server reflection.
set -euo pipefail
cd "$(dirname "$0")/.."
out=packages/proto/src/gen
rm -rf "$out" packages/proto/descriptor
mkdir -p "$out" packages/proto/descriptor
npx --no-install buf generate
npx --no-install buf build -o packages/proto/descriptor/temper.binpb
