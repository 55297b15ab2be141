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

void PreTokenizer::add_metaspace(std::string replacement, PrependScheme prepend_scheme,
                                 bool split) {
  steps_.push_back(MetaspaceStep{std::move(replacement), prepend_scheme, split});
}

void PreTokenizer::for_each_piece(std::string_view text, const PieceSink& sink,
                                  bool at_start) const {
  if (!text.empty()) run_steps(0, text, at_start, sink);
}

void PreTokenizer::run_metaspace(const MetaspaceStep& metaspace, std::size_t step,
                                 std::string_view piece, bool at_start,
                                 const PieceSink& sink) const {
  const std::string& replacement = metaspace.replacement;
  std::string replaced;
  replaced.reserve(piece.size() + replacement.size() * 4);
  for (char c : piece) {
    if (c == ' ') {
      replaced += replacement;
    } else {
      replaced += c;
    }
  }
  const bool prepend = metaspace.prepend_scheme == PrependScheme::kAlways ||
                       (metaspace.prepend_scheme == PrependScheme::kFirst && at_start);
  if (prepend && !std::string_view(replaced).starts_with(replacement)) {
    replaced.insert(0, replacement);
  }
  if (!metaspace.split) {
    run_steps(step + 1, replaced, at_start, sink);
    return;
  }
  // Cut before each replacement after the first character (MergedWithNext).
  const std::string_view text = replaced;
  std::size_t begin = 0;
  for (std::size_t pos = text.find(replacement, 1); pos != std::string_view::npos;
       pos = text.find(replacement, pos + replacement.size())) {
    if (pos == begin) continue;
    run_steps(step + 1, text.substr(begin, pos - begin), at_start && begin == 0, sink);
    begin = pos;
  }
  run_steps(step + 1, text.substr(begin), at_start && begin == 0, sink);
}

// Applies steps_[step..] to one piece, depth first, so pieces flow to the sink without copies
// (only a prefix space makes a new string).
void PreTokenizer::run_steps(std::size_t step, std::string_view piece, bool at_start,
                             const PieceSink& sink) const {
  if (step == steps_.size()) {
    sink(piece);
    return;
  }
  if (const auto* metaspace = std::get_if<MetaspaceStep>(&steps_[step])) {
    run_metaspace(*metaspace, step, piece, at_start, sink);
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
    run_steps(step + 1, piece, at_start, sink);
    return;
  }
  std::vector<std::string_view> views;
  splitter->split(piece, views);
  for (std::size_t i = 0; i < views.size(); ++i) {
    run_steps(step + 1, views[i], at_start && i == 0, sink);
  }
}

std::vector<std::string> PreTokenizer::pre_tokenize(std::string_view text, bool at_start) const {
  std::vector<std::string> out;
  for_each_piece(
      text, [&](std::string_view piece) { out.emplace_back(piece); }, at_start);
  return out;
}

}  // namespace llmserve
