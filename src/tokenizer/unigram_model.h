// UnigramModel: SentencePiece's unigram language model as Hugging Face tokenizers runs it. A
// vocabulary of (piece, log-probability score); a word is segmented into the pieces whose scores
// sum highest (Viterbi over every vocabulary piece that matches at each character position). A
// character that no single piece covers becomes unk with score min_score - 10, consecutive unks
// fuse into one (fuse_unk, Hugging Face's default), and a piece that is not in the vocabulary (a
// fused unk run) becomes its "<0xNN>" byte tokens when byte_fallback and all exist, else unk_id.
// Ties keep the earliest candidate: the one starting leftmost, as Hugging Face's
// encode_optimized does, with the same double arithmetic.
//
// Invariants: ids are the vocabulary's positions. Thread-safety: immutable after construction;
// encode_word() may be called from any number of threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/bpe_model.h"
#include "tokenizer/model.h"

namespace llmserve {

class UnigramModel final : public Model {
 public:
  struct Piece {
    std::string text;
    double score = 0;
  };
  struct Options {
    std::optional<int32_t> unk_id;
    bool byte_fallback = false;
    bool fuse_unk = true;
  };

  // where: the file and field, for errors: kInvalidArgument for an empty or duplicate piece, an
  // unk_id outside the vocabulary.
  UnigramModel(std::vector<Piece> pieces, const Options& options, std::string_view where);

  // Throws Error(kInvalidArgument) when a character needs unk and the model has no unk_id (as
  // Hugging Face fails with MissingUnkId).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const override;
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  const std::string& id_to_token(int32_t id) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(pieces_.size()); }

 private:
  // Byte trie over the pieces: (node << 8 | byte) -> child; nodes that end a piece map to its id.
  int32_t child(int32_t node, uint8_t byte) const;
  void emit(std::string_view piece, std::vector<int32_t>& out) const;

  std::vector<Piece> pieces_;
  TokenIdMap piece_to_id_;
  std::unordered_map<uint64_t, int32_t> trie_;
  std::vector<int32_t> node_piece_;  // node -> piece id ending there, or -1
  Options options_;
  double min_score_ = 0;
};

}  // namespace llmserve
