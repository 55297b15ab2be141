#include "grammar/tokenizer_info.h"

#include <algorithm>
#include <numeric>

namespace llmserve::grammar {

TokenizerInfo::TokenizerInfo(std::vector<std::string> token_bytes,
                             std::vector<int32_t> stop_token_ids)
    : token_bytes_(std::move(token_bytes)), is_stop_(token_bytes_.size()) {
  for (int32_t id : stop_token_ids) {
    if (id < 0 || id >= vocab_size() || is_stop_[static_cast<size_t>(id)]) continue;
    is_stop_[static_cast<size_t>(id)] = true;
    stop_token_ids_.push_back(id);
  }
  // Tokens in byte order; equal prefixes are then adjacent, and the preorder trie falls out of
  // one pass that keeps the path from the root to the previous token.
  std::vector<int32_t> order;
  for (int32_t id = 0; id < vocab_size(); ++id) {
    if (!token_bytes_[static_cast<size_t>(id)].empty() && !is_stop_[static_cast<size_t>(id)]) {
      order.push_back(id);
    }
  }
  std::sort(order.begin(), order.end(), [this](int32_t a, int32_t b) {
    const auto& x = token_bytes_[static_cast<size_t>(a)];
    const auto& y = token_bytes_[static_cast<size_t>(b)];
    return x != y ? x < y : a < b;
  });
  trie_.push_back(TrieNode{});
  std::vector<int32_t> path{0};  // path[d] = node at depth d on the current branch
  std::string prev;
  for (int32_t id : order) {
    const std::string& s = token_bytes_[static_cast<size_t>(id)];
    max_token_length_ = std::max(max_token_length_, static_cast<int32_t>(s.size()));
    size_t common = 0;
    while (common < s.size() && common < prev.size() && s[common] == prev[common]) ++common;
    // Close the nodes of the previous branch below the common prefix.
    while (path.size() > common + 1) {
      trie_[static_cast<size_t>(path.back())].subtree_end = static_cast<int32_t>(trie_.size());
      path.pop_back();
    }
    for (size_t d = common; d < s.size(); ++d) {
      TrieNode node;
      node.byte = static_cast<uint8_t>(s[d]);
      node.depth = static_cast<int32_t>(d + 1);
      path.push_back(static_cast<int32_t>(trie_.size()));
      trie_.push_back(node);
    }
    // Tokens are sorted, so tokens ending at this node are appended while it is the last one.
    TrieNode& end = trie_[static_cast<size_t>(path.back())];
    if (end.tokens_end == 0)
      end.tokens_begin = end.tokens_end = static_cast<int32_t>(trie_tokens_.size());
    trie_tokens_.push_back(id);
    end.tokens_end = static_cast<int32_t>(trie_tokens_.size());
    prev = s;
  }
  while (!path.empty()) {
    trie_[static_cast<size_t>(path.back())].subtree_end = static_cast<int32_t>(trie_.size());
    path.pop_back();
  }
}

}  // namespace llmserve::grammar
