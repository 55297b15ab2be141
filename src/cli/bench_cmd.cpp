// `llmserve bench offline`: the offline throughput benchmark of docs/performance.md.
#include <cstdio>
#include <fstream>
#include <iostream>

#include "bench/offline.h"
#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "common/status.h"
#include "server/structured_output.h"
#include "tokenizer/tokenizer.h"

namespace llmserve::cli {
namespace {

struct BenchOptions {
  EngineFlags engine;
  bench::OfflineOptions offline;
  std::string json_path;
  bool step_timing = false;
  std::string guided_json;   // a JSON Schema (inline or @file), or "object" for any JSON object
  std::string guided_regex;  // a regular expression
};

// The text of an option that takes inline text or @file.
std::string inline_or_file(const std::string& value, const char* flag) {
  if (value.empty() || value[0] != '@') return value;
  std::ifstream in(value.substr(1));
  if (!in) fail(StatusCode::kInvalidArgument, "{}: cannot read '{}'", flag, value.substr(1));
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// --guided-json / --guided-regex compiled for the engine's vocabulary, as a served request's
// guided_json / guided_regex would be (server/structured_output.h); null for neither.
std::shared_ptr<const grammar::CompiledGrammar> compile_guide(const BenchOptions& o,
                                                              const Engine& engine) {
  if (o.guided_json.empty() && o.guided_regex.empty()) return nullptr;
  if (!o.guided_json.empty() && !o.guided_regex.empty()) {
    fail(StatusCode::kInvalidArgument, "--guided-json and --guided-regex exclude each other");
  }
  auto tokenizer = Tokenizer::from_dir(engine.config().model_dir);
  StructuredOutputs outputs(*tokenizer, engine.model_config().vocab_size,
                            engine.model_config().eos_token_ids);
  const bool json = !o.guided_json.empty();
  const std::string text = json ? inline_or_file(o.guided_json, "--guided-json")
                                : inline_or_file(o.guided_regex, "--guided-regex");
  const GuideKind kind = !json              ? GuideKind::kRegex
                         : text == "object" ? GuideKind::kJsonObject
                                            : GuideKind::kJsonSchema;
  std::shared_ptr<const grammar::CompiledGrammar> compiled;
  if (Status s = outputs.compile(kind, text, json ? "--guided-json" : "--guided-regex", compiled);
      !s.is_ok()) {
    throw Error(std::move(s));
  }
  return compiled;
}

void print_table(const std::vector<bench::OfflineResult>& results) {
  std::printf("%-11s %8s %9s %10s %12s %12s %10s %10s %10s %10s %7s\n", "mode", "requests", "req/s",
              "out tok/s", "total tok/s", "ttft mean", "ttft p50", "ttft p99", "itl p50", "itl p99",
              "errors");
  for (const auto& r : results) {
    std::printf("%-11s %8d %9.2f %10.1f %12.1f %10.1fms %8.1fms %8.1fms %8.2fms %8.2fms %7d\n",
                r.mode.c_str(), r.num_requests, r.requests_per_s, r.output_tokens_per_s,
                r.total_tokens_per_s, r.ttft.mean * 1e3, r.ttft.p50 * 1e3, r.ttft.p99 * 1e3,
                r.itl.p50 * 1e3, r.itl.p99 * 1e3, r.num_errors);
  }
  for (const auto& r : results) std::printf("%s: %s\n", r.mode.c_str(), describe(r.steps).c_str());
  if (results.size() == 2 && results[1].output_tokens_per_s > 0) {
    std::printf("in-flight batching speed-up over one-at-a-time: %.2fx output tok/s\n",
                results[0].output_tokens_per_s / results[1].output_tokens_per_s);
  }
}

int run_offline_bench(const BenchOptions& o) {
  EngineConfig config = o.engine.resolve();
  config.step_timing = o.step_timing;
  Engine engine(config);
  bench::OfflineOptions offline = o.offline;
  offline.grammar = compile_guide(o, engine);
  auto results = bench::run_offline(engine, offline);
  print_table(results);
  if (!o.json_path.empty()) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& r : results) j.push_back(bench::to_json(r));
    nlohmann::json doc = {
        {"model", engine.config().model_dir.string()},
        {"device", std::string(engine.device_name())},
        {"input_len", o.offline.input_len},
        {"output_len", o.offline.output_len},
        {"max_batch_size", engine.config().max_batch_size},
        {"max_num_tokens", engine.config().max_num_tokens},
        {"repeat_period", o.offline.repeat_period},
        {"guide", !o.guided_json.empty()    ? "json"
                  : !o.guided_regex.empty() ? "regex"
                                            : "none"},
        {"speculative", speculative_mode_name(engine.config().speculative.mode)},
        {"num_speculative_tokens", engine.config().speculative.num_speculative_tokens},
        {"results", j}};
    if (o.json_path == "-") {
      std::cout << doc.dump(2) << "\n";
    } else {
      std::ofstream(o.json_path) << doc.dump(2) << "\n";
    }
  }
  return 0;
}

}  // namespace

void add_bench_serve_command(CLI::App& bench, Action& action);  // bench_serve_cmd.cpp

void add_bench_commands(CLI::App& app, Action& action) {
  CLI::App* bench = app.add_subcommand("bench", "Benchmarks");
  bench->require_subcommand(1);
  auto opts = std::make_shared<BenchOptions>();
  CLI::App* offline = bench->add_subcommand(
      "offline",
      "Offline throughput: synthetic requests all submitted at once to an in-process engine");
  opts->engine.add_to(*offline);
  auto& b = opts->offline;
  offline->add_option("--num-requests", b.num_requests, "Requests to run")->capture_default_str();
  offline->add_option("--input-len", b.input_len, "Prompt tokens per request (random ids)")
      ->capture_default_str();
  offline
      ->add_option("--output-len", b.output_len,
                   "Generated tokens per request (eos ignored, unless a guide below allows it)")
      ->capture_default_str();
  offline
      ->add_option("--repeat-period", b.repeat_period,
                   "> 0: each prompt repeats one random run of this many tokens (text that copies "
                   "itself, for --speculative ngram); 0: random tokens")
      ->capture_default_str();
  offline->add_option("--temperature", b.temperature, "Sampling temperature; 0 is greedy")
      ->capture_default_str();
  offline->add_option("--seed", b.seed, "Seed of the synthetic prompts")->capture_default_str();
  offline->add_option("--warmup", b.num_warmup, "Requests run before timing")
      ->capture_default_str();
  offline->add_flag(
      "--baseline-sequential", b.baseline_sequential,
      "Also run the same requests one at a time (the baseline) and print the speed-up");
  offline->add_flag("--step-timing", opts->step_timing,
                    "Also time each step on the device (CUDA events): its busy time and the idle "
                    "gap the host leaves between steps");
  offline->add_option(
      "--guided-json", opts->guided_json,
      "Decode every request under this JSON Schema (inline, or @file; 'object': any JSON "
      "object), as guided_json would: eos where the document may end, not ignored");
  offline->add_option("--guided-regex", opts->guided_regex,
                      "Decode every request under this regular expression (inline or @file)");
  offline->add_option("--json", opts->json_path,
                      "Also write the results as JSON to this file ('-' for stdout)");
  offline->callback([&action, opts] { action = [opts] { return run_offline_bench(*opts); }; });
  add_bench_serve_command(*bench, action);
}

}  // namespace llmserve::cli
