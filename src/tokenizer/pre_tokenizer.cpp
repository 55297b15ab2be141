// The step pipeline of PreTokenizer. See pre_tokenizer.h.
#include "tokenizer/pre_tokenizer.h"

namespace llmserve {
namespace {

std::shared_ptr<const RegexSplitter> gpt2_splitter() {
  static const auto kSplitter = std::make_shared<const RegexSplitter>(
      kGpt2Pattern, RegexSplitter::PatternKind::kRegex, "ByteLevel pre-tokenizer");
  return kSplitter;
}

}  // namespace

void PreTokenizer::add_split(std::string_view pattern, RegexSplitter::PatternKind kind,
                             std::string_view where) {
  steps_.push_back(SplitStep{std::make_shared<const RegexSplitter>(pattern, kind, where)});
}

void PreTokenizer::add_byte_level(bool add_prefix_space, bool use_regex) {
  steps_.push_back(ByteLevelStep{add_prefix_space, use_regex ? gpt2_splitter() : nullptr});
  has_byte_level_ = true;
}

void PreTokenizer::for_each_piece(std::string_view text, const PieceSink& sink) const {
  if (!text.empty()) run_steps(0, text, sink);
}

// Applies steps_[step..] to one piece, depth first, so pieces flow to the sink without copies
// (only a prefix space makes a new string).
void PreTokenizer::run_steps(std::size_t step, std::string_view piece,
                             const PieceSink& sink) const {
  if (step == steps_.size()) {
    sink(piece);
    return;
  }
  const RegexSplitter* splitter = nullptr;
  std::string prefixed;
  if (const auto* split = std::get_if<SplitStep>(&steps_[step])) {
    splitter = split->splitter.get();
  } else {
    const auto& byte_level = std::get<ByteLevelStep>(steps_[step]);
    if (byte_level.add_prefix_space && piece.front() != ' ') {
      prefixed.reserve(piece.size() + 1);
      prefixed += ' ';
      prefixed += piece;
      piece = prefixed;
    }
    splitter = byte_level.splitter.get();
  }
  if (!splitter) {
    run_steps(step + 1, piece, sink);
    return;
  }
  std::vector<std::string_view> views;
  splitter->split(piece, views);
  for (std::string_view view : views) run_steps(step + 1, view, sink);
}

std::vector<std::string> PreTokenizer::pre_tokenize(std::string_view text) const {
  std::vector<std::string> out;
  for_each_piece(text, [&](std::string_view piece) { out.emplace_back(piece); });
  return out;
}

}  // namespace llmserve
