// Viterbi segmentation for UnigramModel. See unigram_model.h.
#include "tokenizer/unigram_model.h"

#include <limits>

#include "common/status.h"
#include "tokenizer/utf8.h"

namespace llmserve {
namespace {

// What Hugging Face (and SentencePiece) subtract from the lowest score for an unknown character.
constexpr double kUnkPenalty = 10.0;

uint64_t trie_key(int32_t node, uint8_t byte) {
  return (static_cast<uint64_t>(node) << 8) | byte;
}

}  // namespace

UnigramModel::UnigramModel(std::vector<Piece> pieces, const Options& options,
                           std::string_view where)
    : pieces_(std::move(pieces)), options_(options) {
  node_piece_.push_back(-1);  // the root
  min_score_ = std::numeric_limits<double>::max();
  piece_to_id_.reserve(pieces_.size());
  for (std::size_t i = 0; i < pieces_.size(); ++i) {
    const auto id = static_cast<int32_t>(i);
    const std::string& text = pieces_[i].text;
    if (text.empty()) fail(StatusCode::kInvalidArgument, "{}[{}]: empty piece", where, i);
    if (!piece_to_id_.emplace(text, id).second) {
      fail(StatusCode::kInvalidArgument, "{}[{}]: piece '{}' appears twice", where, i, text);
    }
    min_score_ = std::min(min_score_, pieces_[i].score);
    int32_t node = 0;
    for (char c : text) {
      const auto [it, is_new] = trie_.emplace(trie_key(node, static_cast<uint8_t>(c)),
                                              static_cast<int32_t>(node_piece_.size()));
      if (is_new) node_piece_.push_back(-1);
      node = it->second;
    }
    node_piece_[node] = id;
  }
  if (options_.unk_id && (*options_.unk_id < 0 || *options_.unk_id >= vocab_size())) {
    fail(StatusCode::kInvalidArgument, "{}: unk_id {} is outside the vocabulary [0, {})", where,
         *options_.unk_id, vocab_size());
  }
}

int32_t UnigramModel::child(int32_t node, uint8_t byte) const {
  const auto it = trie_.find(trie_key(node, byte));
  return it == trie_.end() ? -1 : it->second;
}

std::optional<int32_t> UnigramModel::token_to_id(std::string_view token) const {
  const auto it = piece_to_id_.find(token);
  if (it == piece_to_id_.end()) return std::nullopt;
  return it->second;
}

const std::string& UnigramModel::id_to_token(int32_t id) const {
  static const std::string kEmpty;
  if (id < 0 || id >= vocab_size()) return kEmpty;
  return pieces_[id].text;
}

// One piece of the best path: its id, or (a fused unk run) its bytes or unk.
void UnigramModel::emit(std::string_view piece, std::vector<int32_t>& out) const {
  if (const auto id = token_to_id(piece)) {
    out.push_back(*id);
    return;
  }
  if (options_.byte_fallback) {
    std::vector<int32_t> bytes;
    for (char c : piece) {
      const auto id = token_to_id(fmt::format("<0x{:02X}>", static_cast<uint8_t>(c)));
      if (!id) break;
      bytes.push_back(*id);
    }
    if (bytes.size() == piece.size()) {
      out.insert(out.end(), bytes.begin(), bytes.end());
      return;
    }
  }
  if (!options_.unk_id) {
    fail(StatusCode::kInvalidArgument, "Unigram model: '{}' needs unk_id, which is not set", piece);
  }
  out.push_back(*options_.unk_id);
}

void UnigramModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  struct Best {
    double score = 0;
    int32_t id = -1;
    std::size_t begin = 0;
    bool is_set = false;
  };
  std::vector<Best> best(word.size() + 1);
  best[0].is_set = true;
  const double unk_score = min_score_ - kUnkPenalty;
  auto offer = [&](std::size_t begin, std::size_t end, int32_t id, double score) {
    const double candidate = best[begin].score + score;
    Best& target = best[end];
    if (!target.is_set || candidate > target.score) target = {candidate, id, begin, true};
  };
  for (std::size_t begin = 0; begin < word.size();) {
    const std::size_t char_length = utf8::decode_step(word, begin).length;
    bool has_single = false;
    int32_t node = 0;
    for (std::size_t end = begin; end < word.size();) {
      node = child(node, static_cast<uint8_t>(word[end++]));
      if (node < 0) break;
      const int32_t id = node_piece_[node];
      if (id < 0) continue;
      offer(begin, end, id, pieces_[id].score);
      has_single = has_single || end - begin == char_length;
    }
    // The unk id is resolved when emitting; -1 marks the node as unk here.
    if (!has_single) offer(begin, begin + char_length, -1, unk_score);
    begin += char_length;
  }
  // The best path's pieces, [begin, end), walked back from the end.
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  for (std::size_t end = word.size(); end > 0; end = best[end].begin) {
    spans.push_back({best[end].begin, end});
  }
  // In text order; with fuse_unk, adjacent unk pieces become one.
  std::size_t run_begin = 0;
  bool in_unk_run = false;
  for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
    const Best& node = best[it->second];
    const bool is_unk = node.id < 0 || (options_.unk_id && node.id == *options_.unk_id);
    if (is_unk && options_.fuse_unk) {
      if (!in_unk_run) run_begin = it->first;
      in_unk_run = true;
      continue;
    }
    if (in_unk_run) emit(word.substr(run_begin, it->first - run_begin), out);
    in_unk_run = false;
    if (node.id < 0) {
      emit(word.substr(it->first, it->second - it->first), out);
    } else {
      out.push_back(node.id);
    }
  }
  if (in_unk_run) emit(word.substr(run_begin), out);
}

}  // namespace llmserve
