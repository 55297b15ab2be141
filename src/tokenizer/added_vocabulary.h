// AddedVocabulary: tokens matched verbatim in the text before pre-tokenization (special tokens
// such as "<|endoftext|>", and plain added tokens), as Hugging Face's AddedVocabulary does:
// leftmost match first, longest on ties; a match with lstrip/rstrip also swallows the whitespace
// on that side; a single_word token only matches between non-word characters. Matching is in two
// passes, as there: tokens with normalized=false are cut out of the raw text, then the normalizer
// runs on each stretch between them, then tokens with normalized=true are cut out of the
// normalized stretches, matched by their normalized content.
//
// Invariants: contents are non-empty and unique. Thread-safety: immutable after finalize();
// split() may be called from any number of threads.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace llmserve {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool is_special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = false;  // matched in the normalized text (by its normalized content)
};

class AddedVocabulary {
 public:
  // A later add() of the same content replaces the earlier one.
  void add(AddedToken token);
  // Builds the matchers; call once after the last add(). normalize: the tokenizer's normalizer,
  // applied to the contents of normalized tokens (none: identity).
  using NormalizeFn = std::function<std::string(std::string_view)>;
  void finalize(const NormalizeFn& normalize = nullptr);

  struct Segment {
    std::size_t begin = 0;
    std::size_t end = 0;
    int32_t id = -1;  // -1: ordinary text to pre-tokenize
  };
  enum class SpecialTokens { kMatch, kTreatAsText };
  enum class Pass { kRaw, kNormalized };  // which tokens: normalized=false, or normalized=true
  // Cuts text into ordinary stretches and added-token matches, covering it in order.
  void split(std::string_view text, SpecialTokens special, Pass pass,
             std::vector<Segment>& out) const;

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  const AddedToken* find(std::string_view content) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
    int32_t token_index = -1;
  };
  struct Matcher {
    std::vector<Node> trie;
    std::array<bool, 256> is_first_byte{};  // bytes that start some token
    int32_t child(int32_t node, uint8_t byte) const;
    void add(std::string_view pattern, int32_t token_index);
  };
  // Longest eligible token starting at pos: its index and length, or {-1, 0}.
  std::pair<int32_t, std::size_t> longest_match(const Matcher& matcher, std::string_view text,
                                                std::size_t pos, SpecialTokens special) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<std::string, std::size_t> index_;  // content -> position in tokens_
  std::array<Matcher, 2> matchers_;                     // by Pass
};

}  // namespace llmserve
