#include "cli/model_path.h"

#include <cstdlib>
#include <vector>

#include "common/logging.h"
#include "common/status.h"
#include "hub/puller.h"
#include "hub/url.h"

namespace llmserve::cli {

std::filesystem::path resolve_model_dir(const std::string& flag) {
  if (!flag.empty()) {
    if (std::filesystem::is_directory(flag) || !hub::is_repo_id(flag)) return flag;
    LOG_INFO("--model {} is not a local directory: pulling it from the hub", flag);
    hub::PullOptions
        pull;  // endpoint, token and cache from HF_ENDPOINT, HF_TOKEN, LLMSERVE_CACHE_DIR
    pull.repo = flag;
    pull.token = hub::read_token("");
    pull.progress = default_progress_style();
    return hub::pull(pull).dir;
  }
  std::vector<std::filesystem::path> candidates;
  if (const char* env = std::getenv("LLMSERVE_DEFAULT_MODEL"); env != nullptr && *env != '\0') {
    candidates.emplace_back(env);
  }
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto dir = exe.parent_path();
    candidates.push_back(dir / "models/default");                // next to the binary
    candidates.push_back(dir.parent_path() / "models/default");  // build/llmserve
    candidates.push_back(dir.parent_path().parent_path() /
                         "models/default");  // build/release/llmserve
    candidates.push_back(dir.parent_path() / "share/llmserve/models/default");
  }
  candidates.emplace_back("/usr/share/llmserve/models/default");
  std::string tried;
  for (const auto& c : candidates) {
    if (std::filesystem::exists(c / "config.json")) return std::filesystem::weakly_canonical(c);
    tried += "\n  " + c.string();
  }
  fail(StatusCode::kNotFound, "no --model given and the default model was not found; looked in:{}",
       tried);
}

}  // namespace llmserve::cli
