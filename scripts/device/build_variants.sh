#!/usr/bin/env bash
# Builds (here, without a GPU) one mk binary and one bench/gemm_rate binary per variant into .devbin/
# (mk-NAME, gr-NAME), for an A/B on the lent GPU in one call (carry ".devbin"). A variant is NAME or
# NAME:PATCH, PATCH a file of scripts/device/experiments/ (without .patch) applied to this tree for
# its build and taken off again; NAME alone is the tree as it is. .devbin/variants.txt records
# "NAME PATCH-FILE" (ab_prefill.sh applies the patch for the variant's parity tests). Needs a tree
# whose files the patches touch are unmodified. Also: ARCH and PHASES, as build_devbin.sh takes them.
#   VARIANTS="head unsw:gemm_unswizzled" bash scripts/device/build_variants.sh
set -euo pipefail
ARCH=${ARCH:-arch=compute_90a,code=sm_90a}
mkdir -p .devbin
for v in ${VARIANTS:?VARIANTS names the variants}; do
  name=${v%%:*} patch=
  [ "$name" != "$v" ] && patch=scripts/device/experiments/${v#*:}.patch
  if [ -n "$patch" ]; then
    git apply "$patch"
    trap 'git apply -R "$patch"' EXIT  # taken off again whatever happens to the build
  fi
  echo "== $name${patch:+ ($patch)}"
  bash scripts/device/build_devbin.sh > /tmp/build_variants-$name.log 2>&1 || { tail -20 /tmp/build_variants-$name.log; exit 1; }
  mv .devbin/mk .devbin/mk-$name
  { grep -v "^$name " .devbin/variants.txt 2>/dev/null || true; echo "$name ${patch:--}"; } > .devbin/variants.new
  mv .devbin/variants.new .devbin/variants.txt
  nvcc -O3 -std=c++20 -Isrc -Iinclude "-gencode=$ARCH" --expt-relaxed-constexpr bench/gemm_rate.cu -o .devbin/gr-$name
  if [ -n "$patch" ]; then
    git apply -R "$patch"
    trap - EXIT
  fi
done
ls -la .devbin
