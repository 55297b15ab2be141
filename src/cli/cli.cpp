#include "cli/cli.h"

#include <CLI/CLI.hpp>

#include "common/logging.h"
#include "common/status.h"

namespace llmserve::cli {

int run(int argc, char** argv) {
  CLI::App app{"llmserve: LLM inference server"};
  app.require_subcommand(1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return 0;
}

}  // namespace llmserve::cli
