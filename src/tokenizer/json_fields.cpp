// See json_fields.h.
#include "tokenizer/json_fields.h"

#include <fstream>
#include <sstream>

#include "common/status.h"

namespace llmserve::json_fields {

Json read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(StatusCode::kNotFound, "{}: cannot open file", path.string());
  std::stringstream buffer;
  buffer << in.rdbuf();
  try {
    return Json::parse(buffer.str());
  } catch (const Json::parse_error& e) {
    fail(StatusCode::kInvalidArgument, "{}: invalid JSON: {}", path.string(), e.what());
  }
}

void fail_type(std::string_view where, std::string_view expected, const Json& got) {
  fail(StatusCode::kInvalidArgument, "{}: expected {}, got {}", where, expected, got.type_name());
}

const Json& require(const Json& object, std::string_view key, std::string_view where) {
  if (!object.is_object()) fail_type(where, "an object", object);
  const auto it = object.find(key);
  if (it == object.end()) fail(StatusCode::kInvalidArgument, "{}.{}: missing", where, key);
  return *it;
}

const Json* find(const Json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string get_string(const Json& value, std::string_view where) {
  if (!value.is_string()) fail_type(where, "a string", value);
  return value.get<std::string>();
}

bool get_bool(const Json& value, std::string_view where) {
  if (!value.is_boolean()) fail_type(where, "a boolean", value);
  return value.get<bool>();
}

int64_t get_int(const Json& value, std::string_view where) {
  if (!value.is_number_integer()) fail_type(where, "an integer", value);
  return value.get<int64_t>();
}

int32_t get_token_id(const Json& value, std::string_view where) {
  const int64_t id = get_int(value, where);
  if (id < 0 || id > kMaxTokenId) {
    fail(StatusCode::kInvalidArgument, "{}: token id {} is outside [0, {}]", where, id,
         kMaxTokenId);
  }
  return static_cast<int32_t>(id);
}

bool bool_or(const Json& object, std::string_view key, bool fallback, std::string_view where) {
  const Json* value = find(object, key);
  return value ? get_bool(*value, fmt::format("{}.{}", where, key)) : fallback;
}

}  // namespace llmserve::json_fields
