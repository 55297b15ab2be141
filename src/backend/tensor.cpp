#include "backend/tensor.h"

#include "common/status.h"

namespace llmserve {

Tensor::Tensor(void* d, DType t, std::initializer_list<int64_t> dims) : data(d), dtype(t) {
  if (dims.size() > 4) fail(StatusCode::kInternal, "tensors have at most 4 dimensions");
  for (int64_t v : dims) shape[static_cast<size_t>(ndim++)] = v;
}

int64_t Tensor::numel() const {
  if (ndim == 0) return 0;
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[static_cast<size_t>(i)];
  return n;
}

Tensor Tensor::rows(int64_t begin, int64_t count) const {
  Tensor t = *this;
  const int64_t row_elems = shape[0] == 0 ? 0 : numel() / shape[0];
  t.data = static_cast<char*>(data) + static_cast<size_t>(begin * row_elems) * dtype_size(dtype);
  t.shape[0] = count;
  return t;
}

Tensor Tensor::view(std::initializer_list<int64_t> dims) const {
  Tensor t(data, dtype, dims);
  if (t.numel() != numel()) {
    fail(StatusCode::kInternal, "view {} of tensor {} changes the element count", t.shape_string(),
         shape_string());
  }
  return t;
}

std::string Tensor::shape_string() const {
  std::string s = "[";
  for (int i = 0; i < ndim; ++i)
    s += (i ? ", " : "") + std::to_string(shape[static_cast<size_t>(i)]);
  return s + "]";
}

Buffer& Buffer::operator=(Buffer&& o) noexcept {
  if (this != &o) {
    reset();
    data_ = o.data_;
    nbytes_ = o.nbytes_;
    deleter_ = std::move(o.deleter_);
    o.data_ = nullptr;
    o.nbytes_ = 0;
  }
  return *this;
}

void Buffer::reset() {
  if (data_ != nullptr && deleter_) deleter_(data_);
  data_ = nullptr;
  nbytes_ = 0;
}

}  // namespace llmserve
