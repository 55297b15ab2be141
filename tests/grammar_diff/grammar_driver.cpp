// grammar_driver: reads JSON requests, one per line, on stdin; writes one JSON reply per line.
//   {"op":"generate","kind":K,"spec":S,"count":n,"seed":s,"budget":t}
//     -> {"docs":[...],"unfinished":n}: n documents from random walks over the token masks of
//        the default model's GPT-2 vocabulary (a random allowed token per step; past `budget`
//        tokens, closing tokens and the stop token are preferred so walks end; a walk still open
//        at 8 x budget is counted as unfinished and dropped).
//   {"op":"accept","kind":K,"spec":S,"docs":[...]} -> {"accepted":[bool,...]} (bytes level).
// K is "schema" (S: the schema's JSON text), "regex", "ebnf" or "json_object". Errors reply
// {"error":message}. Usage: grammar_driver MODEL_DIR
#include <iostream>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "grammar/ebnf.h"
#include "grammar/json_schema.h"
#include "grammar/matcher.h"
#include "grammar/regex.h"
#include "vocab.h"

namespace {

using namespace llmserve;
using namespace llmserve::grammar;
using nlohmann::json;

Status build(const json& req, Grammar& g) {
  std::string kind = req.at("kind");
  if (kind == "json_object") {
    g = json_object_grammar();
    return Status::ok();
  }
  std::string spec = req.at("spec");
  if (kind == "schema") return json_schema_grammar(spec, "schema", g);
  if (kind == "regex") return regex_grammar(spec, "regex", g);
  if (kind == "ebnf") return ebnf_grammar(spec, "grammar", g);
  return invalid_argument("unknown kind '{}'", kind);
}

// Short tokens that close something: a string, an object, an array.
bool closing(const std::string& t) {
  return t.size() <= 3 && t.find_first_of("\"}]") != std::string::npos;
}

json generate(const std::shared_ptr<const CompiledGrammar>& cg, const json& req) {
  const TokenizerInfo& vocab = cg->tokenizer();
  std::mt19937_64 rng(req.value("seed", 1));
  int count = req.value("count", 10), budget = req.value("budget", 64);
  int32_t stop = vocab.stop_token_ids()[0];
  json docs = json::array();
  int unfinished = 0;
  std::vector<uint32_t> mask(static_cast<size_t>(vocab.mask_words()));
  std::vector<int32_t> allowed, preferred;
  for (int d = 0; d < count; ++d) {
    GrammarMatcher m(cg);
    std::string doc;
    int step = 0;
    for (; step < 8 * budget && !m.is_terminated(); ++step) {
      m.fill_next_token_bitmask(mask);
      allowed.clear();
      preferred.clear();
      for (int32_t id = 0; id < vocab.vocab_size(); ++id) {
        if (!((mask[static_cast<size_t>(id) >> 5] >> (id & 31)) & 1)) continue;
        allowed.push_back(id);
        if (step >= budget && (id == stop || closing(vocab.token_bytes(id))))
          preferred.push_back(id);
      }
      if (allowed.empty()) throw Error(StatusCode::kInternal, "dead end: no token allowed");
      // Before the budget, the stop token is taken a quarter of the times it is allowed.
      int32_t pick;
      bool can_stop = std::find(allowed.begin(), allowed.end(), stop) != allowed.end();
      if (!preferred.empty()) {
        pick = can_stop ? stop : preferred[rng() % preferred.size()];
      } else if (can_stop && rng() % 4 == 0) {
        pick = stop;
      } else {
        pick = allowed[rng() % allowed.size()];
      }
      if (!m.accept_token(pick)) throw Error(StatusCode::kInternal, "a masked token was refused");
      if (pick != stop) doc += vocab.token_bytes(pick);
    }
    if (m.is_terminated()) {
      docs.push_back(doc);
    } else {
      ++unfinished;
    }
  }
  return {{"docs", docs}, {"unfinished", unfinished}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: grammar_driver MODEL_DIR\n";
    return 2;
  }
  auto tok = Tokenizer::from_dir(argv[1]);
  auto vocab = vocab_from(*tok);
  std::string line;
  while (std::getline(std::cin, line)) {
    json reply;
    try {
      json req = json::parse(line);
      Grammar g;
      std::shared_ptr<const CompiledGrammar> cg;
      Status s = build(req, g);
      if (s.is_ok()) s = CompiledGrammar::compile(g, vocab, cg);
      if (!s.is_ok()) {
        reply = {{"error", s.message()}};
      } else if (req.at("op") == "generate") {
        reply = generate(cg, req);
      } else {
        json accepted = json::array();
        for (const auto& d : req.at("docs")) {
          GrammarMatcher m(cg);
          std::string text = d.get<std::string>();
          accepted.push_back((text.empty() || m.accept_bytes(text)) && m.can_terminate());
        }
        reply = {{"accepted", accepted}};
      }
    } catch (const std::exception& e) {
      reply = {{"error", std::string("driver: ") + e.what()}};
    }
    std::cout << reply.dump(-1, ' ', false, json::error_handler_t::replace) << std::endl;
  }
  return 0;
}
