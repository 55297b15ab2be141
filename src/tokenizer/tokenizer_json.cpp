// Loader for Hugging Face tokenizers' tokenizer.json: the byte-level BPE subset (see tokenizer.h).
// Each unsupported component is rejected by name so a user knows what their checkpoint needs.
#include <string>

#include "common/status.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/tokenizer_spec.h"

namespace llmserve {
namespace {

using json_fields::find;
using json_fields::get_bool;
using json_fields::get_string;
using json_fields::get_token_id;
using json_fields::Json;
using json_fields::require;

std::string field(std::string_view where, std::string_view key) {
  return fmt::format("{}.{}", where, key);
}
std::string element(std::string_view where, std::size_t i) {
  return fmt::format("{}[{}]", where, i);
}

std::string type_of(const Json& node, std::string_view where) {
  return get_string(require(node, "type", where), field(where, "type"));
}

void add_pre_tokenizer(const Json& node, std::string_view where, PreTokenizer& out) {
  const std::string type = type_of(node, where);
  if (type == "Sequence") {
    const Json& steps = require(node, "pretokenizers", where);
    const std::string steps_where = field(where, "pretokenizers");
    if (!steps.is_array()) json_fields::fail_type(steps_where, "an array", steps);
    for (std::size_t i = 0; i < steps.size(); ++i) {
      add_pre_tokenizer(steps[i], element(steps_where, i), out);
    }
  } else if (type == "ByteLevel") {
    out.add_byte_level(json_fields::bool_or(node, "add_prefix_space", true, where),
                       json_fields::bool_or(node, "use_regex", true, where));
  } else if (type == "Split") {
    const std::string behavior =
        get_string(require(node, "behavior", where), field(where, "behavior"));
    if (behavior != "Isolated") {
      fail(StatusCode::kUnimplemented, "{}.behavior: '{}' is not supported (only Isolated)", where,
           behavior);
    }
    if (json_fields::bool_or(node, "invert", false, where)) {
      fail(StatusCode::kUnimplemented, "{}.invert: true is not supported", where);
    }
    const Json& pattern = require(node, "pattern", where);
    const std::string pattern_where = field(where, "pattern");
    if (const Json* regex = find(pattern, "Regex")) {
      out.add_split(get_string(*regex, field(pattern_where, "Regex")),
                    RegexSplitter::PatternKind::kRegex, field(pattern_where, "Regex"));
    } else if (const Json* literal = find(pattern, "String")) {
      out.add_split(get_string(*literal, field(pattern_where, "String")),
                    RegexSplitter::PatternKind::kLiteral, field(pattern_where, "String"));
    } else {
      fail(StatusCode::kInvalidArgument, "{}: expected {{\"Regex\": ...}} or {{\"String\": ...}}",
           pattern_where);
    }
  } else {
    fail(StatusCode::kUnimplemented, "{}.type: pre-tokenizer '{}' is not supported", where, type);
  }
}

void check_decoder(const Json& node, std::string_view where) {
  const std::string type = type_of(node, where);
  if (type == "ByteLevel") return;
  if (type == "Sequence") {
    const Json& steps = require(node, "decoders", where);
    const std::string steps_where = field(where, "decoders");
    if (!steps.is_array()) json_fields::fail_type(steps_where, "an array", steps);
    for (std::size_t i = 0; i < steps.size(); ++i) check_decoder(steps[i], element(steps_where, i));
    return;
  }
  fail(StatusCode::kUnimplemented, "{}.type: decoder '{}' is not supported (only ByteLevel)", where,
       type);
}

// TemplateProcessing's "single": special tokens before $A go to prefix_ids, after it to suffix_ids.
void read_template(const Json& node, std::string_view where, TokenizerSpec& spec) {
  const Json& single = require(node, "single", where);
  const std::string single_where = field(where, "single");
  if (!single.is_array()) json_fields::fail_type(single_where, "an array", single);
  const Json& specials = require(node, "special_tokens", where);
  std::vector<int32_t> prefix;
  std::vector<int32_t> suffix;
  bool seen_sequence = false;
  for (std::size_t i = 0; i < single.size(); ++i) {
    const std::string item_where = element(single_where, i);
    if (find(single[i], "Sequence")) {
      seen_sequence = true;
      continue;
    }
    const Json* special = find(single[i], "SpecialToken");
    if (!special) {
      fail(StatusCode::kInvalidArgument, "{}: expected SpecialToken or Sequence", item_where);
    }
    const std::string name =
        get_string(require(*special, "id", item_where), field(item_where, "id"));
    const std::string special_where = fmt::format("{}.special_tokens['{}']", where, name);
    const Json* entry = find(specials, name);
    if (!entry) fail(StatusCode::kInvalidArgument, "{}: missing", special_where);
    const Json& ids = require(*entry, "ids", special_where);
    if (!ids.is_array()) json_fields::fail_type(field(special_where, "ids"), "an array", ids);
    for (std::size_t k = 0; k < ids.size(); ++k) {
      const auto id = get_token_id(ids[k], element(field(special_where, "ids"), k));
      (seen_sequence ? suffix : prefix).push_back(static_cast<int32_t>(id));
    }
  }
  spec.prefix_ids = std::move(prefix);
  spec.suffix_ids = std::move(suffix);
}

// RobertaProcessing / BertProcessing: "cls": [token, id] before, "sep": [token, id] after.
int32_t processing_id(const Json& node, std::string_view key, std::string_view where) {
  const Json& pair = require(node, key, where);
  const std::string pair_where = field(where, key);
  if (!pair.is_array() || pair.size() != 2) json_fields::fail_type(pair_where, "[token, id]", pair);
  return get_token_id(pair[1], element(pair_where, 1));
}

void read_post_processor(const Json& node, std::string_view where, TokenizerSpec& spec) {
  const std::string type = type_of(node, where);
  if (type == "ByteLevel") return;
  if (type == "TemplateProcessing") {
    read_template(node, where, spec);
  } else if (type == "RobertaProcessing" || type == "BertProcessing") {
    spec.prefix_ids = {processing_id(node, "cls", where)};
    spec.suffix_ids = {processing_id(node, "sep", where)};
  } else if (type == "Sequence") {
    const Json& steps = require(node, "processors", where);
    const std::string steps_where = field(where, "processors");
    if (!steps.is_array()) json_fields::fail_type(steps_where, "an array", steps);
    for (std::size_t i = 0; i < steps.size(); ++i) {
      read_post_processor(steps[i], element(steps_where, i), spec);
    }
  } else {
    fail(StatusCode::kUnimplemented, "{}.type: post-processor '{}' is not supported", where, type);
  }
}

std::vector<BpeModel::Merge> read_merges(const Json& merges, std::string_view where) {
  if (!merges.is_array()) json_fields::fail_type(where, "an array", merges);
  std::vector<BpeModel::Merge> out;
  out.reserve(merges.size());
  for (std::size_t i = 0; i < merges.size(); ++i) {
    const Json& merge = merges[i];
    if (merge.is_string()) {
      // Hugging Face's legacy form "left right": exactly one space.
      const auto& text = merge.get_ref<const std::string&>();
      const auto space = text.find(' ');
      if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
        fail(StatusCode::kInvalidArgument, "{}: '{}' is not two tokens separated by one space",
             element(where, i), text);
      }
      out.push_back({text.substr(0, space), text.substr(space + 1)});
    } else if (merge.is_array() && merge.size() == 2) {
      out.push_back({get_string(merge[0], element(element(where, i), 0)),
                     get_string(merge[1], element(element(where, i), 1))});
    } else {
      json_fields::fail_type(element(where, i), "\"left right\" or [left, right]", merge);
    }
  }
  return out;
}

std::unique_ptr<BpeModel> read_model(const Json& model, std::string_view where) {
  if (!model.is_object()) json_fields::fail_type(where, "an object", model);
  // Old files omit "type"; a vocab with merges can only be BPE.
  const std::string type = find(model, "type") ? type_of(model, where) : "BPE";
  if (type != "BPE") {
    fail(StatusCode::kUnimplemented, "{}.type: model '{}' is not supported (only BPE)", where,
         type);
  }
  if (const Json* dropout = find(model, "dropout");
      dropout && !(dropout->is_number() && dropout->get<double>() == 0.0)) {
    fail(StatusCode::kUnimplemented, "{}.dropout: BPE dropout is not supported", where);
  }
  if (json_fields::bool_or(model, "byte_fallback", false, where)) {
    fail(StatusCode::kUnimplemented, "{}.byte_fallback: true is not supported", where);
  }
  for (std::string_view key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (const Json* affix = find(model, key);
        affix && !get_string(*affix, field(where, key)).empty()) {
      fail(StatusCode::kUnimplemented, "{}.{}: '{}' is not supported", where, key,
           affix->get<std::string>());
    }
  }
  BpeModel::Options options;
  options.ignore_merges = json_fields::bool_or(model, "ignore_merges", false, where);
  if (const Json* unk = find(model, "unk_token")) {
    options.unk_token = get_string(*unk, field(where, "unk_token"));
  }
  const Json& vocab_json = require(model, "vocab", where);
  const std::string vocab_where = field(where, "vocab");
  if (!vocab_json.is_object()) json_fields::fail_type(vocab_where, "an object", vocab_json);
  TokenIdMap vocab;
  vocab.reserve(vocab_json.size());
  for (const auto& [token, id] : vocab_json.items()) {
    vocab.emplace(token, get_token_id(id, fmt::format("{}['{}']", vocab_where, token)));
  }
  const auto merges = read_merges(require(model, "merges", where), field(where, "merges"));
  return std::make_unique<BpeModel>(std::move(vocab), merges, options, where);
}

void read_added_tokens(const Json& tokens, std::string_view where, AddedVocabulary& out) {
  if (!tokens.is_array()) json_fields::fail_type(where, "an array", tokens);
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const std::string token_where = element(where, i);
    AddedToken token;
    token.id = get_token_id(require(tokens[i], "id", token_where), field(token_where, "id"));
    token.content =
        get_string(require(tokens[i], "content", token_where), field(token_where, "content"));
    if (token.content.empty()) fail(StatusCode::kInvalidArgument, "{}.content: empty", token_where);
    token.is_special = json_fields::bool_or(tokens[i], "special", false, token_where);
    token.lstrip = json_fields::bool_or(tokens[i], "lstrip", false, token_where);
    token.rstrip = json_fields::bool_or(tokens[i], "rstrip", false, token_where);
    token.single_word = json_fields::bool_or(tokens[i], "single_word", false, token_where);
    out.add(std::move(token));
  }
}

}  // namespace

void load_tokenizer_json(const std::filesystem::path& path, TokenizerSpec& spec) {
  const Json root = json_fields::read_file(path);
  const std::string file = path.string();
  if (!root.is_object()) json_fields::fail_type(file, "an object", root);
  spec.model = read_model(require(root, "model", file), file + ": model");
  if (const Json* normalizer = find(root, "normalizer")) {
    const Json* type = find(*normalizer, "type");
    fail(StatusCode::kUnimplemented, "{}: normalizer.type: '{}' is not supported (only null)", file,
         type && type->is_string() ? type->get<std::string>() : normalizer->dump());
  }
  const Json* pre_tokenizer = find(root, "pre_tokenizer");
  if (pre_tokenizer)
    add_pre_tokenizer(*pre_tokenizer, file + ": pre_tokenizer", spec.pre_tokenizer);
  if (!spec.pre_tokenizer.has_byte_level()) {
    fail(StatusCode::kUnimplemented,
         "{}: pre_tokenizer: no ByteLevel step; only byte-level BPE tokenizers are supported",
         file);
  }
  const Json* decoder = find(root, "decoder");
  if (!decoder)
    fail(StatusCode::kUnimplemented, "{}: decoder: null is not supported (only ByteLevel)", file);
  check_decoder(*decoder, file + ": decoder");
  if (const Json* post = find(root, "post_processor")) {
    read_post_processor(*post, file + ": post_processor", spec);
  }
  if (const Json* added = find(root, "added_tokens")) {
    read_added_tokens(*added, file + ": added_tokens", spec.added_tokens);
  }
}

}  // namespace llmserve
