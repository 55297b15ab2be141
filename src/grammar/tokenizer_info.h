// TokenizerInfo: what the grammar engine needs to know about a model's vocabulary, built once per
// tokenizer and shared by every CompiledGrammar over it.
//
// token_bytes[id] is the exact byte string the token decodes to (not necessarily valid UTF-8: a
// byte-level BPE token may hold half a code point). Empty entries are special or control tokens:
// never allowed by a grammar. stop_token_ids (EOS and friends) are allowed exactly where the
// grammar may end. The grammar library does not depend on the tokenizer library; the caller
// fills these from llmserve::Tokenizer::token_bytes or any other source.
//
// The vocabulary is also kept as a byte trie laid out in preorder (a node's subtree is the
// contiguous range [node, subtree_end)), so the precomputation can walk every token while
// sharing prefixes and skip a whole subtree in one step when a prefix is rejected.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace llmserve::grammar {

class TokenizerInfo {
 public:
  struct TrieNode {
    uint8_t byte = 0;          // the byte on the edge from the parent (root: unused)
    int32_t depth = 0;         // bytes from the root
    int32_t subtree_end = 0;   // one past the last node of this subtree
    int32_t tokens_begin = 0;  // [tokens_begin, tokens_end) in trie_tokens(): tokens ending here
    int32_t tokens_end = 0;
  };

  // Ids in stop_token_ids outside [0, token_bytes.size()) are ignored.
  TokenizerInfo(std::vector<std::string> token_bytes, std::vector<int32_t> stop_token_ids);

  int32_t vocab_size() const { return static_cast<int32_t>(token_bytes_.size()); }
  // (vocab_size + 31) / 32: the length of a token bitmask.
  int32_t mask_words() const { return (vocab_size() + 31) / 32; }
  const std::string& token_bytes(int32_t id) const { return token_bytes_[static_cast<size_t>(id)]; }
  std::span<const int32_t> stop_token_ids() const { return stop_token_ids_; }
  bool is_stop_token(int32_t id) const { return is_stop_[static_cast<size_t>(id)]; }

  std::span<const TrieNode> trie() const { return trie_; }
  std::span<const int32_t> trie_tokens() const { return trie_tokens_; }
  int32_t max_token_length() const { return max_token_length_; }

 private:
  std::vector<std::string> token_bytes_;
  std::vector<int32_t> stop_token_ids_;
  std::vector<bool> is_stop_;
  std::vector<TrieNode> trie_;
  std::vector<int32_t> trie_tokens_;
  int32_t max_token_length_ = 0;
};

}  // namespace llmserve::grammar
