// Trie matching for AddedVocabulary. See added_vocabulary.h.
#include "tokenizer/added_vocabulary.h"

#include <algorithm>

#include "tokenizer/utf8.h"

namespace llmserve {
namespace {

// The character that ends text[0, end) (U+FFFD for a broken one); text must be non-empty there.
char32_t last_char(std::string_view text, std::size_t end) {
  std::size_t begin = end - 1;
  while (begin > 0 && end - begin < 4 && (static_cast<uint8_t>(text[begin]) & 0xC0) == 0x80)
    --begin;
  const utf8::Step step = utf8::decode_step(text, begin);
  return step.is_valid && begin + step.length == end ? step.codepoint : utf8::kReplacementChar;
}

char32_t first_char(std::string_view text, std::size_t begin) {
  return utf8::decode_step(text, begin).codepoint;
}

// \w in Hugging Face's (Rust regex) sense, approximated: ASCII letters, digits and '_', and any
// non-ASCII character other than whitespace and U+FFFD. Only single_word tokens consult this.
bool is_word_char(char32_t cp) {
  if (cp < 0x80)
    return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
           cp == '_';
  return !utf8::is_whitespace(cp) && cp != utf8::kReplacementChar;
}

std::size_t whitespace_before(std::string_view text, std::size_t end, std::size_t floor) {
  std::size_t begin = end;
  while (begin > floor) {
    std::size_t prev = begin - 1;
    while (prev > floor && (static_cast<uint8_t>(text[prev]) & 0xC0) == 0x80) --prev;
    const utf8::Step step = utf8::decode_step(text, prev);
    if (!step.is_valid || prev + step.length != begin || !utf8::is_whitespace(step.codepoint))
      break;
    begin = prev;
  }
  return begin;
}

std::size_t whitespace_after(std::string_view text, std::size_t begin) {
  std::size_t end = begin;
  while (end < text.size()) {
    const utf8::Step step = utf8::decode_step(text, end);
    if (!step.is_valid || !utf8::is_whitespace(step.codepoint)) break;
    end += step.length;
  }
  return end;
}

}  // namespace

void AddedVocabulary::add(AddedToken token) {
  const auto [it, is_new] = index_.emplace(token.content, tokens_.size());
  if (is_new) {
    tokens_.push_back(std::move(token));
  } else {
    tokens_[it->second] = std::move(token);
  }
}

const AddedToken* AddedVocabulary::find(std::string_view content) const {
  const auto it = index_.find(std::string(content));
  return it == index_.end() ? nullptr : &tokens_[it->second];
}

int32_t AddedVocabulary::Matcher::child(int32_t node, uint8_t byte) const {
  const auto& children = trie[node].children;
  const auto it =
      std::lower_bound(children.begin(), children.end(), std::make_pair(byte, int32_t{-1}));
  return it != children.end() && it->first == byte ? it->second : -1;
}

void AddedVocabulary::Matcher::add(std::string_view pattern, int32_t token_index) {
  if (pattern.empty()) return;  // a token that normalizes to nothing cannot be matched
  is_first_byte[static_cast<uint8_t>(pattern[0])] = true;
  int32_t node = 0;
  for (char c : pattern) {
    const auto byte = static_cast<uint8_t>(c);
    int32_t next = child(node, byte);
    if (next < 0) {
      next = static_cast<int32_t>(trie.size());
      trie.push_back(Node{});
      auto& children = trie[node].children;
      children.insert(
          std::lower_bound(children.begin(), children.end(), std::make_pair(byte, next)),
          std::make_pair(byte, next));
    }
    node = next;
  }
  trie[node].token_index = token_index;
}

void AddedVocabulary::finalize(const NormalizeFn& normalize) {
  for (Matcher& matcher : matchers_) matcher = Matcher{{Node{}}, {}};
  for (std::size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& token = tokens_[i];
    const auto index = static_cast<int32_t>(i);
    if (!token.normalized) {
      matchers_[0].add(token.content, index);
    } else {
      matchers_[1].add(normalize ? normalize(token.content) : token.content, index);
    }
  }
}

std::pair<int32_t, std::size_t> AddedVocabulary::longest_match(const Matcher& matcher,
                                                               std::string_view text,
                                                               std::size_t pos,
                                                               SpecialTokens special) const {
  std::pair<int32_t, std::size_t> best{-1, 0};
  int32_t node = 0;
  for (std::size_t i = pos; i < text.size(); ++i) {
    node = matcher.child(node, static_cast<uint8_t>(text[i]));
    if (node < 0) break;
    const int32_t index = matcher.trie[node].token_index;
    if (index < 0) continue;
    const AddedToken& token = tokens_[index];
    if (token.is_special && special == SpecialTokens::kTreatAsText) continue;
    const std::size_t end = i + 1;
    if (token.single_word && ((pos > 0 && is_word_char(last_char(text, pos))) ||
                              (end < text.size() && is_word_char(first_char(text, end))))) {
      continue;
    }
    best = {index, end - pos};
  }
  return best;
}

void AddedVocabulary::split(std::string_view text, SpecialTokens special, Pass pass,
                            std::vector<Segment>& out) const {
  const Matcher& matcher = matchers_[pass == Pass::kRaw ? 0 : 1];
  std::size_t text_begin = 0;  // start of the ordinary stretch not yet emitted
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (!matcher.is_first_byte[static_cast<uint8_t>(text[pos])]) {
      ++pos;
      continue;
    }
    const auto [index, length] = longest_match(matcher, text, pos, special);
    if (index < 0) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens_[index];
    std::size_t begin = pos;
    std::size_t end = pos + length;
    if (token.lstrip) begin = whitespace_before(text, begin, text_begin);
    if (token.rstrip) end = whitespace_after(text, end);
    if (begin > text_begin) out.push_back({text_begin, begin, -1});
    out.push_back({begin, end, token.id});
    text_begin = pos = end;
  }
  if (text_begin < text.size()) out.push_back({text_begin, text.size(), -1});
}

}  // namespace llmserve
