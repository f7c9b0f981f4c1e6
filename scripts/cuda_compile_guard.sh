#!/usr/bin/env bash
# The CUDA compiler launcher (CMakeLists.txt): runs the compile command it is given, passes its
# output and exit status through, and fails the compile where ptxas says it serialized wgmma
# (C7510: "wgmma.mma_async instructions are serialized due to wgmma pipeline crossing function
# boundary"). ptxas reports that as info, not as a warning, and then serializes every wgmma of the
# kernel: a new out-of-line function holding a wgmma pass slowed the whole 512-token prefill by
# 8-10%, on models whose tiles never ran it (docs/PERFORMANCE.md, session 34).
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$@" 2> "$log"  # stderr whole, then passed on: a tee could still be writing when grep reads
rc=$?
cat "$log" >&2
if [ $rc -eq 0 ] && grep -q "C7510" "$log"; then
  echo "cuda_compile_guard: ptxas serialized wgmma (C7510, above): keep each wgmma pass inlined into the" \
       "kernel, or its pipeline wholly inside one function (docs/PERFORMANCE.md, session 34)" >&2
  exit 1
fi
exit $rc
