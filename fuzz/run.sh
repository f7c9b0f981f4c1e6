#!/usr/bin/env bash
# fuzz/run.sh TARGET SECONDS [BUILD_DIR]: runs one libFuzzer target for SECONDS on a scratch copy
# of fuzz/corpus/TARGET (the seeds are not modified), with fuzz/TARGET.dict when there is one.
# New crashes, leaks, timeouts and OOMs are saved to fuzz/crashers/TARGET/ and make it exit non-zero.
# fuzz/run.sh --replay TARGET [BUILD_DIR]: runs every file of fuzz/crashers/TARGET/ once.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

replay=0
if [ "${1:-}" = "--replay" ]; then replay=1; shift; fi
target="${1:?usage: fuzz/run.sh [--replay] TARGET [SECONDS] [BUILD_DIR]}"
if [ $replay = 1 ]; then build="${2:-$here/../build-fuzz}"; else seconds="${2:?SECONDS}"; build="${3:-$here/../build-fuzz}"; fi
bin="$build/fuzz/$target"
[ -x "$bin" ] || { echo "run.sh: $bin is not built (make fuzz)" >&2; exit 2; }

case "$target" in
  fuzz_gguf|fuzz_safetensors) max_len=262144 ;;
  fuzz_tokenizer_json) max_len=131072 ;;
  *) max_len=65536 ;;
esac
common=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -max_len=$max_len)
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

crashers="$here/crashers/$target"
if [ $replay = 1 ]; then
  shopt -s nullglob
  runs=("$crashers"/*)  # not dotfiles (.gitkeep)
  if [ ${#runs[@]} = 0 ]; then echo "$target: no crashers to replay"; exit 0; fi
  log="$(mktemp)"
  if "$bin" "${common[@]}" "${runs[@]}" >"$log" 2>&1; then
    echo "$target: ${#runs[@]} crasher(s) replayed, all pass"
    rm -f "$log"; exit 0
  fi
  tail -n 60 "$log"; rm -f "$log"
  echo "$target: a crasher of $crashers/ still fails (see above)" >&2
  exit 1
fi

mkdir -p "$crashers"
work="$(mktemp -d "${TMPDIR:-/tmp}/mk-$target.XXXXXX")"
trap 'rm -rf "$work"' EXIT
dict=()
[ -f "$here/$target.dict" ] && dict=(-dict="$here/$target.dict")
log="$work/log"
set +e
"$bin" "${common[@]}" "${dict[@]}" -max_total_time="$seconds" -print_final_stats=1 \
  -artifact_prefix="$crashers/" "$work" "$here/corpus/$target" >"$log" 2>&1
rc=$?
set -e
if [ $rc != 0 ]; then
  tail -n 60 "$log"
  echo "$target: FAILED (exit $rc); the input is in $crashers/ (see above)" >&2
  exit 1
fi
# One summary line: executions, coverage, speed.
done_line="$(grep -E "^#[0-9]+[[:space:]]+DONE" "$log" | tail -n 1 || true)"
execs="$(grep -E '^stat::number_of_executed_units:' "$log" | awk "{print \$2}" || true)"
echo "$target: ${seconds}s, ${execs:-?} execs | ${done_line:-$(tail -n 1 "$log")} | crashes: 0"
