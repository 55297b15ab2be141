#include "builder/safetensors_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace llmserve::builder {
namespace {

constexpr size_t kChunk = 64u << 20;  // bytes per write() call, and per progress report

class File {
 public:
  explicit File(const std::filesystem::path& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0)
      fail(StatusCode::kDataLoss, "cannot create '{}': {}", path.string(), std::strerror(errno));
  }
  ~File() {
    if (fd_ >= 0) ::close(fd_);
  }
  void write(const uint8_t* p, size_t n) {
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0)
        fail(StatusCode::kDataLoss, "cannot write '{}': {}", path_.string(), std::strerror(errno));
      p += w;
      n -= static_cast<size_t>(w);
    }
  }
  void sync_and_close() {
    if (::fsync(fd_) != 0)
      fail(StatusCode::kDataLoss, "cannot fsync '{}': {}", path_.string(), std::strerror(errno));
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0)
      fail(StatusCode::kDataLoss, "cannot close '{}': {}", path_.string(), std::strerror(errno));
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace

uint64_t write_safetensors(const std::filesystem::path& file,
                           const std::vector<TensorToWrite>& tensors,
                           const std::map<std::string, std::string>& metadata,
                           const std::function<void(uint64_t)>& on_bytes) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const TensorToWrite& t : tensors) {
    uint64_t numel = 1;
    for (int64_t d : t.shape) numel *= static_cast<uint64_t>(d);
    if (numel * dtype_size(t.dtype) != t.bytes.size()) {
      fail(StatusCode::kInternal, "tensor '{}': {} bytes for {} x {}", t.name, t.bytes.size(),
           dtype_name(t.dtype), numel);
    }
    if (!names.insert(t.name).second || t.name == "__metadata__") {
      fail(StatusCode::kInternal, "tensor name '{}' repeated or reserved", t.name);
    }
    header[t.name] = {{"dtype", std::string(dtype_name(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  // Padded with spaces so the tensors start 64-byte aligned (8 + header): with sizes that are
  // multiples of 64, the usual case, every tensor is, and a CPU load can use them in place.
  std::string h = header.dump();
  h.resize((h.size() + 8 + 63) / 64 * 64 - 8, ' ');
  uint8_t length[8];
  const uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(n >> (8 * i));
  File out(file);
  out.write(length, 8);
  out.write(reinterpret_cast<const uint8_t*>(h.data()), h.size());
  for (const TensorToWrite& t : tensors) {
    for (size_t at = 0; at < t.bytes.size(); at += kChunk) {
      const size_t len = std::min(kChunk, t.bytes.size() - at);
      out.write(t.bytes.data() + at, len);
      if (on_bytes) on_bytes(len);
    }
  }
  out.sync_and_close();
  return 8 + n + offset;
}

}  // namespace llmserve::builder
