#include "common/hasher.h"

#include <fstream>
#include <vector>

#include <openssl/evp.h>

#include "common/status.h"

namespace llmserve {

std::string_view hash_kind_name(HashKind kind) {
  switch (kind) {
    case HashKind::kSha256:
      return "sha256";
    case HashKind::kGitBlobSha1:
      return "git blob sha1";
  }
  return "?";
}

struct Hasher::Ctx {
  EVP_MD_CTX* md = nullptr;
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Hasher::Hasher(HashKind kind, uint64_t size) : ctx_(std::make_unique<Ctx>()) {
  ctx_->md = EVP_MD_CTX_new();
  const EVP_MD* md = nullptr;
  switch (kind) {
    case HashKind::kSha256:
      md = EVP_sha256();
      break;
    case HashKind::kGitBlobSha1:
      md = EVP_sha1();
      break;
  }
  if (ctx_->md == nullptr || EVP_DigestInit_ex(ctx_->md, md, nullptr) != 1) {
    fail(StatusCode::kInternal, "OpenSSL: cannot start a {} digest", hash_kind_name(kind));
  }
  if (kind == HashKind::kGitBlobSha1) {
    std::string header = "blob " + std::to_string(size);
    update(std::string_view(header.data(), header.size() + 1));  // with its NUL
  }
}

Hasher::~Hasher() = default;

void Hasher::update(std::string_view data) {
  if (EVP_DigestUpdate(ctx_->md, data.data(), data.size()) != 1) {
    fail(StatusCode::kInternal, "OpenSSL: digest update failed");
  }
}

std::string Hasher::hex_digest() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_DigestFinal_ex(ctx_->md, digest, &size) != 1) {
    fail(StatusCode::kInternal, "OpenSSL: digest final failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < size; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

void hash_file(const std::filesystem::path& path, Hasher& hasher) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(StatusCode::kNotFound, "cannot open {}", path.string());
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    hasher.update(std::string_view(buffer.data(), static_cast<size_t>(in.gcount())));
  }
  if (in.bad()) fail(StatusCode::kDataLoss, "cannot read {}", path.string());
}

}  // namespace llmserve
