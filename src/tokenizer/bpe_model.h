// BpeModel: a BPE vocabulary (token string -> id) and its ranked merges, and the merge loop that
// turns one pre-token into ids exactly as Hugging Face tokenizers' BPE does: split the word into
// initial symbols, then repeatedly merge the adjacent pair with the lowest merge rank (leftmost
// first on ties). With ignore_merges (Llama-3), a pre-token that is itself in the vocabulary is
// emitted whole without merging.
//
// Two alphabets:
//   - byte-level (GPT-2, Llama-3; the tokenizer has a ByteLevel pre-tokenizer): vocabulary strings
//     are written in GPT-2's byte alphabet and the initial symbols are bytes. Each vocabulary
//     string is mapped back to its bytes once, at load, which is equivalent to mapping every
//     pre-token into the alphabet (a bijection) and much cheaper. Tokens with characters outside
//     the alphabet are only reachable by token_to_id().
//   - character-level (SentencePiece-style: Llama-2, Mistral, Gemma, Phi-3): the initial symbols
//     are UTF-8 characters (a maximal invalid subpart counts as one), looked up as written, with
//     continuing_subword_prefix before all but the first and end_of_word_suffix after the last.
// A symbol missing from the vocabulary becomes, in this order: its bytes as "<0xNN>" tokens
// (byte_fallback, when every byte has one), else unk_token (consecutive ones fused into one with
// fuse_unk), else nothing, as Hugging Face does.
//
// Invariants: ids are >= 0 and unique; every merge's parts and result are in the vocabulary.
// Thread-safety: immutable after construction except the internal word cache, which is sharded
// and locked; encode_word() may be called from any number of threads.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/model.h"

namespace llmserve {

// Hash/equality that let unordered_map<std::string, ...> be searched with a string_view.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel final : public Model {
 public:
  struct Merge {
    std::string left;
    std::string right;
  };
  struct Options {
    bool ignore_merges = false;
    bool byte_level = true;  // false: character-level (see above)
    bool byte_fallback = false;
    bool fuse_unk = false;
    std::optional<std::string> unk_token;  // used for characters missing from the vocabulary
    std::string continuing_subword_prefix;
    std::string end_of_word_suffix;
  };

  // where: the file (and field) the data came from, for error messages. Throws
  // Error(kInvalidArgument) naming it for negative or duplicate ids and for a merge whose parts
  // or result are not in the vocabulary (and for affixes a byte-level vocabulary cannot hold).
  BpeModel(TokenIdMap vocab, const std::vector<Merge>& merges, const Options& options,
           std::string_view where);
  ~BpeModel();
  BpeModel(const BpeModel&) = delete;
  BpeModel& operator=(const BpeModel&) = delete;

  // word: one pre-token as raw bytes. Appends its ids to out.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const override;

  std::optional<int32_t> token_to_id(std::string_view token) const override;
  const std::string& id_to_token(int32_t id) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(id_to_token_.size()); }
  std::size_t num_merges() const { return merges_.size(); }

 private:
  struct MergeTarget {
    int32_t rank;
    int32_t new_id;
  };
  class WordCache;

  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
  // The ids merging starts from, per symbol of word (see the header comment).
  void initial_symbols(std::string_view word, std::vector<int32_t>& ids) const;
  std::optional<int32_t> symbol_id(std::string_view symbol) const;
  const MergeTarget* find_merge(int32_t left, int32_t right) const;

  TokenIdMap token_to_id_;
  TokenIdMap bytes_to_id_;                // byte-level: the same tokens keyed by their raw bytes
  std::array<int32_t, 256> byte_id_;      // byte-level: the single-byte tokens; -1 where missing
  std::array<int32_t, 256> fallback_id_;  // the "<0xNN>" tokens when byte_fallback; else -1
  Options options_;                       // affixes as raw bytes in byte-level mode
  std::vector<std::string> id_to_token_;
  std::unordered_map<uint64_t, MergeTarget> merges_;  // (left id << 32 | right id) -> target
  std::optional<int32_t> unk_id_;
  std::unique_ptr<WordCache> cache_;
};

}  // namespace llmserve
