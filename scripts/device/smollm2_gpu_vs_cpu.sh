#!/usr/bin/env bash
# Runs on the lent GPU machine: the default model (SmolLM2-135M-Instruct, GGUF Q4_1) greedy for 64
# tokens on the GPU and on the CPU executor (same bf16 weights and KV precision), for several
# prompts, raw and chat-templated; prints the ids and the first divergence, if any.
set -uo pipefail
bash scripts/device/devbin_unpack.sh  # .devbin's packed builds, should MK_BIN name one
MODEL=${1:?path to SmolLM2-135M-Instruct.Q4_1.gguf}
MK_BIN=${MK_BIN:-$PWD/build/src/cli/mk}
i=0
while IFS= read -r prompt; do
  i=$((i + 1))
  for mode in raw chat; do
    flag=""; [ $mode = chat ] && flag="--chat"
    for dev in cuda cpu; do
      extra=""; [ $dev = cpu ] && extra="--bf16"
      $MK_BIN generate --model "$MODEL" --prompt "$prompt" $flag --greedy -n 64 --ignore-eos --device $dev $extra \
        --json > /tmp/gen_${i}_${mode}_${dev}.json 2>/tmp/gen_${i}_${mode}_${dev}.err || cat /tmp/gen_${i}_${mode}_${dev}.err
    done
    python3 - "$i" "$mode" <<'PY'
import json, sys
i, mode = sys.argv[1], sys.argv[2]
g = json.load(open(f"/tmp/gen_{i}_{mode}_cuda.json")); c = json.load(open(f"/tmp/gen_{i}_{mode}_cpu.json"))
a, b = g["ids"], c["ids"]
div = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), None)
print(f"prompt {i} {mode}: {len(a)} tokens, " + ("identical" if div is None and len(a) == len(b) else f"first divergence at {div}"))
print("  gpu:", json.dumps(g["text"][:160]))
PY
  done
done <<'PROMPTS'
Once upon a time,
The capital of France is
def fibonacci(n):
Explain why the sky is blue in two sentences.
Write a haiku about autumn.
PROMPTS
