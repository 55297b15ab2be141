// Typed access to JSON fields for the tokenizer loaders: every failure becomes an Error whose
// message names the file and the field path ("tokenizer.json: model.merges[12]: expected a
// string"). Stateless; thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace llmserve::json_fields {

// Far above any real vocabulary (the largest are ~262k); keeps a corrupt id from sizing tables.
inline constexpr int32_t kMaxTokenId = (1 << 24) - 1;

using Json = nlohmann::json;

// Reads and parses a JSON file. kNotFound if it cannot be opened, kInvalidArgument if malformed.
Json read_file(const std::filesystem::path& path);

// where is the "file: field" prefix used in messages.
[[noreturn]] void fail_type(std::string_view where, std::string_view expected, const Json& got);

const Json& require(const Json& object, std::string_view key, std::string_view where);
const Json* find(const Json& object, std::string_view key);  // nullptr if absent or null

std::string get_string(const Json& value, std::string_view where);
bool get_bool(const Json& value, std::string_view where);
int64_t get_int(const Json& value, std::string_view where);
// A token id: an integer in [0, kMaxTokenId].
int32_t get_token_id(const Json& value, std::string_view where);

// Optional fields: the default when absent or null, else the typed value.
bool bool_or(const Json& object, std::string_view key, bool fallback, std::string_view where);

}  // namespace llmserve::json_fields
