// Model: the part of a tokenizer that turns one pre-token into ids, as Hugging Face tokenizers'
// Model trait does. Two exist: BpeModel (byte-level or character-level BPE) and UnigramModel
// (SentencePiece's unigram language model). Implementations are immutable after construction
// (apart from internal, locked caches); every const method may be called concurrently.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmserve {

class Model {
 public:
  virtual ~Model() = default;
  // word: one pre-token (raw bytes, normally UTF-8). Appends its ids to out.
  virtual void encode_word(std::string_view word, std::vector<int32_t>& out) const = 0;
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  // "" for ids with no token (holes) or out of range.
  virtual const std::string& id_to_token(int32_t id) const = 0;
  // max id + 1 (0 for an empty vocabulary).
  virtual int32_t vocab_size() const = 0;
};

}  // namespace llmserve
