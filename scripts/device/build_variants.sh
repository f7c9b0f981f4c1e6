#!/usr/bin/env bash
# Builds (here, without a GPU) one mk binary and one bench/gemm_rate binary per variant into .devbin/
# (mk-NAME.xz, gr-NAME.xz: xz-packed, ~1.6 MB each, unpacked on the GPU machine by
# devbin_unpack.sh), for an A/B on the lent GPU in one call (carry ".devbin"). A variant is NAME or
# NAME:PATCH[+PATCH...], each PATCH a file of scripts/device/experiments/ (without .patch), applied
# in order to this tree for its build and taken off again; NAME alone is the tree as it is.
# .devbin/variants.txt records "NAME PATCH-FILE[+PATCH-FILE...]" (parity_variant.sh applies them for
# the variant's parity tests). Needs a tree whose files the patches touch are unmodified. Also: ARCH,
# PHASES and NOWAITS, as build_devbin.sh takes them; NO_GEMM_RATE=1 skips gemm_rate.
#   VARIANTS="head tspin:tma_spin tbox2:tma_box+tma_spin+tma_box_kernel" bash scripts/device/build_variants.sh
set -euo pipefail
ARCH=${ARCH:-arch=compute_90a,code=sm_90a}
mkdir -p .devbin
applied=()
take_off() {  # the applied patches, last first
  for ((k = ${#applied[@]} - 1; k >= 0; k--)); do git apply -R "${applied[k]}"; done
  applied=()
}
trap take_off EXIT  # whatever happens to the build
for v in ${VARIANTS:?VARIANTS names the variants}; do
  name=${v%%:*} patches=
  if [ "$name" != "$v" ]; then
    patches=$(echo "${v#*:}" | tr '+' '\n' | sed 's|.*|scripts/device/experiments/&.patch|' | paste -sd+)
    for p in ${patches//+/ }; do
      git apply "$p"
      applied+=("$p")
    done
  fi
  echo "== $name${patches:+ ($patches)}"
  bash scripts/device/build_devbin.sh > /tmp/build_variants-$name.log 2>&1 || { tail -20 /tmp/build_variants-$name.log; exit 1; }
  xz -T0 -6 -c .devbin/mk > .devbin/mk-$name.xz
  rm -f .devbin/mk .devbin/mk-$name
  { grep -v "^$name " .devbin/variants.txt 2>/dev/null || true; echo "$name ${patches:--}"; } > .devbin/variants.new
  mv .devbin/variants.new .devbin/variants.txt
  if [ "${NO_GEMM_RATE:-0}" != 1 ]; then
    nvcc -O3 -std=c++20 -Isrc -Iinclude "-gencode=$ARCH" --expt-relaxed-constexpr bench/gemm_rate.cu -o .devbin/gr-$name
    xz -T0 -6 -f .devbin/gr-$name
  fi
  take_off
done
ls -la .devbin
