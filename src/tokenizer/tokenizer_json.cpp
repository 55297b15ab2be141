// Loader for Hugging Face tokenizers' tokenizer.json (see tokenizer.h for the supported subset):
// the model, post-processor and added tokens here, the text pipeline in tokenizer_json_pipeline.
// Each unsupported component is rejected by name so a user knows what their checkpoint needs.
#include <string>

#include "common/status.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/tokenizer_json_pipeline.h"
#include "tokenizer/tokenizer_spec.h"
#include "tokenizer/unigram_model.h"

namespace llmserve {
namespace {

using json_fields::find;
using json_fields::get_bool;
using json_fields::get_string;
using json_fields::get_token_id;
using json_fields::Json;
using json_fields::require;

using tokenizer_json::element;
using tokenizer_json::field;
using tokenizer_json::type_of;

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

std::unique_ptr<Model> read_bpe(const Json& model, std::string_view where, bool byte_level) {
  // HF treats a dropout of 0 as none; any other value makes encoding random.
  if (const Json* dropout = find(model, "dropout");
      dropout && !(dropout->is_number() && dropout->get<double>() == 0.0)) {
    fail(StatusCode::kUnimplemented, "{}.dropout: BPE dropout is not supported (only null)", where);
  }
  BpeModel::Options options;
  options.byte_level = byte_level;
  options.ignore_merges = json_fields::bool_or(model, "ignore_merges", false, where);
  options.byte_fallback = json_fields::bool_or(model, "byte_fallback", false, where);
  options.fuse_unk = json_fields::bool_or(model, "fuse_unk", false, where);
  if (const Json* unk = find(model, "unk_token")) {
    options.unk_token = get_string(*unk, field(where, "unk_token"));
  }
  for (auto [key, affix] :
       {std::pair{"continuing_subword_prefix", &options.continuing_subword_prefix},
        std::pair{"end_of_word_suffix", &options.end_of_word_suffix}}) {
    if (const Json* value = find(model, key)) *affix = get_string(*value, field(where, key));
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

// "vocab": [[piece, score], ...] (ids are positions), "unk_id", "byte_fallback".
std::unique_ptr<Model> read_unigram(const Json& model, std::string_view where) {
  const Json& vocab = tokenizer_json::require_array(model, "vocab", where);
  const std::string vocab_where = field(where, "vocab");
  std::vector<UnigramModel::Piece> pieces;
  pieces.reserve(vocab.size());
  for (std::size_t i = 0; i < vocab.size(); ++i) {
    const std::string item_where = element(vocab_where, i);
    const Json& item = vocab[i];
    if (!item.is_array() || item.size() != 2 || !item[1].is_number()) {
      json_fields::fail_type(item_where, "[piece, score]", item);
    }
    pieces.push_back({get_string(item[0], element(item_where, 0)), item[1].get<double>()});
  }
  UnigramModel::Options options;
  if (const Json* unk = find(model, "unk_id")) {
    options.unk_id = get_token_id(*unk, field(where, "unk_id"));
  }
  options.byte_fallback = json_fields::bool_or(model, "byte_fallback", false, where);
  return std::make_unique<UnigramModel>(std::move(pieces), options, vocab_where);
}

std::unique_ptr<Model> read_model(const Json& model, std::string_view where, bool byte_level) {
  if (!model.is_object()) json_fields::fail_type(where, "an object", model);
  // Old files omit "type"; a vocab with merges can only be BPE.
  const std::string type = find(model, "type") ? type_of(model, where) : "BPE";
  if (type == "BPE") return read_bpe(model, where, byte_level);
  if (type == "Unigram") return read_unigram(model, where);
  fail(StatusCode::kUnimplemented, "{}.type: model '{}' is not supported (only BPE and Unigram)",
       where, type);
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
    // Hugging Face's AddedToken defaults: special tokens are not normalized, others are.
    token.normalized =
        json_fields::bool_or(tokens[i], "normalized", !token.is_special, token_where);
    out.add(std::move(token));
  }
}

}  // namespace

void load_tokenizer_json(const std::filesystem::path& path, TokenizerSpec& spec) {
  const Json root = json_fields::read_file(path);
  const std::string file = path.string();
  if (!root.is_object()) json_fields::fail_type(file, "an object", root);
  if (const Json* normalizer = find(root, "normalizer")) {
    tokenizer_json::read_normalizer(*normalizer, file + ": normalizer", spec.normalizer);
  }
  if (const Json* pre_tokenizer = find(root, "pre_tokenizer")) {
    tokenizer_json::read_pre_tokenizer(*pre_tokenizer, file + ": pre_tokenizer",
                                       spec.pre_tokenizer);
  }
  // A ByteLevel pre-tokenizer maps bytes into the alphabet the BPE vocabulary is written in.
  spec.model = read_model(require(root, "model", file), file + ": model",
                          spec.pre_tokenizer.has_byte_level());
  const Json* decoder = find(root, "decoder");
  if (!decoder) fail(StatusCode::kUnimplemented, "{}: decoder: null is not supported", file);
  tokenizer_json::read_decoder(*decoder, file + ": decoder", spec.decoder);
  if (const Json* post = find(root, "post_processor")) {
    read_post_processor(*post, file + ": post_processor", spec);
  }
  if (const Json* added = find(root, "added_tokens")) {
    read_added_tokens(*added, file + ": added_tokens", spec.added_tokens);
  }
}

}  // namespace llmserve
