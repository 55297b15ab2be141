// Tensor: a non-owning, typed, row-major view of backend memory (host for cpu, device for cuda),
// and Buffer, the owning allocation behind it. Shapes are at most 4-D; the last dimension is
// contiguous.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>

#include "common/dtype.h"

namespace llmserve {

struct Tensor {
  void* data = nullptr;
  DType dtype = DType::kF32;
  std::array<int64_t, 4> shape{0, 0, 0, 0};
  int ndim = 0;

  Tensor() = default;
  Tensor(void* d, DType t, std::initializer_list<int64_t> dims);

  int64_t dim(int i) const { return shape[static_cast<size_t>(i < 0 ? ndim + i : i)]; }
  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  // Rows [begin, begin + count) of the first dimension.
  Tensor rows(int64_t begin, int64_t count) const;
  // Same memory, another shape with the same element count.
  Tensor view(std::initializer_list<int64_t> dims) const;
  template <typename T>
  T* as() const {
    return static_cast<T*>(data);
  }
  std::string shape_string() const;
};

// Owns one allocation; frees it with the deleter given by the backend. Move-only.
class Buffer {
 public:
  Buffer() = default;
  Buffer(void* data, size_t nbytes, std::function<void(void*)> deleter)
      : data_(data), nbytes_(nbytes), deleter_(std::move(deleter)) {}
  ~Buffer() { reset(); }
  Buffer(Buffer&& o) noexcept { *this = std::move(o); }
  Buffer& operator=(Buffer&& o) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  void reset();

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  std::function<void(void*)> deleter_;
};

}  // namespace llmserve
