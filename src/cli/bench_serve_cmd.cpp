// `llmserve bench serve`: the load generator against a running server (ours, Triton, vLLM), and
// its seed-client mode (the tutorial's client). See docs/bench.md.
#include <cstdio>
#include <fstream>
#include <iostream>

#include <fmt/format.h>

#include "bench/load/load_report.h"
#include "bench/load/load_runner.h"
#include "bench/load/prompt_set.h"
#include "bench/load/seed_client.h"
#include "cli/commands.h"
#include "cli/model_path.h"
#include "common/status.h"

namespace llmserve::cli {
namespace {

using namespace bench::load;

struct BenchServeOptions {
  LoadOptions load;
  std::string target = "completions";
  std::string tokenizer;
  std::string extra_body;
  double slo_ttft_ms = 0, slo_tpot_ms = 0, slo_e2e_ms = 0;
  bool no_ignore_eos = false;
  bool no_progress = false;
  bool seed_client = false;
  bool has_num_requests = false;
  std::string json_path, csv_path, plots_dir;
};

void write_text(const std::string& path, const std::string& text) {
  if (path == "-") {
    std::cout << text;
    return;
  }
  std::ofstream out(path);
  out << text;
  if (!out) fail(StatusCode::kInvalidArgument, "cannot write '{}'", path);
}

int run_seed_mode(const BenchServeOptions& o) {
  SeedClientConfig c = SeedClientConfig::from_env(stderr);
  if (o.has_num_requests) c.max_requests = o.load.num_requests;
  return run_seed_client(c, stdout, stderr);
}

int run_bench_serve(BenchServeOptions& o) {
  if (o.seed_client) return run_seed_mode(o);
  LoadOptions& l = o.load;
  l.target = parse_target(o.target);
  if (!l.rates.empty()) l.mode = LoadMode::kOpenLoop;
  l.ignore_eos = !o.no_ignore_eos;
  l.show_progress = !o.no_progress;
  l.slo = {o.slo_ttft_ms / 1e3, o.slo_tpot_ms / 1e3, o.slo_e2e_ms / 1e3};
  if (!o.extra_body.empty()) {
    l.extra_body = nlohmann::json::parse(o.extra_body, nullptr, false);
    if (l.extra_body.is_discarded()) fail(StatusCode::kInvalidArgument, "--extra-body is not JSON");
  }
  l.validate();

  auto tokenizer = Tokenizer::from_dir(resolve_model_dir(o.tokenizer));
  const size_t num_points =
      l.mode == LoadMode::kClosedLoop ? l.concurrencies.size() : l.rates.size();
  std::vector<Prompt> prompts;
  if (!l.prompt_file.empty()) {
    prompts = load_prompt_file(l.prompt_file, *tokenizer, l.output.len);
  } else {
    // Prompts are reused round-robin; a pool of up to 1000 keeps start-up quick.
    const int64_t wanted = l.num_requests > 0
                               ? static_cast<int64_t>(l.num_requests + l.num_warmup) * num_points
                               : 1000;
    prompts =
        make_synthetic_prompts(*tokenizer, l.input, l.output,
                               static_cast<int32_t>(std::clamp<int64_t>(wanted, 1, 1000)), l.seed);
  }
  std::fprintf(stdout, "bench serve: %s at %s:%u, model '%s', %zu prompt(s), %s\n",
               std::string(target_name(l.target)).c_str(), l.host.c_str(), l.port, l.model.c_str(),
               prompts.size(),
               l.mode == LoadMode::kClosedLoop ? "closed loop" : "open loop (Poisson)");
  print_table_header(stdout, l.slo.is_set());
  LoadRunner runner(l, std::move(prompts));
  auto points = runner.run([](const LoadSummary& s) { print_table_row(stdout, s); });
  print_errors(stdout, points);
  print_speculation(stdout, points);
  if (!o.json_path.empty()) write_text(o.json_path, run_json(l, points).dump(2) + "\n");
  if (!o.csv_path.empty()) write_text(o.csv_path, points_csv(points));
  if (!o.plots_dir.empty()) {
    for (const auto& path :
         write_plots(o.plots_dir, fmt::format("{} {}", target_name(l.target), l.model), points)) {
      std::fprintf(stdout, "wrote %s\n", path.c_str());
    }
  }
  return 0;
}

}  // namespace

void add_bench_serve_command(CLI::App& bench, Action& action) {
  auto o = std::make_shared<BenchServeOptions>();
  auto& l = o->load;
  CLI::App* cmd = bench.add_subcommand("serve",
                                       "Load generator against a running server (OpenAI, Triton "
                                       "generate, KServe gRPC): sweeps, percentiles, plots");
  cmd->add_option("--target", o->target, "completions, chat, generate, generate_stream or grpc")
      ->capture_default_str();
  cmd->add_option("--host", l.host, "Server host")->capture_default_str();
  cmd->add_option("--port", l.port, "Server port (HTTP, or gRPC for --target grpc)")
      ->capture_default_str();
  cmd->add_option("--model", l.model, "Model name sent in requests")->capture_default_str();
  cmd->add_option("--tokenizer", o->tokenizer,
                  "Model directory whose tokenizer sizes prompts (default: the embedded model)");
  cmd->add_option("--api-key", l.api_key, "Sent as 'Authorization: Bearer KEY'");
  cmd->add_option("--metrics-port", l.metrics_port,
                  "The server's Prometheus port, read before and after each point for its "
                  "speculative-decoding counters (0: not read)")
      ->capture_default_str();
  cmd->add_option("--concurrency", l.concurrencies,
                  "Closed loop: requests in flight, one sweep point each (e.g. 1,2,4,8)")
      ->delimiter(',');
  cmd->add_option("--request-rate", l.rates,
                  "Open loop: Poisson request rates in req/s, one sweep point each")
      ->delimiter(',');
  cmd->add_option("--max-concurrency", l.max_concurrency,
                  "Open loop: most requests in flight (0: no cap)");
  auto* num = cmd->add_option("--num-requests", l.num_requests,
                              "Measured requests per point (0: use --duration)")
                  ->capture_default_str();
  cmd->add_option("--duration", l.duration_s,
                  "Seconds of sending per point (with --num-requests 0)");
  cmd->add_option("--warmup", l.num_warmup, "Unmeasured requests before each point")
      ->capture_default_str();
  cmd->add_option("--input-len", l.input.len, "Synthetic prompt tokens (exact, by the tokenizer)")
      ->capture_default_str();
  cmd->add_option("--input-range", l.input.range, "Input lengths uniform in len*(1 +- range)")
      ->capture_default_str();
  cmd->add_option("--output-len", l.output.len, "max_tokens per request")->capture_default_str();
  cmd->add_option("--output-range", l.output.range, "Output lengths uniform in len*(1 +- range)")
      ->capture_default_str();
  cmd->add_option("--prompt-file", l.prompt_file,
                  "JSONL prompts: {\"prompt\": ..., \"output_len\": N} per line");
  cmd->add_option("--seed", l.seed, "Seed of prompts and arrivals")->capture_default_str();
  cmd->add_flag("--no-ignore-eos", o->no_ignore_eos,
                "Let requests stop at eos (output lengths then vary)");
  cmd->add_option("--temperature", l.temperature, "Sampling temperature sent")
      ->capture_default_str();
  cmd->add_option("--extra-body", o->extra_body, "JSON object merged into every HTTP request body");
  cmd->add_option("--request-timeout", l.request_timeout_s,
                  "Seconds before a request counts as a timeout")
      ->capture_default_str();
  cmd->add_option("--slo-ttft-ms", o->slo_ttft_ms, "Goodput SLO: TTFT bound");
  cmd->add_option("--slo-tpot-ms", o->slo_tpot_ms, "Goodput SLO: time-per-output-token bound");
  cmd->add_option("--slo-e2e-ms", o->slo_e2e_ms, "Goodput SLO: end-to-end bound");
  cmd->add_option("--json", o->json_path, "Write the run as JSON ('-' for stdout)");
  cmd->add_option("--csv", o->csv_path, "Write one CSV row per sweep point ('-' for stdout)");
  cmd->add_option("--plots", o->plots_dir, "Write SVG plots into this directory");
  cmd->add_flag("--no-progress", o->no_progress, "No live progress line on stderr");
  cmd->add_flag("--seed-client", o->seed_client,
                "Be the tutorial's client (TRTLLM_MODEL_NAME, TRTLLM_TRITON_URL, "
                "TRTLLM_MAX_TOKENS); runs until "
                "killed, or --num-requests if given");
  cmd->callback([&action, o, num] {
    o->has_num_requests = num->count() > 0;
    action = [o] { return run_bench_serve(*o); };
  });
}

}  // namespace llmserve::cli
