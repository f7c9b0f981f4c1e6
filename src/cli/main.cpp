// Entry point of `mk`: dispatches to the registered subcommands and turns every error into one
// line on stderr ("mk: error: ...") and an exit code (docs/ERRORS.md lists them all):
//   0 success (and --help)          1 an error in the input, files or environment (mk::Error)
//   2 a bad command line            3 not enough host or GPU memory (mk::ResourceError, bad_alloc)
//   70 an internal error (a bug)    130 interrupted by Ctrl-C (SIGINT)
#include <algorithm>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>

#include "cli/command.h"
#include "mk_build_commit.h"
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
  app.set_version_flag("--version", std::string("mk ") + MK_BUILD_COMMIT, "Print the commit mk was built from and exit");
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
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --help-all
    std::string where = "mk";
    for (const auto& spec : registry)
      if (argc > 1 && spec.name == argv[1]) where += " " + spec.name;
    std::string what = mk::one_line(e.what());
    if (where == "mk" && argc > 1 && argv[1][0] != '-') {
      what = "unknown command " + mk::quote(argv[1]) + " (commands:";
      for (const auto& spec : registry) what += " " + spec.name;
      what += ")";
    }
    std::fprintf(stderr, "mk: error: %s (see '%s --help')\n", what.c_str(), where.c_str());
    return 2;
  }
  try {
    return run ? run() : 0;
  } catch (const mk::ResourceError& e) {
    std::fprintf(stderr, "mk: error: %s\n", mk::one_line(e.what()).c_str());
    return 3;
  } catch (const mk::Error& e) {
    std::fprintf(stderr, "mk: error: %s\n", mk::one_line(e.what()).c_str());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "mk: error: out of host memory (a smaller --ctx or model needs less)\n");
    return 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mk: internal error: %s\n", mk::one_line(e.what()).c_str());
    return 70;
  }
}
