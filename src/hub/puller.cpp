#include "hub/puller.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/logging.h"
#include "common/status.h"
#include "hub/hub_error.h"
#include "hub/repo_listing.h"
#include "hub/url.h"

namespace llmserve::hub {
namespace fs = std::filesystem;

namespace {

using nlohmann::json;

constexpr const char* kManifestName = ".llmserve-pull.json";
constexpr const char* kJournalName =
    ".llmserve-pull.journal";  // one line per file since the record
constexpr const char* kLockName = ".llmserve-pull.lock";
constexpr size_t kMaxListingBytes = 64 << 20;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

// An exclusive flock on a file in the destination, held for the whole pull.
class DirLock {
 public:
  explicit DirLock(const fs::path& path) {
    fd_ = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd_ < 0)
      fail(StatusCode::kFailedPrecondition, "cannot create {}: {}", path.string(),
           std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      LOG_INFO("waiting for another pull into {} to finish", path.parent_path().string());
      while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
      }
    }
  }
  ~DirLock() { ::close(fd_); }
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_ = -1;
};

int64_t mtime_of(const fs::path& p) {
  std::error_code ec;
  auto t = fs::last_write_time(p, ec);
  return ec ? 0 : static_cast<int64_t>(t.time_since_epoch().count());
}

json read_manifest(const fs::path& dir) {
  std::ifstream in(dir / kManifestName);
  if (!in) return json::object();
  json m = json::parse(in, nullptr, /*allow_exceptions=*/false);
  return m.is_object() && m.contains("files") && m["files"].is_object() ? m : json::object();
}

// Opens `path` for writing (O_NOFOLLOW: never through a planted symbolic link).
int open_for_write(const fs::path& path, int extra_flags) {
  const int fd =
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | extra_flags, 0644);
  if (fd < 0) {
    fail(StatusCode::kFailedPrecondition, "cannot write {}: {}", path.string(),
         errno == ELOOP ? "it is a symbolic link" : std::strerror(errno));
  }
  return fd;
}

void write_all(int fd, std::string_view data, const fs::path& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      fail(StatusCode::kResourceExhausted, "cannot write {}: {}", path.string(),
           std::strerror(errno));
    data.remove_prefix(static_cast<size_t>(n));
  }
}

void write_manifest(const fs::path& dir, const json& manifest) {
  const fs::path tmp = dir / (std::string(kManifestName) + ".tmp");
  const int fd = open_for_write(tmp, O_TRUNC);
  try {
    write_all(fd, manifest.dump(2) + "\n", tmp);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  fs::rename(tmp, dir / kManifestName);
}

// The record of a pull in progress: each finished file appends one line to the journal (O(1) per
// file; rewriting the whole record per file was quadratic: 22 s for 3,000 files); the record is
// written whole once at the end and the journal removed. A pull cut short leaves the journal,
// which the next one replays.
class Journal {
 public:
  explicit Journal(const fs::path& dir)
      : path_(dir / kJournalName), fd_(open_for_write(path_, O_APPEND)) {}
  ~Journal() { ::close(fd_); }
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;
  void add(const std::string& commit, const std::string& file, const json& entry) {
    write_all(fd_, json{{"commit", commit}, {"path", file}, {"entry", entry}}.dump() + "\n", path_);
  }
  // Applies the journal's lines for `commit` to manifest["files"].
  static void replay(const fs::path& dir, const std::string& commit, json& manifest) {
    std::ifstream in(dir / kJournalName);
    for (std::string line; std::getline(in, line);) {
      const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!j.is_object() || j.value("commit", "") != commit || !j.contains("path") ||
          !j["path"].is_string())
        continue;
      manifest["files"][j["path"].get<std::string>()] = j.value("entry", json::object());
    }
  }
  void remove() { fs::remove(path_); }

 private:
  fs::path path_;
  int fd_;
};

json manifest_entry(const fs::path& target, const RepoFile& f) {
  json e = {{"size", fs::file_size(target)}, {"mtime", mtime_of(target)}};
  if (f.sha256) e["sha256"] = *f.sha256;
  if (f.blob_id) e["blob_id"] = *f.blob_id;
  return e;
}

// Whether `target` already holds `f`: recorded by an earlier pull with the same content id and
// untouched since, or (not recorded) of the right size and, where the hub gave one, hash.
bool is_complete(const fs::path& target, const RepoFile& f, const json& manifest) {
  std::error_code ec;
  // A symbolic link is never complete: the download replaces the link itself.
  if (!fs::is_regular_file(fs::symlink_status(target, ec))) return false;
  const uint64_t size = fs::file_size(target, ec);
  if (ec || (f.size && size != *f.size)) return false;
  const json& files = manifest.contains("files") ? manifest["files"] : json::object();
  if (files.contains(f.path)) {
    const json& e = files[f.path];
    const bool same_id = (!f.sha256 || e.value("sha256", "") == *f.sha256) &&
                         (!f.blob_id || e.value("blob_id", "") == *f.blob_id);
    if (same_id && e.value("size", uint64_t{0}) == size &&
        e.value("mtime", int64_t{0}) == mtime_of(target)) {
      return true;
    }
  }
  std::string mismatch = verify_file(target, f);
  if (!mismatch.empty()) LOG_INFO("{}: {}; downloading it again", f.path, mismatch);
  return mismatch.empty();
}

Url endpoint_url(const PullOptions& o) {
  std::string text = !o.endpoint.empty() ? o.endpoint : env("HF_ENDPOINT");
  if (text.empty()) text = kDefaultEndpoint;
  auto url = parse_url(text);
  if (!url)
    fail(StatusCode::kInvalidArgument, "--endpoint must be http(s)://host[:port][/path], got '{}'",
         text);
  return *url;
}

std::string endpoint_name(const Url& endpoint) {
  std::string s = endpoint.to_string();
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

RepoListing fetch_listing(HttpClient& client, const Url& endpoint, const PullOptions& o,
                          const HubRequestContext& what) {
  const Url url = revision_api_url(endpoint, o.repo, o.revision);
  for (int retry = 0;; ++retry) {
    std::string body;
    BodyCallbacks cb;
    cb.on_data = [&body](std::string_view data) {
      if (body.size() + data.size() > kMaxListingBytes) {
        fail(StatusCode::kDataLoss, "the revision listing is larger than {} bytes",
             kMaxListingBytes);
      }
      body.append(data);
    };
    std::string why;
    try {
      FetchResult r = client.get({url, {}, o.token, endpoint}, cb);
      if (r.status >= 200 && r.status < 300) return parse_repo_listing(body);
      if (!is_retryable_status(r.status)) throw_hub_error(r, what);
      why = fmt::format("listing {}: HTTP {}", o.repo, r.status);
    } catch (const Error& e) {
      if (e.code() != StatusCode::kUnavailable) throw;
      why = e.what();
    }
    if (retry >= o.retry.max_retries) {
      fail(StatusCode::kUnavailable,
           "{} (gave up after {} attempts; check the network, --endpoint or HF_ENDPOINT)", why,
           retry + 1);
    }
    auto delay = backoff_delay(o.retry, retry);
    LOG_WARN("{}; retry {}/{} in {:.1f} s", why, retry + 1, o.retry.max_retries,
             static_cast<double>(delay.count()) / 1000);
    std::this_thread::sleep_for(delay);
  }
}

}  // namespace

fs::path cache_root() {
  if (auto dir = env("LLMSERVE_CACHE_DIR"); !dir.empty()) return dir;
  if (auto dir = env("XDG_CACHE_HOME"); !dir.empty()) return fs::path(dir) / "llmserve";
  if (auto home = env("HOME"); !home.empty()) return fs::path(home) / ".cache/llmserve";
  fail(StatusCode::kFailedPrecondition,
       "no cache directory: set LLMSERVE_CACHE_DIR or HOME, or pass --dest");
}

fs::path default_model_dir(const std::string& repo, const std::string& revision) {
  std::string rev;
  for (char c : revision) rev += c == '/' ? std::string("--") : std::string(1, c);
  return cache_root() / "models" / repo / rev;
}

std::string read_token(const std::string& token_file) {
  if (token_file.empty()) return env("HF_TOKEN");
  std::ifstream in(token_file);
  if (!in) fail(StatusCode::kNotFound, "--token-file {}: cannot read it", token_file);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string token = ss.str();
  const auto first = token.find_first_not_of(" \t\r\n");
  if (first == std::string::npos)
    fail(StatusCode::kInvalidArgument, "--token-file {} is empty", token_file);
  token = token.substr(first, token.find_last_not_of(" \t\r\n") - first + 1);
  return token;
}

PullResult pull(const PullOptions& o) {
  if (!is_repo_id(o.repo)) {
    fail(StatusCode::kInvalidArgument,
         "a repository is named ORG/NAME (letters, digits, '-', '_', '.'), got '{}'", o.repo);
  }
  if (o.revision.empty()) fail(StatusCode::kInvalidArgument, "--revision must not be empty");
  const Url endpoint = endpoint_url(o);
  PullResult result;
  result.dir = o.dest.empty() ? default_model_dir(o.repo, o.revision) : o.dest;
  fs::create_directories(result.dir);
  DirLock lock(result.dir / kLockName);
  LOG_INFO("pulling {} at '{}' from {} into {}", o.repo, o.revision, endpoint_name(endpoint),
           result.dir.string());

  HttpClientOptions http;
  http.ca_file = o.ca_file;
  http.timeout = o.timeout;
  HttpClient client(http);
  HubRequestContext what{endpoint_name(endpoint), o.repo, o.revision, "", !o.token.empty()};
  RepoListing listing = fetch_listing(client, endpoint, o, what);
  result.commit = listing.commit.empty() ? o.revision : listing.commit;
  std::vector<RepoFile> files = select_files(listing.files, o.includes);
  if (files.empty()) {
    fail(StatusCode::kNotFound, "{} at '{}' has no files to download ({} in the repository{})",
         o.repo, o.revision, listing.files.size(),
         o.includes.empty() ? "; choose some with --include" : " match --include");
  }
  uint64_t total = 0;
  for (const auto& f : files) total += f.size.value_or(0);
  LOG_INFO("commit {}: {} files, {}", result.commit, files.size(), format_bytes(total));

  json manifest = read_manifest(result.dir);
  if (manifest.value("commit", "") != result.commit) manifest["files"] = json::object();
  manifest["repo"] = o.repo;
  manifest["revision"] = o.revision;
  manifest["commit"] = result.commit;
  manifest["complete"] = false;
  Journal::replay(result.dir, result.commit, manifest);
  Journal journal(result.dir);
  Progress progress(o.progress);
  DownloadContext ctx{client, endpoint, o.token, o.retry, progress, result.dir};
  for (const auto& f : files) {
    const fs::path target = result.dir / f.path;
    ++result.num_files;
    if (is_complete(target, f, manifest)) {
      LOG_DEBUG("{} is complete", f.path);
    } else {
      what.file = f.path;
      result.bytes_downloaded +=
          download_file(ctx, f, resolve_url(endpoint, o.repo, result.commit, f.path), target, what);
      ++result.num_downloaded;
    }
    manifest["files"][f.path] = manifest_entry(target, f);
    journal.add(result.commit, f.path, manifest["files"][f.path]);
  }
  manifest["complete"] = true;
  write_manifest(result.dir, manifest);
  journal.remove();
  LOG_INFO("{} is complete in {} ({} of {} files downloaded, {})", o.repo, result.dir.string(),
           result.num_downloaded, result.num_files, format_bytes(result.bytes_downloaded));
  return result;
}

}  // namespace llmserve::hub
