// PreTokenizer: the ordered steps that cut a text (one stretch between added tokens) into
// pre-tokens, each of which the model encodes on its own. The step kinds match Hugging Face's
// pre-tokenizers of the same names:
//   - Split(regex or literal, behavior Isolated): matches and the gaps between them become pieces;
//   - ByteLevel(add_prefix_space, use_regex): prepend ' ' to a piece that does not start with one,
//     then (if use_regex) split with GPT-2's pattern;
//   - Metaspace(replacement, prepend_scheme, split): every ' ' becomes the replacement ("▁"), which
//     is prepended to a piece that does not start with it (always; first: only to the piece at
//     the very start of the input text, i.e. not after an added token; never), then (if split)
//     the piece is cut before each replacement (Hugging Face's MergedWithNext).
// A Sequence is just several steps. Pre-tokens are raw bytes; the byte-level character mapping
// happens later, in the model. Thread-safety: immutable after construction; const methods may be
// called concurrently.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "tokenizer/regex_splitter.h"

namespace llmserve {

// GPT-2's pre-tokenizer pattern (also what ByteLevel(use_regex=true) splits with).
inline constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class PreTokenizer {
 public:
  struct SplitStep {
    std::shared_ptr<const RegexSplitter> splitter;
  };
  struct ByteLevelStep {
    bool add_prefix_space = false;
    std::shared_ptr<const RegexSplitter> splitter;  // null when use_regex is false
  };
  enum class PrependScheme { kAlways, kFirst, kNever };
  struct MetaspaceStep {
    std::string replacement;
    PrependScheme prepend_scheme = PrependScheme::kAlways;
    bool split = true;
  };
  using Step = std::variant<SplitStep, ByteLevelStep, MetaspaceStep>;

  void add_split(std::string_view pattern, RegexSplitter::PatternKind kind, std::string_view where);
  void add_byte_level(bool add_prefix_space, bool use_regex);
  void add_metaspace(std::string replacement, PrependScheme prepend_scheme, bool split);

  bool has_byte_level() const { return has_byte_level_; }
  std::size_t num_steps() const { return steps_.size(); }

  // Calls sink with each pre-token of text, in order; none is empty. A piece is only valid
  // during its call (most are views into text; prefixed ones live in a temporary). at_start: text
  // begins the input (Metaspace's "first" scheme prepends only there).
  using PieceSink = std::function<void(std::string_view)>;
  void for_each_piece(std::string_view text, const PieceSink& sink, bool at_start = true) const;

  // Convenience for tests: the pre-tokens as strings.
  std::vector<std::string> pre_tokenize(std::string_view text, bool at_start = true) const;

 private:
  void run_steps(std::size_t first_step, std::string_view piece, bool at_start,
                 const PieceSink& sink) const;
  void run_metaspace(const MetaspaceStep& metaspace, std::size_t step, std::string_view piece,
                     bool at_start, const PieceSink& sink) const;

  std::vector<Step> steps_;
  bool has_byte_level_ = false;
};

}  // namespace llmserve
