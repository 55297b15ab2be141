// Tokenizer: loading dispatch, id tables and the encode/decode pipelines. See tokenizer.h.
#include "tokenizer/tokenizer.h"

#include "common/status.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/decoder.h"
#include "tokenizer/tokenizer_spec.h"
#include "tokenizer/utf8.h"

namespace llmserve {

namespace fs = std::filesystem;

std::unique_ptr<Tokenizer> Tokenizer::from_dir(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    fail(StatusCode::kNotFound, "tokenizer directory '{}' does not exist", dir.string());
  }
  auto spec = std::make_unique<TokenizerSpec>();
  const fs::path tokenizer_json = dir / "tokenizer.json";
  const fs::path vocab_json = dir / "vocab.json";
  const fs::path merges_txt = dir / "merges.txt";
  if (fs::exists(tokenizer_json)) {
    load_tokenizer_json(tokenizer_json, *spec);
  } else if (fs::exists(vocab_json) || fs::exists(merges_txt)) {
    for (const fs::path& path : {vocab_json, merges_txt}) {
      if (!fs::exists(path)) {
        fail(StatusCode::kNotFound, "{}: missing (no tokenizer.json either)", path.string());
      }
    }
    load_vocab_merges(vocab_json, merges_txt, *spec);
  } else {
    fail(StatusCode::kNotFound, "'{}' has neither tokenizer.json nor vocab.json + merges.txt",
         dir.string());
  }
  apply_tokenizer_config(dir / "tokenizer_config.json", dir / "chat_template.jinja", *spec);
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(spec)));
}

Tokenizer::Tokenizer(std::unique_ptr<TokenizerSpec> spec) {
  const Normalizer& normalizer = spec->normalizer;
  spec->added_tokens.finalize(
      [&normalizer](std::string_view content) { return normalizer.normalize(content); });
  const Model& model = *spec->model;
  const Decoder& decoder = spec->decoder;
  const bool is_byte_level = decoder.starts_with_byte_level();
  int32_t size = model.vocab_size();
  for (const AddedToken& token : spec->added_tokens.tokens()) size = std::max(size, token.id + 1);
  id_to_token_.resize(size);
  token_bytes_.resize(size);
  is_special_.assign(size, false);
  for (int32_t id = 0; id < model.vocab_size(); ++id) {
    id_to_token_[id] = model.id_to_token(id);
    if (is_byte_level) {
      // Hugging Face's ByteLevel decoder keeps a token with a character outside the byte
      // alphabet as its raw UTF-8.
      auto bytes = byte_level::decode(id_to_token_[id]);
      token_bytes_[id] = bytes ? std::move(*bytes) : id_to_token_[id];
    } else {
      token_bytes_[id] = decoder.token_text(id_to_token_[id]);
    }
  }
  // Added tokens stand for their content verbatim (not byte-level), so "é" stays "é".
  for (const AddedToken& token : spec->added_tokens.tokens()) {
    id_to_token_[token.id] = token.content;
    token_bytes_[token.id] = token.content;
    is_special_[token.id] = token.is_special;
  }
  // What each id hands the decoder chain: a ByteLevel chain takes bytes, the others the strings.
  decode_pieces_ = is_byte_level ? &token_bytes_ : &id_to_token_;
  for (int32_t id : spec->prefix_ids) check_id(id);
  for (int32_t id : spec->suffix_ids) check_id(id);
  bos_token_id_ = spec->bos_token_id;
  eos_token_id_ = spec->eos_token_id;
  chat_template_ = spec->chat_template;
  model_max_length_ = spec->model_max_length;
  spec_ = std::move(spec);
}

Tokenizer::~Tokenizer() = default;

void Tokenizer::check_id(int32_t id) const {
  if (id < 0 || id >= vocab_size()) {
    fail(StatusCode::kOutOfRange, "token id {} is outside the vocabulary [0, {})", id,
         vocab_size());
  }
}

// One stretch of raw text between non-normalized added tokens: normalize it, cut out the
// normalized added tokens, pre-tokenize and encode the rest. at_start: the stretch begins the
// input (Metaspace's prepend_scheme "first").
void Tokenizer::encode_stretch(std::string_view raw, bool at_start, bool parse_special,
                               std::vector<int32_t>& out) const {
  const auto special = parse_special ? AddedVocabulary::SpecialTokens::kMatch
                                     : AddedVocabulary::SpecialTokens::kTreatAsText;
  const Model& model = *spec_->model;
  std::string normalized;
  std::string_view text = raw;
  if (!spec_->normalizer.empty()) {
    normalized = spec_->normalizer.normalize(raw);
    text = normalized;
  }
  std::vector<AddedVocabulary::Segment> segments;
  spec_->added_tokens.split(text, special, AddedVocabulary::Pass::kNormalized, segments);
  for (const auto& segment : segments) {
    if (segment.id >= 0) {
      out.push_back(segment.id);
      continue;
    }
    spec_->pre_tokenizer.for_each_piece(
        text.substr(segment.begin, segment.end - segment.begin),
        [&](std::string_view piece) { model.encode_word(piece, out); },
        at_start && segment.begin == 0);
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (options.add_special_tokens) ids = spec_->prefix_ids;
  const auto special = options.parse_special_tokens ? AddedVocabulary::SpecialTokens::kMatch
                                                    : AddedVocabulary::SpecialTokens::kTreatAsText;
  std::vector<AddedVocabulary::Segment> segments;
  spec_->added_tokens.split(text, special, AddedVocabulary::Pass::kRaw, segments);
  for (const auto& segment : segments) {
    if (segment.id >= 0) {
      ids.push_back(segment.id);
    } else {
      encode_stretch(text.substr(segment.begin, segment.end - segment.begin), segment.begin == 0,
                     options.parse_special_tokens, ids);
    }
  }
  if (options.add_special_tokens) {
    ids.insert(ids.end(), spec_->suffix_ids.begin(), spec_->suffix_ids.end());
  }
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, const DecodeOptions& options) const {
  DecoderStream stream(spec_->decoder);
  std::string text;
  for (int32_t id : ids) text += decode_step(stream, id, options);
  return text + stream.finish();
}

std::string Tokenizer::decode_step(DecoderStream& stream, int32_t id,
                                   const DecodeOptions& options) const {
  check_id(id);
  if (options.skip_special_tokens && is_special_[id]) return {};
  return stream.push((*decode_pieces_)[id]);
}

const Decoder& Tokenizer::decoder() const {
  return spec_->decoder;
}

const std::string& Tokenizer::token_bytes(int32_t id) const {
  check_id(id);
  return token_bytes_[id];
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const AddedToken* added = spec_->added_tokens.find(token)) return added->id;
  return spec_->model->token_to_id(token);
}

const std::string& Tokenizer::id_to_token(int32_t id) const {
  check_id(id);
  return id_to_token_[id];
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && is_special_[id];
}

}  // namespace llmserve
