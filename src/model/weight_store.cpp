#include "model/weight_store.h"

#include <cstring>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "common/half.h"
#include "common/status.h"

namespace llmserve {

std::string shape_string(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

WeightStore WeightStore::open(const std::filesystem::path& dir) {
  WeightStore store;
  store.dir_ = dir;
  std::vector<std::filesystem::path> shard_paths;
  auto single = dir / "model.safetensors";
  auto index = dir / "model.safetensors.index.json";
  if (std::filesystem::exists(index)) {
    std::ifstream in(index);
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
      fail(StatusCode::kDataLoss, "'{}' is not a valid index: no weight_map object",
           index.string());
    }
    std::set<std::string> shards;
    for (const auto& [name, file] : j["weight_map"].items()) {
      if (!file.is_string())
        fail(StatusCode::kDataLoss, "'{}': weight_map['{}'] is not a file name", index.string(),
             name);
      auto f = file.get<std::string>();
      if (f.find('/') != std::string::npos || f.find("..") != std::string::npos) {
        fail(StatusCode::kDataLoss, "'{}': shard name '{}' must be a plain file name",
             index.string(), f);
      }
      shards.insert(f);
    }
    for (const auto& f : shards) {
      if (!std::filesystem::exists(dir / f)) {
        fail(StatusCode::kNotFound, "shard '{}' named by '{}' is missing", (dir / f).string(),
             index.string());
      }
      shard_paths.push_back(dir / f);
    }
  } else if (std::filesystem::exists(single)) {
    shard_paths.push_back(single);
  } else {
    fail(StatusCode::kNotFound,
         "no weights in '{}': expected model.safetensors or model.safetensors.index.json",
         dir.string());
  }
  store.add_files(shard_paths);
  store.quantization_ = read_checkpoint_quantization(dir);
  if (store.quantization_.kind != CheckpointQuantization::kNone) store.add_dequantized();
  return store;
}

void WeightStore::add_dequantized() {
  for (DequantizedWeight& w : find_quantized_weights(quantization_, *this)) {
    auto s = std::make_unique<Synthetic>();
    s->info.name = w.name;
    s->info.dtype = DType::kF32;
    s->info.shape = {w.out, w.in};
    const std::string stored = quantization_.is_fp8() ? w.name : w.prefix + ".qweight";
    s->source = entry(stored).file;
    s->weight = std::move(w);
    entries_[s->info.name] = Entry{s->source, &s->info, s.get()};
    synthetic_.push_back(std::move(s));
  }
}

const std::vector<float>& WeightStore::values_of(Synthetic& s) const {
  std::call_once(s.made, [&] {
    const std::string stored = quantization_.is_fp8() ? s.info.name : s.weight.prefix + ".qweight";
    const TensorInfo* codes = s.source->find(stored);  // the file's own entry, not this one
    s.values = dequantize_weight(quantization_, *this, s.weight, s.source->data(*codes));
  });
  return s.values;
}

WeightStore WeightStore::open_file(const std::filesystem::path& file) {
  if (!std::filesystem::exists(file))
    fail(StatusCode::kNotFound, "weights file '{}' is missing", file.string());
  WeightStore store;
  store.dir_ = file.parent_path();
  store.add_files({file});
  return store;
}

void WeightStore::add_files(const std::vector<std::filesystem::path>& paths) {
  WeightStore& store = *this;
  for (const auto& p : paths) {
    store.files_.push_back(std::make_shared<const SafetensorsFile>(p));
    const SafetensorsFile* f = store.files_.back().get();
    for (const auto& [name, info] : f->tensors()) {
      auto [it, inserted] = store.entries_.emplace(name, Entry{f, &info});
      if (!inserted) {
        fail(StatusCode::kDataLoss, "tensor '{}' appears in both '{}' and '{}'", name,
             it->second.file->path().string(), p.string());
      }
    }
  }
}

bool WeightStore::contains(const std::string& name) const {
  return entries_.count(name) != 0;
}

const WeightStore::Entry& WeightStore::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    fail(StatusCode::kNotFound, "checkpoint '{}' has no tensor '{}'", dir_.string(), name);
  }
  return it->second;
}

const TensorInfo& WeightStore::info(const std::string& name) const {
  return *entry(name).info;
}

const std::filesystem::path& WeightStore::file_of(const std::string& name) const {
  return entry(name).file->path();
}

std::span<const uint8_t> WeightStore::bytes(const std::string& name) const {
  const Entry& e = entry(name);
  if (e.synthetic != nullptr) {
    const std::vector<float>& v = values_of(*e.synthetic);
    return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float)};
  }
  return e.file->data(*e.info);
}

std::optional<WeightStore::Mapped> WeightStore::mapped(const std::string& name) const {
  const Entry& e = entry(name);
  if (e.synthetic != nullptr) return std::nullopt;
  for (const auto& f : files_) {
    if (f.get() != e.file) continue;
    Mapped m;
    m.bytes = f->data(*e.info);
    m.bytes_after =
        f->mapped_size() - static_cast<size_t>(m.bytes.data() + m.bytes.size() - f->mapped_begin());
    m.keep_alive = f;
    return m;
  }
  return std::nullopt;
}

std::vector<float> WeightStore::load_f32(const std::string& name,
                                         std::span<const int64_t> expected_shape) const {
  const Entry& e = entry(name);
  const TensorInfo& info = *e.info;
  if (!std::equal(info.shape.begin(), info.shape.end(), expected_shape.begin(),
                  expected_shape.end())) {
    fail(StatusCode::kDataLoss, "tensor '{}' in '{}' has shape {}, expected {}", name,
         e.file->path().string(), shape_string(info.shape), shape_string(expected_shape));
  }
  if (e.synthetic != nullptr) return values_of(*e.synthetic);
  auto raw = e.file->data(info);
  size_t n = static_cast<size_t>(info.numel());
  std::vector<float> out(n);
  switch (info.dtype) {
    case DType::kF32:
      std::memcpy(out.data(), raw.data(), n * sizeof(float));
      break;
    case DType::kF16:
    case DType::kBF16: {
      bool is_bf16 = info.dtype == DType::kBF16;
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, raw.data() + 2 * i, 2);
        out[i] = is_bf16 ? bf16_to_float(h) : fp16_to_float(h);
      }
      break;
    }
    default:
      fail(StatusCode::kDataLoss,
           "tensor '{}' in '{}' has dtype {}; weights must be F32, F16 or BF16", name,
           e.file->path().string(), dtype_name(info.dtype));
  }
  return out;
}

std::vector<std::string> WeightStore::names() const {
  std::vector<std::string> out;
  for (const auto& [name, e] : entries_) out.push_back(name);
  return out;
}

}  // namespace llmserve
