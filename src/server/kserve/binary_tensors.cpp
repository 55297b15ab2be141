#include "server/kserve/binary_tensors.h"

#include <charconv>
#include <cmath>
#include <cstring>

namespace llmserve::kserve {

using nlohmann::json;

namespace {

template <typename T>
T load_le(const char* p) {
  static_assert(std::is_trivially_copyable_v<T>);
  unsigned char b[sizeof(T)];
  std::memcpy(b, p, sizeof(T));
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<uint64_t>(b[i]) << (8 * i);
  if constexpr (std::is_same_v<T, float>) {
    const auto bits = static_cast<uint32_t>(v);
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
  } else {
    return static_cast<T>(v);
  }
}

template <typename T>
void store_le(T value, std::string& out) {
  uint64_t v = 0;
  if constexpr (std::is_same_v<T, float>) {
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    v = bits;
  } else {
    v = static_cast<uint64_t>(value);
  }
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

size_t element_width(DataType type) {
  switch (type) {
    case DataType::kBytes:
      return 0;  // variable
    case DataType::kBool:
      return 1;
    case DataType::kInt32:
      return 4;
    case DataType::kUint64:
      return 8;
    case DataType::kFp32:
      return 4;
  }
  return 0;
}

bool is_utf8(const std::string& s) {
  try {
    (void)json(s).dump();  // the strict handler throws on invalid UTF-8
    return true;
  } catch (const json::type_error&) {
    return false;
  }
}

Status decode_bytes(std::string_view name, std::string_view bytes, int64_t num_elements,
                    std::vector<json>& out) {
  size_t pos = 0;
  int64_t index = 0;
  while (pos < bytes.size()) {
    if (bytes.size() - pos < 4) {
      return invalid_argument(
          "input '{}': element {} has a truncated 4-byte length prefix in its binary data", name,
          index);
    }
    const uint32_t length = load_le<uint32_t>(bytes.data() + pos);
    pos += 4;
    if (length > bytes.size() - pos) {
      return invalid_argument(
          "input '{}': element {} is {} bytes long but only {} bytes of its binary_data_size are "
          "left",
          name, index, length, bytes.size() - pos);
    }
    std::string element(bytes.substr(pos, length));
    if (!is_utf8(element))
      return invalid_argument("input '{}': element {} is not valid UTF-8", name, index);
    out.emplace_back(std::move(element));
    pos += length;
    ++index;
  }
  if (index != num_elements) {
    return invalid_argument(
        "input '{}' has {} BYTES elements in its binary data but its shape needs {}", name, index,
        num_elements);
  }
  return Status::ok();
}

}  // namespace

Status split_infer_body(std::string_view body, const std::optional<std::string>& header_length,
                        InferBody& out) {
  if (!header_length) {
    out = {body, {}};
    return Status::ok();
  }
  const std::string& text = *header_length;
  uint64_t length = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), length);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return invalid_argument("{} must be a non-negative integer, got '{}'",
                            kInferenceHeaderContentLength, text);
  }
  if (length == 0) {
    return invalid_argument(
        "{}: 0 (a raw binary request) needs a model with a single input; send a JSON header "
        "with binary_data_size per input instead",
        kInferenceHeaderContentLength);
  }
  if (length > body.size()) {
    return invalid_argument("{} is {} but the request body has only {} bytes",
                            kInferenceHeaderContentLength, length, body.size());
  }
  out = {body.substr(0, length), body.substr(length)};
  return Status::ok();
}

std::optional<DataType> datatype_from_name(std::string_view name) {
  for (DataType t :
       {DataType::kBytes, DataType::kBool, DataType::kInt32, DataType::kUint64, DataType::kFp32}) {
    if (datatype_name(t) == name) return t;
  }
  return std::nullopt;
}

Status decode_binary_tensor(std::string_view name, DataType type, std::string_view bytes,
                            int64_t num_elements, std::vector<json>& out) {
  if (type == DataType::kBytes) return decode_bytes(name, bytes, num_elements, out);
  const size_t width = element_width(type);
  // num_elements ≤ size first, so the product cannot wrap.
  if (num_elements < 0 || static_cast<uint64_t>(num_elements) > bytes.size() ||
      bytes.size() != static_cast<uint64_t>(num_elements) * width) {
    return invalid_argument(
        "input '{}': binary_data_size is {} but its shape has {} {} elements of {} bytes", name,
        bytes.size(), num_elements, datatype_name(type), width);
  }
  for (int64_t i = 0; i < num_elements; ++i) {
    const char* p = bytes.data() + i * width;
    switch (type) {
      case DataType::kBool: {
        const auto b = static_cast<unsigned char>(*p);
        if (b > 1)
          return invalid_argument("input '{}': BOOL element {} is byte {}, expected 0 or 1", name,
                                  i, b);
        out.emplace_back(b == 1);
        break;
      }
      case DataType::kInt32:
        out.emplace_back(static_cast<int32_t>(load_le<uint32_t>(p)));
        break;
      case DataType::kUint64:
        out.emplace_back(load_le<uint64_t>(p));
        break;
      case DataType::kFp32: {
        const float f = load_le<float>(p);
        if (!std::isfinite(f))
          return invalid_argument("input '{}': FP32 element {} is not finite", name, i);
        out.emplace_back(f);
        break;
      }
      case DataType::kBytes:
        break;  // handled above
    }
  }
  return Status::ok();
}

void encode_binary_tensor(DataType type, const json& elements, std::string& out) {
  for (const json& e : elements) {
    switch (type) {
      case DataType::kBytes: {
        const auto& s = e.get_ref<const std::string&>();
        store_le(static_cast<uint32_t>(s.size()), out);
        out += s;
        break;
      }
      case DataType::kBool:
        out.push_back(e.get<bool>() ? 1 : 0);
        break;
      case DataType::kInt32:
        store_le(static_cast<uint32_t>(e.get<int32_t>()), out);
        break;
      case DataType::kUint64:
        store_le(e.get<uint64_t>(), out);
        break;
      case DataType::kFp32:
        store_le(e.get<float>(), out);
        break;
    }
  }
}

int move_outputs_to_binary(json& response, const std::function<bool(const std::string&)>& is_binary,
                           std::string& binary) {
  int num_binary = 0;
  auto it = response.find("outputs");
  if (it == response.end()) return 0;
  for (json& output : *it) {
    const auto type = datatype_from_name(output.value("datatype", ""));
    if (!type || !is_binary(output.value("name", ""))) continue;
    const size_t start = binary.size();
    encode_binary_tensor(*type, output["data"], binary);
    output.erase("data");
    output["parameters"]["binary_data_size"] = binary.size() - start;
    ++num_binary;
  }
  return num_binary;
}

}  // namespace llmserve::kserve
