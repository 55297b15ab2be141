// BpeModel: a byte-level BPE vocabulary (token string -> id, the strings written in GPT-2's
// byte-level alphabet) and its ranked merges, and the merge loop that turns one pre-token into
// ids exactly as Hugging Face tokenizers' BPE does: repeatedly merge the adjacent pair with the
// lowest merge rank (leftmost first on ties). With ignore_merges (Llama-3), a pre-token that is
// itself in the vocabulary is emitted whole without merging.
//
// Encoding works on raw bytes: each vocabulary string is mapped back to the bytes it stands for
// once, at load, which is equivalent to mapping every pre-token into the alphabet (the mapping is
// a bijection) and much cheaper. Tokens with characters outside the alphabet cannot come out of
// byte-level input and are only reachable by token_to_id().
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

namespace llmserve {

// Hash/equality that let unordered_map<std::string, ...> be searched with a string_view.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  struct Merge {
    std::string left;
    std::string right;
  };
  struct Options {
    bool ignore_merges = false;
    std::optional<std::string> unk_token;  // used for characters missing from the vocabulary
  };

  // where: the file (and field) the data came from, for error messages. Throws
  // Error(kInvalidArgument) naming it for negative or duplicate ids and for a merge whose parts
  // or result are not in the vocabulary.
  BpeModel(TokenIdMap vocab, const std::vector<Merge>& merges, const Options& options,
           std::string_view where);
  ~BpeModel();
  BpeModel(const BpeModel&) = delete;
  BpeModel& operator=(const BpeModel&) = delete;

  // word: one pre-token as raw bytes. Appends its ids to out.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // "" for ids with no token (holes) or out of range.
  const std::string& id_to_token(int32_t id) const;
  // max id + 1 (0 for an empty vocabulary).
  int32_t vocab_size() const { return static_cast<int32_t>(id_to_token_.size()); }
  std::size_t num_merges() const { return merges_.size(); }

 private:
  struct MergeTarget {
    int32_t rank;
    int32_t new_id;
  };
  class WordCache;

  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
  const MergeTarget* find_merge(int32_t left, int32_t right) const;

  TokenIdMap token_to_id_;
  TokenIdMap bytes_to_id_;            // the same tokens keyed by their raw bytes
  std::array<int32_t, 256> byte_id_;  // the single-byte tokens; -1 where missing
  std::vector<std::string> id_to_token_;
  std::unordered_map<uint64_t, MergeTarget> merges_;  // (left id << 32 | right id) -> target
  bool ignore_merges_ = false;
  std::optional<int32_t> unk_id_;
  std::unique_ptr<WordCache> cache_;
};

}  // namespace llmserve
