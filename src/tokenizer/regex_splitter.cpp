// PCRE2 behind RegexSplitter. See regex_splitter.h.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/regex_splitter.h"

#include <pcre2.h>

#include <cstdint>

#include "common/status.h"
#include "tokenizer/utf8.h"

namespace llmserve {
namespace {

// Unicode White_Space as the body of a character class.
constexpr std::string_view kWhiteSpaceBody =
    "\\x{9}-\\x{D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
    "\\x{205F}\\x{3000}";

// One match context with a JIT stack per thread: PCRE2's default 32 KiB JIT stack is too small
// for long runs of whitespace matched by lookahead-heavy patterns.
struct ThreadMatchContext {
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  ThreadMatchContext() {
    context = pcre2_match_context_create(nullptr);
    jit_stack = pcre2_jit_stack_create(32 * 1024, 16 * 1024 * 1024, nullptr);
    if (context && jit_stack) pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~ThreadMatchContext() {
    if (jit_stack) pcre2_jit_stack_free(jit_stack);
    if (context) pcre2_match_context_free(context);
  }
};

pcre2_match_context* thread_match_context() {
  thread_local ThreadMatchContext tls;
  return tls.context;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  const int n = pcre2_get_error_message(code, buffer, sizeof(buffer));
  return n < 0 ? "unknown PCRE2 error" : std::string(reinterpret_cast<const char*>(buffer), n);
}

}  // namespace

std::string rewrite_whitespace_classes(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 64);
  bool in_class = false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[i + 1];
      ++i;
      if (e == 's') {
        if (in_class) {
          out += kWhiteSpaceBody;
        } else {
          out += '[';
          out += kWhiteSpaceBody;
          out += ']';
        }
      } else if (e == 'S' && !in_class) {
        out += "[^";
        out += kWhiteSpaceBody;
        out += ']';
      } else {
        out += c;  // other escapes (and \S inside a class, rare) pass through unchanged
        out += e;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // "[]..." and "[^]..." start with a literal ']'.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (in_class && c == '[' && i + 1 < pattern.size() && pattern[i + 1] == ':') {
      const auto end = pattern.find(":]", i + 2);  // POSIX class such as [:alpha:]
      if (end != std::string_view::npos) {
        out += pattern.substr(i, end + 2 - i);
        i = end + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

RegexSplitter::RegexSplitter(std::string_view pattern, PatternKind kind, std::string_view where)
    : pattern_(kind == PatternKind::kRegex ? rewrite_whitespace_classes(pattern)
                                           : std::string(pattern)) {
  if (pattern_.empty()) fail(StatusCode::kInvalidArgument, "{}: empty split pattern", where);
  uint32_t options = PCRE2_UTF | PCRE2_UCP;
  if (kind == PatternKind::kLiteral) options = PCRE2_UTF | PCRE2_LITERAL;
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern_.data()), pattern_.size(),
                                   options, &error_code, &error_offset, nullptr);
  if (!code) {
    fail(StatusCode::kInvalidArgument, "{}: pattern '{}' does not compile at offset {}: {}", where,
         std::string(pattern), error_offset, pcre2_message(error_code));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is absent
  code_ = code;
}

RegexSplitter::~RegexSplitter() {
  pcre2_code_free(static_cast<pcre2_code*>(code_));
}

void RegexSplitter::for_each_stretch(std::string_view text, const StretchSink& sink) {
  std::size_t valid_begin = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (static_cast<uint8_t>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const utf8::Step step = utf8::decode_step(text, pos);
    if (step.is_valid) {
      pos += step.length;
      continue;
    }
    // Gather the whole run of invalid subparts into one stretch.
    std::size_t end = pos + step.length;
    while (end < text.size()) {
      const utf8::Step next = utf8::decode_step(text, end);
      if (next.is_valid) break;
      end += next.length;
    }
    if (pos > valid_begin) sink(valid_begin, pos, true);
    sink(pos, end, false);
    pos = valid_begin = end;
  }
  if (text.size() > valid_begin) sink(valid_begin, text.size(), true);
}

namespace {

// Match data for one call, freed on every path.
struct MatchData {
  pcre2_match_data* data;
  explicit MatchData(void* code) {
    data = pcre2_match_data_create_from_pattern(static_cast<pcre2_code*>(code), nullptr);
    if (!data) fail(StatusCode::kResourceExhausted, "regex: out of memory");
  }
  ~MatchData() { pcre2_match_data_free(data); }
  MatchData(const MatchData&) = delete;
  MatchData& operator=(const MatchData&) = delete;
};

}  // namespace

void RegexSplitter::split(std::string_view text, std::vector<std::string_view>& out) const {
  if (text.empty()) return;
  MatchData match_data(code_);
  for_each_stretch(text, [&](std::size_t begin, std::size_t end, bool is_valid) {
    const std::string_view stretch = text.substr(begin, end - begin);
    if (!is_valid) {
      out.push_back(stretch);  // each invalid run is a piece of its own
      return;
    }
    std::size_t gap_begin = 0;  // end of the previous match
    match_valid(stretch, match_data.data, [&](std::size_t match_begin, std::size_t match_end) {
      if (match_begin > gap_begin)
        out.push_back(stretch.substr(gap_begin, match_begin - gap_begin));
      out.push_back(stretch.substr(match_begin, match_end - match_begin));
      gap_begin = match_end;
    });
    if (gap_begin < stretch.size()) out.push_back(stretch.substr(gap_begin));
  });
}

void RegexSplitter::for_each_match(std::string_view text, const MatchSink& sink) const {
  if (text.empty()) return;
  MatchData match_data(code_);
  for_each_stretch(text, [&](std::size_t begin, std::size_t end, bool is_valid) {
    if (!is_valid) return;
    match_valid(text.substr(begin, end - begin), match_data.data,
                [&](std::size_t b, std::size_t e) { sink(begin + b, begin + e); });
  });
}

std::string RegexSplitter::replace_all(std::string_view text, std::string_view content) const {
  std::string out;
  out.reserve(text.size());
  std::size_t copied = 0;
  for_each_match(text, [&](std::size_t begin, std::size_t end) {
    out.append(text.substr(copied, begin - copied));
    out.append(content);
    copied = end;
  });
  out.append(text.substr(copied));
  return out;
}

void RegexSplitter::match_valid(std::string_view text, void* match_data_ptr,
                                const MatchSink& sink) const {
  if (text.empty()) return;
  auto* code = static_cast<pcre2_code*>(code_);
  auto* match_data = static_cast<pcre2_match_data*>(match_data_ptr);
  pcre2_match_context* context = thread_match_context();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  std::size_t start = 0;  // where the next search begins
  while (start <= text.size()) {
    const int rc =
        pcre2_match(code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, match_data, context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      fail(StatusCode::kResourceExhausted, "regex failed on a {}-byte input: {}", text.size(),
           pcre2_message(rc));
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match_data);
    const std::size_t match_begin = ovector[0];
    const std::size_t match_end = ovector[1];
    if (match_end == match_begin) {
      // An empty match splits nothing; step over one character and search again.
      if (match_end >= text.size()) break;
      start = match_end + utf8::decode_step(text, match_end).length;
      continue;
    }
    sink(match_begin, match_end);
    start = match_end;
  }
}

}  // namespace llmserve
