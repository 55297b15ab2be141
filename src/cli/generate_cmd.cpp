// `llmserve generate`: runs one prompt through the model on this machine and streams the text to
// stdout (or prints one JSON object with --json). Statistics go to stderr.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>

#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "cli/commands.h"
#include "cli/model_path.h"
#include "cli/sampling_flags.h"
#include "common/logging.h"
#include "common/status.h"
#include "engine/model_runner.h"
#include "engine/sampler.h"
#include "engine/stop_rules.h"
#include "model/model.h"
#include "tokenizer/incremental_detokenizer.h"
#include "tokenizer/stop_matcher.h"
#include "tokenizer/tokenizer.h"

namespace llmserve::cli {
namespace {

struct GenerateOptions {
  std::string model;
  std::string prompt;
  std::string device = "cpu";
  bool json = false;
  SamplingFlags sampling;
};

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

int run_generate(const GenerateOptions& opts, const CLI::App& cmd) {
  if (opts.device != "cpu") fail(StatusCode::kUnavailable, "--device {}: only cpu is built in yet", opts.device);
  const auto dir = resolve_model_dir(opts.model);
  auto tokenizer = Tokenizer::from_dir(dir);
  auto backend = create_backend(DeviceKind::kCpu);
  auto model = load_model(dir, *backend);
  const ModelConfig& config = model->config();

  SamplingParams params = opts.sampling.resolve(cmd);
  if (Status s = params.validate(config.vocab_size); !s.is_ok()) throw Error(s);
  std::vector<int32_t> tokens = tokenizer->encode(opts.prompt);
  if (tokens.empty()) fail(StatusCode::kInvalidArgument, "--prompt encodes to no tokens");
  const int32_t num_prompt = static_cast<int32_t>(tokens.size());
  if (num_prompt + params.max_tokens > config.max_position_embeddings) {
    fail(StatusCode::kOutOfRange, "prompt ({} tokens) + --max-tokens ({}) exceeds the model's context of {} tokens",
         num_prompt, params.max_tokens, config.max_position_embeddings);
  }
  constexpr int32_t kBlockSize = 16;
  const int32_t num_blocks = (num_prompt + params.max_tokens + kBlockSize - 1) / kBlockSize;
  KvCache kv = backend->allocate_kv_cache(model->kv_cache_spec(kBlockSize, num_blocks));
  std::vector<int32_t> block_table(static_cast<size_t>(num_blocks));
  for (int32_t i = 0; i < num_blocks; ++i) block_table[static_cast<size_t>(i)] = i;
  ModelRunner runner(*model, *backend, kv);

  std::vector<int32_t> eos = config.eos_token_ids;
  if (eos.empty() && tokenizer->eos_token_id()) eos.push_back(*tokenizer->eos_token_id());
  std::optional<int32_t> first_eos = eos.empty() ? std::nullopt : std::optional<int32_t>(eos[0]);
  SamplingState state(params, tokens, std::random_device{}());
  IncrementalDetokenizer detok(*tokenizer, DecodeOptions{.skip_special_tokens = true});
  StopMatcher stops(params.stop);

  std::string text;
  nlohmann::json logprobs = nlohmann::json::array();
  auto emit = [&](const std::string& piece) {
    if (piece.empty()) return;
    text += piece;
    if (!opts.json) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
  };
  FinishReason reason = FinishReason::kNone;
  int32_t num_computed = 0;
  const auto start = Clock::now();
  double prefill_seconds = 0;
  while (reason == FinishReason::kNone) {
    RunnerSequence seq{tokens.data() + num_computed, static_cast<int32_t>(tokens.size()) - num_computed,
                       num_computed, &block_table, LogitRows::kLast};
    auto row = runner.execute({&seq, 1});
    num_computed = static_cast<int32_t>(tokens.size());
    if (state.num_generated() == 0) prefill_seconds = seconds_since(start);
    std::vector<float> scratch(row.begin(), row.end());
    SampleResult r = sample(scratch, params, state, first_eos);
    state.on_token(r.token_id);
    tokens.push_back(r.token_id);
    if (params.has_logprobs()) {
      nlohmann::json top = nlohmann::json::array();
      for (const auto& t : r.top_logprobs) top.push_back({{"id", t.token_id}, {"logprob", t.logprob}});
      logprobs.push_back({{"id", r.token_id}, {"logprob", r.logprob}, {"top", top}});
    }
    reason = check_finish(params, state.num_generated(), r.token_id, eos);
    if (reason == FinishReason::kStop) break;  // the eos / stop id itself is not text
    auto m = stops.push(detok.push(r.token_id));
    emit(m.text);
    if (m.stopped) reason = FinishReason::kStop;
  }
  if (reason != FinishReason::kStop || params.stop.empty()) emit(stops.push(detok.flush()).text + stops.flush());
  const double total = seconds_since(start);
  const int32_t num_generated = state.num_generated();
  if (opts.json) {
    nlohmann::json out = {
        {"text", text},
        {"token_ids", std::vector<int32_t>(tokens.begin() + num_prompt, tokens.end())},
        {"finish_reason", finish_reason_name(reason)},
        {"usage", {{"prompt_tokens", num_prompt}, {"completion_tokens", num_generated}}}};
    if (params.has_logprobs()) out["logprobs"] = logprobs;
    std::cout << out.dump() << "\n";
  } else {
    std::cout << "\n";
    const double decode = total - prefill_seconds;
    std::fprintf(stderr, "[finish_reason=%s prompt_tokens=%d completion_tokens=%d prefill %.1f tok/s, decode %.1f tok/s]\n",
                 std::string(finish_reason_name(reason)).c_str(), num_prompt, num_generated,
                 num_prompt / std::max(prefill_seconds, 1e-9),
                 num_generated > 1 ? (num_generated - 1) / std::max(decode, 1e-9) : 0.0);
  }
  return 0;
}

}  // namespace

void add_generate_command(CLI::App& app, Action& action) {
  auto opts = std::make_shared<GenerateOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate text for one prompt on this machine and stream it to stdout");
  cmd->add_option("--model", opts->model, "Hugging Face model directory (default: the embedded default model)");
  cmd->add_option("--prompt", opts->prompt, "Prompt text")->required();
  cmd->add_option("--device", opts->device, "cpu or cuda")->capture_default_str();
  cmd->add_flag("--json", opts->json, "Print one JSON object (text, token_ids, finish_reason, usage, logprobs) instead of streaming");
  opts->sampling.add_to(*cmd);
  cmd->callback([&action, opts, cmd] { action = [opts, cmd] { return run_generate(*opts, *cmd); }; });
}

}  // namespace llmserve::cli
