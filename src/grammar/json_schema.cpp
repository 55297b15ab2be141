#include "grammar/json_schema.h"

#include <cmath>
#include <map>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "grammar/json_builtins.h"
#include "grammar/regex.h"

namespace llmserve::grammar {
namespace {

using Json = nlohmann::ordered_json;

// Keywords that only annotate: ignored.
const std::set<std::string, std::less<>> kAnnotations = {
    "title",      "description", "default",   "examples", "$schema",     "$id",  "$comment",
    "deprecated", "readOnly",    "writeOnly", "$defs",    "definitions", "name", "strict"};

// Validation keywords we recognise and cannot honour: refused by name.
const std::set<std::string, std::less<>> kUnsupported = {"not",
                                                         "if",
                                                         "then",
                                                         "else",
                                                         "uniqueItems",
                                                         "multipleOf",
                                                         "patternProperties",
                                                         "propertyNames",
                                                         "minProperties",
                                                         "maxProperties",
                                                         "dependentRequired",
                                                         "dependentSchemas",
                                                         "dependencies",
                                                         "contains",
                                                         "minContains",
                                                         "maxContains",
                                                         "unevaluatedProperties",
                                                         "unevaluatedItems",
                                                         "$dynamicRef",
                                                         "contentEncoding",
                                                         "contentMediaType",
                                                         "additionalItems"};

// format -> a regex over the decoded string. Dates take days 01-28 in February (no leap-year
// logic); times always carry a zone.
const std::map<std::string, std::string, std::less<>> kFormats = {
    {"date",
     R"([0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8])))"},
    {"time",
     R"(([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))"},
    {"date-time",
     R"([0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))"},
    {"uuid", R"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"},
    {"email",
     R"([a-zA-Z0-9_+-]{1,32}(\.[a-zA-Z0-9_+-]{1,32}){0,3}@[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?){1,3})"},
    {"ipv4",
     R"((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3})"},
};

const char* const kTypes[] = {"object", "array", "string", "number", "integer", "boolean", "null"};

class SchemaCompiler {
 public:
  SchemaCompiler(const Json& root, std::string_view field, Grammar& g, const JsonOptions& options)
      : root_(root), field_(field), g_(g), b_(g, options) {}

  Status run() {
    int32_t rule;
    if (Status s = compile(root_, field_, rule); !s.is_ok()) return s;
    g_.set_root(rule);
    return Status::ok();
  }

 private:
  Status compile(const Json& s, const std::string& path, int32_t& rule) {
    if (s.is_boolean()) {
      if (!s.get<bool>()) return invalid_argument("{}: the schema false matches nothing", path);
      rule = b_.value();
      return Status::ok();
    }
    if (!s.is_object())
      return invalid_argument("{}: a schema must be an object or a boolean", path);
    int validation_keys = 0;
    for (const auto& [key, v] : s.items()) {
      if (kUnsupported.count(key)) {
        return invalid_argument("{}.{}: keyword '{}' is not supported", path, key, key);
      }
      if (!kAnnotations.count(key)) ++validation_keys;
    }
    for (const char* combinator : {"$ref", "allOf", "anyOf", "oneOf"}) {
      if (!s.contains(combinator)) continue;
      if (validation_keys > 1) {
        return invalid_argument("{}.{}: '{}' next to other validation keywords is not supported",
                                path, combinator, combinator);
      }
      return compile_combinator(s, combinator, path + "." + combinator, rule);
    }
    if (s.contains("const")) {
      rule = g_.add_rule("const", {{Element::text(s["const"].dump())}});
      return Status::ok();
    }
    if (s.contains("enum")) {
      const Json& values = s["enum"];
      if (!values.is_array() || values.empty()) {
        return invalid_argument("{}.enum: must be a non-empty array", path);
      }
      std::vector<Sequence> alts;
      for (const auto& v : values) alts.push_back({Element::text(v.dump())});
      rule = g_.add_rule("enum", std::move(alts));
      return Status::ok();
    }
    std::vector<std::string> types;
    if (s.contains("type")) {
      const Json& t = s["type"];
      if (t.is_string()) {
        types.push_back(t.get<std::string>());
      } else if (t.is_array() && !t.empty()) {
        for (const auto& x : t) {
          if (!x.is_string()) return invalid_argument("{}.type: must hold strings", path);
          types.push_back(x.get<std::string>());
        }
      } else {
        return invalid_argument("{}.type: must be a string or a non-empty array of strings", path);
      }
      for (const auto& t2 : types) {
        if (std::find(std::begin(kTypes), std::end(kTypes), t2) == std::end(kTypes)) {
          return invalid_argument("{}.type: unknown type '{}'", path, t2);
        }
      }
    } else {
      types = implied_types(s);
    }
    if (types.empty()) {
      rule = b_.value();
      return Status::ok();
    }
    std::vector<Sequence> alts;
    for (const auto& t : types) {
      int32_t r;
      if (Status st = compile_type(s, t, path, r); !st.is_ok()) return st;
      alts.push_back({Element::ref(r)});
    }
    rule = alts.size() == 1 ? alts[0][0].rule : g_.add_rule("types", std::move(alts));
    return Status::ok();
  }

  static std::vector<std::string> implied_types(const Json& s) {
    for (const char* k : {"properties", "required", "additionalProperties"}) {
      if (s.contains(k)) return {"object"};
    }
    for (const char* k : {"items", "prefixItems", "minItems", "maxItems"}) {
      if (s.contains(k)) return {"array"};
    }
    for (const char* k : {"minLength", "maxLength", "pattern", "format"}) {
      if (s.contains(k)) return {"string"};
    }
    for (const char* k : {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}) {
      if (s.contains(k)) return {"number"};
    }
    return {};
  }

  Status compile_combinator(const Json& s, const std::string& key, const std::string& path,
                            int32_t& rule) {
    const Json& v = s[key];
    if (key == "$ref") {
      if (!v.is_string()) return invalid_argument("{}: must be a string", path);
      return compile_ref(v.get<std::string>(), path, rule);
    }
    if (!v.is_array() || v.empty()) return invalid_argument("{}: must be a non-empty array", path);
    if (key == "allOf") {
      if (v.size() != 1)
        return invalid_argument("{}: only allOf with one schema is supported", path);
      return compile(v[0], path + "[0]", rule);
    }
    std::vector<Sequence> alts;
    for (size_t i = 0; i < v.size(); ++i) {
      int32_t r;
      if (Status st = compile(v[i], fmt::format("{}[{}]", path, i), r); !st.is_ok()) return st;
      alts.push_back({Element::ref(r)});
    }
    rule = g_.add_rule(key, std::move(alts));
    return Status::ok();
  }

  Status compile_ref(const std::string& ref, const std::string& path, int32_t& rule) {
    if (auto it = refs_.find(ref); it != refs_.end()) {
      rule = it->second;
      return Status::ok();
    }
    if (ref != "#" && ref.rfind("#/$defs/", 0) != 0 && ref.rfind("#/definitions/", 0) != 0) {
      return invalid_argument(
          "{}: only local references (#/$defs/..., #/definitions/...) are "
          "supported, got '{}'",
          path, ref);
    }
    const Json* target = &root_;
    try {
      if (ref != "#") target = &root_.at(Json::json_pointer(ref.substr(1)));
    } catch (const std::exception&) {
      return invalid_argument("{}: '{}' does not resolve", path, ref);
    }
    // The rule exists before its body is compiled, so a recursive reference finds it.
    rule = g_.add_rule("ref");
    refs_[ref] = rule;
    int32_t body;
    if (Status st = compile(*target, path, body); !st.is_ok()) return st;
    g_.rule(rule).alternatives = {{Element::ref(body)}};
    return Status::ok();
  }

  Status compile_type(const Json& s, const std::string& type, const std::string& path,
                      int32_t& rule) {
    if (type == "object") return compile_object(s, path, rule);
    if (type == "array") return compile_array(s, path, rule);
    if (type == "string") return compile_string(s, path, rule);
    if (type == "integer") return compile_integer(s, path, rule);
    if (type == "number") return compile_number(s, path, rule);
    rule = type == "boolean" ? b_.boolean() : b_.null();
    return Status::ok();
  }

  // "{" ws first_0 ws "}" where first_k chooses the first member written among properties k..n
  // and rest_k continues after one was written (", " member), so optional properties leave no
  // stray commas: O(n) rules for n properties, each emitted in schema order.
  Status compile_object(const Json& s, const std::string& path, int32_t& rule) {
    bool has_properties = s.contains("properties");
    if (!has_properties && !s.contains("additionalProperties") && !s.contains("required")) {
      rule = b_.object();
      return Status::ok();
    }
    std::vector<std::pair<std::string, const Json*>> props;
    static const Json kAny = true;
    if (has_properties) {
      if (!s["properties"].is_object())
        return invalid_argument("{}.properties: must be an object", path);
      for (const auto& [name, sub] : s["properties"].items()) props.emplace_back(name, &sub);
    }
    std::set<std::string> required;
    if (s.contains("required")) {
      const Json& req = s["required"];
      if (!req.is_array()) return invalid_argument("{}.required: must be an array", path);
      for (const auto& r : req) {
        if (!r.is_string()) return invalid_argument("{}.required: must hold strings", path);
        required.insert(r.get<std::string>());
      }
    }
    int32_t extra = -1;  // the value rule of additional members, -1 = none
    const Json* additional =
        s.contains("additionalProperties") ? &s["additionalProperties"] : nullptr;
    if (additional && !(additional->is_boolean() && !additional->get<bool>())) {
      if (Status st = compile(*additional, path + ".additionalProperties", extra); !st.is_ok())
        return st;
    } else if (!additional && !has_properties) {
      extra = b_.value();
    }
    for (const auto& name : required) {
      bool declared =
          std::any_of(props.begin(), props.end(), [&](const auto& p) { return p.first == name; });
      if (declared) continue;
      if (extra < 0) {
        return invalid_argument(
            "{}.required: '{}' is required but not in properties and "
            "additionalProperties is false",
            path, name);
      }
      props.emplace_back(name, &kAny);
    }
    auto member = [&](const std::string& key_json, int32_t value_rule) {
      Sequence m{Element::text(key_json)};
      b_.ws(m);
      m.push_back(Element::text(":"));
      b_.ws(m);
      m.push_back(Element::ref(value_rule));
      return m;
    };
    auto comma = [&]() {
      Sequence c;
      b_.ws(c);
      c.push_back(Element::text(","));
      b_.ws(c);
      return c;
    };
    auto concat = [](Sequence a, const Sequence& b) {
      a.insert(a.end(), b.begin(), b.end());
      return a;
    };
    // The tail after the declared properties: additional members.
    int32_t rest = g_.add_rule("object_rest");
    int32_t first = g_.add_rule("object_first");
    if (extra >= 0) {
      Sequence extra_member{Element::ref(b_.string())};
      b_.ws(extra_member);
      extra_member.push_back(Element::text(":"));
      b_.ws(extra_member);
      extra_member.push_back(Element::ref(extra));
      g_.rule(rest).alternatives = {concat(concat(comma(), extra_member), {Element::ref(rest)}),
                                    {}};
      g_.rule(first).alternatives = {concat(extra_member, {Element::ref(rest)}), {}};
    } else {
      g_.rule(rest).alternatives = {{}};
      g_.rule(first).alternatives = {{}};
    }
    for (size_t k = props.size(); k-- > 0;) {
      const auto& [name, sub] = props[k];
      int32_t value_rule;
      if (Status st = compile(*sub, path + ".properties." + name, value_rule); !st.is_ok())
        return st;
      Sequence m = member(Json(name).dump(), value_rule);
      bool optional = !required.count(name);
      int32_t new_rest = g_.add_rule("object_rest");
      int32_t new_first = g_.add_rule("object_first");
      g_.rule(new_rest).alternatives = {concat(concat(comma(), m), {Element::ref(rest)})};
      g_.rule(new_first).alternatives = {concat(m, {Element::ref(rest)})};
      if (optional) {
        g_.rule(new_rest).alternatives.push_back({Element::ref(rest)});
        g_.rule(new_first).alternatives.push_back({Element::ref(first)});
      }
      rest = new_rest;
      first = new_first;
    }
    Sequence body{Element::text("{")};
    b_.ws(body);
    body.push_back(Element::ref(first));
    b_.ws(body);
    body.push_back(Element::text("}"));
    rule = g_.add_rule("object", {body});
    return Status::ok();
  }

  static Status read_count(const Json& s, const char* key, const std::string& path,
                           std::optional<int64_t>& out) {
    if (!s.contains(key)) return Status::ok();
    const Json& v = s[key];
    if (!v.is_number_integer() || v.get<int64_t>() < 0) {
      return invalid_argument("{}.{}: must be a non-negative integer", path, key);
    }
    out = v.get<int64_t>();
    return Status::ok();
  }

  // "[" ws items ws "]": positional items (prefixItems) then the rest (items), between
  // minItems and maxItems of them.
  Status compile_array(const Json& s, const std::string& path, int32_t& rule) {
    std::optional<int64_t> min_items, max_items;
    if (Status st = read_count(s, "minItems", path, min_items); !st.is_ok()) return st;
    if (Status st = read_count(s, "maxItems", path, max_items); !st.is_ok()) return st;
    constexpr int64_t kMaxCount = 1000;
    if (min_items.value_or(0) > kMaxCount || max_items.value_or(0) > kMaxCount) {
      return invalid_argument("{}: minItems/maxItems above {} are not supported", path, kMaxCount);
    }
    std::vector<int32_t> positional;
    if (s.contains("prefixItems")) {
      const Json& p = s["prefixItems"];
      if (!p.is_array()) return invalid_argument("{}.prefixItems: must be an array", path);
      for (size_t i = 0; i < p.size(); ++i) {
        int32_t r;
        if (Status st = compile(p[i], fmt::format("{}.prefixItems[{}]", path, i), r); !st.is_ok())
          return st;
        positional.push_back(r);
      }
    }
    int32_t rest_item = -1;  // -1: no items past the positional ones
    if (s.contains("items") && s["items"].is_boolean() && !s["items"].get<bool>()) {
      rest_item = -1;
    } else if (s.contains("items")) {
      if (Status st = compile(s["items"], path + ".items", rest_item); !st.is_ok()) return st;
    } else {
      rest_item = b_.value();
    }
    auto k = static_cast<int64_t>(positional.size());
    int64_t lo = min_items.value_or(0);
    std::optional<int64_t> hi = max_items;
    if (rest_item < 0) hi = std::min(hi.value_or(k), k);
    if (hi && *hi < lo) {
      return invalid_argument("{}: no array satisfies minItems {} with at most {} items", path, lo,
                              *hi);
    }
    Sequence sep;
    b_.ws(sep);
    sep.push_back(Element::text(","));
    b_.ws(sep);
    // tail_i: items i.. after i items were written (i >= 1).
    auto item_at = [&](int64_t i) {
      return i < k ? positional[static_cast<size_t>(i)] : rest_item;
    };
    int32_t tail = -1;  // tail_{i+1} while building tail_i
    int64_t top = std::max<int64_t>(k, 1);
    // Past the positional items, the rest is one repetition: (sep item){a,b}.
    {
      int32_t sep_item = -1;
      if (rest_item >= 0) {
        Sequence si = sep;
        si.push_back(Element::ref(rest_item));
        sep_item = g_.add_rule("array_more", {si});
      }
      int64_t a = std::max<int64_t>(0, lo - top);
      int64_t b = hi ? *hi - top : -1;
      if (sep_item < 0 || (hi && b <= 0)) {
        tail = g_.add_rule("array_tail", {{}});
      } else {
        tail = g_.add_rule(
            "array_tail",
            {{Element::repeat(sep_item, static_cast<int32_t>(a), static_cast<int32_t>(b))}});
      }
    }
    for (int64_t i = top - 1; i >= 1; --i) {
      if (i >= k && rest_item < 0) continue;
      Sequence next = sep;
      next.push_back(Element::ref(item_at(i)));
      next.push_back(Element::ref(tail));
      std::vector<Sequence> alts;
      if (!hi || i < *hi) alts.push_back(next);
      if (i >= lo) alts.emplace_back();
      tail = g_.add_rule("array_tail", std::move(alts));
    }
    std::vector<Sequence> contents;
    if (lo == 0) contents.emplace_back();
    if ((!hi || *hi >= 1) && item_at(0) >= 0)
      contents.push_back({Element::ref(item_at(0)), Element::ref(tail)});
    int32_t inner = g_.add_rule("array_items", std::move(contents));
    Sequence body{Element::text("[")};
    b_.ws(body);
    body.push_back(Element::ref(inner));
    b_.ws(body);
    body.push_back(Element::text("]"));
    rule = g_.add_rule("array", {body});
    return Status::ok();
  }

  Status compile_string(const Json& s, const std::string& path, int32_t& rule) {
    std::optional<int64_t> min_len, max_len;
    if (Status st = read_count(s, "minLength", path, min_len); !st.is_ok()) return st;
    if (Status st = read_count(s, "maxLength", path, max_len); !st.is_ok()) return st;
    bool has_length = min_len || max_len;
    int n_shapes =
        (s.contains("pattern") ? 1 : 0) + (s.contains("format") ? 1 : 0) + (has_length ? 1 : 0);
    if (n_shapes > 1) {
      return invalid_argument(
          "{}: combining pattern, format and minLength/maxLength is not supported", path);
    }
    std::string pattern;
    std::string pattern_field;
    if (s.contains("pattern")) {
      if (!s["pattern"].is_string()) return invalid_argument("{}.pattern: must be a string", path);
      pattern = s["pattern"].get<std::string>();
      pattern_field = path + ".pattern";
    } else if (s.contains("format")) {
      std::string f = s["format"].is_string() ? s["format"].get<std::string>() : "";
      auto it = kFormats.find(f);
      if (it == kFormats.end()) {
        return invalid_argument(
            "{}.format: format '{}' is not supported (supported: date, time, "
            "date-time, uuid, email, ipv4)",
            path, f);
      }
      pattern = it->second;
      pattern_field = path + ".format";
    }
    if (!pattern_field.empty()) {
      int32_t body;
      RegexOptions options;
      options.json_string = true;
      if (Status st = add_regex_rule(pattern, pattern_field, g_, body, options); !st.is_ok())
        return st;
      rule =
          g_.add_rule("string", {{Element::text("\""), Element::ref(body), Element::text("\"")}});
      return Status::ok();
    }
    if (!has_length) {
      rule = b_.string();
      return Status::ok();
    }
    int64_t lo = min_len.value_or(0);
    if (lo > 10000 || max_len.value_or(0) > 10000) {
      return invalid_argument("{}: minLength/maxLength above 10000 are not supported", path);
    }
    if (max_len && *max_len < lo) return invalid_argument("{}: maxLength is below minLength", path);
    rule = g_.add_rule("string", {{Element::text("\""),
                                   Element::repeat(b_.json_char(), static_cast<int32_t>(lo),
                                                   max_len ? static_cast<int32_t>(*max_len) : -1),
                                   Element::text("\"")}});
    return Status::ok();
  }

  // Reads minimum/maximum/exclusive* as integer bounds (ceil/floor of the given numbers).
  static Status integer_bounds(const Json& s, const std::string& path, std::optional<int64_t>& lo,
                               std::optional<int64_t>& hi) {
    auto read = [&](const char* key, bool lower, bool exclusive) -> Status {
      if (!s.contains(key)) return Status::ok();
      if (!s[key].is_number()) return invalid_argument("{}.{}: must be a number", path, key);
      double v = s[key].get<double>();
      if (std::abs(v) > 1e18) return invalid_argument("{}.{}: bound out of range", path, key);
      double b = lower ? (exclusive ? std::floor(v) + 1 : std::ceil(v))
                       : (exclusive ? std::ceil(v) - 1 : std::floor(v));
      auto bi = static_cast<int64_t>(b);
      auto& slot = lower ? lo : hi;
      slot = slot ? (lower ? std::max(*slot, bi) : std::min(*slot, bi)) : bi;
      return Status::ok();
    };
    for (auto [key, lower, exclusive] :
         {std::tuple{"minimum", true, false}, std::tuple{"exclusiveMinimum", true, true},
          std::tuple{"maximum", false, false}, std::tuple{"exclusiveMaximum", false, true}}) {
      if (Status st = read(key, lower, exclusive); !st.is_ok()) return st;
    }
    if (lo && hi && *lo > *hi) return invalid_argument("{}: no integer satisfies the bounds", path);
    return Status::ok();
  }

  Status compile_integer(const Json& s, const std::string& path, int32_t& rule) {
    std::optional<int64_t> lo, hi;
    if (Status st = integer_bounds(s, path, lo, hi); !st.is_ok()) return st;
    rule = lo || hi ? b_.integer_range(lo, hi) : b_.integer();
    return Status::ok();
  }

  // Numbers take bounds of 0 only: minimum 0 drops the sign, maximum 0 requires it (or is 0).
  Status compile_number(const Json& s, const std::string& path, int32_t& rule) {
    bool nonnegative = false, nonpositive = false;
    for (const char* key : {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}) {
      if (!s.contains(key)) continue;
      std::string k = key;
      if (!s[key].is_number() || s[key].get<double>() != 0 || k.rfind("exclusive", 0) == 0) {
        return invalid_argument(
            "{}.{}: only minimum: 0 and maximum: 0 are supported on numbers "
            "(use type integer for other bounds)",
            path, key);
      }
      (k == "minimum" ? nonnegative : nonpositive) = true;
    }
    if (nonnegative && nonpositive) {
      rule = g_.add_rule("zero", {{Element::text("0")}});
    } else if (nonnegative || nonpositive) {
      int32_t magnitude =
          regex_rule(R"((0|[1-9][0-9]{0,18})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,2})?)");
      rule = nonnegative ? g_.add_rule("number", {{Element::ref(magnitude)}})
                         : g_.add_rule("number", {{Element::text("-"), Element::ref(magnitude)},
                                                  {Element::text("0")}});
    } else {
      rule = b_.number();
    }
    return Status::ok();
  }

  int32_t regex_rule(std::string_view pattern) {
    int32_t r;
    if (Status st = add_regex_rule(pattern, "number", g_, r); !st.is_ok()) throw Error(st);
    return r;
  }

  const Json& root_;
  std::string field_;
  Grammar& g_;
  JsonBuiltins b_;
  std::map<std::string, int32_t> refs_;
};

}  // namespace

Grammar json_value_grammar(const JsonOptions& options) {
  Grammar g;
  JsonBuiltins b(g, options);
  g.set_root(b.value());
  return g;
}

Grammar json_object_grammar(const JsonOptions& options) {
  Grammar g;
  JsonBuiltins b(g, options);
  g.set_root(b.object());
  return g;
}

Status json_schema_grammar_from_json(const nlohmann::ordered_json& schema, std::string_view field,
                                     Grammar& out, const JsonOptions& options) {
  out = Grammar{};
  return SchemaCompiler(schema, field, out, options).run();
}

Status json_schema_grammar(std::string_view schema_text, std::string_view field, Grammar& out,
                           const JsonOptions& options) {
  nlohmann::ordered_json schema;
  try {
    schema = nlohmann::ordered_json::parse(schema_text);
  } catch (const nlohmann::json::parse_error& e) {
    return invalid_argument("{}: invalid JSON: {}", field, e.what());
  }
  return json_schema_grammar_from_json(schema, field, out, options);
}

}  // namespace llmserve::grammar
