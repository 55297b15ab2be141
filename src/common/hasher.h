// Content hashes the hub publishes, computed incrementally with OpenSSL's EVP: SHA-256 (what Git
// LFS names its objects by, so the hub's lfs.sha256 / X-Linked-Etag) and the Git blob id (SHA-1
// of "blob <size>\0" + content: the hub's blobId / ETag for files kept in Git itself).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace llmserve {

enum class HashKind { kSha256, kGitBlobSha1 };

std::string_view hash_kind_name(HashKind kind);  // "sha256", "git blob sha1"

class Hasher {
 public:
  // kGitBlobSha1 needs the content's size up front (it is part of the hashed header).
  explicit Hasher(HashKind kind, uint64_t size = 0);
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  void update(std::string_view data);
  // Lower-case hex digest; the hasher is finished afterwards.
  std::string hex_digest();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// Feeds the whole of `path` into `hasher`. Throws Error(kNotFound / kDataLoss) when it cannot be
// read.
void hash_file(const std::filesystem::path& path, Hasher& hasher);

}  // namespace llmserve
