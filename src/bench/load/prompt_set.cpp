#include "bench/load/prompt_set.h"

#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace llmserve::bench::load {
namespace {

int32_t draw_length(const LengthSpec& spec, std::mt19937_64& rng) {
  const double lo = spec.len * (1.0 - spec.range);
  const double hi = spec.len * (1.0 + spec.range);
  if (hi - lo < 1.0) return spec.len;
  std::uniform_int_distribution<int32_t> dist(static_cast<int32_t>(lo), static_cast<int32_t>(hi));
  return std::max(1, dist(rng));
}

bool is_printable_ascii(const std::string& bytes) {
  if (bytes.empty()) return false;
  for (unsigned char c : bytes) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// Ids that are printable ASCII text and not special: any sequence of them is valid UTF-8 and
// survives JSON, so trimming re-encoded ids never splits a character.
std::vector<int32_t> text_token_ids(const Tokenizer& tok) {
  std::vector<int32_t> ids;
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    if (!tok.is_special(id) && is_printable_ascii(tok.token_bytes(id))) ids.push_back(id);
  }
  if (ids.empty()) fail(StatusCode::kInternal, "the tokenizer has no plain-text tokens");
  return ids;
}

// A text that encodes to exactly `target` ids (special tokens the encoder adds included).
// Random ids decode to a text whose re-encoding may merge or split; the loop trims or extends
// the re-encoded ids and tries again, which settles within a few rounds.
std::string exact_text(const Tokenizer& tok, const std::vector<int32_t>& pool, int32_t num_special,
                       int32_t target, std::mt19937_64& rng) {
  std::uniform_int_distribution<size_t> pick(0, pool.size() - 1);
  const int32_t content = std::max(1, target - num_special);
  std::vector<int32_t> ids;
  for (int32_t i = 0; i < content; ++i) ids.push_back(pool[pick(rng)]);
  EncodeOptions plain;
  plain.add_special_tokens = false;
  plain.parse_special_tokens = false;
  for (int round = 0; round < 64; ++round) {
    std::string text = tok.decode(ids);
    auto re = tok.encode(text, plain);
    if (static_cast<int32_t>(re.size()) == content &&
        static_cast<int32_t>(tok.encode(text).size()) == target) {
      return text;
    }
    if (static_cast<int32_t>(re.size()) > content) {
      re.resize(static_cast<size_t>(content));
    } else {
      while (static_cast<int32_t>(re.size()) < content) re.push_back(pool[pick(rng)]);
    }
    ids = std::move(re);
  }
  fail(StatusCode::kInternal, "could not make a prompt of exactly {} tokens", target);
}

}  // namespace

std::vector<Prompt> make_synthetic_prompts(const Tokenizer& tokenizer, const LengthSpec& input,
                                           const LengthSpec& output, int32_t num, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const auto pool = text_token_ids(tokenizer);
  const int32_t num_special = static_cast<int32_t>(tokenizer.encode("").size());
  std::vector<Prompt> prompts;
  prompts.reserve(static_cast<size_t>(num));
  for (int32_t i = 0; i < num; ++i) {
    Prompt p;
    p.num_input_tokens = std::max(draw_length(input, rng), num_special + 1);
    p.max_tokens = draw_length(output, rng);
    p.text = exact_text(tokenizer, pool, num_special, p.num_input_tokens, rng);
    prompts.push_back(std::move(p));
  }
  return prompts;
}

std::vector<Prompt> load_prompt_file(const std::string& path, const Tokenizer& tokenizer,
                                     int32_t default_output_len) {
  std::ifstream in(path);
  if (!in) fail(StatusCode::kNotFound, "--prompt-file: cannot open '{}'", path);
  std::vector<Prompt> prompts;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      fail(StatusCode::kInvalidArgument, "--prompt-file {}:{}: not a JSON object", path, line_no);
    }
    Prompt p;
    for (const char* key : {"prompt", "text", "text_input"}) {
      if (j.contains(key) && j[key].is_string()) {
        p.text = j[key].get<std::string>();
        break;
      }
    }
    if (p.text.empty())
      fail(StatusCode::kInvalidArgument, "--prompt-file {}:{}: no \"prompt\" string", path,
           line_no);
    p.max_tokens = default_output_len;
    for (const char* key : {"output_len", "max_tokens"}) {
      if (j.contains(key) && j[key].is_number_integer()) p.max_tokens = j[key].get<int32_t>();
    }
    if (p.max_tokens < 1)
      fail(StatusCode::kInvalidArgument, "--prompt-file {}:{}: output length must be >= 1", path,
           line_no);
    p.num_input_tokens = static_cast<int32_t>(tokenizer.encode(p.text).size());
    prompts.push_back(std::move(p));
  }
  if (prompts.empty())
    fail(StatusCode::kInvalidArgument, "--prompt-file '{}' has no prompts", path);
  return prompts;
}

}  // namespace llmserve::bench::load
