// Template lexing: a scan for the next tag opener, whitespace control on the text before it, then
// expression tokens up to the tag's closer (only at bracket depth 0, as Jinja does).
#include "tokenizer/chat_template_lexer.h"

#include <algorithm>

#include "common/status.h"
#include "tokenizer/utf8.h"

namespace llmserve::jinja {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_name_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

std::string normalize_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (std::size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string source) : src_(std::move(source)) {}

  std::vector<Token> run() {
    bool is_lstrip_next = false;  // the previous tag ended with "-"
    bool is_trim_next = false;    // the previous block tag ended with a plain "%}"
    bool is_line_start = true;
    while (pos_ <= src_.size()) {
      const std::size_t open = find_opener(pos_);
      const std::size_t text_begin = pos_;
      std::string text = src_.substr(pos_, (open == std::string::npos ? src_.size() : open) - pos_);
      if (is_lstrip_next) {
        const auto it = std::find_if_not(text.begin(), text.end(), is_space);
        text.erase(text.begin(), it);
      } else if (is_trim_next && !text.empty() && text[0] == '\n') {
        text.erase(0, 1);
      }
      if (open == std::string::npos) {
        emit_text(std::move(text), text_begin);
        break;
      }
      const char type = src_[open + 1];
      const char sign = open + 2 < src_.size() ? src_[open + 2] : '\0';
      if (sign == '-') {
        while (!text.empty() && is_space(text.back())) text.pop_back();
      } else if (sign != '+' && type != '{') {
        const std::size_t line_begin =
            text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
        if ((line_begin > 0 || is_line_start) && line_begin < text.size() &&
            std::all_of(text.begin() + static_cast<std::ptrdiff_t>(line_begin), text.end(),
                        is_space)) {
          text.resize(line_begin);
        }
      }
      emit_text(std::move(text), text_begin);
      pos_ = open + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
      char end_sign = '\0';
      if (type == '#') {
        end_sign = skip_comment(open);
      } else {
        end_sign = lex_tag(type, open);
      }
      is_lstrip_next = end_sign == '-';
      is_trim_next = type != '{' && end_sign == '\0';
      is_line_start = false;
      if (is_lstrip_next) {
        std::size_t p = pos_;
        while (p < src_.size() && is_space(src_[p])) ++p;
        is_line_start = p > pos_ && src_[p - 1] == '\n';
      } else if (is_trim_next) {
        is_line_start = pos_ < src_.size() && src_[pos_] == '\n';
      }
    }
    tokens_.push_back({TokenKind::kEof, "", position(src_.size())});
    return std::move(tokens_);
  }

 private:
  // Offsets are asked for mostly in increasing order; scanning on from the last one keeps
  // lexing linear.
  SourcePos position(std::size_t offset) const {
    if (offset < cached_offset_) {
      cached_offset_ = 0;
      cached_pos_ = SourcePos{};
    }
    for (; cached_offset_ < offset && cached_offset_ < src_.size(); ++cached_offset_) {
      if (src_[cached_offset_] == '\n') {
        ++cached_pos_.line;
        cached_pos_.column = 1;
      } else {
        ++cached_pos_.column;
      }
    }
    return cached_pos_;
  }

  [[noreturn]] void error(std::size_t offset, std::string_view what) const {
    const SourcePos p = position(offset);
    fail(StatusCode::kInvalidArgument, "chat template line {} column {}: {}", p.line, p.column,
         what);
  }

  std::size_t find_opener(std::size_t from) const {
    std::size_t p = from;
    while ((p = src_.find('{', p)) != std::string::npos) {
      if (p + 1 < src_.size() && (src_[p + 1] == '{' || src_[p + 1] == '%' || src_[p + 1] == '#')) {
        return p;
      }
      ++p;
    }
    return std::string::npos;
  }

  void emit_text(std::string text, std::size_t offset) {
    if (!text.empty()) tokens_.push_back({TokenKind::kText, std::move(text), position(offset)});
  }

  // Returns the closing sign: '-', '+' or '\0'.
  char skip_comment(std::size_t open) {
    const std::size_t close = src_.find("#}", pos_);
    if (close == std::string::npos) error(open, "unterminated comment");
    pos_ = close + 2;
    if (close > 0 && src_[close - 1] == '-') {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
      return '-';
    }
    return src_[close - 1] == '+' ? '+' : '\0';
  }

  char lex_tag(char type, std::size_t open) {
    const char closer = type == '{' ? '}' : '%';
    tokens_.push_back({type == '{' ? TokenKind::kVariableBegin : TokenKind::kBlockBegin,
                       type == '{' ? "{{" : "{%", position(open)});
    int depth = 0;
    while (true) {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
      if (pos_ >= src_.size()) error(open, type == '{' ? "unterminated '{{'" : "unterminated '{%'");
      if (depth == 0) {
        char sign = '\0';
        std::size_t p = pos_;
        if (src_[p] == '-' || src_[p] == '+') sign = src_[p++];
        if (p + 1 < src_.size() && src_[p] == closer && src_[p + 1] == '}' &&
            !(sign == '+' && type == '{')) {
          tokens_.push_back({type == '{' ? TokenKind::kVariableEnd : TokenKind::kBlockEnd,
                             type == '{' ? "}}" : "%}", position(pos_)});
          pos_ = p + 2;
          if (sign == '-') {
            while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
          }
          return sign;
        }
      }
      lex_expression_token(depth);
    }
  }

  void lex_expression_token(int& depth) {
    const std::size_t start = pos_;
    const char c = src_[pos_];
    if (is_name_start(c)) {
      while (pos_ < src_.size() && is_name_char(src_[pos_])) ++pos_;
      tokens_.push_back({TokenKind::kName, src_.substr(start, pos_ - start), position(start)});
      return;
    }
    if (is_digit(c)) {
      lex_number();
      return;
    }
    if (c == '\'' || c == '"') {
      lex_string();
      return;
    }
    static constexpr std::string_view kTwoChar[] = {"//", "**", "==", "!=", "<=", ">="};
    for (const std::string_view op : kTwoChar) {
      if (src_.compare(pos_, 2, op) == 0) {
        tokens_.push_back({TokenKind::kOperator, std::string(op), position(start)});
        pos_ += 2;
        return;
      }
    }
    if (std::string_view("+-*/%~<>=.,:|()[]{}").find(c) == std::string_view::npos) {
      error(start, std::string("unexpected character '") + c + "'");
    }
    if (c == '(' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '}') --depth;
    tokens_.push_back({TokenKind::kOperator, std::string(1, c), position(start)});
    ++pos_;
  }

  void lex_number() {
    const std::size_t start = pos_;
    auto digits = [&] {
      while (pos_ < src_.size() && (is_digit(src_[pos_]) || src_[pos_] == '_')) ++pos_;
    };
    digits();
    bool is_float = false;
    if (pos_ + 1 < src_.size() && src_[pos_] == '.' && is_digit(src_[pos_ + 1])) {
      is_float = true;
      ++pos_;
      digits();
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      std::size_t p = pos_ + 1;
      if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
      if (p < src_.size() && is_digit(src_[p])) {
        is_float = true;
        pos_ = p;
        digits();
      }
    }
    std::string text = src_.substr(start, pos_ - start);
    text.erase(std::remove(text.begin(), text.end(), '_'), text.end());
    tokens_.push_back({is_float ? TokenKind::kFloat : TokenKind::kInteger, text, position(start)});
  }

  void lex_string() {
    const std::size_t start = pos_;
    const char quote = src_[pos_++];
    std::string value;
    while (true) {
      if (pos_ >= src_.size()) error(start, "unterminated string literal");
      const char c = src_[pos_++];
      if (c == quote) break;
      if (c != '\\') {
        value += c;
        continue;
      }
      if (pos_ >= src_.size()) error(start, "unterminated string literal");
      const char e = src_[pos_++];
      switch (e) {
        case 'n':
          value += '\n';
          break;
        case 't':
          value += '\t';
          break;
        case 'r':
          value += '\r';
          break;
        case '0':
          value += '\0';
          break;
        case 'a':
          value += '\a';
          break;
        case 'b':
          value += '\b';
          break;
        case 'f':
          value += '\f';
          break;
        case 'v':
          value += '\v';
          break;
        case '\\':
          value += '\\';
          break;
        case '\'':
          value += '\'';
          break;
        case '"':
          value += '"';
          break;
        case '\n':
          break;
        case 'x':
        case 'u':
        case 'U': {
          const std::size_t n = e == 'x' ? 2 : (e == 'u' ? 4 : 8);
          if (pos_ + n > src_.size()) error(start, "truncated escape in string literal");
          utf8::append_codepoint(
              value, static_cast<char32_t>(std::stoul(src_.substr(pos_, n), nullptr, 16)));
          pos_ += n;
          break;
        }
        default:
          value += '\\';
          value += e;
      }
    }
    tokens_.push_back({TokenKind::kString, std::move(value), position(start)});
  }

  std::string src_;
  std::size_t pos_ = 0;
  std::vector<Token> tokens_;
  mutable std::size_t cached_offset_ = 0;
  mutable SourcePos cached_pos_;
};

}  // namespace

std::vector<Token> tokenize_template(std::string_view source) {
  return Lexer(normalize_newlines(source)).run();
}

}  // namespace llmserve::jinja
