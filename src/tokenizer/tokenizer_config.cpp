// Applies transformers' tokenizer_config.json on top of a loaded tokenizer: extra added tokens
// (added_tokens_decoder), the bos/eos/unk/pad and additional special tokens (resolved to ids and
// marked special, as transformers registers them), add_bos_token / add_eos_token (which, when
// present, replace the post-processor's choice), the chat template and model_max_length.
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "common/status.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/tokenizer_spec.h"

namespace llmserve {
namespace {

using json_fields::find;
using json_fields::Json;

std::optional<int32_t> resolve(const TokenizerSpec& spec, std::string_view token) {
  if (const AddedToken* added = spec.added_tokens.find(token)) return added->id;
  return spec.model->token_to_id(token);
}

// A special-token entry is a string or an AddedToken object {"content": ...}.
std::optional<std::string> token_content(const Json& value, std::string_view where) {
  if (value.is_null()) return std::nullopt;
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object()) {
    return json_fields::get_string(json_fields::require(value, "content", where),
                                   fmt::format("{}.content", where));
  }
  json_fields::fail_type(where, "a string or {\"content\": ...}", value);
}

void mark_special(TokenizerSpec& spec, const std::string& content, int32_t id) {
  AddedToken token;
  if (const AddedToken* existing = spec.added_tokens.find(content)) token = *existing;
  token.id = id;
  token.content = content;
  token.is_special = true;
  spec.added_tokens.add(std::move(token));
}

void read_added_tokens_decoder(const Json& decoder, std::string_view where, TokenizerSpec& spec) {
  if (!decoder.is_object()) json_fields::fail_type(where, "an object", decoder);
  for (const auto& [key, value] : decoder.items()) {
    const std::string entry_where = fmt::format("{}['{}']", where, key);
    AddedToken token;
    char* end = nullptr;
    const long long id = std::strtoll(key.c_str(), &end, 10);
    if (key.empty() || *end != '\0' || id < 0 || id > json_fields::kMaxTokenId) {
      fail(StatusCode::kInvalidArgument, "{}: key is not a token id in [0, {}]", entry_where,
           json_fields::kMaxTokenId);
    }
    token.id = static_cast<int32_t>(id);
    token.content = json_fields::get_string(json_fields::require(value, "content", entry_where),
                                            entry_where + ".content");
    if (token.content.empty()) fail(StatusCode::kInvalidArgument, "{}.content: empty", entry_where);
    token.is_special = json_fields::bool_or(value, "special", false, entry_where);
    token.lstrip = json_fields::bool_or(value, "lstrip", false, entry_where);
    token.rstrip = json_fields::bool_or(value, "rstrip", false, entry_where);
    token.single_word = json_fields::bool_or(value, "single_word", false, entry_where);
    token.normalized = json_fields::bool_or(value, "normalized", !token.is_special, entry_where);
    spec.added_tokens.add(std::move(token));
  }
}

std::string read_chat_template(const Json& value, std::string_view where) {
  if (value.is_string()) return value.get<std::string>();
  if (!value.is_array())
    json_fields::fail_type(where, "a string or a list of {name, template}", value);
  for (std::size_t i = 0; i < value.size(); ++i) {
    const std::string item_where = fmt::format("{}[{}]", where, i);
    const std::string name = json_fields::get_string(
        json_fields::require(value[i], "name", item_where), item_where + ".name");
    if (name == "default") {
      return json_fields::get_string(json_fields::require(value[i], "template", item_where),
                                     item_where + ".template");
    }
  }
  return "";
}

// bos/eos (kept as strings) and the other special tokens (marked special where they exist).
void read_special_tokens(const Json& root, const std::string& where, TokenizerSpec& spec) {
  if (root.contains("bos_token")) {
    spec.bos_token = token_content(root["bos_token"], where + " bos_token");
  }
  if (root.contains("eos_token")) {
    spec.eos_token = token_content(root["eos_token"], where + " eos_token");
  }
  // transformers would invent ids for missing unk/pad/additional tokens, which a fixed model
  // cannot use, so those are ignored.
  std::vector<std::string> others;
  for (std::string_view key : {"unk_token", "pad_token"}) {
    if (const Json* value = find(root, key)) {
      if (auto content = token_content(*value, fmt::format("{} {}", where, key))) {
        others.push_back(*content);
      }
    }
  }
  if (const Json* extra = find(root, "additional_special_tokens")) {
    if (!extra->is_array()) {
      json_fields::fail_type(where + " additional_special_tokens", "an array", *extra);
    }
    for (std::size_t i = 0; i < extra->size(); ++i) {
      const auto item_where = fmt::format("{} additional_special_tokens[{}]", where, i);
      if (auto content = token_content((*extra)[i], item_where)) others.push_back(*content);
    }
  }
  for (const std::string& content : others) {
    if (const auto id = resolve(spec, content)) mark_special(spec, content, *id);
  }
}

// add_bos_token / add_eos_token, when present, decide what encode() adds around a text.
void read_add_bos_eos(const Json& root, const std::string& where, TokenizerSpec& spec) {
  for (auto* token : {&spec.bos_token, &spec.eos_token}) {
    if (*token && !resolve(spec, **token)) {
      fail(StatusCode::kInvalidArgument, "{} {}: '{}' is not in the vocabulary", where,
           token == &spec.bos_token ? "bos_token" : "eos_token", **token);
    }
  }
  if (const Json* add_bos = find(root, "add_bos_token")) {
    spec.prefix_ids.clear();
    if (json_fields::get_bool(*add_bos, where + " add_bos_token") && spec.bos_token) {
      spec.prefix_ids = {*resolve(spec, *spec.bos_token)};
    }
  }
  if (const Json* add_eos = find(root, "add_eos_token")) {
    spec.suffix_ids.clear();
    if (json_fields::get_bool(*add_eos, where + " add_eos_token") && spec.eos_token) {
      spec.suffix_ids = {*resolve(spec, *spec.eos_token)};
    }
  }
}

void apply_config_json(const std::filesystem::path& path, TokenizerSpec& spec) {
  const Json root = json_fields::read_file(path);
  const std::string file = path.string();
  if (!root.is_object()) json_fields::fail_type(file, "an object", root);
  const std::string where = file + ":";  // field names follow after a space

  if (const Json* decoder = find(root, "added_tokens_decoder")) {
    read_added_tokens_decoder(*decoder, where + " added_tokens_decoder", spec);
  }
  read_special_tokens(root, where, spec);
  read_add_bos_eos(root, where, spec);
  if (const Json* value = find(root, "chat_template")) {
    spec.chat_template = read_chat_template(*value, where + " chat_template");
  }
  if (const Json* value = find(root, "model_max_length")) {
    if (!value->is_number()) {
      json_fields::fail_type(where + " model_max_length", "a number", *value);
    }
    // transformers writes 1e30 (VERY_LARGE_INTEGER) when the model sets no limit.
    const double length = value->get<double>();
    if (length > 0 && length < 1e15) spec.model_max_length = static_cast<int64_t>(length);
  }
  if (spec.is_vocab_merges && find(root, "add_prefix_space")) {
    spec.pre_tokenizer = PreTokenizer{};
    spec.pre_tokenizer.add_byte_level(
        json_fields::bool_or(root, "add_prefix_space", false, where + " add_prefix_space"),
        /*use_regex=*/true);
  }
}

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(StatusCode::kNotFound, "{}: cannot open file", path.string());
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

void apply_tokenizer_config(const std::filesystem::path& config_path,
                            const std::filesystem::path& template_path, TokenizerSpec& spec) {
  if (std::filesystem::exists(config_path)) apply_config_json(config_path, spec);
  if (spec.chat_template.empty() && std::filesystem::exists(template_path)) {
    spec.chat_template = read_text_file(template_path);
  }
  for (auto [token, id] : {std::pair{&spec.bos_token, &spec.bos_token_id},
                           std::pair{&spec.eos_token, &spec.eos_token_id}}) {
    *id = std::nullopt;
    if (!*token) continue;
    *id = resolve(spec, **token);
    if (*id) mark_special(spec, **token, **id);
  }
}

}  // namespace llmserve
