// Tokenizer: text <-> token ids for one model, loaded from a Hugging Face tokenizer directory, as
// Hugging Face tokenizers runs it: tokenizer.json (model BPE or Unigram; normalizer, pre_tokenizer,
// decoder and added tokens as listed in tokenizer_json_pipeline.h / decoder.h; post_processor
// TemplateProcessing / ByteLevel / Roberta / Bert / Sequence), or the older vocab.json +
// merges.txt pair, plus an optional tokenizer_config.json (bos/eos tokens, add_bos_token /
// add_eos_token, chat_template, added_tokens_decoder, model_max_length). Anything else is
// rejected at load time with an Error naming the file and field.
//
// Encoding: added tokens with normalized=false are cut out of the text first (special ones only
// when parse_special_tokens); each stretch between them is normalized, the normalized added tokens
// are cut out of it, the rest is pre-tokenized and encoded by the model; then the post-processor's
// bos (and eos) are added when add_special_tokens. Input need not be valid UTF-8: for byte-level
// BPE each maximal run of invalid bytes becomes a pre-token of its own (BPE-encoded like any
// other), so the token bytes still concatenate to the input; character-level models see a
// maximal invalid subpart as one unknown character (byte fallback or unk).
// Decoding: the decoder chain (decoder.h) over the tokens' strings; for a ByteLevel decoder the
// token bytes are concatenated and invalid UTF-8 is replaced with U+FFFD per maximal invalid
// subpart, as Hugging Face's ByteLevel decoder does. A model token's bytes are its byte-level
// string mapped back to bytes (its raw UTF-8 if it has characters outside the byte alphabet, as
// Hugging Face does); an added token's bytes are its content as written. Ids outside
// [0, vocab_size()) throw Error(kOutOfRange); ids inside it with no token (holes in the
// vocabulary) decode to nothing.
//
// Thread-safety: immutable after from_dir(); every const method may be called concurrently.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace llmserve {

struct TokenizerSpec;
class Decoder;
class DecoderStream;

struct EncodeOptions {
  bool add_special_tokens = true;    // add the bos/eos the post-processor or config asks for
  bool parse_special_tokens = true;  // "<|endoftext|>" in the text -> its id (else plain text)
};

struct DecodeOptions {
  bool skip_special_tokens = false;
};

class Tokenizer {
 public:
  // dir holds tokenizer.json, or vocab.json + merges.txt; tokenizer_config.json is optional.
  // Throws Error: kNotFound for a missing directory or files, kInvalidArgument for malformed
  // files, kUnimplemented for a recognised but unsupported component.
  static std::unique_ptr<Tokenizer> from_dir(const std::filesystem::path& dir);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options = {}) const;
  std::string decode(std::span<const int32_t> ids, const DecodeOptions& options = {}) const;

  // The raw bytes this token stands for (not necessarily valid UTF-8): for non-byte-level
  // tokenizers, the decoder's per-token steps on its string ("<0xNN>" -> that byte, "▁" -> ' ').
  // Throws kOutOfRange.
  const std::string& token_bytes(int32_t id) const;
  // By the token's string as written in the vocabulary ("Ġhello") or an added token's content.
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The token's string as written in the vocabulary; "" for a hole. Throws kOutOfRange.
  const std::string& id_to_token(int32_t id) const;
  // Max id + 1, added tokens included.
  int32_t vocab_size() const { return static_cast<int32_t>(id_to_token_.size()); }
  bool is_special(int32_t id) const;

  std::optional<int32_t> bos_token_id() const { return bos_token_id_; }
  std::optional<int32_t> eos_token_id() const { return eos_token_id_; }
  // The "default" chat template from tokenizer_config.json (or chat_template.jinja); "" if none.
  const std::string& chat_template() const { return chat_template_; }
  // tokenizer_config.json's model_max_length when it is a real limit (not HF's 1e30 sentinel).
  std::optional<int64_t> model_max_length() const { return model_max_length_; }

  // Streaming decode (IncrementalDetokenizer): feeds one id into a stream made from decoder();
  // throws kOutOfRange (the stream unchanged) for an id outside the vocabulary.
  const Decoder& decoder() const;
  std::string decode_step(DecoderStream& stream, int32_t id, const DecodeOptions& options) const;

 private:
  explicit Tokenizer(std::unique_ptr<TokenizerSpec> spec);
  void check_id(int32_t id) const;
  void encode_stretch(std::string_view raw, bool at_start, bool parse_special,
                      std::vector<int32_t>& out) const;

  std::unique_ptr<const TokenizerSpec> spec_;
  std::vector<std::string> id_to_token_;  // added tokens override the model's strings
  std::vector<std::string> token_bytes_;
  const std::vector<std::string>* decode_pieces_ = nullptr;  // what decode() feeds the chain
  std::vector<bool> is_special_;
  std::optional<int32_t> bos_token_id_;
  std::optional<int32_t> eos_token_id_;
  std::string chat_template_;
  std::optional<int64_t> model_max_length_;
};

}  // namespace llmserve
