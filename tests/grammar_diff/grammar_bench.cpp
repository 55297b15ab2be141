// grammar_bench: microseconds per decoding step (fill_next_token_bitmask + accept_token) over
// the default model's GPT-2 vocabulary, while random walks generate documents for
// (a) json_object and (b) a moderate JSON schema. Not a test; docs/performance.md quotes it.
// Usage: grammar_bench MODEL_DIR [documents]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "grammar/json_schema.h"
#include "grammar/matcher.h"
#include "vocab.h"

namespace {

using namespace llmserve;
using namespace llmserve::grammar;
using Clock = std::chrono::steady_clock;

// Nested object, enum, array of objects, 15 properties in all.
constexpr const char* kSchema = R"({
  "type": "object",
  "properties": {
    "id": {"type": "integer", "minimum": 0},
    "name": {"type": "string", "maxLength": 40},
    "email": {"type": "string", "format": "email"},
    "status": {"enum": ["active", "suspended", "deleted"]},
    "score": {"type": "number"},
    "verified": {"type": "boolean"},
    "address": {"type": "object", "properties": {
      "street": {"type": "string"}, "city": {"type": "string"},
      "zip": {"type": "string", "pattern": "[0-9]{5}"}}, "required": ["city"]},
    "orders": {"type": "array", "maxItems": 4, "items": {"type": "object", "properties": {
      "sku": {"type": "string"}, "quantity": {"type": "integer", "minimum": 1, "maximum": 99},
      "price": {"type": "number", "minimum": 0}}, "required": ["sku", "quantity"]}},
    "tags": {"type": "array", "items": {"type": "string"}}
  },
  "required": ["id", "name", "status", "orders"]
})";

void run(const char* label, const Grammar& g, std::shared_ptr<const TokenizerInfo> vocab,
         int docs) {
  auto t0 = Clock::now();
  std::shared_ptr<const CompiledGrammar> cg;
  if (Status s = CompiledGrammar::compile(g, vocab, cg); !s.is_ok()) {
    std::fprintf(stderr, "%s: %s\n", label, s.message().c_str());
    std::exit(1);
  }
  double compile_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  std::mt19937_64 rng(7);
  std::vector<uint32_t> mask(static_cast<size_t>(vocab->mask_words()));
  std::vector<double> steps;
  std::vector<int32_t> allowed;
  int32_t stop = vocab->stop_token_ids()[0];
  long chars = 0;
  for (int d = 0; d < docs; ++d) {
    GrammarMatcher m(cg);
    for (int step = 0; step < 400 && !m.is_terminated(); ++step) {
      auto s0 = Clock::now();
      m.fill_next_token_bitmask(mask);
      auto s1 = Clock::now();
      // Choosing the token (the sampler's job) is not timed.
      allowed.clear();
      for (int32_t id = 0; id < vocab->vocab_size(); ++id) {
        if ((mask[static_cast<size_t>(id) >> 5] >> (id & 31)) & 1) allowed.push_back(id);
      }
      bool can_stop = std::find(allowed.begin(), allowed.end(), stop) != allowed.end();
      // Short documents: past 60 steps prefer closing tokens.
      int32_t pick = allowed[rng() % allowed.size()];
      if (can_stop) {
        pick = stop;
      } else if (step > 60) {
        for (int32_t id : allowed) {
          const auto& b = vocab->token_bytes(id);
          if (b == "\"" || b == "}" || b == "]") pick = id;
        }
      }
      auto s2 = Clock::now();
      m.accept_token(pick);
      auto s3 = Clock::now();
      if (pick != stop) chars += static_cast<long>(vocab->token_bytes(pick).size());
      steps.push_back(std::chrono::duration<double, std::micro>((s1 - s0) + (s3 - s2)).count());
    }
  }
  std::sort(steps.begin(), steps.end());
  double sum = 0;
  for (double s : steps) sum += s;
  std::printf(
      "%-12s compile %.1f ms, %zu steps over %d docs (%ld bytes): mean %.1f us, p50 %.1f us, "
      "p99 %.1f us, max %.1f us\n",
      label, compile_ms, steps.size(), docs, chars, sum / static_cast<double>(steps.size()),
      steps[steps.size() / 2], steps[steps.size() * 99 / 100], steps.back());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: grammar_bench MODEL_DIR [documents]\n");
    return 2;
  }
  int docs = argc > 2 ? std::atoi(argv[2]) : 50;
  auto tok = Tokenizer::from_dir(argv[1]);
  auto vocab = vocab_from(*tok);
  run("json_object", json_object_grammar(), vocab, docs);
  Grammar g;
  if (Status s = json_schema_grammar(kSchema, "schema", g); !s.is_ok()) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return 1;
  }
  run("json_schema", g, vocab, docs);
  return 0;
}
