#!/usr/bin/env bash
# Builds (here, without a GPU) an mk binary for one GPU architecture only, stripped, into .devbin/,
# small and quick to carry to the lent GPU machine with the device tool (`carry: [".devbin"]`).
# The full fat binary is what CI and `make` build; this is for iterating on kernels.
# ARCH: the -gencode value (default: H100/H200). PHASES=1: stamp the phases inside each instruction
# for mk trace (-DMK_TRACE_PHASES=ON; docs/PERFORMANCE.md). NOWAITS=1: a timing-only build in which
# no instruction waits for its inputs (-DMK_UNSAFE_NO_WAITS=ON: garbage results, the step's cost
# without its handoffs).
set -euo pipefail
ARCH=${ARCH:-arch=compute_90a,code=sm_90a}
PHASES=$([ "${PHASES:-0}" = 1 ] && echo ON || echo OFF)
NOWAITS=$([ "${NOWAITS:-0}" = 1 ] && echo ON || echo OFF)
cmake -S . -B build-devbin -G Ninja -DCMAKE_BUILD_TYPE=Release -DMK_BUILD_TESTS=OFF "-DMK_CUDA_GENCODE=$ARCH" \
  -DMK_TRACE_PHASES=$PHASES -DMK_UNSAFE_NO_WAITS=$NOWAITS >/dev/null
cmake --build build-devbin --target mk
mkdir -p .devbin
strip -o .devbin/mk build-devbin/src/cli/mk
ls -la .devbin/mk
