// The normalizer steps; Unicode forms and lowercasing through ICU. See normalizer.h.
#include "tokenizer/normalizer.h"

#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include "common/status.h"
#include "tokenizer/utf8.h"

namespace llmserve {
namespace {

std::u16string to_utf16(std::string_view text) {
  UErrorCode status = U_ZERO_ERROR;
  int32_t length = 0;
  u_strFromUTF8(nullptr, 0, &length, text.data(), static_cast<int32_t>(text.size()), &status);
  std::u16string out(static_cast<std::size_t>(length), u'\0');
  status = U_ZERO_ERROR;
  u_strFromUTF8(out.data(), length, nullptr, text.data(), static_cast<int32_t>(text.size()),
                &status);
  if (U_FAILURE(status)) fail(StatusCode::kInternal, "UTF-8 -> UTF-16: {}", u_errorName(status));
  return out;
}

std::string to_utf8(const std::u16string& text) {
  UErrorCode status = U_ZERO_ERROR;
  int32_t length = 0;
  u_strToUTF8(nullptr, 0, &length, text.data(), static_cast<int32_t>(text.size()), &status);
  std::string out(static_cast<std::size_t>(length), '\0');
  status = U_ZERO_ERROR;
  u_strToUTF8(out.data(), length, nullptr, text.data(), static_cast<int32_t>(text.size()), &status);
  if (U_FAILURE(status)) fail(StatusCode::kInternal, "UTF-16 -> UTF-8: {}", u_errorName(status));
  return out;
}

const UNormalizer2* instance(Normalizer::UnicodeForm form) {
  UErrorCode status = U_ZERO_ERROR;
  const UNormalizer2* normalizer = nullptr;
  switch (form) {
    case Normalizer::UnicodeForm::kNfc:
      normalizer = unorm2_getNFCInstance(&status);
      break;
    case Normalizer::UnicodeForm::kNfd:
      normalizer = unorm2_getNFDInstance(&status);
      break;
    case Normalizer::UnicodeForm::kNfkc:
      normalizer = unorm2_getNFKCInstance(&status);
      break;
    case Normalizer::UnicodeForm::kNfkd:
      normalizer = unorm2_getNFKDInstance(&status);
      break;
    case Normalizer::UnicodeForm::kLowercase:
      break;
  }
  if (U_FAILURE(status) || !normalizer) {
    fail(StatusCode::kInternal, "ICU normalizer unavailable: {}", u_errorName(status));
  }
  return normalizer;
}

// Calls transform on each valid stretch of text; invalid bytes are copied as they are.
template <typename Transform>
std::string on_valid_stretches(std::string_view text, Transform transform) {
  std::string out;
  std::size_t valid_begin = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const utf8::Step step = utf8::decode_step(text, pos);
    if (step.is_valid) {
      pos += step.length;
      continue;
    }
    out += transform(text.substr(valid_begin, pos - valid_begin));
    out += text.substr(pos, step.length);
    pos = valid_begin = pos + step.length;
  }
  out += transform(text.substr(valid_begin));
  return out;
}

}  // namespace

std::string unicode_transform(std::string_view text, Normalizer::UnicodeForm form) {
  if (text.empty()) return {};
  std::u16string source = to_utf16(text);
  if (form == Normalizer::UnicodeForm::kLowercase) {
    // Hugging Face lowercases character by character (Rust's char::to_lowercase), so the one
    // context-dependent rule of the root locale, final sigma, never applies: Σ is always σ.
    for (char16_t& c : source) {
      if (c == u'\u03A3') c = u'\u03C3';
    }
  }
  std::u16string result(source.size() * 4 + 8, u'\0');
  for (int attempt = 0; attempt < 2; ++attempt) {
    UErrorCode status = U_ZERO_ERROR;
    int32_t length = 0;
    const auto capacity = static_cast<int32_t>(result.size());
    if (form == Normalizer::UnicodeForm::kLowercase) {
      length = u_strToLower(result.data(), capacity, source.data(),
                            static_cast<int32_t>(source.size()), "", &status);
    } else {
      length = unorm2_normalize(instance(form), source.data(), static_cast<int32_t>(source.size()),
                                result.data(), capacity, &status);
    }
    if (status == U_BUFFER_OVERFLOW_ERROR) {
      result.assign(static_cast<std::size_t>(length), u'\0');
      continue;
    }
    if (U_FAILURE(status)) fail(StatusCode::kInternal, "ICU: {}", u_errorName(status));
    result.resize(static_cast<std::size_t>(length));
    return to_utf8(result);
  }
  fail(StatusCode::kInternal, "ICU: output size changed between calls");
}

void Normalizer::add_prepend(std::string prefix) {
  steps_.push_back(Prepend{std::move(prefix)});
}

void Normalizer::add_replace(std::string_view pattern, RegexSplitter::PatternKind kind,
                             std::string content, std::string_view where) {
  steps_.push_back(
      Replace{std::make_shared<const RegexSplitter>(pattern, kind, where), std::move(content)});
}

void Normalizer::add_unicode(UnicodeForm form) {
  steps_.push_back(Unicode{form});
}

void Normalizer::add_strip(bool left, bool right) {
  steps_.push_back(Strip{left, right});
}

namespace {

std::size_t leading_whitespace(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    const utf8::Step step = utf8::decode_step(text, pos);
    if (!step.is_valid || !utf8::is_whitespace(step.codepoint)) break;
    pos += step.length;
  }
  return pos;
}

std::size_t trailing_whitespace(std::string_view text) {
  std::size_t end = text.size();
  while (end > 0) {
    std::size_t begin = end - 1;
    while (begin > 0 && end - begin < 4 && (static_cast<uint8_t>(text[begin]) & 0xC0) == 0x80) {
      --begin;
    }
    const utf8::Step step = utf8::decode_step(text, begin);
    if (!step.is_valid || begin + step.length != end || !utf8::is_whitespace(step.codepoint)) {
      break;
    }
    end = begin;
  }
  return text.size() - end;
}

}  // namespace

std::string Normalizer::normalize(std::string_view input) const {
  std::string text(input);
  for (const Step& step : steps_) {
    if (const auto* prepend = std::get_if<Prepend>(&step)) {
      if (!text.empty()) text.insert(0, prepend->prefix);
    } else if (const auto* replace = std::get_if<Replace>(&step)) {
      text = replace->pattern->replace_all(text, replace->content);
    } else if (const auto* unicode = std::get_if<Unicode>(&step)) {
      text = on_valid_stretches(
          text, [&](std::string_view valid) { return unicode_transform(valid, unicode->form); });
    } else {
      const auto& strip = std::get<Strip>(step);
      if (strip.right) text.resize(text.size() - trailing_whitespace(text));
      if (strip.left) text.erase(0, leading_whitespace(text));
    }
  }
  return text;
}

}  // namespace llmserve
