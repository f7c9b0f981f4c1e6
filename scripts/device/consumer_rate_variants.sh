#!/usr/bin/env bash
# Runs on the lent GPU machine (~1 min): bench/consumer_rate.cu built by nvcc from this tree several
# ways (five by default) and run, so that one call says what the decode consumers' page waits cost: head (pipe_wait_page
# as main has it: every lane of a warp waits on the page's mbarrier), lane0 (lane 0 waits, then
# __syncwarp), nowait (no wait at all: timing only; meant for the resident spans, whose pages are all
# there anyway, but on the H100 its second streaming shape died with "unspecified launch failure",
# which ends the process's CUDA context, so its resident lines came out as zeros in session 51: it
# now runs with --resident-only), rn (experiments/resident_nowait.patch: no waits where a
# span's pages have all landed at its start), spl (experiments/shared_page_loop.patch: the page loop
# a function of its own, not inlined; here, what the call costs). head runs again last, for the drift. The tree's src/cuda
# is copied to /tmp/cr-NAME and edited there; the repository is not touched. CR_VARIANTS sets the list
# (default "head lane0 nowait rn spl"); NAME:PATCH builds with experiments/PATCH.patch, e.g.
# CR_VARIANTS="head pp:pipelined_pairs".
# CR_BUILD_ONLY=1 (here, without a GPU; NVCC=/usr/local/cuda/bin/nvcc) builds them and packs each
# into .devbin/cr-NAME.xz instead, which the lent machine then runs as they are (devbin_unpack.sh)
# rather than spending its time in nvcc: the tree they were built from must be the one that travels.
set -uo pipefail
NVCC=${NVCC:-nvcc}
variants=${CR_VARIANTS:-head lane0 nowait rn:resident_nowait spl:shared_page_loop}
names=
for vp in $variants; do
  v=${vp%%:*} patch_name=
  names+=" $v"
  if [ "${CR_BUILD_ONLY:-0}" != 1 ] && [ -x .devbin/cr-$v ]; then  # built here beforehand
    mkdir -p /tmp/cr-$v && cp .devbin/cr-$v /tmp/cr-$v/cr && continue
  fi
  [ "$v" != "$vp" ] && patch_name=${vp#*:}
  d=/tmp/cr-$v; rm -rf $d; mkdir -p $d; cp -r src/cuda $d/
  if [ -n "$patch_name" ]; then  # patch(1) where the machine has it, else git apply (which needs no repository)
    pf=scripts/device/experiments/$patch_name.patch
    if command -v patch > /dev/null; then patch -s -p2 -d $d < $pf; else git apply --unsafe-paths -p2 --directory=$d $pf; fi || exit 1
  fi
  if [ $v = lane0 ] || [ $v = nowait ]; then  # pipe_wait_page's body edited in the copy
    python3 - $d/cuda/ops/weight_pipe.cuh $v <<'PY'
import sys
p, v = sys.argv[1], sys.argv[2]
s = open(p).read()
old = "  (void)stalls;\n  mbar_wait(&pipe.full[pipe.slot], pipe.parity());\n#endif"
assert old in s
new = {"lane0": "  (void)stalls;\n  if (threadIdx.x % 32 == 0) mbar_wait(&pipe.full[pipe.slot], pipe.parity());\n  __syncwarp();\n#endif",
       "nowait": "  (void)stalls;\n  (void)pipe;\n#endif"}[v]
open(p, "w").write(s.replace(old, new))
PY
  fi
  $NVCC -O3 -std=c++20 -I$d -Isrc -Iinclude -gencode=arch=compute_90a,code=sm_90a bench/consumer_rate.cu -o $d/cr || exit 1
  [ "${CR_BUILD_ONLY:-0}" = 1 ] && { mkdir -p .devbin; xz -T0 -6 -c $d/cr > .devbin/cr-$v.xz; }
done
[ "${CR_BUILD_ONLY:-0}" = 1 ] && exit 0
nvidia-smi --query-gpu=name --format=csv,noheader
for v in $names head; do echo "== $v"; timeout 60 /tmp/cr-$v/cr $([ $v = nowait ] && echo --resident-only) | grep -E "from nowhere|resident|a span"; done
