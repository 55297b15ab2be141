#include "cli/cli.h"

#include <cstdio>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "common/logging.h"
#include "common/status.h"
#include "common/version.h"

namespace llmserve::cli {

int run(int argc, char** argv) {
  CLI::App app{
      "llmserve: an LLM inference server (KServe v2, Triton generate, OpenAI) with a CPU reference "
      "backend"};
  app.set_version_flag("--version", "llmserve " + std::string(kVersion));
  app.require_subcommand(1);
  std::string log_level = "info";
  std::string log_format = "text";
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str();
  app.add_option("--log-format", log_format, "text|json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  Action action;
  add_generate_command(app, action);
  add_tokenize_commands(app, action);
  add_bench_commands(app, action);
  add_serve_command(app, action);
  add_pull_command(app, action);
  add_build_command(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    init_logging(log_level, log_format == "json" ? LogFormat::kJson : LogFormat::kText);
    return action ? action() : 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return e.code() == StatusCode::kInternal ? 70 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "internal error: %s\n", e.what());
    return 70;
  }
}

}  // namespace llmserve::cli
