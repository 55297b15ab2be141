// The BPE merge loop and its word cache. See bpe_model.h.
#include "tokenizer/bpe_model.h"

#include <array>
#include <functional>
#include <mutex>
#include <queue>

#include "common/status.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/utf8.h"

namespace llmserve {

// Word -> ids for recently seen pre-tokens. Sharded so that threads encoding different words
// rarely contend; a full shard is simply emptied (pre-token frequencies are Zipfian, so the hot
// words come straight back).
class BpeModel::WordCache {
 public:
  static constexpr std::size_t kNumShards = 16;
  static constexpr std::size_t kShardCapacity = 4096;
  static constexpr std::size_t kMaxWordBytes = 256;

  bool find(std::string_view word, std::vector<int32_t>& out) const {
    const Shard& shard = shard_for(word);
    std::lock_guard lock(shard.mutex);
    const auto it = shard.map.find(word);
    if (it == shard.map.end()) return false;
    out.insert(out.end(), it->second.begin(), it->second.end());
    return true;
  }

  void insert(std::string_view word, std::vector<int32_t> ids) {
    if (word.size() > kMaxWordBytes) return;
    Shard& shard = shard_for(word);
    std::lock_guard lock(shard.mutex);
    if (shard.map.size() >= kShardCapacity) shard.map.clear();
    shard.map.emplace(std::string(word), std::move(ids));
  }

 private:
  struct Shard {
    mutable std::mutex mutex;
    std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map;
  };
  Shard& shard_for(std::string_view word) { return shards_[StringHash{}(word) % kNumShards]; }
  const Shard& shard_for(std::string_view word) const {
    return shards_[StringHash{}(word) % kNumShards];
  }

  std::array<Shard, kNumShards> shards_;
};

namespace {

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

}  // namespace

BpeModel::BpeModel(TokenIdMap vocab, const std::vector<Merge>& merges, const Options& options,
                   std::string_view where)
    : token_to_id_(std::move(vocab)), options_(options), cache_(std::make_unique<WordCache>()) {
  int32_t max_id = -1;
  for (const auto& [token, id] : token_to_id_) {
    if (id < 0 || id > json_fields::kMaxTokenId) {
      fail(StatusCode::kInvalidArgument, "{}: token '{}' has id {} outside [0, {}]", where, token,
           id, json_fields::kMaxTokenId);
    }
    max_id = std::max(max_id, id);
  }
  byte_id_.fill(-1);
  if (options_.byte_level) {
    bytes_to_id_.reserve(token_to_id_.size());
    for (const auto& [token, id] : token_to_id_) {
      auto bytes = byte_level::decode(token);
      if (!bytes) continue;
      if (bytes->size() == 1) byte_id_[static_cast<uint8_t>((*bytes)[0])] = id;
      bytes_to_id_.emplace(std::move(*bytes), id);
    }
    // Symbols are raw bytes here, so the affixes are too.
    for (std::string* affix : {&options_.continuing_subword_prefix, &options_.end_of_word_suffix}) {
      auto bytes = byte_level::decode(*affix);
      if (!bytes) {
        fail(StatusCode::kInvalidArgument, "{}: affix '{}' is not in the byte-level alphabet",
             where, *affix);
      }
      *affix = std::move(*bytes);
    }
  }
  fallback_id_.fill(-1);
  if (options_.byte_fallback) {
    for (int b = 0; b < 256; ++b) {
      if (const auto id = token_to_id(fmt::format("<0x{:02X}>", b))) fallback_id_[b] = *id;
    }
  }
  id_to_token_.resize(static_cast<std::size_t>(max_id + 1));
  std::vector<bool> is_taken(id_to_token_.size(), false);
  for (const auto& [token, id] : token_to_id_) {
    if (is_taken[id]) {
      fail(StatusCode::kInvalidArgument, "{}: id {} is assigned to both '{}' and '{}'", where, id,
           id_to_token_[id], token);
    }
    is_taken[id] = true;
    id_to_token_[id] = token;
  }
  merges_.reserve(merges.size());
  std::string joined;
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const Merge& merge = merges[rank];
    const auto left = token_to_id(merge.left);
    const auto right = token_to_id(merge.right);
    joined = merge.left + merge.right;
    const auto result = token_to_id(joined);
    if (!left || !right || !result) {
      fail(StatusCode::kInvalidArgument, "{}: merge {} ('{}' '{}'): '{}' is not in the vocabulary",
           where, rank, merge.left, merge.right,
           !left    ? merge.left
           : !right ? merge.right
                    : joined);
    }
    // A repeated pair keeps its last rank, as Hugging Face's loader does.
    merges_[pair_key(*left, *right)] = {static_cast<int32_t>(rank), *result};
  }
  if (options.unk_token) {
    unk_id_ = token_to_id(*options.unk_token);
    if (!unk_id_) {
      fail(StatusCode::kInvalidArgument, "{}: unk_token '{}' is not in the vocabulary", where,
           *options.unk_token);
    }
  }
}

BpeModel::~BpeModel() = default;

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  const auto it = token_to_id_.find(token);
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

const std::string& BpeModel::id_to_token(int32_t id) const {
  static const std::string kEmpty;
  if (id < 0 || id >= vocab_size()) return kEmpty;
  return id_to_token_[id];
}

const BpeModel::MergeTarget* BpeModel::find_merge(int32_t left, int32_t right) const {
  const auto it = merges_.find(pair_key(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    const TokenIdMap& whole = options_.byte_level ? bytes_to_id_ : token_to_id_;
    if (const auto it = whole.find(word); it != whole.end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (cache_->find(word, out)) return;
  const std::size_t first = out.size();
  merge_word(word, out);
  cache_->insert(word, std::vector<int32_t>(out.begin() + first, out.end()));
}

std::optional<int32_t> BpeModel::symbol_id(std::string_view symbol) const {
  if (!options_.byte_level) return token_to_id(symbol);
  if (symbol.size() == 1) {
    const int32_t id = byte_id_[static_cast<uint8_t>(symbol[0])];
    return id < 0 ? std::nullopt : std::optional<int32_t>(id);
  }
  const auto it = bytes_to_id_.find(symbol);
  return it == bytes_to_id_.end() ? std::nullopt : std::optional<int32_t>(it->second);
}

void BpeModel::initial_symbols(std::string_view word, std::vector<int32_t>& ids) const {
  const bool has_affix =
      !options_.continuing_subword_prefix.empty() || !options_.end_of_word_suffix.empty();
  std::string symbol;
  bool has_unk = false;  // an unk waiting to be emitted (so that fuse_unk can extend it)
  for (std::size_t pos = 0; pos < word.size();) {
    const std::size_t length = options_.byte_level ? 1 : utf8::decode_step(word, pos).length;
    std::string_view unit = word.substr(pos, length);
    const bool is_first = pos == 0;
    pos += length;
    if (has_affix) {
      symbol.clear();
      if (!is_first) symbol += options_.continuing_subword_prefix;
      symbol += unit;
      if (pos == word.size()) symbol += options_.end_of_word_suffix;
      unit = symbol;
    }
    if (const auto id = symbol_id(unit)) {
      if (has_unk) ids.push_back(*unk_id_);
      has_unk = false;
      ids.push_back(*id);
      continue;
    }
    if (options_.byte_fallback) {
      // Hugging Face falls back on the symbol as the vocabulary writes it, affixes included.
      const std::string written =
          options_.byte_level ? byte_level::encode(unit) : std::string(unit);
      bool has_all = true;
      for (char c : written) has_all = has_all && fallback_id_[static_cast<uint8_t>(c)] >= 0;
      if (has_all) {
        // As in Hugging Face, a pending unk stays pending across the fallback bytes.
        for (char c : written) ids.push_back(fallback_id_[static_cast<uint8_t>(c)]);
        continue;
      }
    }
    if (!unk_id_) continue;  // Hugging Face drops symbols it cannot represent
    if (has_unk && !options_.fuse_unk) ids.push_back(*unk_id_);
    has_unk = true;
  }
  if (has_unk) ids.push_back(*unk_id_);
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  // Symbols form a doubly linked list over the word's characters; a merged-away symbol is
  // marked dead and skipped.
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool is_alive;
  };
  std::vector<int32_t> ids;
  initial_symbols(word, ids);
  if (ids.empty()) return;
  std::vector<Symbol> symbols;
  symbols.reserve(ids.size());
  for (int32_t id : ids) {
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, index + 1, true});
  }
  symbols.back().next = -1;

  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t new_id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto push_pair = [&](int32_t pos) {
    const int32_t next = symbols[pos].next;
    if (next < 0) return;
    if (const MergeTarget* m = find_merge(symbols[pos].id, symbols[next].id)) {
      queue.push({m->rank, pos, m->new_id});
    }
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) push_pair(i);

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (!left.is_alive || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    const MergeTarget* m = find_merge(left.id, right.id);
    if (!m || m->new_id != top.new_id) continue;  // the pair changed since it was queued
    left.id = top.new_id;
    right.is_alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (left.prev >= 0) push_pair(left.prev);
    push_pair(top.pos);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

}  // namespace llmserve
