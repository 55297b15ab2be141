// One repository file from the hub onto disk: resumable (HTTP Range into "<dest>.part"), retried
// with exponential backoff on network failures and 408/429/5xx, checked (size always; SHA-256 for
// LFS files, the Git blob id for the others, when known) and renamed into place only when whole and
// correct. A file that fails its check is removed, never left where a server would load it.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "common/progress.h"
#include "hub/http_client.h"
#include "hub/hub_error.h"
#include "hub/repo_listing.h"

namespace llmserve::hub {

struct ContentRange {
  uint64_t first = 0;
  uint64_t last = 0;              // inclusive
  std::optional<uint64_t> total;  // nullopt for "*"
};

// "bytes 100-199/200" or "bytes 100-199/*".
std::optional<ContentRange> parse_content_range(std::string_view value);

// The "Range" field asking for everything from `offset` on ("bytes=100-").
std::string range_from(uint64_t offset);

struct RetryPolicy {
  int max_retries = 5;  // retries after the first attempt
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{16'000};
};

// The pause before retry number `retry` (0-based): initial × 2^retry, at most max_backoff.
std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int retry);

// What the hub's answer headers say about a file: X-Linked-Etag (the SHA-256 for LFS files),
// X-Linked-Size, X-Repo-Commit, from the hub's own answer (a redirect's, for LFS files) or the
// final one.
struct LinkedInfo {
  std::optional<std::string> sha256;
  std::optional<uint64_t> size;
  std::optional<std::string> commit;
};
LinkedInfo linked_info(const FetchResult& result);

// Checks a complete file against what the listing says. Returns "" when it matches, else what
// differs ("size is 10 bytes, the hub says 12").
std::string verify_file(const std::filesystem::path& path, const RepoFile& file);

struct DownloadContext {
  HttpClient& client;
  const Url& endpoint;  // where the token may go
  const std::string& token;
  const RetryPolicy& retry;
  Progress& progress;
  const std::filesystem::path& root;  // the destination directory; downloads stay under it
};

// Creates the directories from `root` down to `dir` (which must lie under it), refusing any that
// is a symbolic link: a link planted in the destination must not take a download elsewhere.
void create_real_directories(const std::filesystem::path& root, const std::filesystem::path& dir);

// Downloads `file` from `url` to `dest` (parent folders created under ctx.root, none through a
// symbolic link; the part file is never opened through one either). Returns the bytes
// transferred. Throws Error: the hub's answer explained (see hub_error.h), kUnavailable after the
// retries are spent, kDataLoss when the content does not match the hub's size or hash, or the
// server sends more bytes than the listing says (cut off at that size, not after).
uint64_t download_file(const DownloadContext& ctx, const RepoFile& file, const Url& url,
                       const std::filesystem::path& dest, const HubRequestContext& what);

}  // namespace llmserve::hub
