#!/usr/bin/env bash
# Fetches real tokenizer vocabularies (GGUF vocab-only files of GPT-2, Llama 3, Qwen2, Llama 2 and
# Phi-3) from the llama-cpp-python source package on PyPI into the tokenizer test cache.
#
# They are too large to commit (0.7 to 7.8 MB each), so tests/py/test_tokenizer.py uses them when
# present and skips those cases otherwise. Cache: $MK_TOKENIZER_CACHE, default ~/.cache/mk/tokenizer.
set -euo pipefail
CACHE="${MK_TOKENIZER_CACHE:-$HOME/.cache/mk/tokenizer}"
PY="${PYTHON:-$(dirname "$0")/../../../.venv/bin/python}"
VERSION=0.3.36
FILES="gpt-2 llama-bpe qwen2 llama-spm phi-3"
mkdir -p "$CACHE"
missing=0
for f in $FILES; do [[ -s "$CACHE/ggml-vocab-$f.gguf" ]] || missing=1; done
if [[ $missing == 0 ]]; then echo "already in $CACHE"; exit 0; fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$PY" -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$tmp"
members=()
for f in $FILES; do members+=("llama_cpp_python-$VERSION/vendor/llama.cpp/models/ggml-vocab-$f.gguf"); done
tar -xzf "$tmp/llama_cpp_python-$VERSION.tar.gz" -C "$tmp" "${members[@]}"
for f in $FILES; do mv "$tmp/llama_cpp_python-$VERSION/vendor/llama.cpp/models/ggml-vocab-$f.gguf" "$CACHE/"; done
echo "fetched into $CACHE: $FILES"
