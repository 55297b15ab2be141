// The command line: `llmserve <subcommand> [flags]`. Each subcommand lives in its own file and
// registers its flags on the shared CLI11 app.
#pragma once

namespace llmserve::cli {

// Parses argv, runs the chosen subcommand, returns the process exit code.
int run(int argc, char** argv);

}  // namespace llmserve::cli
