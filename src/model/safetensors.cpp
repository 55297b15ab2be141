#include "model/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace llmserve {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the reference implementation's limit

[[noreturn]] void corrupt(const std::string& source, const std::string& what) {
  fail(StatusCode::kDataLoss, "corrupt safetensors file '{}': {}", source, what);
}

TensorInfo parse_entry(const std::string& name, const nlohmann::json& entry,
                       const std::string& source) {
  if (!entry.is_object()) corrupt(source, "entry for tensor '" + name + "' is not an object");
  TensorInfo info;
  info.name = name;
  auto dt = entry.find("dtype");
  if (dt == entry.end() || !dt->is_string()) corrupt(source, "tensor '" + name + "' has no dtype");
  auto dtype = parse_dtype(dt->get<std::string>());
  if (!dtype) corrupt(source, "tensor '" + name + "' has unknown dtype " + dt->dump());
  info.dtype = *dtype;

  auto shape = entry.find("shape");
  if (shape == entry.end() || !shape->is_array()) {
    corrupt(source, "tensor '" + name + "' has no shape array");
  }
  uint64_t numel = 1;
  for (const auto& d : *shape) {
    if (!d.is_number_unsigned())
      corrupt(source, "tensor '" + name + "' has a bad dimension " + d.dump());
    uint64_t v = d.get<uint64_t>();
    if (v != 0 && numel > std::numeric_limits<uint32_t>::max() * 16ull / v) {
      corrupt(source, "tensor '" + name + "' has an absurd shape");
    }
    numel *= v;
    info.shape.push_back(static_cast<int64_t>(v));
  }
  auto offsets = entry.find("data_offsets");
  if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
    corrupt(source, "tensor '" + name + "' has no [begin, end] data_offsets");
  }
  info.begin = (*offsets)[0].get<uint64_t>();
  info.end = (*offsets)[1].get<uint64_t>();
  if (info.end < info.begin) corrupt(source, "tensor '" + name + "' has end < begin");
  if (info.end - info.begin != numel * dtype_size(info.dtype)) {
    corrupt(source, fmt::format("tensor '{}' holds {} bytes but {} x {} needs {}", name,
                                info.end - info.begin, dtype_name(info.dtype), numel,
                                numel * dtype_size(info.dtype)));
  }
  return info;
}

}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::map<std::string, TensorInfo> parse_safetensors_header(std::span<const uint8_t> file_prefix,
                                                           uint64_t file_size,
                                                           const std::string& source) {
  if (file_prefix.size() < 8 || file_size < 8) corrupt(source, "file is shorter than 8 bytes");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = header_len << 8 | file_prefix[i];
  if (header_len > kMaxHeaderBytes)
    corrupt(source, fmt::format("header length {} is too large", header_len));
  if (8 + header_len > file_size || 8 + header_len > file_prefix.size()) {
    corrupt(source, fmt::format("file is truncated: header needs {} bytes, file has {}",
                                8 + header_len, file_size));
  }
  const char* text = reinterpret_cast<const char*>(file_prefix.data() + 8);
  nlohmann::json header = nlohmann::json::parse(text, text + header_len, nullptr, false);
  if (header.is_discarded() || !header.is_object()) corrupt(source, "header is not a JSON object");

  std::map<std::string, TensorInfo> tensors;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) corrupt(source, "__metadata__ is not an object");
      continue;
    }
    tensors.emplace(name, parse_entry(name, entry, source));
  }

  // Tensors must lie inside the data region and must not overlap.
  uint64_t data_size = file_size - 8 - header_len;
  std::vector<const TensorInfo*> order;
  for (const auto& [name, info] : tensors) {
    if (info.end > data_size) {
      corrupt(source,
              fmt::format("file is truncated: tensor '{}' ends at byte {} of a {}-byte data region",
                          name, info.end, data_size));
    }
    order.push_back(&info);
  }
  std::sort(order.begin(), order.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < order.size(); ++i) {
    if (order[i]->begin < order[i - 1]->end) {
      corrupt(source, "tensors '" + order[i - 1]->name + "' and '" + order[i]->name + "' overlap");
    }
  }
  return tensors;
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : file_(path) {
  tensors_ = parse_safetensors_header(file_.bytes(), file_.size(), path.string());
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = header_len << 8 | file_.bytes()[i];
  data_start_ = 8 + header_len;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

std::span<const uint8_t> SafetensorsFile::data(const TensorInfo& info) const {
  return file_.bytes().subspan(data_start_ + info.begin, info.end - info.begin);
}

}  // namespace llmserve
