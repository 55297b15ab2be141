// The decoder chain as a stream. See decoder.h.
#include "tokenizer/decoder.h"

#include <optional>

#include "common/status.h"
#include "tokenizer/utf8.h"

namespace llmserve {
namespace {

// "<0xNN>" -> the byte (Hugging Face's test: six bytes, "<0x" and ">", two hex digits).
std::optional<uint8_t> fallback_byte(std::string_view token) {
  if (token.size() != 6 || !token.starts_with("<0x") || token.back() != '>') return std::nullopt;
  int value = 0;
  for (char c : token.substr(3, 2)) {
    int digit = -1;
    if (c >= '0' && c <= '9') digit = c - '0';
    if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
    if (digit < 0) return std::nullopt;
    value = value * 16 + digit;
  }
  return static_cast<uint8_t>(value);
}

// The characters of valid UTF-8 text (decoder inputs are token strings, which are).
std::vector<std::string_view> characters(std::string_view text) {
  std::vector<std::string_view> out;
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t length = utf8::decode_step(text, pos).length;
    out.push_back(text.substr(pos, length));
    pos += length;
  }
  return out;
}

// Hugging Face's Strip decoder on one token.
std::string strip_token(std::string_view token, std::string_view content, std::size_t start,
                        std::size_t stop) {
  const auto chars = characters(token);
  std::size_t begin = 0;
  while (begin < start && begin < chars.size() && chars[begin] == content) ++begin;
  std::size_t end = chars.size();
  while (chars.size() - end < stop && end > begin && chars[end - 1] == content) --end;
  std::string out;
  for (std::size_t i = begin; i < end; ++i) out += chars[i];
  return out;
}

std::string replace_string(std::string_view text, std::string_view from, std::string_view to) {
  std::string out;
  for (std::size_t pos = 0;;) {
    const std::size_t hit = text.find(from, pos);
    if (hit == std::string_view::npos) {
      out += text.substr(pos);
      return out;
    }
    out += text.substr(pos, hit - pos);
    out += to;
    pos = hit + from.size();
  }
}

void require_one_char(std::string_view text, std::string_view where) {
  if (text.empty() || utf8::decode_step(text, 0).length != text.size()) {
    fail(StatusCode::kInvalidArgument, "{}: '{}' is not one character", where, text);
  }
}

}  // namespace

void Decoder::check_not_fused(std::string_view name, std::string_view where) const {
  if (fuse_ != Fuse::kNone) {
    fail(StatusCode::kUnimplemented, "{}: decoder '{}' after Fuse or ByteLevel is not supported",
         where, name);
  }
}

void Decoder::add_replace(std::string_view pattern, RegexSplitter::PatternKind kind,
                          std::string content, std::string_view where) {
  if (fuse_ != Fuse::kNone && kind == RegexSplitter::PatternKind::kRegex) {
    fail(StatusCode::kUnimplemented,
         "{}: decoder 'Replace' with a Regex pattern after Fuse or ByteLevel is not supported",
         where);
  }
  auto regex = std::make_shared<const RegexSplitter>(pattern, kind, where);
  (fuse_ == Fuse::kNone ? token_steps_ : text_steps_)
      .push_back(Replace{std::move(regex), std::move(content)});
}

void Decoder::add_byte_fallback(std::string_view where) {
  check_not_fused("ByteFallback", where);
  token_steps_.push_back(ByteFallback{});
}

void Decoder::add_strip(std::string content, std::size_t start, std::size_t stop,
                        std::string_view where) {
  require_one_char(content, where);
  (fuse_ == Fuse::kNone ? token_steps_ : text_steps_)
      .push_back(Strip{std::move(content), start, stop});
}

void Decoder::add_metaspace(std::string replacement, bool strips_first, std::string_view where) {
  require_one_char(replacement, where);
  (fuse_ == Fuse::kNone ? token_steps_ : text_steps_)
      .push_back(Metaspace{std::move(replacement), strips_first});
}

void Decoder::add_fuse() {
  if (fuse_ == Fuse::kNone) fuse_ = Fuse::kFuse;
}

void Decoder::add_byte_level(std::string_view where) {
  if (fuse_ == Fuse::kByteLevel && token_steps_.empty() && text_steps_.empty()) return;
  if (fuse_ != Fuse::kNone || !token_steps_.empty()) {
    fail(StatusCode::kUnimplemented,
         "{}: decoder 'ByteLevel' is only supported as the first decoder", where);
  }
  fuse_ = Fuse::kByteLevel;
}

std::string Decoder::token_text(std::string_view token) const {
  std::string text(token);
  for (const Step& step : token_steps_) {
    if (const auto* replace = std::get_if<Replace>(&step)) {
      text = replace->pattern->replace_all(text, replace->content);
    } else if (std::holds_alternative<ByteFallback>(step)) {
      if (const auto byte = fallback_byte(text)) text = std::string(1, static_cast<char>(*byte));
    } else if (const auto* strip = std::get_if<Strip>(&step)) {
      text = strip_token(text, strip->content, strip->start, strip->stop);
    } else {
      text = replace_string(text, std::get<Metaspace>(step).replacement, " ");
    }
  }
  return text;
}

DecoderStream::DecoderStream(const Decoder& decoder)
    : decoder_(decoder),
      token_counts_(decoder.token_steps_.size(), 0),
      pending_bytes_(decoder.token_steps_.size()),
      text_states_(decoder.text_steps_.size()) {}

std::string DecoderStream::push(std::string_view token) {
  std::string out;
  feed_token(0, std::string(token), out);
  return out;
}

void DecoderStream::feed_token(std::size_t step, std::string token, std::string& out) {
  const auto& steps = decoder_.token_steps_;
  if (step == steps.size()) {
    feed_fused(token, out);
    return;
  }
  const std::size_t index = token_counts_[step]++;
  if (const auto* replace = std::get_if<Decoder::Replace>(&steps[step])) {
    token = replace->pattern->replace_all(token, replace->content);
  } else if (std::holds_alternative<Decoder::ByteFallback>(steps[step])) {
    if (const auto byte = fallback_byte(token)) {
      pending_bytes_[step] += static_cast<char>(*byte);
      --token_counts_[step];
      return;
    }
    flush_bytes(step, out);
  } else if (const auto* strip = std::get_if<Decoder::Strip>(&steps[step])) {
    token = strip_token(token, strip->content, strip->start, strip->stop);
  } else {
    const auto& metaspace = std::get<Decoder::Metaspace>(steps[step]);
    const bool drop = index == 0 && metaspace.strips_first;
    token = replace_string(token, metaspace.replacement, drop ? "" : " ");
  }
  feed_token(step + 1, std::move(token), out);
}

void DecoderStream::flush_bytes(std::size_t step, std::string& out) {
  std::string bytes = std::move(pending_bytes_[step]);
  pending_bytes_[step].clear();
  if (bytes.empty()) return;
  if (utf8::is_valid(bytes)) {
    feed_token(step + 1, std::move(bytes), out);
    return;
  }
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    feed_token(step + 1, std::string(utf8::kReplacement), out);
  }
}

void DecoderStream::feed_fused(std::string_view text, std::string& out) {
  if (decoder_.fuse_ != Decoder::Fuse::kByteLevel) {
    feed_text(0, std::string(text), out);
    return;
  }
  // Correct because maximal-subpart U+FFFD replacement of a prefix that ends on a character
  // boundary equals that prefix's part of the whole stream's replacement.
  pending_utf8_ += text;
  const std::size_t ready = pending_utf8_.size() - utf8::incomplete_tail_length(pending_utf8_);
  std::string valid = utf8::to_valid_lossy(std::string_view(pending_utf8_).substr(0, ready));
  pending_utf8_.erase(0, ready);
  feed_text(0, std::move(valid), out);
}

// Text steps see one growing token; text is whole characters.
void DecoderStream::feed_text(std::size_t step, std::string text, std::string& out) {
  const auto& steps = decoder_.text_steps_;
  if (step == steps.size()) {
    out += text;
    return;
  }
  if (text.empty()) return;
  TextState& state = text_states_[step];
  std::string next;
  if (const auto* replace = std::get_if<Decoder::Replace>(&steps[step])) {
    // A String pattern (see add_replace): hold back an unfinished match's beginning.
    const std::string& pattern = replace->pattern->pattern();
    state.buffer += text;
    std::size_t pos = 0;
    for (std::size_t hit; (hit = state.buffer.find(pattern, pos)) != std::string::npos;) {
      next.append(state.buffer, pos, hit - pos);
      next += replace->content;
      pos = hit + pattern.size();
    }
    std::size_t keep = std::min(pattern.size() - 1, state.buffer.size() - pos);
    while (keep > 0 && !std::string_view(state.buffer).ends_with(pattern.substr(0, keep))) --keep;
    next.append(state.buffer, pos, state.buffer.size() - pos - keep);
    state.buffer.erase(0, state.buffer.size() - keep);
  } else if (const auto* strip = std::get_if<Decoder::Strip>(&steps[step])) {
    for (std::string_view c : characters(text)) {
      if (!state.past_start && state.stripped_or_seen < strip->start && c == strip->content) {
        ++state.stripped_or_seen;
        continue;
      }
      state.past_start = true;
      if (strip->stop == 0) {
        next += c;
      } else if (c == strip->content) {
        if (++state.held > strip->stop) {
          next += c;
          --state.held;
        }
      } else {
        for (; state.held > 0; --state.held) next += strip->content;
        next += c;
      }
    }
  } else {
    const auto& metaspace = std::get<Decoder::Metaspace>(steps[step]);
    next = replace_string(text, metaspace.replacement, metaspace.strips_first ? "" : " ");
  }
  feed_text(step + 1, std::move(next), out);
}

std::string DecoderStream::finish() {
  std::string out;
  for (std::size_t step = 0; step < decoder_.token_steps_.size(); ++step) flush_bytes(step, out);
  if (!pending_utf8_.empty()) {
    std::string rest = utf8::to_valid_lossy(pending_utf8_);
    pending_utf8_.clear();
    feed_text(0, std::move(rest), out);
  }
  for (std::size_t step = 0; step < text_states_.size(); ++step) {
    TextState& state = text_states_[step];
    std::string rest = std::move(state.buffer);  // Replace: an unfinished match is plain text
    state.buffer.clear();
    state.held = 0;  // Strip: trailing characters within stop are cut
    feed_text(step + 1, std::move(rest), out);
  }
  return out;
}

}  // namespace llmserve
