// Entry point of `mk`: dispatches to the registered subcommands and turns every mk::Error into
// one line on stderr and a non-zero exit code.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <memory>

#include "cli/command.h"
#include "model/error.h"

namespace mk::cli {
std::vector<CommandSpec>& command_registry() {
  static std::vector<CommandSpec> registry;
  return registry;
}
}  // namespace mk::cli

int main(int argc, char** argv) {
  using namespace mk::cli;
  CLI::App app{"mk: batch-1 LLM decoding with one persistent kernel per step"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show the help of every subcommand");
  auto& registry = command_registry();
  std::sort(registry.begin(), registry.end(),
            [](const CommandSpec& a, const CommandSpec& b) { return a.name < b.name; });
  std::function<int()> run;
  for (auto& spec : registry) {
    CLI::App* sub = app.add_subcommand(spec.name, spec.help);
    auto body = spec.setup(*sub);
    sub->callback([&run, body] { run = body; });
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return run ? run() : 0;
  } catch (const mk::Error& e) {
    std::fprintf(stderr, "mk: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "mk: error: out of host memory\n");
    return 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mk: internal error: %s\n", e.what());
    return 70;
  }
}
