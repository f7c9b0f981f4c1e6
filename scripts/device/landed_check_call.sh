#!/usr/bin/env bash
# Runs on the lent GPU machine (carry ".devbin"): the checks of a landed commit, by .devbin's builds of
# it (build_variants.sh: head = the tree, NAME = head + an experiment's patch; PHASES=1: ph;
# gr-NAME: bench/gemm_rate.cu built by nvcc with the probes).
# STEPS, each one call:
#   1. VARIANT's prefill A/B against head (VARIANT=NAME: .devbin/mk-NAME, built by build_variants.sh
#      from head + a patch; or VARIANT="NAME NAME ...", all interleaved in each round, then each
#      one's parity): Qwen2.5-1.5B, Llama-3.2-3B and Llama-3.2-1B (AB_SHAPES) at 512 (AB_PROMPTS),
#      two rounds; then its GPU parity (pytest -k "$PARITY_K", default: every test that reaches a
#      prefill; NO_PARITY=1: none) (~6-7 min). E.g. other lengths, without parity:
#      STEPS=1 VARIANT=NAME AB_SHAPES="llama-3.2-1b llama-3.2-3b" AB_PROMPTS="128 1024" NO_PARITY=1.
#   2. the README rows on this card (readme_rows.sh; ~5 min); on an H200, its first rows since 17c2df9.
#   3. the 3B's rows (ROWS="llama-3.2-3b:32,1024"; its 6.4 GB of weights written first).
#   4. 512-token prefills by phase (mk-ph, mk-phbox: PHASES=1 build_variants.sh of head and tbox2):
#      Llama-3.2-3B (head, and phbox with MK_TMA=1) and Qwen2.5-1.5B (head); PHASE_RUNS="SHAPE:NAME:MK_TMA
#      ..." sets the list (e.g. "llama-3.2-3b:ph:0 llama-3.2-3b:phcv:0").
#   5. Nsight Compute on head's Qwen2.5-1.5B 512-token prefill (ncu_step.sh), now with its table by
#      CUDA source line (--import-source on).
#   6. bench/gemm_rate on this card (gr-head: both sm_90a forms' pass times at 64 / 96 / 128 / 256
#      rows, 128 L2-resident tokens, then 32 tokens with weights from HBM), then the TMA-fed passes
#      (MK_TMA=1) against the default cp.async ones: Qwen2.5-1.5B and Llama-3.2-3B at 512, two rounds.
#      Sessions 19 (H200) and 35 (H100) had the TMA form slower: +25% on Qwen, +37% on the 3B.
#   7. What bounds the pass: gemm_rate with the timing-only probes (gr-nofence, gr-no_x_copy,
#      gr-no_w_copy: the experiments' probe_*.patch, built by nvcc alone; their checks fail by
#      design; not in session 37's .devbin) beside gr-head, 128 L2-resident tokens (session 36's H100
#      table in bench/results/NVIDIA-H100-ab-2026-12-06-session36.md); then gr-tbox2 (tma_box.patch: the TMA
#      form with each stage's weights as 3-D boxes of a paged-weight tensor map, 16 or 4 groups of 8
#      rows each, not a bulk copy per 8 rows; its checks must pass) beside the wgmma and TMA forms
#      (~4 min).
#  11. The TMA passes, 512-token prefills of Qwen2.5-1.5B and Llama-3.2-3B, two rounds (~6 min):
#      head's default (cp.async) passes against head's TMA passes (MK_TMA=1), tspin's (tma_spin.patch:
#      the TMA pass waits by a spin in place, not try_wait, whose retry ptxas lays ~400 KB away at
#      the kernel's end) and tbox2's (tma_box + tma_spin + tma_box_kernel: the weights in boxes of up
#      to 128 rows; passes whose rows take no box, QKV's among them, keep cp.async) with MK_TMA=1 and
#      MK_TMA=wide (only the 256-row passes on the TMA). TMA_RUNS="NAME:MK_TMA ..." sets the list
#      (e.g. "head:0 tspin:1 tbox2:wide tbox2:1", session 38's first call).
#      TMA_ROUNDS=1: one round, TMA_SHAPES="llama-3.2-3b": one shape (a call short of device time).
#  12. tbox2's GPU parity with MK_TMA=1 and with MK_TMA=wide (every prefill test, the tiny models,
#      the 1B shape; test_gemm_pass_gpu.py builds gemm_rate --check from the patched tree), then
#      gemm_rate's rates: gr-tspin (the TMA form's spin) and gr-tbox2 (tma-box, boxes of up to 16
#      groups) beside head's forms (~5 min).
#   9. VARIANT's decode A/B against head on Llama-3.2-1B and Qwen2.5-1.5B at contexts 32 and 1024
#      (DECODE_CTXS), two rounds (the 1B's bench rows hold both builds, generic and specialized);
#      its prefill on Qwen 512; its GPU parity (PARITY_K, default: the tiny models, the page widths, the 1B shape,
#      the greedy loop; NO_PARITY=1: none) (~6 min). VARIANT="NAME NAME ...": all interleaved in
#      each round, then each one's parity.
#  13. What a resident span's pages cost the consumers (~5 min): consumer_rate_variants.sh (main's
#      page waits, lane 0's, none, resident_nowait.patch's, shared_page_loop.patch's), the GPU case
#      of the trace's bytes test,
#      then one decode step of Llama-3.2-1B under Nsight Compute (ncu_step.sh: stall reasons by line)
#      by each of NCU_BINS (default "head"; e.g. "head spl", ~2-3 min each, $OUT/ncu-NAME/).
#  14. A change to the decode consumers' page loop (~6 min): consumer_rate_variants.sh with
#      CR_VARIANTS (default "head pp:pipelined_pairs"), then VARIANT's decode A/B against head on
#      Llama-3.2-1B only (DECODE_SHAPES="llama-3.2-1b qwen2.5-1.5b": both; contexts DECODE_CTXS,
#      two rounds), then each one's parity (PARITY_K as step 9's; NO_PARITY=1: none). consumer_rate
#      runs .devbin/cr-NAME where CR_BUILD_ONLY=1 consumer_rate_variants.sh left it (NO_CR=1: not
#      at all). The prepared calls and their builds: docs/PERFORMANCE.md, "Next steps, as of session 52".
set -uo pipefail
bash scripts/device/devbin_unpack.sh > /dev/null
steps=" ${STEPS:-2} "
if [[ $steps == *" 1 "* || $steps == *" 9 "* || $steps == *" 14 "* ]]; then : "${VARIANT:?steps 1, 9 and 14 A/B a build: VARIANT=NAME}"; fi
ab() {  # SHAPE NAMES PROMPTS ROUNDS
  SHAPE=$1 NAMES="$2" GR_NAMES=" " GR_SHORT=" " PROMPTS="$3" ROUNDS=$4 timeout ${AB_TIMEOUT:-300} bash scripts/device/ab_prefill.sh \
    2>&1 | grep -E "^== prefill|^\| [0-9]"
}
tma_ab() {  # "NAME:MK_TMA ...": 512-token prefills of each mk-NAME with MK_TMA set so, Qwen2.5-1.5B and Llama-3.2-3B, TMA_ROUNDS rounds (2)
  for shape in ${TMA_SHAPES:-qwen2.5-1.5b llama-3.2-3b}; do
    for r in $(seq ${TMA_ROUNDS:-2}); do
      for run in $1; do
        local b=${run%%:*} tma=${run#*:}
        echo "== prefill $shape 512, mk-$b, MK_TMA=$tma, round $r"
        MK_TMA=$tma NO_TORCH=1 SHAPE=$shape PROMPTS=512 MK_BIN=$PWD/.devbin/mk-$b LABEL=$b-tma$tma-$shape-$r \
          timeout 300 bash scripts/device/prefill_sweep.sh 2>/dev/null | grep -E "^\| [0-9]"
      done
    done
  done
}
ab_parity() {  # NAME K TIMEOUT: mk-NAME against mk-head, AB_PROMPTS tokens (512) on AB_SHAPES (the three prefill shapes), two rounds; then its GPU parity (pytest -k K) unless NO_PARITY=1
  for shape in ${AB_SHAPES:-qwen2.5-1.5b llama-3.2-3b llama-3.2-1b}; do ab $shape "head $1" "${AB_PROMPTS:-512}" 2; done
  [ -n "${NO_PARITY:-}" ] && return
  for v in $1; do K="$2" PARITY_TIMEOUT=$3 bash scripts/device/parity_variant.sh $v; done
  grep -E "^FAILED" $OUT/parity-*.log
}
decode_ab() {  # SHAPE: VARIANT's decode A/B against head, contexts DECODE_CTXS (32,1024), two rounds
  SHAPE=$1 BINS="head $VARIANT" ROUNDS=2 CTXS=${DECODE_CTXS:-32,1024} bash scripts/device/ab_decode.sh 2>&1 | grep "round"
}
decode_parity() {  # each VARIANT's GPU parity for a decode change (PARITY_K; NO_PARITY=1: none)
  [ -n "${NO_PARITY:-}" ] && return
  for v in $VARIANT; do
    K="${PARITY_K:-tiny_models_on_gpu or page_widths or llama_3_2_1b_shape_on_gpu or greedy}" PARITY_TIMEOUT=200 bash scripts/device/parity_variant.sh $v
  done
  grep -E "^FAILED" $OUT/parity-*.log
}
{
  nvidia-smi --query-gpu=name --format=csv,noheader
  if [[ $steps == *" 1 "* ]]; then
    ab_parity "$VARIANT" "${PARITY_K:-prefill or tiny_models_on_gpu or page_widths or llama_3_2_1b_shape_on_gpu or short_last_token_block or gemm_pass}" 240
  fi
  [[ $steps == *" 2 "* ]] && BIN=head bash scripts/device/readme_rows.sh
  [[ $steps == *" 3 "* ]] && BIN=head ROWS="llama-3.2-3b:32,1024" BENCH_TIMEOUT=400 bash scripts/device/readme_rows.sh
  if [[ $steps == *" 4 "* ]]; then
    for run in ${PHASE_RUNS:-llama-3.2-3b:ph:0 llama-3.2-3b:phbox:1 qwen2.5-1.5b:ph:0}; do
      IFS=: read -r shape v tma <<< "$run"
      echo "== phases, $shape, mk-$v, MK_TMA=$tma"
      MK_TMA=$tma MK_BIN=$PWD/.devbin/mk-$v SHAPE=$shape CONTEXTS=" " PREFILL=512 bash scripts/device/trace_run.sh \
        2>&1 | grep -E "^\| (qkv_rope|attn_partial|o_proj|gate_up|down|attn_norm|mlp_norm) |^L0\.|per layer"
      mv $OUT/trace/prefill-$shape-512.txt $OUT/phases-$shape-$v-tma$tma.txt
    done
    rm -rf $OUT/trace
  fi
  if [[ $steps == *" 6 "* ]]; then
    SHAPE=qwen2.5-1.5b NAMES=" " GR_NAMES="head" GR_SHORT="head" PROMPTS=" " ROUNDS=1 bash scripts/device/ab_prefill.sh 2>&1 |
      grep -E "^==|rate|FAILED|SOME"
    tma_ab "head:0 head:1"
  fi
  if [[ $steps == *" 7 "* ]]; then
    for g in head nofence no_x_copy no_w_copy; do
      echo "== gr-$g"
      timeout 60 .devbin/gr-$g 2>&1 | grep -E "rate  wgmma.*1 token|FAILED|SOME CHECKS"
    done
    for b in 16 4; do  # tma_box.patch (in gr-tbox2), weight boxes of 16 and of 4 groups of 8 rows: its checks must pass
      echo "== gr-tbox2 --box-groups $b"
      timeout 90 .devbin/gr-tbox2 --box-groups $b 2>&1 | grep -E "rate  (wgmma|tma).*1 token|check tma-box|FAILED|SOME CHECKS|all checks"
    done
  fi
  if [[ $steps == *" 9 "* ]]; then
    for shape in llama-3.2-1b qwen2.5-1.5b; do
      decode_ab $shape
    done
    ab qwen2.5-1.5b "head $VARIANT" 512 2
    decode_parity
  fi
  [[ $steps == *" 11 "* ]] && tma_ab "${TMA_RUNS:-head:0 head:1 tspin:1 tbox2:1 tbox2:wide}"
  if [[ $steps == *" 12 "* ]]; then
    for tma in 1 wide; do
      MK_TMA=$tma K="prefill or tiny_models_on_gpu or llama_3_2_1b_shape_on_gpu or short_last_token_block or gemm_pass" \
        PARITY_TIMEOUT=200 bash scripts/device/parity_variant.sh tbox2
      mv $OUT/parity-tbox2.log $OUT/parity-tbox2-tma$tma.log
    done
    grep -E "^FAILED" $OUT/parity-*.log
    for g in head tspin tbox2; do
      echo "== gr-$g"
      timeout 90 .devbin/gr-$g 2>&1 | grep -E "rate  (wgmma|tma).*1 token|FAILED|SOME CHECKS|all checks"
    done
  fi
  if [[ $steps == *" 13 "* ]]; then
    timeout 200 bash scripts/device/consumer_rate_variants.sh
    MK_BIN=$PWD/.devbin/mk-head timeout 120 python3 -m pytest -q tests/py/test_trace.py -k cuda 2>&1 | tail -3
    for b in ${NCU_BINS:-head}; do
      echo "== ncu, mk-$b"
      MK_BIN=$PWD/.devbin/mk-$b timeout 300 bash scripts/device/ncu_step.sh
      mv $OUT/ncu $OUT/ncu-$b
    done
  fi
  if [[ $steps == *" 14 "* ]]; then
    [ -z "${NO_CR:-}" ] && CR_VARIANTS="${CR_VARIANTS:-head pp:pipelined_pairs}" timeout ${CR_TIMEOUT:-150} bash scripts/device/consumer_rate_variants.sh
    for shape in ${DECODE_SHAPES:-llama-3.2-1b}; do
      decode_ab $shape
    done
    decode_parity
  fi
  if [[ $steps == *" 5 "* ]]; then
    PREFILL=512 SHAPE=qwen2.5-1.5b MK_BIN=$PWD/.devbin/mk-head bash scripts/device/ncu_step.sh
  fi
} 2>&1 | grep -v "Writing model shards\|Loading weights" | tee $OUT/summary.txt
cd $OUT && tar czf logs.tgz parity-*.log phases-*.txt prefill_sweep-*.md bench-*.log 2>/dev/null &&
  rm -f parity-*.log phases-*.txt prefill_sweep-*.md bench-*.log
