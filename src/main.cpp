// llmserve entry point: parses the command line and runs one subcommand (see src/cli/).
#include "cli/cli.h"

int main(int argc, char** argv) {
  return llmserve::cli::run(argc, argv);
}
