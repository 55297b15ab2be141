// Subcommand registration: each adds its flags to the app and sets `action` to run when chosen.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace llmserve::cli {

using Action = std::function<int()>;

void add_generate_command(CLI::App& app, Action& action);
void add_tokenize_commands(CLI::App& app, Action& action);
void add_bench_commands(CLI::App& app, Action& action);
void add_serve_command(CLI::App& app, Action& action);
void add_pull_command(CLI::App& app, Action& action);
void add_build_command(CLI::App& app, Action& action);

}  // namespace llmserve::cli
