#include "hub/file_download.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "common/hasher.h"
#include "common/logging.h"
#include "common/status.h"

namespace llmserve::hub {
namespace fs = std::filesystem;

namespace {

std::optional<uint64_t> parse_u64(std::string_view s) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// An ETag's value without quotes or a weak prefix.
std::string strip_etag(std::string_view v) {
  if (v.substr(0, 2) == "W/") v.remove_prefix(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  return std::string(v);
}

bool is_sha256_hex(std::string_view s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

uint64_t size_on_disk(const fs::path& p) {
  std::error_code ec;
  auto size = fs::file_size(p, ec);
  return ec ? 0 : size;
}

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<FILE, FileCloser>;

// `path` opened to append or rewrite, never through a symbolic link (O_NOFOLLOW): a link planted
// where a download goes would otherwise have it overwrite a file outside the destination.
FilePtr open_no_follow(const fs::path& path, bool is_append) {
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (is_append ? O_APPEND : O_TRUNC);
  const int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) {
    if (errno == ELOOP) {
      fail(StatusCode::kFailedPrecondition,
           "refusing to write {}: it is a symbolic link (remove it and pull again)", path.string());
    }
    fail(StatusCode::kFailedPrecondition, "cannot write {}: {}", path.string(),
         std::strerror(errno));
  }
  FilePtr out(::fdopen(fd, is_append ? "ab" : "wb"));
  if (!out) {
    ::close(fd);
    fail(StatusCode::kFailedPrecondition, "cannot write {}: {}", path.string(),
         std::strerror(errno));
  }
  return out;
}

enum class Attempt { kComplete, kRetry };

// One file's download across its attempts.
class Download {
 public:
  Download(const DownloadContext& ctx, const RepoFile& file, const Url& url, const fs::path& dest,
           const HubRequestContext& what)
      : ctx_(ctx),
        expected_(file),
        url_(url),
        dest_(dest),
        part_(dest.string() + ".part"),
        what_(what) {}

  uint64_t run() {
    create_real_directories(ctx_.root, dest_.parent_path());
    bool has_restarted = false;
    for (;;) {
      uint64_t offset = size_on_disk(part_);
      if (expected_.size && offset > *expected_.size) {
        fs::remove(part_);
        offset = 0;
      }
      const bool is_resumed = offset > 0;
      const bool is_on_disk = expected_.size && offset == *expected_.size && offset > 0;
      if (!is_on_disk && transfer(offset) == Attempt::kRetry) continue;
      const uint64_t size = size_on_disk(part_);
      if (expected_.size && size < *expected_.size) {  // the answer ended early but "cleanly"
        pause_or_fail(fmt::format("{}: got {} of {} bytes", what_.file, size, *expected_.size));
        continue;
      }
      std::string mismatch = verify_file(part_, expected_);
      if (!mismatch.empty()) {
        fs::remove(part_);
        if (is_resumed &&
            !has_restarted) {  // the kept part may be of another version: once from zero
          LOG_WARN("{}: {} after resuming; downloading it again from the start", what_.file,
                   mismatch);
          has_restarted = true;
          continue;
        }
        fail(StatusCode::kDataLoss, "{}: {}; the download was removed (run again to retry)",
             what_.file, mismatch);
      }
      fs::rename(part_, dest_);
      if (has_begun_) ctx_.progress.end_file();
      return moved_;
    }
  }

 private:
  Attempt transfer(uint64_t offset) {
    FetchRequest request{url_, {}, ctx_.token, ctx_.endpoint};
    if (offset > 0) request.headers.add("Range", range_from(offset));
    FilePtr out;
    const uint64_t moved_before = moved_;
    BodyCallbacks body;
    uint64_t at = offset;  // bytes of the file on disk
    body.on_head = [&](const FetchResult& head) {
      out = open_part(head, offset);
      at = offset;
    };
    body.on_data = [&](std::string_view data) {
      // Never past the listed size: a server sending more is cut off at once, not after it
      // filled the disk.
      if (expected_.size && at + data.size() > *expected_.size) {
        out.reset();
        fs::remove(part_);
        fail(StatusCode::kDataLoss,
             "{}: the server sent more than the {} bytes the hub lists; the download was "
             "removed",
             what_.file, *expected_.size);
      }
      at += data.size();
      if (std::fwrite(data.data(), 1, data.size(), out.get()) != data.size()) {
        fail(StatusCode::kResourceExhausted, "cannot write {}: {}", part_.string(),
             std::strerror(errno));
      }
      moved_ += data.size();
      ctx_.progress.advance(data.size());
    };
    FetchResult result;
    try {
      result = ctx_.client.get(request, body);
    } catch (const Error& e) {
      out.reset();  // keep what arrived: the next attempt resumes after it
      if (e.code() != StatusCode::kUnavailable) throw;
      if (moved_ > moved_before) retry_ = 0;  // the link works; count afresh
      pause_or_fail(e.what());
      return Attempt::kRetry;
    }
    if (result.status == 416) {  // the kept part does not fit the file any more
      out.reset();
      fs::remove(part_);
      pause_or_fail(fmt::format("{}: range not satisfiable (416)", what_.file));
      return Attempt::kRetry;
    }
    if (result.status < 200 || result.status >= 300) {
      if (!is_retryable_status(result.status)) throw_hub_error(result, what_);
      pause_or_fail(
          fmt::format("{}: HTTP {} from {}", what_.file, result.status, result.url.to_string()),
          result.headers.get("Retry-After"));
      return Attempt::kRetry;
    }
    if (std::fflush(out.get()) != 0 || fsync(fileno(out.get())) != 0) {
      fail(StatusCode::kResourceExhausted, "cannot write {}: {}", part_.string(),
           std::strerror(errno));
    }
    return Attempt::kComplete;
  }

  // Called with the final answer's head: learns what the listing left out, checks what it said,
  // and opens the part file to append (206 from `offset`) or to rewrite (200).
  FilePtr open_part(const FetchResult& head, uint64_t& offset) {
    LinkedInfo info = linked_info(head);
    if (info.sha256 && expected_.sha256 && *info.sha256 != *expected_.sha256) {
      fail(StatusCode::kDataLoss,
           "{}: the hub's X-Linked-Etag {} differs from its listing's sha256 {}", what_.file,
           *info.sha256, *expected_.sha256);
    }
    if (!expected_.sha256 && info.sha256) expected_.sha256 = info.sha256;
    if (!expected_.size && info.size) expected_.size = info.size;
    bool is_append = false;
    if (head.status == 206) {
      auto range = parse_content_range(head.headers.get("Content-Range").value_or(""));
      if (!range || range->first != offset) {
        fs::remove(part_);
        fail(StatusCode::kUnavailable, "{}: asked to resume at byte {}, the server sent '{}'",
             what_.file, offset, head.headers.get("Content-Range").value_or(""));
      }
      if (!expected_.size && range->total) expected_.size = range->total;
      is_append = true;
    } else {
      if (offset > 0) LOG_INFO("{}: the server sent the whole file; starting over", what_.file);
      offset = 0;
      auto length = head.headers.get("Content-Length");
      const std::optional<uint64_t> sent = length ? parse_u64(*length) : std::nullopt;
      if (expected_.size && sent && *sent != *expected_.size) {
        fail(StatusCode::kDataLoss, "{}: the server sends {} bytes of a file the hub lists at {}",
             what_.file, *sent, *expected_.size);
      }
      if (!expected_.size && sent) expected_.size = sent;
    }
    FilePtr out = open_no_follow(part_, is_append);
    if (!has_begun_) {
      ctx_.progress.begin_file(what_.file, expected_.size.value_or(0), offset);
      has_begun_ = true;
    } else {
      ctx_.progress.reset(offset);
    }
    return out;
  }

  // Sleeps before the next attempt, or throws when the retries are spent.
  void pause_or_fail(const std::string& why,
                     std::optional<std::string> retry_after = std::nullopt) {
    if (retry_ >= ctx_.retry.max_retries) {
      fail(StatusCode::kUnavailable, "{} (gave up after {} attempts)", why, retry_ + 1);
    }
    auto delay = backoff_delay(ctx_.retry, retry_);
    if (retry_after) {
      if (auto secs = parse_u64(*retry_after); secs && *secs <= 60) {
        delay = std::max(delay, std::chrono::milliseconds(*secs * 1000));
      }
    }
    ++retry_;
    LOG_WARN("{}; retry {}/{} in {:.1f} s", why, retry_, ctx_.retry.max_retries,
             static_cast<double>(delay.count()) / 1000);
    std::this_thread::sleep_for(delay);
  }

  const DownloadContext& ctx_;
  RepoFile expected_;  // the listing's facts, completed from the answer's headers
  const Url& url_;
  const fs::path dest_;
  const fs::path part_;
  const HubRequestContext& what_;
  uint64_t moved_ = 0;
  int retry_ = 0;
  bool has_begun_ = false;
};

}  // namespace

std::optional<ContentRange> parse_content_range(std::string_view v) {
  if (v.substr(0, 6) != "bytes ") return std::nullopt;
  v.remove_prefix(6);
  auto dash = v.find('-');
  auto slash = v.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || dash > slash)
    return std::nullopt;
  auto first = parse_u64(v.substr(0, dash));
  auto last = parse_u64(v.substr(dash + 1, slash - dash - 1));
  if (!first || !last || *last < *first) return std::nullopt;
  ContentRange r{*first, *last, std::nullopt};
  std::string_view total = v.substr(slash + 1);
  if (total != "*") {
    r.total = parse_u64(total);
    if (!r.total || *r.total <= *last) return std::nullopt;
  }
  return r;
}

std::string range_from(uint64_t offset) {
  return "bytes=" + std::to_string(offset) + "-";
}

std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int retry) {
  auto delay = policy.initial_backoff;
  for (int i = 0; i < retry && delay < policy.max_backoff; ++i) delay *= 2;
  return std::min(delay, policy.max_backoff);
}

LinkedInfo linked_info(const FetchResult& result) {
  LinkedInfo info;
  auto take = [&info](const HttpHeaders& h) {
    if (auto etag = h.get("X-Linked-Etag"); etag && !info.sha256) {
      std::string v = strip_etag(*etag);
      if (is_sha256_hex(v)) info.sha256 = v;
    }
    if (auto size = h.get("X-Linked-Size"); size && !info.size) info.size = parse_u64(*size);
    if (auto commit = h.get("X-Repo-Commit"); commit && !info.commit) info.commit = *commit;
  };
  for (const auto& hop : result.redirects) take(hop.headers);
  take(result.headers);
  return info;
}

std::string verify_file(const fs::path& path, const RepoFile& file) {
  const uint64_t size = size_on_disk(path);
  if (file.size && size != *file.size) {
    return fmt::format("size is {} bytes, the hub says {}", size, *file.size);
  }
  if (file.sha256) {
    Hasher hasher(HashKind::kSha256);
    hash_file(path, hasher);
    std::string got = hasher.hex_digest();
    if (got != *file.sha256) return fmt::format("sha256 is {}, the hub says {}", got, *file.sha256);
  } else if (file.blob_id && file.blob_id->size() == 40) {
    Hasher hasher(HashKind::kGitBlobSha1, size);
    hash_file(path, hasher);
    std::string got = hasher.hex_digest();
    if (got != *file.blob_id)
      return fmt::format("git blob id is {}, the hub says {}", got, *file.blob_id);
  }
  return "";
}

void create_real_directories(const fs::path& root, const fs::path& dir) {
  const fs::path rel = dir.lexically_relative(root);
  if (rel.empty() || *rel.begin() == "..") {
    fail(StatusCode::kInvalidArgument, "{} is outside the destination {}", dir.string(),
         root.string());
  }
  fs::path at = root;
  for (const fs::path& part : rel) {
    if (part == ".") continue;
    at /= part;
    std::error_code ec;
    const fs::file_status st = fs::symlink_status(at, ec);
    if (fs::is_symlink(st)) {
      fail(StatusCode::kFailedPrecondition,
           "refusing to download into {}: it is a symbolic link (remove it and pull "
           "again)",
           at.string());
    }
    if (!fs::exists(st)) {
      fs::create_directory(at);
    } else if (!fs::is_directory(st)) {
      fail(StatusCode::kFailedPrecondition, "cannot download into {}: it is not a directory",
           at.string());
    }
  }
}

uint64_t download_file(const DownloadContext& ctx, const RepoFile& file, const Url& url,
                       const fs::path& dest, const HubRequestContext& what) {
  return Download(ctx, file, url, dest, what).run();
}

}  // namespace llmserve::hub
