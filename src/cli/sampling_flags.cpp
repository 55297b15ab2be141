#include "cli/sampling_flags.h"

namespace llmserve::cli {

void SamplingFlags::add_to(CLI::App& app) {
  auto& p = params;
  app.add_option("--max-tokens", p.max_tokens, "Most tokens to generate")->capture_default_str();
  app.add_option("--min-tokens", p.min_tokens,
                 "Fewest tokens to generate before eos/stop ids may end it")
      ->capture_default_str();
  app.add_option("--temperature", p.temperature, "Sampling temperature; 0 is greedy")
      ->capture_default_str();
  app.add_option("--top-k", p.top_k, "Keep the k most likely tokens; 0 is off")
      ->capture_default_str();
  app.add_option("--top-p", p.top_p, "Nucleus sampling mass in (0, 1]")->capture_default_str();
  app.add_option("--min-p", p.min_p, "Drop tokens below min_p x the top probability")
      ->capture_default_str();
  app.add_option("--repetition-penalty", p.repetition_penalty,
                 "HF-style penalty over prompt and output tokens")
      ->capture_default_str();
  app.add_option("--presence-penalty", p.presence_penalty, "OpenAI-style presence penalty [-2, 2]")
      ->capture_default_str();
  app.add_option("--frequency-penalty", p.frequency_penalty,
                 "OpenAI-style frequency penalty [-2, 2]")
      ->capture_default_str();
  app.add_option("--seed", seed, "Random seed; the same seed gives the same output");
  app.add_option("--stop", p.stop, "Stop string (repeatable)");
  app.add_option("--stop-token-id", p.stop_token_ids, "Token id that ends generation (repeatable)");
  app.add_flag("--ignore-eos", p.ignore_eos, "Keep generating past the end-of-sequence token");
  app.add_option("--logprobs", p.logprobs,
                 "Report the sampled token's logprob and this many alternatives (0..20)");
}

SamplingParams SamplingFlags::resolve(const CLI::App& app) const {
  SamplingParams p = params;
  if (app.count("--seed") > 0) p.seed = seed;
  return p;
}

}  // namespace llmserve::cli
