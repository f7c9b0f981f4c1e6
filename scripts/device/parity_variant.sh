#!/usr/bin/env bash
# Runs on the lent GPU machine: GPU parity (test_gpu_parity.py, test_greedy_loop.py,
# test_gemm_pass_gpu.py) of variant NAME's binary .devbin/mk-NAME, with the patches it was built
# with (.devbin/variants.txt, build_variants.sh) applied to this copy of the tree, so that their
# tests run too; taken off again afterwards. K: a pytest -k expression; PARITY_TIMEOUT: seconds.
#   bash scripts/device/parity_variant.sh NAME
set -uo pipefail
bash scripts/device/devbin_unpack.sh  # run alone (not from ab_decode.sh), its binary may still be packed
n=${1:?the name of a variant}
patches=$(awk -v n=$n '$1 == n && $2 != "-" {print $2}' .devbin/variants.txt 2>/dev/null)
echo "== parity mk-$n${patches:+ ($patches applied)}"
apply() {  # PATCH [-R]: patch(1) where the machine has it, else git apply (which needs no repository)
  if command -v patch > /dev/null; then patch -s -p1 ${2:-} < $1; else git apply ${2:-} $1; fi
}
for pf in ${patches//+/ }; do apply $pf; done
MK_BIN=$PWD/.devbin/mk-$n timeout ${PARITY_TIMEOUT:-300} python3 -m pytest -q ${K:+-k "$K"} tests/py/test_gpu_parity.py \
  tests/py/test_greedy_loop.py tests/py/test_gemm_pass_gpu.py > $OUT/parity-$n.log 2>&1
tail -1 $OUT/parity-$n.log
for pf in $(echo ${patches//+/ } | tr ' ' '\n' | tac); do apply $pf -R; done
