// tokenizer.json's normalizer, pre_tokenizer and decoder. See tokenizer_json_pipeline.h.
#include "tokenizer/tokenizer_json_pipeline.h"

#include "common/status.h"

namespace llmserve::tokenizer_json {

using json_fields::find;
using json_fields::get_string;
using json_fields::Json;
using json_fields::require;

std::string field(std::string_view where, std::string_view key) {
  return fmt::format("{}.{}", where, key);
}

std::string element(std::string_view where, std::size_t i) {
  return fmt::format("{}[{}]", where, i);
}

std::string type_of(const Json& node, std::string_view where) {
  if (!node.is_object()) json_fields::fail_type(where, "an object", node);
  return get_string(require(node, "type", where), field(where, "type"));
}

const Json& require_array(const Json& node, std::string_view key, std::string_view where) {
  const Json& array = require(node, key, where);
  if (!array.is_array()) json_fields::fail_type(field(where, key), "an array", array);
  return array;
}

namespace {

// {"String": s} or {"Regex": r}, as Split and Replace write their pattern, with its field path.
struct Pattern {
  std::string text;
  RegexSplitter::PatternKind kind;
  std::string where;
};

Pattern read_pattern(const Json& node, std::string_view where) {
  const Json& pattern = require(node, "pattern", where);
  const std::string pattern_where = field(where, "pattern");
  if (const Json* regex = find(pattern, "Regex")) {
    const std::string regex_where = field(pattern_where, "Regex");
    return {get_string(*regex, regex_where), RegexSplitter::PatternKind::kRegex, regex_where};
  }
  if (const Json* literal = find(pattern, "String")) {
    const std::string literal_where = field(pattern_where, "String");
    return {get_string(*literal, literal_where), RegexSplitter::PatternKind::kLiteral,
            literal_where};
  }
  fail(StatusCode::kInvalidArgument, "{}: expected {{\"Regex\": ...}} or {{\"String\": ...}}",
       pattern_where);
}

std::size_t read_count(const Json& node, std::string_view key, std::string_view where) {
  const Json* value = find(node, key);
  if (!value) return 0;
  const int64_t count = json_fields::get_int(*value, field(where, key));
  if (count < 0) fail(StatusCode::kInvalidArgument, "{}.{}: negative", where, key);
  return static_cast<std::size_t>(count);
}

std::string string_or(const Json& node, std::string_view key, std::string fallback,
                      std::string_view where) {
  const Json* value = find(node, key);
  return value ? get_string(*value, field(where, key)) : std::move(fallback);
}

constexpr std::string_view kMetaspace = "\u2581";

// Metaspace's prepend_scheme, or (older files) add_prefix_space.
PreTokenizer::PrependScheme read_prepend_scheme(const Json& node, std::string_view where) {
  if (const Json* scheme = find(node, "prepend_scheme")) {
    const std::string name = get_string(*scheme, field(where, "prepend_scheme"));
    if (name == "always") return PreTokenizer::PrependScheme::kAlways;
    if (name == "first") return PreTokenizer::PrependScheme::kFirst;
    if (name == "never") return PreTokenizer::PrependScheme::kNever;
    fail(StatusCode::kInvalidArgument, "{}.prepend_scheme: '{}' is not always, first or never",
         where, name);
  }
  return json_fields::bool_or(node, "add_prefix_space", true, where)
             ? PreTokenizer::PrependScheme::kAlways
             : PreTokenizer::PrependScheme::kNever;
}

}  // namespace

void read_normalizer(const Json& node, std::string_view where, Normalizer& out) {
  const std::string type = type_of(node, where);
  if (type == "Sequence") {
    const Json& steps = require_array(node, "normalizers", where);
    for (std::size_t i = 0; i < steps.size(); ++i) {
      read_normalizer(steps[i], element(field(where, "normalizers"), i), out);
    }
  } else if (type == "Prepend") {
    out.add_prepend(get_string(require(node, "prepend", where), field(where, "prepend")));
  } else if (type == "Replace") {
    const Pattern pattern = read_pattern(node, where);
    out.add_replace(pattern.text, pattern.kind,
                    get_string(require(node, "content", where), field(where, "content")),
                    pattern.where);
  } else if (type == "NFC") {
    out.add_unicode(Normalizer::UnicodeForm::kNfc);
  } else if (type == "NFD") {
    out.add_unicode(Normalizer::UnicodeForm::kNfd);
  } else if (type == "NFKC") {
    out.add_unicode(Normalizer::UnicodeForm::kNfkc);
  } else if (type == "NFKD") {
    out.add_unicode(Normalizer::UnicodeForm::kNfkd);
  } else if (type == "Lowercase") {
    out.add_unicode(Normalizer::UnicodeForm::kLowercase);
  } else if (type == "Strip") {
    out.add_strip(json_fields::bool_or(node, "strip_left", false, where),
                  json_fields::bool_or(node, "strip_right", false, where));
  } else {
    fail(StatusCode::kUnimplemented, "{}.type: normalizer '{}' is not supported", where, type);
  }
}

void read_pre_tokenizer(const Json& node, std::string_view where, PreTokenizer& out) {
  const std::string type = type_of(node, where);
  if (type == "Sequence") {
    const Json& steps = require_array(node, "pretokenizers", where);
    for (std::size_t i = 0; i < steps.size(); ++i) {
      read_pre_tokenizer(steps[i], element(field(where, "pretokenizers"), i), out);
    }
  } else if (type == "ByteLevel") {
    out.add_byte_level(json_fields::bool_or(node, "add_prefix_space", true, where),
                       json_fields::bool_or(node, "use_regex", true, where));
  } else if (type == "Metaspace") {
    out.add_metaspace(string_or(node, "replacement", std::string(kMetaspace), where),
                      read_prepend_scheme(node, where),
                      json_fields::bool_or(node, "split", true, where));
  } else if (type == "Split") {
    const std::string behavior =
        get_string(require(node, "behavior", where), field(where, "behavior"));
    if (behavior != "Isolated") {
      fail(StatusCode::kUnimplemented, "{}.behavior: '{}' is not supported (only Isolated)", where,
           behavior);
    }
    if (json_fields::bool_or(node, "invert", false, where)) {
      fail(StatusCode::kUnimplemented, "{}.invert: true is not supported", where);
    }
    const Pattern pattern = read_pattern(node, where);
    out.add_split(pattern.text, pattern.kind, pattern.where);
  } else {
    fail(StatusCode::kUnimplemented, "{}.type: pre-tokenizer '{}' is not supported", where, type);
  }
}

void read_decoder(const Json& node, std::string_view where, Decoder& out) {
  const std::string type = type_of(node, where);
  if (type == "Sequence") {
    const Json& steps = require_array(node, "decoders", where);
    for (std::size_t i = 0; i < steps.size(); ++i) {
      read_decoder(steps[i], element(field(where, "decoders"), i), out);
    }
  } else if (type == "ByteLevel") {
    out.add_byte_level(where);
  } else if (type == "ByteFallback") {
    out.add_byte_fallback(where);
  } else if (type == "Fuse") {
    out.add_fuse();
  } else if (type == "Strip") {
    out.add_strip(get_string(require(node, "content", where), field(where, "content")),
                  read_count(node, "start", where), read_count(node, "stop", where), where);
  } else if (type == "Replace") {
    const Pattern pattern = read_pattern(node, where);
    out.add_replace(pattern.text, pattern.kind,
                    get_string(require(node, "content", where), field(where, "content")), where);
  } else if (type == "Metaspace") {
    out.add_metaspace(string_or(node, "replacement", std::string(kMetaspace), where),
                      read_prepend_scheme(node, where) != PreTokenizer::PrependScheme::kNever,
                      where);
  } else {
    fail(StatusCode::kUnimplemented, "{}.type: decoder '{}' is not supported", where, type);
  }
}

}  // namespace llmserve::tokenizer_json
