// `llmserve pull`: downloads a Hugging Face model repository revision (config, safetensors,
// tokenizer files) into a local directory and prints that directory on stdout; progress and logs
// go to stderr. What an init container runs; see docs/pull.md.
#include <iostream>

#include "cli/commands.h"
#include "common/status.h"
#include "hub/puller.h"

namespace llmserve::cli {
namespace {

struct PullFlags {
  hub::PullOptions options;
  std::string token_file;
  std::string progress = "auto";
  double timeout_s = 30;
};

int run_pull(PullFlags flags) {
  auto& o = flags.options;
  o.token = hub::read_token(flags.token_file);
  if (flags.timeout_s <= 0)
    fail(StatusCode::kInvalidArgument, "--timeout must be > 0, got {}", flags.timeout_s);
  o.timeout = std::chrono::milliseconds(static_cast<int64_t>(flags.timeout_s * 1000));
  o.progress = progress_style_from_flag(flags.progress);
  auto result = hub::pull(o);
  std::cout << result.dir.string() << std::endl;
  return 0;
}

}  // namespace

void add_pull_command(CLI::App& app, Action& action) {
  auto flags = std::make_shared<PullFlags>();
  auto& o = flags->options;
  CLI::App* cmd = app.add_subcommand("pull",
                                     "Download a Hugging Face model repository (config, "
                                     "safetensors, tokenizer) and print its directory");
  cmd->add_option("--repo", o.repo, "Repository, ORG/NAME")->required();
  cmd->add_option("--revision", o.revision, "Branch, tag or commit")->capture_default_str();
  cmd->add_option(
      "--token-file", flags->token_file,
      "File holding the access token for private or gated repositories (default: $HF_TOKEN)");
  cmd->add_option(
      "--dest", o.dest,
      "Directory to download into (default: CACHE/models/ORG/NAME/REVISION, CACHE being "
      "$LLMSERVE_CACHE_DIR or ~/.cache/llmserve)");
  cmd->add_option("--endpoint", o.endpoint, "Hub URL (default: https://huggingface.co)")
      ->envname("HF_ENDPOINT");
  cmd->add_option("--include", o.includes,
                  "Download the files matching this glob instead of the default set; repeatable "
                  "(e.g. --include '*.json' --include 'model-*.safetensors')");
  cmd->add_option("--ca-file", o.ca_file,
                  "Extra trusted CA certificates (PEM) for https; SSL_CERT_FILE also works")
      ->check(CLI::ExistingFile);
  cmd->add_option("--retries", o.retry.max_retries,
                  "Retries of a failed request, with exponential backoff")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  cmd->add_option("--timeout", flags->timeout_s, "Seconds to wait for a connection or for data")
      ->capture_default_str();
  cmd->add_option("--progress", flags->progress,
                  "auto (a bar on a terminal, else log lines), bar, log or none")
      ->check(CLI::IsMember({"auto", "bar", "log", "none"}))
      ->capture_default_str();
  cmd->callback([&action, flags] { action = [flags] { return run_pull(*flags); }; });
}

}  // namespace llmserve::cli
