#include "model/weight_loader.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/half.h"
#include "common/status.h"
#include "model/quantize.h"

namespace llmserve {

namespace {

// fp32 values as `dtype` bytes (F32, F16 or BF16).
std::vector<uint8_t> encode(const std::vector<float>& v, DType dtype) {
  std::vector<uint8_t> out(v.size() * dtype_size(dtype));
  switch (dtype) {
    case DType::kF32:
      std::memcpy(out.data(), v.data(), out.size());
      break;
    case DType::kF16:
    case DType::kBF16: {
      auto* h = reinterpret_cast<uint16_t*>(out.data());
      const bool bf16 = dtype == DType::kBF16;
      for (size_t i = 0; i < v.size(); ++i) h[i] = bf16 ? float_to_bf16(v[i]) : float_to_fp16(v[i]);
      break;
    }
    default:
      fail(StatusCode::kInternal, "weights cannot be stored as {}", dtype_name(dtype));
  }
  return out;
}

std::string joined(const std::vector<std::string>& names) {
  std::string key;
  for (const auto& n : names) key += (key.empty() ? "" : "+") + n;
  return key;
}

}  // namespace

void linear(Backend& backend, const LinearInput& in, const LinearWeight& w, Tensor bias,
            Tensor out) {
  switch (w.w.dtype) {
    case DType::kI8:
      backend.matmul_q8(in.x, w.w, w.scales, bias, out);
      break;
    case DType::kI32:
      backend.matmul_int4(in.x, w.w, w.scales, bias, out);
      break;
    case DType::kF8E4M3:
      if (in.fp8.q.data == nullptr)
        fail(StatusCode::kInternal, "an fp8 linear layer without room for its input codes");
      if (!in.is_quantized) backend.quantize_fp8_rows(in.x, in.fp8);
      backend.matmul_fp8(in.fp8, w.w, w.scales, bias, out);
      break;
    default:
      backend.matmul(in.x, w.w, bias, out);
      break;
  }
}

void linear_gelu(Backend& backend, const LinearInput& in, const LinearWeight& w, Tensor bias,
                 Tensor out) {
  if (w.is_quantized()) {
    linear(backend, in, w, bias, out);
    backend.gelu_tanh(out);
  } else {
    backend.matmul_gelu(in.x, w.w, bias, out);
  }
}

LinearInput DecoderActivations::input(Tensor x, bool is_quantized) const {
  LinearInput in{x, {}, is_quantized};
  if (fp8.q.data != nullptr) {
    const int64_t t = x.dim(0), k = x.dim(-1);
    if (t > fp8.q.dim(0) || k > fp8.q.dim(-1)) {
      fail(StatusCode::kInternal, "fp8 codes for a [{}, {}] input in a {} workspace", t, k,
           fp8.q.shape_string());
    }
    in.fp8.q = Tensor(fp8.q.data, DType::kF8E4M3, {t, k});
    in.fp8.scales = fp8.scales.rows(0, t);
  }
  return in;
}

WeightLoader::WeightLoader(const WeightStore& store, BackendMemory& backend,
                           std::vector<Buffer>& owner, ModelShard shard, const LoadOptions& options)
    : store_(store),
      backend_(backend),
      owner_(&owner),
      shard_(shard),
      quantization_(options.quantization),
      quantize_lm_head_(options.quantize_lm_head),
      recorder_(options.recorder),
      engine_source_tensors_(options.engine_source_tensors) {}

bool WeightLoader::contains(const std::string& name) const {
  if (!from_engine()) return store_.contains(name);
  return std::binary_search(engine_source_tensors_->begin(), engine_source_tensors_->end(), name);
}

void WeightLoader::record(const std::string& key, const Tensor& t) {
  if (recorder_ != nullptr && !in_linear_) recorder_->record(key, t);
}

Tensor WeightLoader::upload_stored(const std::string& key, std::span<const int64_t> dims,
                                   DType dtype) {
  if (!store_.contains(key)) {
    fail(StatusCode::kDataLoss,
         "engine '{}' has no tensor '{}' for rank {} of stage {}: the engine is incomplete; "
         "rebuild it with llmserve build",
         store_.dir().string(), key, shard_.rank, shard_.stage);
  }
  const TensorInfo& info = store_.info(key);
  if (info.dtype != dtype ||
      !std::equal(info.shape.begin(), info.shape.end(), dims.begin(), dims.end())) {
    fail(StatusCode::kDataLoss, "engine tensor '{}' in '{}' is {} {}, expected {} {}", key,
         store_.file_of(key).string(), dtype_name(info.dtype), shape_string(info.shape),
         dtype_name(dtype), shape_string(dims));
  }
  if (std::optional<Tensor> t = in_place(key)) return *t;
  Tensor t = info.shape.size() == 1
                 ? backend_.allocate_tensor(*owner_, info.dtype, {info.shape[0]})
                 : backend_.allocate_tensor(*owner_, info.dtype, {info.shape[0], info.shape[1]});
  backend_.upload(store_.bytes(key).data(), t);
  return t;
}

std::optional<Tensor> WeightLoader::in_place(const std::string& name) {
  if (!backend_.reads_host_memory()) return std::nullopt;
  // The tensor read where the file's mapping holds it (the mapping outlives the store through the
  // buffer), when it is aligned and the file covers the reader's 64-byte rounding.
  const std::optional<WeightStore::Mapped> m = store_.mapped(name);
  if (!m || reinterpret_cast<uintptr_t>(m->bytes.data()) % 64 != 0 ||
      m->bytes_after < (64 - m->bytes.size() % 64) % 64) {
    return std::nullopt;
  }
  const TensorInfo& info = store_.info(name);
  auto* data = const_cast<uint8_t*>(m->bytes.data());  // the ops only read weights
  Tensor t = info.shape.size() == 1 ? Tensor(data, info.dtype, {info.shape[0]})
                                    : Tensor(data, info.dtype, {info.shape[0], info.shape[1]});
  owner_->push_back(Buffer(data, m->bytes.size(), [keep = m->keep_alive](void*) {}));
  return t;
}

Tensor WeightLoader::prepared(const std::string& key, std::vector<int64_t> dims,
                              const std::function<Tensor()>& make) {
  if (in_linear_) {
    linear_key_ = key;
    linear_dims_ = dims;
    if (from_engine() && linear_quantization_ != Quantization::kNone) return Tensor();
  }
  if (from_engine()) return upload_stored(key, dims, stored_dtype(dims.size()));
  Tensor t = make();
  record(key, t);
  return t;
}

LinearWeight WeightLoader::linear(const std::function<Tensor()>& load) {
  return load_linear(quantization_, std::string(), load);
}

LinearWeight WeightLoader::linear_as(Quantization q, const std::string& key,
                                     const std::function<Tensor()>& load) {
  if (q == Quantization::kNone || key.empty())
    fail(StatusCode::kInternal, "linear_as needs a quantization and a key");
  return load_linear(q, key, load);
}

LinearWeight WeightLoader::load_linear(Quantization q, const std::string& key,
                                       const std::function<Tensor()>& load) {
  struct InLinear {  // linear_key_/dims_ are noted and recording paused while `load` runs
    WeightLoader& w;
    InLinear(WeightLoader& loader, Quantization q, bool stage_f32) : w(loader) {
      w.in_linear_ = true;
      w.linear_quantization_ = q;
      w.stage_f32_ = stage_f32;
    }
    ~InLinear() {
      w.in_linear_ = w.stage_f32_ = false;
      w.linear_quantization_ = Quantization::kNone;
    }
  };
  const auto noted_key = [&] {
    if (!key.empty()) linear_key_ = key;
  };
  if (q == Quantization::kNone) {
    Tensor t;
    {
      InLinear scope(*this, q, /*stage_f32=*/false);
      t = load();
    }
    noted_key();
    record(linear_key_, t);
    return {t, Tensor()};
  }
  if (from_engine()) {
    {
      InLinear scope(*this, q, /*stage_f32=*/false);
      load();  // notes the key and dims; uploads nothing
    }
    noted_key();
    return upload_stored_linear(q);
  }
  std::vector<Buffer> staging;
  std::vector<Buffer>* model_owner = owner_;
  owner_ = &staging;
  Tensor full;
  try {
    InLinear scope(*this, q, /*stage_f32=*/true);
    full = load();
  } catch (...) {
    owner_ = model_owner;
    throw;
  }
  owner_ = model_owner;
  noted_key();
  if (full.ndim != 2)
    fail(StatusCode::kInternal, "linear weight '{}' is {}, not 2-D", linear_key_,
         full.shape_string());
  const int64_t rows = full.dim(0), cols = full.dim(1);
  if (q == Quantization::kInt4WeightOnly && cols % 32 != 0) {
    fail(StatusCode::kInvalidArgument,
         "--quantization int4-wo needs in_features divisible by 32: '{}' has {}{}", linear_key_,
         cols,
         shard_.size > 1 ? fmt::format(" on each of the {} tensor-parallel ranks", shard_.size)
                         : std::string());
  }
  // Staged in fp32 (stage_f32_), read back into a buffer kept across linears.
  if (full.dtype != DType::kF32)
    fail(StatusCode::kInternal, "linear weight '{}' staged in {}", linear_key_,
         dtype_name(full.dtype));
  if (staged_scratch_.size() < static_cast<size_t>(full.numel()))
    staged_scratch_.resize(static_cast<size_t>(full.numel()));
  backend_.download(full, staged_scratch_.data());
  const QuantizedWeight qw = quantize_weight(
      std::span<const float>(staged_scratch_.data(), full.numel()), rows, cols, q, int4_group());
  LinearWeight out;
  if (qw.dtype == DType::kI32) {
    out.w = backend_.allocate_tensor(*owner_, qw.dtype, {rows, cols / 8});
    backend_.upload(qw.codes.data(), out.w);
    const int64_t pairs = static_cast<int64_t>(qw.scales.size()) / rows;
    out.scales = backend_.allocate_tensor(*owner_, backend_.weight_dtype(), {rows, pairs});
    backend_.upload(encode(qw.scales, out.scales.dtype).data(), out.scales);
  } else {
    out.w = backend_.allocate_tensor(*owner_, qw.dtype, {rows, cols});
    backend_.upload(qw.codes.data(), out.w);
    out.scales = upload(qw.scales, {static_cast<int64_t>(qw.scales.size())});
  }
  record(linear_key_, out.w);
  record(linear_key_ + ".scales", out.scales);
  return out;
}

LinearWeight WeightLoader::upload_stored_linear(Quantization q) {
  LinearWeight out;
  if (q == Quantization::kInt4WeightOnly) {
    // Packed words [out, in / 8] and (scale, zero) pairs whose count gives the group size.
    const int64_t codes[] = {linear_dims_.at(0), linear_dims_.at(1) / 8};
    out.w = upload_stored(linear_key_, codes, DType::kI32);
    const std::string scales_key = linear_key_ + ".scales";
    const std::vector<int64_t>& stored =
        store_.contains(scales_key) ? store_.info(scales_key).shape : std::vector<int64_t>{};
    const int64_t pairs = stored.size() == 2 ? stored[1] : 0;
    if (pairs < 2 || pairs % 2 != 0 || linear_dims_.at(1) % (pairs / 2) != 0) {
      fail(StatusCode::kDataLoss, "engine tensor '{}' in '{}' is not int4 (scale, zero) pairs",
           scales_key, store_.dir().string());
    }
    const int64_t scales[] = {linear_dims_.at(0), pairs};
    out.scales = upload_stored(scales_key, scales, backend_.weight_dtype());
    return out;
  }
  // I8 (int8-wo) or E4M3 (fp8) codes, one scale per output row.
  const bool int8 = q == Quantization::kInt8WeightOnly;
  out.w = upload_stored(linear_key_, linear_dims_, int8 ? DType::kI8 : DType::kF8E4M3);
  const int64_t scales[] = {linear_dims_.at(0)};
  out.scales = upload_stored(linear_key_ + ".scales", scales, DType::kF32);
  return out;
}

int32_t WeightLoader::int4_group() const {
  if (from_engine()) return kInt4DefaultGroup;
  const CheckpointQuantizationConfig& q = store_.quantization();
  if (q.kind != CheckpointQuantization::kAwq && q.kind != CheckpointQuantization::kGptq)
    return kInt4DefaultGroup;
  // GPTQ's -1 is one group a row: the largest power of two dividing the row (int4_group_for).
  return q.group_size > 0 ? q.group_size : (1 << 30);
}

Tensor WeightLoader::upload(const std::vector<float>& data, std::initializer_list<int64_t> dims) {
  Tensor t = backend_.allocate_tensor(*owner_, DType::kF32, dims);
  if (static_cast<size_t>(t.numel()) != data.size()) {
    fail(StatusCode::kInternal, "upload of {} floats into {}", data.size(), t.shape_string());
  }
  backend_.upload(data.data(), t);
  return t;
}

Tensor WeightLoader::upload_weight(const std::vector<float>& data,
                                   std::initializer_list<int64_t> dims) {
  Tensor t = backend_.allocate_tensor(*owner_, backend_.activation_dtype(), dims);
  if (static_cast<size_t>(t.numel()) != data.size()) {
    fail(StatusCode::kInternal, "upload of {} floats into {}", data.size(), t.shape_string());
  }
  backend_.upload(encode(data, t.dtype).data(), t);
  return t;
}

WeightLoader::Range WeightLoader::part(int64_t n) const {
  if (n % shard_.size != 0) {
    fail(StatusCode::kInvalidArgument, "tensor parallel: {} does not split over {} ranks", n,
         shard_.size);
  }
  const int64_t each = n / shard_.size;
  return {each * shard_.rank, each};
}

void WeightLoader::upload_into(const std::string& name, std::span<const int64_t> shape, Tensor dst,
                               int dim, const std::vector<Range>& ranges) {
  const TensorInfo& info = store_.info(name);
  if (!std::equal(info.shape.begin(), info.shape.end(), shape.begin(), shape.end())) {
    fail(StatusCode::kDataLoss, "tensor '{}' in '{}' has shape {}, expected {}", name,
         store_.file_of(name).string(), shape_string(info.shape), shape_string(shape));
  }
  const std::span<const uint8_t> bytes = store_.bytes(name);
  const size_t esize = dtype_size(info.dtype);
  // [R] is R rows of one column; [E, R, C] (fused experts) is E * R rows of C columns.
  int64_t rows = shape.empty() ? 1 : shape[0];
  for (size_t i = 1; i + 1 < shape.size(); ++i) rows *= shape[i];
  const int64_t cols = shape.size() > 1 ? shape.back() : 1;
  std::span<const uint8_t> picked = bytes;
  std::vector<uint8_t> gathered;
  const bool whole = ranges.empty() || (ranges.size() == 1 && ranges[0].begin == 0 &&
                                        ranges[0].count == (dim == 0 ? rows : cols));
  if (!whole && dim == 0 && ranges.size() == 1) {
    // Rows are contiguous: upload straight from the mapped file.
    const size_t row_bytes = static_cast<size_t>(cols) * esize;
    picked = bytes.subspan(static_cast<size_t>(ranges[0].begin) * row_bytes,
                           static_cast<size_t>(ranges[0].count) * row_bytes);
  } else if (!whole) {
    const size_t row_bytes = static_cast<size_t>(cols) * esize;
    auto copy = [&](size_t at, size_t n) {
      gathered.insert(gathered.end(), bytes.begin() + static_cast<ptrdiff_t>(at),
                      bytes.begin() + static_cast<ptrdiff_t>(at + n));
    };
    if (dim == 0) {
      for (const Range& g : ranges) {
        copy(static_cast<size_t>(g.begin) * row_bytes, static_cast<size_t>(g.count) * row_bytes);
      }
    } else {
      for (int64_t r = 0; r < rows; ++r) {
        for (const Range& g : ranges) {
          copy(static_cast<size_t>(r) * row_bytes + static_cast<size_t>(g.begin) * esize,
               static_cast<size_t>(g.count) * esize);
        }
      }
    }
    picked = gathered;
  }
  if (picked.size() != static_cast<size_t>(dst.numel()) * esize) {
    fail(StatusCode::kInternal, "weight '{}': {} bytes picked for {}", name, picked.size(),
         dst.shape_string());
  }
  if (info.dtype == dst.dtype) {
    backend_.upload(picked.data(), dst);  // stored as the backend wants it: no conversion
    return;
  }
  // Converted in a scratch buffer kept across loads: a fresh buffer a tensor paid its page
  // faults and zeroing every time, most of a quantizing build's time.
  const bool float_in =
      info.dtype == DType::kF32 || info.dtype == DType::kF16 || info.dtype == DType::kBF16;
  if (!float_in) {
    fail(StatusCode::kDataLoss, "tensor '{}' has dtype {}, not a float type", name,
         dtype_name(info.dtype));
  }
  if (dst.dtype != DType::kF32 && dst.dtype != DType::kF16 && dst.dtype != DType::kBF16)
    fail(StatusCode::kInternal, "weights cannot be stored as {}", dtype_name(dst.dtype));
  const int64_t n = dst.numel();
  const size_t out_bytes = static_cast<size_t>(n) * dtype_size(dst.dtype);
  if (convert_scratch_.size() < out_bytes) convert_scratch_.resize(out_bytes);
  const uint8_t* in = picked.data();
  uint8_t* out = convert_scratch_.data();
  const DType from = info.dtype, to = dst.dtype;
#pragma omp parallel for if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i) {
    float v;
    if (from == DType::kF32) {
      std::memcpy(&v, in + 4 * i, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, in + 2 * i, 2);
      v = from == DType::kBF16 ? bf16_to_float(h) : fp16_to_float(h);
    }
    if (to == DType::kF32) {
      std::memcpy(out + 4 * i, &v, 4);
    } else {
      const uint16_t h = to == DType::kBF16 ? float_to_bf16(v) : float_to_fp16(v);
      std::memcpy(out + 2 * i, &h, 2);
    }
  }
  backend_.upload(out, dst);
}

Tensor WeightLoader::load(const std::string& name, std::initializer_list<int64_t> dims, Split split,
                          int32_t sections) {
  std::vector<int64_t> shape(dims);
  std::vector<int64_t> local = shape;
  std::vector<Range> ranges;
  int dim = 0;
  if (split != Split::kNone && shard_.size > 1) {
    dim = split == Split::kRows ? 0 : 1;
    const auto d = static_cast<size_t>(dim);
    if (d >= shape.size())
      fail(StatusCode::kInternal, "weight '{}' has no dim {} to split", name, dim);
    const int64_t per_section = shape[d] / sections;
    local[d] = 0;
    for (int32_t s = 0; s < sections; ++s) {
      const Range r = part(per_section);
      ranges.push_back({s * per_section + r.begin, r.count});
      local[d] += r.count;
    }
  }
  return prepared(name, local, [&] {
    Tensor t = local.size() == 1
                   ? backend_.allocate_tensor(*owner_, stored_dtype(1), {local[0]})
                   : backend_.allocate_tensor(*owner_, stored_dtype(2), {local[0], local[1]});
    upload_into(name, shape, t, dim, ranges);
    return t;
  });
}

Tensor WeightLoader::load_transposed(const std::string& name, int64_t rows, int64_t cols,
                                     Split split, int32_t sections) {
  // The uploaded tensor is [cols, rows]: its rows are the stored columns. Pick this rank's part
  // of the stored tensor, upload it as stored, transpose on the backend (on a GPU that is a few
  // ms; on the host it was most of GPT-2's start-up).
  std::vector<Range> ranges;
  int dim = 0;
  int64_t part_rows = rows, part_cols = cols;
  if (split != Split::kNone && shard_.size > 1) {
    if (split == Split::kRows) {  // split the stored columns, section by section
      dim = 1;
      const int64_t per_section = cols / sections;
      part_cols = 0;
      for (int32_t s = 0; s < sections; ++s) {
        const Range r = part(per_section);
        ranges.push_back({s * per_section + r.begin, r.count});
        part_cols += r.count;
      }
    } else {  // split the stored rows
      const Range r = part(rows);
      ranges.push_back(r);
      part_rows = r.count;
    }
  }
  return prepared(name, {part_cols, part_rows}, [&] {
    std::vector<Buffer> staging;
    Tensor stored = backend_.allocate_tensor(staging, stored_dtype(2), {part_rows, part_cols});
    const int64_t shape[] = {rows, cols};
    upload_into(name, shape, stored, dim, ranges);
    Tensor t = backend_.allocate_tensor(*owner_, stored_dtype(2), {part_cols, part_rows});
    backend_.transpose(stored, t);
    backend_.synchronize();  // before the staging buffer is freed
    return t;
  });
}

Tensor WeightLoader::load_stacked(const std::vector<std::string>& names,
                                  const std::vector<int64_t>& rows, int64_t cols, Split split) {
  const bool sharded = split == Split::kRows && shard_.size > 1;
  if (split == Split::kCols) fail(StatusCode::kInternal, "load_stacked splits rows only");
  int64_t total = 0;
  for (int64_t r : rows) total += sharded ? part(r).count : r;
  return prepared(joined(names), {total, cols}, [&] {
    Tensor t = backend_.allocate_tensor(*owner_, stored_dtype(2), {total, cols});
    int64_t at = 0;
    for (size_t i = 0; i < names.size(); ++i) {
      const int64_t shape[] = {rows[i], cols};
      const Range r = sharded ? part(rows[i]) : Range{0, rows[i]};
      upload_into(names[i], shape, t.rows(at, r.count), 0, {r});
      at += r.count;
    }
    return t;
  });
}

Tensor WeightLoader::load_row_blocks(const std::string& name, const std::vector<int64_t>& rows,
                                     int64_t cols, Split split) {
  const bool sharded = split == Split::kRows && shard_.size > 1;
  if (split == Split::kCols) fail(StatusCode::kInternal, "load_row_blocks splits rows only");
  int64_t stored = 0, total = 0;
  std::vector<Range> ranges;  // this rank's rows of each block, in the stored tensor
  for (int64_t r : rows) {
    const Range mine = sharded ? part(r) : Range{0, r};
    ranges.push_back({stored + mine.begin, mine.count});
    stored += r;
    total += mine.count;
  }
  return prepared(name, {total, cols}, [&] {
    Tensor t = backend_.allocate_tensor(*owner_, stored_dtype(2), {total, cols});
    const int64_t shape[] = {stored, cols};
    upload_into(name, shape, t, 0, ranges);
    return t;
  });
}

Tensor WeightLoader::load_experts(const std::string& fused, const std::vector<std::string>& names,
                                  int64_t num_experts, const std::vector<int64_t>& rows,
                                  int64_t cols, Split split) {
  const bool sharded = split != Split::kNone && shard_.size > 1;
  const bool by_cols = split == Split::kCols;
  int64_t stored = 0, total = 0;  // one expert's rows: as stored, and this rank's
  std::vector<Range> own;         // this rank's rows of each part, within the part
  for (int64_t r : rows) {
    own.push_back(sharded && !by_cols ? part(r) : Range{0, r});
    stored += r;
    total += own.back().count;
  }
  const Range col_part = sharded && by_cols ? part(cols) : Range{0, cols};
  const int dim = by_cols ? 1 : 0;
  const auto expert_name = [](std::string name, int64_t e) {
    const size_t at = name.find("{e}");
    if (at != std::string::npos) name.replace(at, 3, std::to_string(e));
    return name;
  };
  const bool from_fused = !fused.empty() && contains(fused);
  const std::string key = from_fused ? fused : joined(names);
  return prepared(key, {num_experts * total, col_part.count}, [&] {
    Tensor t =
        backend_.allocate_tensor(*owner_, stored_dtype(2), {num_experts * total, col_part.count});
    if (from_fused) {
      const int64_t shape[] = {num_experts, stored, cols};
      std::vector<Range> ranges;
      if (sharded && by_cols) {
        ranges.push_back(col_part);
      } else if (sharded) {
        for (int64_t e = 0; e < num_experts; ++e) {
          int64_t first = e * stored;  // the part's first stored row
          for (size_t i = 0; i < own.size(); ++i) {
            ranges.push_back({first + own[i].begin, own[i].count});
            first += rows[i];
          }
        }
      }
      upload_into(fused, shape, t, dim, ranges);
      return t;
    }
    int64_t at = 0;
    for (int64_t e = 0; e < num_experts; ++e) {
      for (size_t i = 0; i < names.size(); ++i) {
        const int64_t shape[] = {rows[i], cols};
        const Range mine = by_cols ? col_part : own[i];
        const int64_t n = by_cols ? rows[i] : mine.count;
        upload_into(expert_name(names[i], e), shape, t.rows(at, n), dim, {mine});
        at += n;
      }
    }
    return t;
  });
}

Tensor WeightLoader::load_concat(const std::vector<std::string>& names,
                                 const std::vector<int64_t>& sizes, Split split) {
  const bool sharded = split == Split::kRows && shard_.size > 1;
  int64_t total = 0;
  for (int64_t n : sizes) total += sharded ? part(n).count : n;
  return prepared(joined(names), {total}, [&] {
    Tensor t = backend_.allocate_tensor(*owner_, stored_dtype(1), {total});
    int64_t at = 0;
    for (size_t i = 0; i < names.size(); ++i) {
      const int64_t shape[] = {sizes[i]};
      const Range r = sharded ? part(sizes[i]) : Range{0, sizes[i]};
      upload_into(names[i], shape, t.rows(at, r.count), 0, {r});
      at += r.count;
    }
    return t;
  });
}

DecoderActivations DecoderWorkspace::sized(Backend& backend, const ModelConfig& c,
                                           const WorkspaceLayout& layout, int32_t num_tokens,
                                           int32_t num_logits) {
  const bool gated_mlp = layout.gated_mlp;
  if (num_tokens > token_capacity_ || num_logits > logit_capacity_) {
    token_capacity_ = std::max(num_tokens, token_capacity_);
    logit_capacity_ = std::max({num_logits, logit_capacity_, 1});
    const int64_t t = token_capacity_, l = logit_capacity_, d = c.hidden_size;
    const int64_t qkv = static_cast<int64_t>(c.num_q_heads + 2 * c.num_kv_heads) * c.head_dim;
    const bool moe = layout.router_cols > 0;
    // The dense MLP buffers; in a MoE model they also hold the shared expert's.
    const int64_t f = std::max<int64_t>(layout.has_dense_mlp ? c.intermediate_size : 0,
                                        moe ? c.moe.shared_intermediate_size : 0);
    // Keep the old buffers alive: a recorded graph may still point at them.
    for (Buffer& b : buffers_) retired_.push_back(std::move(b));
    buffers_.clear();
    DecoderActivations& a = full_;
    const DType act = backend.activation_dtype();
    a.residual = backend.allocate_tensor(buffers_, act, {t, d});
    a.normed = backend.allocate_tensor(buffers_, act, {t, d});
    a.qkv = backend.allocate_tensor(buffers_, act, {t, qkv});
    a.attn = backend.allocate_tensor(buffers_, act,
                                     {t, static_cast<int64_t>(c.num_q_heads) * c.head_dim});
    a.sublayer = backend.allocate_tensor(buffers_, act, {t, d});
    a.mlp_up =
        f > 0 ? backend.allocate_tensor(buffers_, act, {t, gated_mlp ? 2 * f : f}) : Tensor();
    a.mlp_act = gated_mlp && f > 0 ? backend.allocate_tensor(buffers_, act, {t, f}) : Tensor();
    if (moe) {
      const int64_t k = c.moe.top_k, e = c.moe.num_experts, p = t * k;
      const int64_t fe = c.moe.intermediate_size;
      a.router_logits = backend.allocate_tensor(buffers_, DType::kF32, {t, layout.router_cols});
      a.expert_ids = backend.allocate_tensor(buffers_, DType::kI32, {t, k});
      a.expert_weights = backend.allocate_tensor(buffers_, DType::kF32, {t, k});
      a.shared_out = backend.allocate_tensor(buffers_, act, {t, d});
      if (layout.moe_scratch) {
        a.moe.index = backend.allocate_tensor(buffers_, DType::kI32, {2 * p + 2 * (e + 1)});
        a.moe.up = backend.allocate_tensor(buffers_, act, {p, 2 * fe});
        a.moe.act = backend.allocate_tensor(buffers_, act, {p, fe});
        a.moe.down = backend.allocate_tensor(buffers_, act, {p, d});
      }
    }
    a.gathered = backend.allocate_tensor(buffers_, act, {l, d});
    a.logits = backend.allocate_tensor(buffers_, DType::kF32, {l, c.vocab_size});
    if (layout.fp8_inputs) {
      const int64_t widest = std::max({d, static_cast<int64_t>(c.num_q_heads) * c.head_dim, f});
      a.fp8.q = backend.allocate_tensor(buffers_, DType::kF8E4M3, {t, widest});
      a.fp8.scales = backend.allocate_tensor(buffers_, DType::kF32, {t});
    }
  }
  const DecoderActivations& a = full_;
  DecoderActivations w;
  w.residual = a.residual.rows(0, num_tokens);
  w.normed = a.normed.rows(0, num_tokens);
  w.qkv = a.qkv.rows(0, num_tokens);
  w.attn = a.attn.rows(0, num_tokens);
  w.sublayer = a.sublayer.rows(0, num_tokens);
  w.mlp_up = a.mlp_up.data != nullptr ? a.mlp_up.rows(0, num_tokens) : Tensor();
  if (a.router_logits.data != nullptr) {
    const int64_t p = static_cast<int64_t>(num_tokens) * c.moe.top_k;
    w.router_logits = a.router_logits.rows(0, num_tokens);
    w.expert_ids = a.expert_ids.rows(0, num_tokens);
    w.expert_weights = a.expert_weights.rows(0, num_tokens);
    w.shared_out = a.shared_out.rows(0, num_tokens);
    if (a.moe.index.data != nullptr) {
      const int64_t index = 2 * p + 2 * (c.moe.num_experts + 1);
      w.moe = {a.moe.index.rows(0, index), a.moe.up.rows(0, p), a.moe.act.rows(0, p),
               a.moe.down.rows(0, p)};
    }
  }
  w.mlp_act = a.mlp_act.data != nullptr ? a.mlp_act.rows(0, num_tokens) : Tensor();
  w.gathered = a.gathered.rows(0, num_logits);
  w.logits = a.logits.rows(0, num_logits);
  if (a.fp8.q.data != nullptr)
    w.fp8 = {a.fp8.q.rows(0, num_tokens), a.fp8.scales.rows(0, num_tokens)};
  return w;
}

}  // namespace llmserve
