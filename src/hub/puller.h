// `llmserve pull`: a Hugging Face model repository revision into a local directory a server can
// load. Lists the revision (one API call, which also pins the commit every file is fetched at),
// chooses the files (see select_files), skips those already complete, downloads the rest
// (file_download.h), and records what it verified in "<dest>/.llmserve-pull.json" so that a
// re-run, e.g. an init container starting again, neither re-downloads nor re-hashes.
//
// Concurrent pulls into the same directory (replicas sharing a node cache) take turns on
// "<dest>/.llmserve-pull.lock"; the second one then finds everything complete.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/progress.h"
#include "hub/file_download.h"

namespace llmserve::hub {

inline constexpr const char* kDefaultEndpoint = "https://huggingface.co";

struct PullOptions {
  std::string repo;                   // "ORG/NAME"
  std::string revision = "main";      // branch, tag or commit
  std::string endpoint;               // "" → $HF_ENDPOINT, else https://huggingface.co
  std::string token;                  // "" → anonymous
  std::filesystem::path dest;         // "" → default_model_dir(repo, revision)
  std::vector<std::string> includes;  // globs replacing the default file set
  std::string ca_file;
  std::chrono::milliseconds timeout{30'000};
  RetryPolicy retry;
  ProgressStyle progress = ProgressStyle::kLog;
};

struct PullResult {
  std::filesystem::path dir;
  std::string commit;
  int num_files = 0;
  int num_downloaded = 0;  // the others were already complete
  uint64_t bytes_downloaded = 0;
};

// $LLMSERVE_CACHE_DIR, else $XDG_CACHE_HOME/llmserve, else $HOME/.cache/llmserve.
std::filesystem::path cache_root();

// cache_root()/models/ORG/NAME/REVISION ('/' in a revision becomes "--").
std::filesystem::path default_model_dir(const std::string& repo, const std::string& revision);

// The token from `token_file` (trimmed) if given, else $HF_TOKEN, else "". Throws
// Error(kNotFound) when the file cannot be read or is empty.
std::string read_token(const std::string& token_file);

// Pulls; throws Error with a message that says what to do (see hub_error.h, file_download.h).
PullResult pull(const PullOptions& options);

}  // namespace llmserve::hub
