// `llmserve generate`: runs one prompt through the model on this machine and streams the text to
// stdout (or prints one JSON object with --json). Statistics go to stderr.
#include <chrono>
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "cli/sampling_flags.h"
#include "common/status.h"
#include "engine/engine.h"
#include "tokenizer/incremental_detokenizer.h"
#include "tokenizer/stop_matcher.h"
#include "tokenizer/tokenizer.h"

namespace llmserve::cli {
namespace {

struct GenerateOptions {
  EngineFlags engine;
  std::string prompt;
  bool json = false;
  SamplingFlags sampling;
};

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

int run_generate(const GenerateOptions& opts, const CLI::App& cmd) {
  EngineConfig config = opts.engine.resolve();
  config.max_batch_size = std::min(config.max_batch_size, 8);  // one request: keep the pool small
  if (config.num_kv_blocks == 0 && config.kv_cache_memory_fraction < 0) {
    const auto mc = load_model_config(config.model_dir);
    config.num_kv_blocks =
        (mc.max_position_embeddings + config.block_size - 1) / config.block_size + 1;
  }
  auto tokenizer = Tokenizer::from_dir(config.model_dir);
  Engine engine(config);

  Request request;
  request.sampling = opts.sampling.resolve(cmd);
  request.prompt_token_ids = tokenizer->encode(opts.prompt);
  const int32_t num_prompt = static_cast<int32_t>(request.prompt_token_ids.size());
  std::shared_ptr<RequestStream> stream;
  if (Status s = engine.submit(request, stream); !s.is_ok()) {
    if (s.code() == StatusCode::kOutOfRange &&
        num_prompt + request.sampling.max_tokens > engine.max_model_len()) {
      fail(StatusCode::kOutOfRange,
           "prompt ({} tokens) + --max-tokens ({}) exceeds the model's context of {} tokens",
           num_prompt, request.sampling.max_tokens, engine.max_model_len());
    }
    throw Error(s);
  }

  IncrementalDetokenizer detok(*tokenizer, DecodeOptions{.skip_special_tokens = true});
  StopMatcher stops(request.sampling.stop);
  std::string text;
  std::vector<int32_t> token_ids;
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
  bool is_stopped_by_text = false;
  RequestOutput out;
  while (stream->next(out)) {
    for (size_t i = 0; i < out.token_ids.size(); ++i) {
      const int32_t id = out.token_ids[i];
      token_ids.push_back(id);
      if (i < out.logprobs.size()) {
        nlohmann::json top = nlohmann::json::array();
        for (const auto& t : out.logprobs[i].top_logprobs)
          top.push_back({{"id", t.token_id}, {"logprob", t.logprob}});
        logprobs.push_back({{"id", id}, {"logprob", out.logprobs[i].logprob}, {"top", top}});
      }
      if (out.finish_reason == FinishReason::kStop && i + 1 == out.token_ids.size())
        break;  // eos / stop id: no text
      if (is_stopped_by_text) continue;
      auto m = stops.push(detok.push(id));
      emit(m.text);
      if (m.stopped) {
        is_stopped_by_text = true;
        engine.cancel(stream->id());
      }
    }
    if (out.is_final()) {
      reason = is_stopped_by_text ? FinishReason::kStop : out.finish_reason;
      if (reason == FinishReason::kError) throw Error(out.error);
      break;
    }
  }
  if (!is_stopped_by_text) emit(stops.push(detok.flush()).text + stops.flush());
  const RequestTimes& t = out.times;
  if (opts.json) {
    nlohmann::json j = {
        {"text", text},
        {"token_ids", token_ids},
        {"finish_reason", finish_reason_name(reason)},
        {"usage", {{"prompt_tokens", num_prompt}, {"completion_tokens", token_ids.size()}}}};
    if (request.sampling.has_logprobs()) j["logprobs"] = logprobs;
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else if (t.admitted && t.first_token && t.finished) {
    std::cout << "\n";
    const double prefill = seconds_between(*t.admitted, *t.first_token);
    const double decode = seconds_between(*t.first_token, *t.finished);
    const size_t n = token_ids.size();
    std::fprintf(stderr,
                 "[finish_reason=%s prompt_tokens=%d completion_tokens=%zu prefill %.1f tok/s, "
                 "decode %.1f tok/s]\n",
                 std::string(finish_reason_name(reason)).c_str(), num_prompt, n,
                 num_prompt / std::max(prefill, 1e-9),
                 n > 1 ? static_cast<double>(n - 1) / std::max(decode, 1e-9) : 0.0);
  }
  return 0;
}

}  // namespace

void add_generate_command(CLI::App& app, Action& action) {
  auto opts = std::make_shared<GenerateOptions>();
  CLI::App* cmd = app.add_subcommand(
      "generate", "Generate text for one prompt on this machine and stream it to stdout");
  opts->engine.add_to(*cmd);
  cmd->add_option("--prompt", opts->prompt, "Prompt text")->required();
  cmd->add_flag("--json", opts->json,
                "Print one JSON object (text, token_ids, finish_reason, usage, logprobs) instead "
                "of streaming");
  opts->sampling.add_to(*cmd);
  cmd->callback(
      [&action, opts, cmd] { action = [opts, cmd] { return run_generate(*opts, *cmd); }; });
}

}  // namespace llmserve::cli
